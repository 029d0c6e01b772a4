"""Pieces of the training loop: jitter, the max-norm constraint, device choice."""

import math

import pytest
import torch

from paperlab.errors import PaperlabError
from paperlab.lab.nets import build
from paperlab.lab.spec import MLPSpec
from paperlab.lab.data.augment import jitter
from paperlab.lab.trainer import pick_device


def test_jitter_shifts_each_image_by_at_most_the_given_pixels():
    x = torch.zeros(64, 1, 12, 12)
    x[:, 0, 5, 6] = 1.0  # one bright pixel well inside the frame
    out = jitter(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.all(out.sum(dim=(1, 2, 3)) == 1)
    rows, cols = out[:, 0].nonzero()[:, 1], out[:, 0].nonzero()[:, 2]
    assert rows.min() >= 3 and rows.max() <= 7 and cols.min() >= 4 and cols.max() <= 8
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # images get their own shifts
    same = jitter(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(out, same) and torch.equal(jitter(x, 0, torch.Generator()), x)


def test_max_norm_keeps_each_units_incoming_weights_on_the_ball():
    net = build(MLPSpec(kind="mlp", hidden=[16], max_norm=1.5), (1, 4, 4), 3)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(100)
    net.apply_constraints()
    first = net.layers[1].weight
    assert torch.all(first.norm(dim=1) <= 1.5 + 1e-5)


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(PaperlabError, match="no CUDA device"):
            pick_device("cuda")


def test_later_settings_join_the_dumps_only_when_set():
    """Input noise, whitening and the ramp-down came after runs were keyed by these dumps: at their defaults
    they are left out, so earlier keys, caches and --resume stay valid; set, they are in every key."""
    from paperlab.lab.spec import ModelSpec, TrainSpec
    from paperlab.lab.templates import load

    assert "noise" not in ModelSpec(net={"kind": "resnet8"}).model_dump()
    assert ModelSpec(net={"kind": "resnet8"}, noise=0.15).model_dump()["noise"] == 0.15
    base = dict(lr=0.1, batch_size=64, epochs=10, val_size=10)
    assert "rampdown_epochs" not in TrainSpec(**base).model_dump()
    assert TrainSpec(**base, schedule="ramps", rampdown_epochs=3).model_dump()["rampdown_epochs"] == 3
    assert "whiten" not in load("kd-cifar", "quick").model_dump()
    assert load("kd-cifar", "quick", {"whiten": "gcn-zca", "normalize": False}).model_dump()["whiten"] == "gcn-zca"
    with pytest.raises(ValueError, match="belong to schedule 'ramps'"):
        TrainSpec(**base, rampdown_epochs=3)
    with pytest.raises(ValueError, match="exceed the 10 epochs"):
        TrainSpec(**base, schedule="ramps", warmup_epochs=8, rampdown_epochs=3)


def test_mean_teachers_sigmoid_ramps_by_hand():
    """Up as exp(-5 (1 - e/up)^2) for e < up, down as exp(-12.5 (1 - (total - e)/down)^2) over the last
    `down` epochs (the TensorFlow code's sigmoid_rampup / sigmoid_rampdown, in epochs)."""
    from paperlab.lab.spec import TrainSpec
    from paperlab.lab.schedule import scheduler_for as _scheduler, sigmoid_ramps

    assert sigmoid_ramps(0, 4, 2, 10) == pytest.approx(math.exp(-5))
    assert sigmoid_ramps(2, 4, 2, 10) == pytest.approx(math.exp(-5 * 0.25))
    assert sigmoid_ramps(4, 4, 2, 10) == 1.0 and sigmoid_ramps(7, 4, 2, 10) == 1.0
    assert sigmoid_ramps(8, 4, 2, 10) == pytest.approx(1.0)  # the ramp-down starts at exp(0)
    assert sigmoid_ramps(9, 4, 2, 10) == pytest.approx(math.exp(-12.5 * 0.25))
    w = torch.nn.Parameter(torch.tensor([1.0]))
    spec = TrainSpec(optimizer="adam", lr=0.003, batch_size=1, epochs=10, val_size=1, schedule="ramps",
                     warmup_epochs=4, rampdown_epochs=2)
    opt = torch.optim.Adam([w], lr=spec.lr)
    sched, rates = _scheduler(opt, spec), []
    for _ in range(10):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates == pytest.approx([0.003 * sigmoid_ramps(e, 4, 2, 10) for e in range(10)])



def test_adams_beta1_falls_with_the_ramp_down_and_is_checkpointed(tmp_path):
    """0.9 until the ramp-down, then rampdown * 0.9 + (1 - rampdown) * after (the TensorFlow code's
    adam_beta_1); set per epoch by the loop, kept in the optimizer's state."""
    from paperlab.lab.distillers import get, parse_params
    from paperlab.lab.spec import TrainSpec
    from paperlab.lab.schedule import adam_beta1, sigmoid_ramps
    from paperlab.lab.trainer import Tensors, fit

    spec = TrainSpec(optimizer="adam", lr=0.003, batch_size=8, epochs=6, val_size=1, schedule="ramps",
                     warmup_epochs=1, rampdown_epochs=3, adam_beta1_after=0.5)
    assert adam_beta1(spec, 0) == 0.9 and adam_beta1(spec, 2) == 0.9 and adam_beta1(spec, 3) == pytest.approx(0.9)
    fall = sigmoid_ramps(5, 0, 3, 6)
    assert adam_beta1(spec, 5) == pytest.approx(fall * 0.9 + (1 - fall) * 0.5) and fall < 1
    with pytest.raises(ValueError, match="needs optimizer 'adam'"):
        TrainSpec(**{**spec.model_dump(), "optimizer": "sgd"})
    model = build(MLPSpec(kind="mlp", hidden=[4]), (1, 2, 2), 3)
    x, y = torch.randn(16, 1, 2, 2), torch.arange(16) % 3
    fit(model, get("ce")(parse_params("ce", {}), model, None, None), Tensors(x, y, x[:4], y[:4]), spec, seed=0,
        label="t", checkpoint=tmp_path / "c.pt")
    saved = torch.load(tmp_path / "c.pt", weights_only=True)
    assert saved["epoch"] == 6 and saved["optimizer"]["param_groups"][0]["betas"] == (pytest.approx(
        adam_beta1(spec, 5)), 0.999)


def test_a_reflecting_shift_mirrors_the_border():
    """One row shifted by one pixel: the new first pixel is the mirror of the old second one (torch's reflect:
    the edge pixel itself is not repeated); with the default fill it is 0."""
    from paperlab.lab.data.augment import shift

    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]]).view(1, 1, 1, 4).expand(1, 1, 3, 4).contiguous()
    for seed in range(40):  # until a draw moves the image right by one, not vertically
        dy, dx = torch.randint(0, 3, (2, 1), generator=torch.Generator().manual_seed(seed))[:, 0].tolist()
        if (dy, dx) == (1, 0):
            break
    assert (dy, dx) == (1, 0)
    assert shift(x, 1, torch.Generator().manual_seed(seed), reflect=True)[0, 0, 1].tolist() == [2.0, 1.0, 2.0, 3.0]
    assert shift(x, 1, torch.Generator().manual_seed(seed))[0, 0, 1].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_input_noise_is_gaussian_of_the_given_std_and_absent_at_zero():
    from paperlab.lab.data.augment import Augment

    x = torch.zeros(64, 3, 8, 8)
    assert torch.equal(Augment()(x, torch.Generator().manual_seed(0)), x)
    noisy = Augment(noise=0.15)(x, torch.Generator().manual_seed(0))
    assert noisy.mean().abs().item() < 0.01 and noisy.std().item() == pytest.approx(0.15, rel=0.03)
    assert torch.equal(noisy, Augment(noise=0.15)(x, torch.Generator().manual_seed(0)))  # seeded: resumable


def test_nesterov_momentum_is_a_recipe_setting_and_joins_the_keys_only_when_on():
    """DML's recipe: SGD with Nesterov momentum. Off, the recipe dumps as before it existed (earlier runs'
    keys, caches and --resume unchanged); on, it is in the dump and so in every key."""
    from paperlab.lab.spec import TrainSpec
    from paperlab.lab.schedule import optimizer_for as _optimizer

    base = dict(lr=0.1, batch_size=64, epochs=1, val_size=10)
    plain, nesterov = TrainSpec(**base), TrainSpec(**base, nesterov=True)
    assert "nesterov" not in plain.model_dump() and nesterov.model_dump()["nesterov"] is True
    assert TrainSpec.model_validate(nesterov.model_dump()) == nesterov
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = _optimizer([w], nesterov)
    assert opt.param_groups[0]["nesterov"] is True and _optimizer([w], plain).param_groups[0]["nesterov"] is False
    for _ in range(2):  # two steps on loss w^2: v = 0.9 v + g; w -= lr (g + 0.9 v), Nesterov's form in torch
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    v1 = 2.0
    w1 = 1.0 - 0.1 * (2.0 + 0.9 * v1)
    v2 = 0.9 * v1 + 2 * w1
    assert w.item() == pytest.approx(w1 - 0.1 * (2 * w1 + 0.9 * v2), rel=1e-6)


def test_a_compiled_net_trains_to_the_eager_numbers_and_a_bad_mode_is_one_line():
    """--compile: the same net and data through torch.compile (mode 'default', the one a CPU can run) end with
    the eager run's losses and validation errors up to float reduction order. Nets without dropout: compiled
    dropout draws its own masks."""
    from paperlab.errors import BadInput
    from paperlab.lab.distillers import get, parse_params
    from paperlab.lab.spec import TrainSpec
    from paperlab.lab.trainer import Tensors, compiled, fit

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(320, 1, 4, 4, generator=g), torch.randint(0, 3, (320,), generator=g)
    data = Tensors(x[:256], y[:256], x[256:], y[256:])
    spec = TrainSpec(lr=0.1, batch_size=64, epochs=2, val_size=64)
    from torch._dynamo.utils import counters

    fits, graphs = [], []
    for mode in (None, "default"):
        counters.clear()
        torch.manual_seed(0)
        net = build(MLPSpec(kind="mlp", hidden=[16]), (1, 4, 4), 3)
        objective = get("ce")(parse_params("ce", {}), net, None, None)
        fits.append(fit(net, objective, data, spec, seed=0, label="t", compile_mode=mode))
        graphs.append(counters["stats"]["unique_graphs"])
    eager, comp = fits
    assert graphs[0] == 0 and graphs[1] >= 1  # the second run really went through torch.compile
    assert [h.val_error for h in comp.history] == [h.val_error for h in eager.history]
    assert [h.train_loss for h in comp.history] == pytest.approx([h.train_loss for h in eager.history], rel=1e-4)
    for k, v in eager.last_state.items():
        assert torch.allclose(comp.last_state[k], v, atol=1e-5), k
    with pytest.raises(BadInput, match="unknown compile mode 'fast'"):
        compiled(torch.nn.Linear(1, 1), "fast")


def test_gcn_zca_whitening_by_its_definition():
    """GCN: each image centred, L2 norm 55. ZCA with no filter bias: the training images' covariance becomes
    the identity, and W is symmetric (ZCA, not just any whitening); with the bias 0.1 every variance stays
    below 1. Validation and test images take the training split's transform."""
    from paperlab.lab.data.whiten import GcnZca, gcn

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(400, 2, 3, 3, generator=gen, dtype=torch.float64) * torch.linspace(0.5, 3, 18).view(1, 2, 3, 3)
    g = gcn(x).reshape(400, -1)
    assert g.mean(1).abs().max().item() < 1e-9 and g.norm(dim=1).tolist() == pytest.approx([55.0] * 400)
    exact = GcnZca.fit(x, bias=0.0)
    white = exact(x).reshape(400, -1)
    cov = torch.cov(white.T)
    # GCN removes one direction (each image's mean), so the whitened covariance is the identity less one
    # unit eigenvector: 17 eigenvalues of 1 and one of 0
    assert torch.linalg.eigvalsh(cov).tolist() == pytest.approx([0.0] + [1.0] * 17, abs=1e-6)
    assert torch.allclose(exact.w, exact.w.T)
    # that direction's eigenvalue is 0 up to rounding (-2e-14 on an AMD EPYC): W leaves it out, no NaN
    assert torch.isfinite(exact.w).all() and exact.w.sum(0).abs().max().item() < 1e-9
    biased = GcnZca.fit(x)
    assert torch.cov(biased(x).reshape(400, -1).T).diagonal().max().item() < 1.0
    one = x[:1]
    assert torch.allclose(biased(one), biased(x)[:1])

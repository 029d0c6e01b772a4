"""Seeds as one model (lab/batched.py) against separate runs of the one training loop, on the CPU."""

import copy

import pytest
import torch

from paperlab.errors import BadInput
from paperlab.lab import trainer
from paperlab.lab.batched import Copy, fit_copies
from paperlab.lab.distillers import Info, get, parse_params
from paperlab.lab.nets import build
from paperlab.lab.spec import CNNSpec, MLPSpec, TrainSpec

SHAPE, CLASSES = (1, 8, 8), 10


def _data(n=480, val=120):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n + val, *SHAPE, generator=g)
    y = (x.flatten(1) @ torch.randn(64, CLASSES, generator=g)).argmax(1)
    return trainer.Tensors(x[:n], y[:n], x[n:], y[n:])


def _net(seed, spec=MLPSpec(kind="mlp", hidden=[32, 32])):
    torch.manual_seed(seed)
    return build(spec, SHAPE, CLASSES)


def _method(name, params, student, info):
    return get(name)(parse_params(name, params), student, None, info)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_seeds_as_one_model_match_separate_runs(optimizer):
    """Three seeds, each with its own objective (CE, and KD at two temperatures from fixed teacher logits):
    per-copy losses, validation errors, best epochs and weights as three separate runs of trainer.fit."""
    data = _data()
    info = Info(SHAPE, CLASSES, data.y_train)
    teacher = torch.randn(len(data.x_train), CLASSES, generator=torch.Generator().manual_seed(5)) * 3
    spec = TrainSpec(optimizer=optimizer, lr=0.01 if optimizer == "adam" else 0.1, weight_decay=1e-4,
                     batch_size=64, epochs=4, schedule="cosine", val_size=120)
    settings = [("ce", {}, None), ("kd", {"temperature": 4.0, "alpha": 0.9}, teacher),
                ("kd", {"temperature": 1.0, "alpha": 0.5}, teacher)]
    copies = [Copy(_net(seed), _method(name, params, None, info), seed, logits)
              for seed, (name, params, logits) in enumerate(settings)]
    alone = []
    for c in copies:
        model = copy.deepcopy(c.model)
        tensors = trainer.Tensors(data.x_train, data.y_train, data.x_val, data.y_val, c.teacher_train)
        alone.append(trainer.fit(model, c.objective, tensors, spec, seed=c.seed, label="alone"))
    together = fit_copies(copies, data, spec)
    assert together[0].history[-1].train_loss < together[0].history[0].train_loss  # it learned
    assert not torch.equal(together[0].last_state["layers.1.weight"], together[1].last_state["layers.1.weight"])
    for one, batched in zip(alone, together):
        assert [h.val_error for h in batched.history] == [h.val_error for h in one.history]
        for a, b in zip(one.history, batched.history):
            assert b.train_loss == pytest.approx(a.train_loss, rel=1e-4)
        assert batched.best_epoch == one.best_epoch
        for key, value in one.last_state.items():
            assert torch.allclose(batched.last_state[key], value, atol=1e-5), key
    model = _net(0)
    model.load_state_dict(together[0].best_state)  # a copy's weights load into one net of its kind


def test_max_norm_is_applied_to_every_copy_and_unsupported_nets_are_refused():
    data = _data()
    info = Info(SHAPE, CLASSES, data.y_train)
    spec = TrainSpec(optimizer="sgd", lr=2.0, batch_size=64, epochs=1, schedule="constant", val_size=120)
    net = MLPSpec(kind="mlp", hidden=[16], max_norm=0.5)
    copies = [Copy(_net(s, net), _method("ce", {}, None, info), s) for s in (0, 1)]
    results = fit_copies(copies, data, spec)
    for result in results:
        assert float(result.last_state["layers.1.weight"].norm(dim=1).max()) <= 0.5 + 1e-5
    cnn = [Copy(_net(s, CNNSpec(kind="cnn", channels=[4, 8, 8])), _method("ce", {}, None, info), s) for s in (0, 1)]
    with pytest.raises(BadInput, match="batch norm"):
        fit_copies(cnn, data, spec)

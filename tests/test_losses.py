"""Each method's loss on tiny tensors against values worked out by hand (torchdistill's way)."""

import math

import pytest
import torch

from paperlab.errors import BadInput
from paperlab.lab.distillers import Batch, CrossEntropy, HintonKD, Info, get, parse_params
from paperlab.lab.distillers.at import at_loss
from paperlab.lab.distillers.crd import nce_loss
from paperlab.lab.distillers.dkd import dkd_terms
from paperlab.lab.nets import Out, build
from paperlab.lab.spec import CNNSpec


def _softmax(values, t=1.0):
    exps = [math.exp(v / t) for v in values]
    return [e / sum(exps) for e in exps]


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def _batch(y, epoch=1):
    y = torch.tensor(y)
    return Batch(torch.zeros(len(y), 1), y, torch.arange(len(y)), epoch, 0.0)


def _method(name, params, student=None, teacher=None, info=None):
    cls = get(name)
    return cls(parse_params(name, params), student, teacher, info)


def _ce(logits, label):
    return -math.log(_softmax(logits)[label])


# -- KD -------------------------------------------------------------------------------------------------
def test_kd_soft_term_is_batchmean_kl_times_t_squared():
    student = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 2.0]])
    teacher = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    t = 4.0
    by_hand = sum(_kl(_softmax(tr, t), _softmax(sr, t)) for sr, tr in zip(student.tolist(), teacher.tolist()))
    by_hand = by_hand / 2 * t * t  # mean over the batch (not over batch x classes), times T^2
    loss, terms = _method("kd", {"temperature": t, "alpha": 1.0})(Out(student), Out(teacher), _batch([1, 2]))
    assert terms["soft"].item() == pytest.approx(by_hand, rel=1e-5)
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)


def test_kd_alpha_mixes_soft_and_hard_terms():
    s, t = torch.tensor([[1.0, 2.0, 0.0]]), torch.tensor([[2.0, 1.0, 0.0]])
    loss, terms = _method("kd", {"temperature": 2.0, "alpha": 0.25})(Out(s), Out(t), _batch([0]))
    assert terms["hard"].item() == pytest.approx(_ce([1.0, 2.0, 0.0], 0), rel=1e-6)
    assert loss.item() == pytest.approx(0.25 * terms["soft"].item() + 0.75 * _ce([1.0, 2.0, 0.0], 0), rel=1e-6)


def test_kd_t2_factor_keeps_gradients_in_scale():
    grads = []
    for t in (5.0, 50.0):
        s = torch.tensor([[1.0, 0.0, -1.0]], requires_grad=True)
        _method("kd", {"temperature": t, "alpha": 1.0})(Out(s), Out(torch.tensor([[2.0, 0.5, -1.5]])),
                                                        _batch([0]))[0].backward()
        grads.append(s.grad.norm().item())
    assert 0.5 < grads[1] / grads[0] < 2.0  # without T^2 they would shrink as 1/T


# -- FitNet -----------------------------------------------------------------------------------------------
def _cnns(channels_s=(2, 3), channels_t=(4, 5)):
    torch.manual_seed(0)
    info = Info((1, 8, 8), 3, torch.tensor([0, 1, 2] * 10))
    return (build(CNNSpec(kind="cnn", channels=list(channels_s)), info.shape, 3),
            build(CNNSpec(kind="cnn", channels=list(channels_t)), info.shape, 3), info)


def test_fitnet_regresses_the_hint_through_its_connector():
    student, teacher, info = _cnns()
    fitnet = _method("fitnet", {"hint_layer": 1, "beta": 100.0}, student, teacher, info)
    reg = fitnet.regressor
    assert reg.conv.weight.shape == (5, 3, 1, 1) and reg.size == (4, 4)
    with torch.no_grad():  # connector: channel 0 of the student -> every teacher channel, BN as identity
        reg.conv.weight.zero_()
        reg.conv.weight[:, 0] = 1.0
    reg.eval()
    fs = torch.zeros(1, 3, 4, 4)
    fs[0, 0] = 2.0
    ft = torch.ones(1, 5, 4, 4)
    logits = torch.tensor([[0.0, 1.0, 0.0]])
    loss, terms = fitnet(Out(logits, feats=[None, fs]), Out(logits, feats=[None, ft]), _batch([1]))
    hint = (2.0 / math.sqrt(1 + 1e-5) - 1.0) ** 2  # every position: relu(2 / sqrt(var + eps)) - 1
    assert terms["hint"].item() == pytest.approx(hint, rel=1e-5)
    assert loss.item() == pytest.approx(_ce([0.0, 1.0, 0.0], 1) + 100 * hint, rel=1e-5)
    assert {n for n, _ in fitnet.named_parameters()} == {"regressor.conv.weight", "regressor.bn.weight",
                                                         "regressor.bn.bias"}
    with pytest.raises(BadInput, match="hint_layer=7"):
        _method("fitnet", {"hint_layer": 7}, student, teacher, info)


# -- AT ---------------------------------------------------------------------------------------------------
def test_attention_maps_are_normalised_squared_means_over_channels():
    fs = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])            # one channel
    ft = torch.ones(1, 2, 2, 2)                               # two channels of ones
    a_s = [v / math.sqrt(1 + 16 + 81 + 256) for v in (1, 4, 9, 16)]
    a_t = [0.5] * 4
    by_hand = sum((x - y) ** 2 for x, y in zip(a_s, a_t)) / 4
    assert at_loss(fs, ft, 2.0).item() == pytest.approx(by_hand, rel=1e-6)
    big = ft.repeat_interleave(2, -1).repeat_interleave(2, -2)  # 4x4 of ones pools to the same 2x2
    assert at_loss(fs, big, 2.0).item() == pytest.approx(by_hand, rel=1e-6)


def test_at_sums_the_stages_after_the_stem_times_beta():
    student, teacher, info = _cnns((2, 3, 4), (4, 5, 6))
    at = _method("at", {"beta": 1000.0}, student, teacher, info)
    torch.manual_seed(1)
    fs = [torch.rand(2, 2, 8, 8), torch.rand(2, 3, 4, 4), torch.rand(2, 4, 2, 2)]
    ft = [torch.rand(2, 4, 8, 8), torch.rand(2, 5, 4, 4), torch.rand(2, 6, 2, 2)]
    logits = torch.zeros(2, 3)
    loss, terms = at(Out(logits, feats=fs), Out(logits, feats=ft), _batch([0, 1]))
    expected = at_loss(fs[1], ft[1], 2) + at_loss(fs[2], ft[2], 2)
    assert terms["at"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() == pytest.approx(math.log(3) + 1000 * expected.item(), rel=1e-5)


# -- DKD --------------------------------------------------------------------------------------------------
def test_dkd_terms_by_hand():
    s, t, y = [1.0, 2.0, 0.0], [2.0, 1.0, 0.0], 0
    for temp in (1.0, 2.0):
        ps, pt = _softmax(s, temp), _softmax(t, temp)
        tckd = _kl([pt[0], 1 - pt[0]], [ps[0], 1 - ps[0]]) * temp ** 2
        nckd = _kl(_softmax(t[1:], temp), _softmax(s[1:], temp)) * temp ** 2
        got = dkd_terms(torch.tensor([s]), torch.tensor([t]), torch.tensor([y]), temp)
        assert got[0].item() == pytest.approx(tckd, rel=1e-5)
        assert got[1].item() == pytest.approx(nckd, rel=1e-5)
        # the paper's identity: KD = TCKD + (1 - p_target of the teacher) * NCKD
        kd = _kl(pt, ps) * temp ** 2
        assert tckd + (1 - pt[0]) * nckd == pytest.approx(kd, rel=1e-5)


def test_dkd_weights_and_warm_up():
    s, t = torch.tensor([[1.0, 2.0, 0.0]]), torch.tensor([[2.0, 1.0, 0.0]])
    dkd = _method("dkd", {"alpha": 1.0, "beta": 8.0, "temperature": 4.0, "warmup": 20})
    tckd, nckd = dkd_terms(s, t, torch.tensor([0]), 4.0)
    for epoch, ramp in ((5, 0.25), (20, 1.0), (40, 1.0)):
        loss, _ = dkd(Out(s), Out(t), _batch([0], epoch))
        assert loss.item() == pytest.approx(_ce([1.0, 2.0, 0.0], 0) + ramp * (tckd + 8 * nckd).item(), rel=1e-5)


# -- CRD --------------------------------------------------------------------------------------------------
def test_nce_loss_by_hand():
    scores = torch.tensor([[0.5, 0.1, 0.2]])  # positive first, two negatives, 10 examples in the bank
    m_pn, eps = 2 / 10, 1e-7
    by_hand = -(math.log(0.5 / (0.5 + m_pn + eps)) + math.log(m_pn / (0.1 + m_pn + eps))
                + math.log(m_pn / (0.2 + m_pn + eps)))
    assert nce_loss(scores, 10).item() == pytest.approx(by_hand, rel=1e-6)


def test_crd_samples_other_classes_and_moves_its_memory_bank():
    student, teacher, info = _cnns()
    torch.manual_seed(0)
    crd = _method("crd", {"feat_dim": 4, "nce_k": 12, "momentum": 0.5}, student, teacher, info)
    labels = info.train_labels
    y = torch.tensor([0, 1, 2, 0])
    neg = crd.negatives(y)
    assert neg.shape == (4, 12) and bool((labels[neg] != y[:, None]).all())
    assert set(crd.negatives(torch.zeros(400, dtype=torch.long)).flatten().tolist()) == \
        set(torch.nonzero(labels != 0).flatten().tolist())  # uniform over every other-class example
    index = torch.tensor([3, 4, 5, 6])
    before = crd.bank_s[index].clone()
    pooled_s, pooled_t = torch.randn(4, 3, requires_grad=True), torch.randn(4, 5)
    loss, terms = crd(Out(torch.zeros(4, 3), pooled=pooled_s), Out(torch.zeros(4, 3), pooled=pooled_t),
                      Batch(torch.zeros(4, 1), y, index, 1, 0.0))
    assert loss.item() == pytest.approx(math.log(3) + 0.8 * terms["crd"].item(), rel=1e-5)
    loss.backward()  # the bank and normaliser updates leave the graph intact
    assert crd.embed_s.linear.weight.grad is not None
    vs = crd.embed_s(pooled_s).detach()
    expected = torch.nn.functional.normalize(before * 0.5 + vs * 0.5, dim=1)
    assert torch.allclose(crd.bank_s[index], expected, atol=1e-6)
    assert bool((crd.z > 0).all())  # the normalisers are fixed on first use and checkpointed as buffers
    assert {"bank_s", "bank_t", "z"} <= set(crd.state_dict())
    with pytest.raises(BadInput, match="lower distill.nce_k"):
        _method("crd", {"nce_k": 10_000}, student, teacher, info)


# -- registry and validation ------------------------------------------------------------------------------
def test_registry_and_params():
    assert get("kd") is HintonKD and get("ce") is CrossEntropy
    with pytest.raises(BadInput, match="unknown distillation method 'dk'; did you mean 'dkd'"):
        get("dk")
    with pytest.raises(BadInput, match=r"unknown key 'distill.temprature' for method 'kd'; did you mean "
                                       r"'distill.temperature'\? \(valid keys: alpha, ce_weight, kd_weight, standardize, temperature\)"):
        parse_params("kd", {"temprature": 4, "alpha": 0.5})
    with pytest.raises(BadInput, match="bad value for 'distill.temperature'"):
        parse_params("kd", {"temperature": float("inf"), "alpha": 0.5})

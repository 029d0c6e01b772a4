"""What each method's reference code computes, pinned on tiny tensors worked by hand: the scale of each
term (PKT's B^2, AB's 3/1000, OFD's stage weights), which tensors it reads (ReviewKD's pre-ReLU targets,
the WRN's maps) and the parts it trains (VID's bias-free regressor). benchmarks/check_references.py runs
the reference code itself beside ours where a checkout of it is at hand."""

import math
import random

import pytest
import torch

from paperlab.lab.distillers import Batch, Info, get, parse_params
from paperlab.lab.nets import Out, build
from paperlab.lab.spec import CNNSpec


def _batch(n):
    return Batch(torch.zeros(n, 1), torch.zeros(n, dtype=torch.long), torch.arange(n), 1, 0.0)


def _method(name, params, student=None, teacher=None, info=None):
    return get(name)(parse_params(name, params), student, teacher, info)


def _cnn_pair(channels=(4, 8, 16)):
    torch.manual_seed(0)
    shape = (1, 8, 8)
    student = build(CNNSpec(kind="cnn", channels=list(channels)), shape, 10)
    teacher = build(CNNSpec(kind="cnn", channels=[16, 32, 64]), shape, 10)
    return student, teacher, Info(shape, 10, torch.zeros(20, dtype=torch.long))


@pytest.mark.parametrize("n", [8, 64])
def test_pkt_is_the_mean_over_all_pairs_of_the_batch_at_any_batch_size(n):
    from paperlab.lab.distillers.pkt import pkt_loss

    rng = random.Random(n)
    fs = [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(n)]
    ft = [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(n)]

    def probs(f):
        unit = [[x / (math.sqrt(sum(v * v for v in row)) + 1e-7) for x in row] for row in f]
        k = [[(sum(a * b for a, b in zip(u, w)) + 1) / 2 for w in unit] for u in unit]
        return [[x / sum(row) for x in row] for row in k]

    ps, pt = probs(fs), probs(ft)
    by_hand = sum(pt[i][j] * math.log((pt[i][j] + 1e-7) / (ps[i][j] + 1e-7))
                  for i in range(n) for j in range(n)) / n ** 2
    got = pkt_loss(torch.tensor(fs, dtype=torch.float64), torch.tensor(ft, dtype=torch.float64)).item()
    assert got == pytest.approx(by_hand, rel=1e-9)


def test_ab_weighs_stages_by_powers_of_two_and_scales_by_three_thousandths():
    """Two stages after the stem of one shape in both nets: identity connectors, as RepDistiller's."""
    student, teacher, info = _cnn_pair(channels=(16, 32, 64))
    ab = _method("ab", {}, student, teacher, info)
    assert all(isinstance(c, torch.nn.Identity) for c in ab.connectors)
    r1, t1 = [0.5, -2.0], [-1.0, 2.0]   # off and r > -m: (0.5 + 1)^2; on and r <= m: (-2 - 1)^2
    r2, t2 = [0.2, 2.0], [1.0, -3.0]    # on: (0.2 - 1)^2; off: (2 + 1)^2
    stage1, stage2 = (0.5 + 1) ** 2 + (-2 - 1) ** 2, (0.2 - 1) ** 2 + (2 + 1) ** 2
    by_hand = 3 / 1000 * (0.5 * stage1 + 1.0 * stage2)  # one sample: the batch mean is the sum
    stem = torch.zeros(1, 2, 1, 1)
    s = Out(torch.zeros(1, 10), preact=[stem, torch.tensor(r1).view(1, 2, 1, 1), torch.tensor(r2).view(1, 2, 1, 1)])
    t = Out(torch.zeros(1, 10), preact=[stem, torch.tensor(t1).view(1, 2, 1, 1), torch.tensor(t2).view(1, 2, 1, 1)])
    loss, terms = ab(s, t, _batch(1))
    assert loss.item() == pytest.approx(by_hand) and terms["ab"].item() == pytest.approx(by_hand)


def test_ofd_margin_is_the_closed_form_of_the_teacher_s_bn():
    from paperlab.lab.distillers.ofd import bn_margins

    bn = torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, -1.0]))
        bn.bias.copy_(torch.tensor([1.0, 5.0]))
    phi = 0.5 * math.erfc(0.5 / math.sqrt(2))   # P(x < 0) for N(1, 2^2)
    closed = -2 * math.exp(-0.125) / math.sqrt(2 * math.pi) / phi + 1
    # the second channel is negative with probability 3e-7 < 0.001: -3 |gamma|
    assert bn_margins(bn).tolist() == pytest.approx([closed, -3.0], rel=1e-6)
    student, teacher, info = _cnn_pair()
    ofd = _method("ofd", {}, student, teacher, info)
    assert bool(ofd.measured)
    assert ofd.margin0.tolist() == pytest.approx(bn_margins(teacher.bns[1]).tolist())


def test_ofd_weighs_the_three_stages_a_quarter_a_half_and_one():
    student, teacher, info = _cnn_pair(channels=(16, 32, 64))
    import torch.nn as nn

    teacher.convs.append(nn.Conv2d(64, 64, 3, padding=1))  # a fourth stage, so that three follow the stem
    teacher.bns.append(nn.BatchNorm2d(64))
    student.convs.append(nn.Conv2d(64, 64, 3, padding=1))
    student.bns.append(nn.BatchNorm2d(64))
    ofd = _method("ofd", {"ce_weight": 0.0, "feat_weight": 1.0}, student, teacher, info)
    for c in ofd.connectors:   # identity connectors: a unit 1x1 convolution and a BN in eval mode at 0/1
        with torch.no_grad():
            c[0].weight.copy_(torch.eye(c[0].weight.shape[0]).view_as(c[0].weight))
        c[1].eval()
        c[1].eps = 0.0
    for i in range(3):
        getattr(ofd, f"margin{i}").fill_(-1.0)
    widths = [16, 32, 64, 64]
    one = lambda c, v: torch.full((1, c, 1, 1), v)  # noqa: E731
    # each stage: student 0 against teacher 2 everywhere (target 2 > 0): (0 - 2)^2 per channel
    s = Out(torch.zeros(1, 10), preact=[one(c, 0.0) for c in widths])
    t = Out(torch.zeros(1, 10), preact=[one(c, 2.0) for c in widths])
    loss, _ = ofd(s, t, _batch(1))
    by_hand = 4 * 32 / 4 + 4 * 64 / 2 + 4 * 64 / 1
    assert loss.item() == pytest.approx(by_hand)


def test_reviewkd_distils_towards_the_teacher_s_pre_relu_maps():
    student, teacher, info = _cnn_pair()
    rk = _method("reviewkd", {"warmup": 0, "ce_weight": 0.0}, student, teacher, info).eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        s, t = student(x, features=True), teacher(x, features=True)
        base, _ = rk(s, t, _batch(4))
        other_feats = Out(t.logits, [f + 7 for f in t.feats], t.preact, t.pooled)
        other_preact = Out(t.logits, t.feats, [f + 7 for f in t.preact], t.pooled)
        assert rk(s, other_feats, _batch(4))[0].item() == pytest.approx(base.item())
        assert rk(s, other_preact, _batch(4))[0].item() != pytest.approx(base.item())
    for fusion in rk.fusions:   # kaiming_uniform_(a=1): bound sqrt(3 / fan_in), not PyTorch's 1 / sqrt(fan_in)
        w = fusion.reduce[0].weight
        fan_in = w[0].numel()
        assert w.abs().max() <= math.sqrt(3 / fan_in) and w.abs().max() > 1 / math.sqrt(fan_in)


def test_vid_regressor_has_no_biases_as_the_authors_code():
    student, teacher, info = _cnn_pair()
    vid = _method("vid", {}, student, teacher, info)
    for r, (cs, ct) in zip(vid.regressors, [(8, 32), (16, 64)]):
        assert sum(p.numel() for p in r.parameters()) == cs * ct + ct * ct + ct * ct + ct


def test_wrn_hands_over_raw_group_outputs_and_the_next_bn_as_pre_activation():
    from paperlab.lab.spec import CifarNetSpec

    torch.manual_seed(0)
    net = build(CifarNetSpec(kind="wrn_16_2"), (3, 32, 32), 100).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = net(x, features=True)
        stem = net.conv1(x)
        g1 = net.groups[0](stem)
        g2 = net.groups[1](g1)
        g3 = net.groups[2](g2)
    assert [f.shape[1] for f in out.feats] == [16, 32, 64, 128]
    for got, want in zip(out.feats, [stem, g1, g2, g3]):
        assert torch.allclose(got, want, atol=1e-6)
    with torch.no_grad():
        pre = [stem, net.groups[1][0].bn1(g1), net.groups[2][0].bn1(g2), net.bn(g3)]
    for got, want in zip(out.preact, pre):
        assert torch.allclose(got, want, atol=1e-6)
    assert (out.feats[-1] < 0).any()   # the last map is before the final BN and ReLU
    assert torch.allclose(out.pooled, torch.relu(pre[-1]).mean((2, 3)), atol=1e-6)
    assert torch.allclose(out.logits, net(x), atol=1e-6)
    assert sum(p.numel() for p in net.parameters()) == 703_284

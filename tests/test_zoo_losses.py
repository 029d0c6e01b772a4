"""The zoo's losses on tiny tensors against values worked out by hand (plain Python, no torch in the sums)."""

import math

import pytest
import torch

from paperlab.errors import BadInput
from paperlab.lab.distillers import Batch, get, parse_params
from paperlab.lab.distillers.cc import cc_loss
from paperlab.lab.distillers.ctkd import curriculum, reverse_gradient
from paperlab.lab.distillers.dist import dist_terms
from paperlab.lab.distillers.kd import standardize
from paperlab.lab.distillers.nst import poly_mmd
from paperlab.lab.distillers.pkt import pkt_loss
from paperlab.lab.distillers.rkd import rkd_terms
from paperlab.lab.distillers.sp import sp_loss
from paperlab.lab.distillers.vid import gaussian_nll
from paperlab.lab.nets import Out


def _softmax(values, t=1.0):
    exps = [math.exp(v / t) for v in values]
    return [e / sum(exps) for e in exps]


def _pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _unit(a):
    n = math.sqrt(_dot(a, a))
    return [x / n for x in a]


def _batch(y, epoch=1):
    y = torch.tensor(y)
    return Batch(torch.zeros(len(y), 1), y, torch.arange(len(y)), epoch, 0.0)


def _method(name, params, student=None, teacher=None, info=None):
    return get(name)(parse_params(name, params), student, teacher, info)


S = [[1.0, 2.0, 0.0], [0.5, -1.0, 2.0]]
T = [[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]


def test_dist_inter_and_intra_are_one_minus_pearson_times_t_squared():
    t, s3, t3 = 2.0, S + [[0.0, 1.0, 1.5]], T + [[1.0, 2.0, -1.0]]  # three samples: a column of two is +-1
    ps, pt = [_softmax(r, t) for r in s3], [_softmax(r, t) for r in t3]
    inter = sum(1 - _pearson(a, b) for a, b in zip(ps, pt)) / 3 * t * t
    cols = lambda p: [[row[c] for row in p] for c in range(3)]  # noqa: E731
    intra = sum(1 - _pearson(a, b) for a, b in zip(cols(ps), cols(pt))) / 3 * t * t
    got = dist_terms(torch.tensor(s3), torch.tensor(t3), t)
    assert got[0].item() == pytest.approx(inter, rel=1e-5)
    assert got[1].item() == pytest.approx(intra, rel=1e-5)
    loss, terms = _method("dist", {"beta": 2, "gamma": 3, "temperature": t, "ce_weight": 0})(
        Out(torch.tensor(s3)), Out(torch.tensor(t3)), _batch([1, 2, 0]))
    assert loss.item() == pytest.approx(2 * inter + 3 * intra, rel=1e-5)


def test_dist_is_zero_for_a_teacher_equal_up_to_shift():
    z = torch.tensor(S + [[0.0, 1.0, 1.5]])
    inter, intra = dist_terms(z, z + 5.0, 4.0)  # a constant shift leaves the softmax unchanged
    assert inter.item() == pytest.approx(0, abs=1e-4) and intra.item() == pytest.approx(0, abs=1e-4)


def test_logit_standardisation_z_scores_each_row_and_ignores_scale():
    row = [1.0, 2.0, 6.0]
    mean = sum(row) / 3
    std = math.sqrt(sum((v - mean) ** 2 for v in row) / 2)  # sample std (n - 1), as the authors' code
    assert standardize(torch.tensor([row]))[0].tolist() == pytest.approx([(v - mean) / std for v in row], rel=1e-5)
    kd = _method("kd", {"temperature": 2.0, "kd_weight": 9.0, "ce_weight": 0.1, "standardize": True})
    s, t = torch.tensor(S), torch.tensor(T)
    same, _ = kd(Out(s), Out(3 * t + 1), _batch([1, 2]))   # the teacher's scale and offset do not matter
    base, terms = kd(Out(s), Out(t), _batch([1, 2]))
    assert same.item() == pytest.approx(base.item(), rel=1e-5)
    assert base.item() == pytest.approx(9 * terms["soft"].item() + 0.1 * terms["hard"].item(), rel=1e-6)
    dkd = _method("dkd", {"standardize": True, "warmup": 0})
    assert dkd(Out(s), Out(3 * t + 1), _batch([1, 2]))[0].item() == pytest.approx(
        dkd(Out(s), Out(t), _batch([1, 2]))[0].item(), rel=1e-5)


def test_kd_weights_are_alpha_or_both_explicit():
    with pytest.raises(BadInput, match="alpha"):
        parse_params("kd", {"temperature": 4})
    with pytest.raises(BadInput, match="both"):
        parse_params("kd", {"temperature": 4, "kd_weight": 9})


def test_ctkd_temperature_rises_against_the_student_by_a_reversed_gradient():
    x = torch.tensor(2.0, requires_grad=True)
    (reverse_gradient(x, 0.5) * 3).backward()
    assert x.grad.item() == pytest.approx(-1.5)
    assert curriculum(0, 10, 1.0) == 0 and curriculum(5, 10, 1.0) == pytest.approx(0.5)
    assert curriculum(10, 10, 1.0) == pytest.approx(1.0) and curriculum(30, 10, 1.0) == pytest.approx(1.0)
    ctkd = _method("ctkd", {})
    loss, terms = ctkd(Out(torch.tensor(S)), Out(torch.tensor(T)), _batch([1, 2], epoch=5))
    assert terms["tau"].item() == pytest.approx(11.0)  # 1 + 20 * sigmoid(0)
    loss.backward()
    # theta moves so as to raise the KD loss: its gradient has the opposite sign of d(loss)/d(theta)
    theta = ctkd.theta.detach().clone().requires_grad_(True)
    tau = 1 + 20 * torch.sigmoid(theta)
    from paperlab.lab.distillers.kd import soft_kl

    (0.9 * soft_kl(torch.tensor(S), torch.tensor(T), tau)).backward()
    assert ctkd.theta.grad.item() == pytest.approx(-0.5 * theta.grad.item(), rel=1e-5)


def test_tfkd_virtual_teacher_by_hand():
    """The authors' code: KL(softmax(v / T) || softmax(s)), the student unsoftened; the paper's equation
    (soften_student) divides the student by T too and multiplies by T^2."""
    t, a, alpha = 2.0, 0.9, 0.25
    virtual = [[0.05, 0.9, 0.05], [0.05, 0.05, 0.9]]
    for soften in (False, True):
        s_t = t if soften else 1.0
        reg = sum(sum(pv * math.log(pv / qs) for pv, qs in zip(_softmax(v_row, t), _softmax(s_row, s_t)))
                  for s_row, v_row in zip(S, virtual)) / 2 * s_t * s_t
        ce = -(math.log(_softmax(S[0])[1]) + math.log(_softmax(S[1])[2])) / 2
        params = {"correct_prob": a, "temperature": t, "alpha": alpha, "multiplier": 3.0, "soften_student": soften}
        loss, terms = _method("tfkd", params)(Out(torch.tensor(S)), None, _batch([1, 2]))
        assert terms["reg"].item() == pytest.approx(reg, rel=1e-5)
        assert loss.item() == pytest.approx((1 - alpha) * ce + alpha * 3.0 * reg, rel=1e-5)


def test_sp_by_hand():
    fs = [[1.0, 0.0], [1.0, 1.0]]
    ft = [[0.0, 2.0], [1.0, 0.0]]

    def g_hat(f):
        g = [[_dot(a, b) for b in f] for a in f]
        return [_unit(row) for row in g]

    gs, gt = g_hat(fs), g_hat(ft)
    by_hand = sum((gs[i][j] - gt[i][j]) ** 2 for i in range(2) for j in range(2)) / 4
    got = sp_loss(torch.tensor(fs).view(2, 2, 1, 1), torch.tensor(ft).view(2, 2, 1, 1))
    assert got.item() == pytest.approx(by_hand, rel=1e-5)


def test_pkt_by_hand():
    fs = [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    ft = [[1.0, 0.2], [0.3, 1.0], [-1.0, 0.5]]

    def probs(f):
        u = [_unit(v) for v in f]
        k = [[(_dot(a, b) + 1) / 2 for b in u] for a in u]
        return [[x / sum(row) for x in row] for row in k]

    ps, pt = probs(fs), probs(ft)
    by_hand = sum(pt[i][j] * math.log(pt[i][j] / ps[i][j]) for i in range(3) for j in range(3)) / 9  # mean of B^2
    assert pkt_loss(torch.tensor(fs), torch.tensor(ft)).item() == pytest.approx(by_hand, rel=1e-4)


def test_rkd_distance_and_angle_by_hand():
    es = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]
    et = [[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]]

    def dists(e):
        d = [[math.dist(a, b) for b in e] for a in e]
        mu = sum(d[i][j] for i in range(3) for j in range(3) if i != j) / 6
        return [x / mu for row in d for x in row]

    def angs(e):
        out = []
        for j in range(3):
            for i in range(3):
                for k in range(3):
                    a = [x - y for x, y in zip(e[i], e[j])]
                    c = [x - y for x, y in zip(e[k], e[j])]
                    na, nc = math.sqrt(_dot(a, a)), math.sqrt(_dot(c, c))
                    out.append(_dot(a, c) / (na * nc) if na and nc else 0.0)
        return out

    huber = lambda xs, ys: sum(0.5 * (x - y) ** 2 if abs(x - y) < 1 else abs(x - y) - 0.5  # noqa: E731
                               for x, y in zip(xs, ys)) / len(xs)
    dist, angle = rkd_terms(torch.tensor(es), torch.tensor(et))
    assert dist.item() == pytest.approx(huber(dists(es), dists(et)), rel=1e-5)
    assert angle.item() == pytest.approx(huber(angs(es), angs(et)), rel=1e-5)


def test_nst_polynomial_mmd_by_hand():
    s = [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]]        # one sample, two channels, 2x2 positions
    t = [[1.0, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 1.0], [0.0, 0.0, 3.0, 0.0]]  # three channels
    us, ut = [_unit(c) for c in s], [_unit(c) for c in t]
    k = lambda a, b: sum(_dot(x, y) ** 2 for x in a for y in b) / (len(a) * len(b))  # noqa: E731
    by_hand = k(us, us) + k(ut, ut) - 2 * k(us, ut)
    got = poly_mmd(torch.tensor(s).view(1, 2, 2, 2), torch.tensor(t).view(1, 3, 2, 2))
    assert got.item() == pytest.approx(by_hand, rel=1e-5)


def test_cc_is_the_benchmark_code_s_product_of_consecutive_differences_by_hand():
    es = [[1.0, 0.0], [2.0, -1.0], [0.5, 3.0]]
    et = [[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]
    d = [[abs(a - b) for a, b in zip(x, y)] for x, y in zip(es, et)]  # [1, 1], [1, 2], [0.5, 3]
    by_hand = sum(d[i][k] * d[i + 1][k] for i in range(2) for k in range(2)) / 2  # pairs 0-1 and 1-2, mean of two
    assert cc_loss(torch.tensor(es), torch.tensor(et)).item() == pytest.approx(by_hand)
    assert by_hand == 4.75


def test_vid_gaussian_negative_log_likelihood_by_hand():
    target, mean, var = [1.0, 3.0], [0.0, 1.0], [2.0, 4.0]  # one sample, two channels, one position
    by_hand = sum(0.5 * (math.log(v) + (x - m) ** 2 / v) for x, m, v in zip(target, mean, var)) / 2
    got = gaussian_nll(torch.tensor(target).view(1, 2, 1, 1), torch.tensor(mean).view(1, 2, 1, 1),
                       torch.tensor(var))
    assert got.item() == pytest.approx(by_hand, rel=1e-6)
    vid = _method("vid", {"init_var": 5.0}, *_cnn_pair())
    assert (torch.nn.functional.softplus(vid.regressors[0].raw_var) + 1e-5).tolist() == pytest.approx([5.0] * 32)


def _cnn_pair():
    from paperlab.lab.distillers import Info
    from paperlab.lab.nets import build
    from paperlab.lab.spec import CNNSpec

    torch.manual_seed(0)
    shape = (1, 8, 8)
    student = build(CNNSpec(kind="cnn", channels=[4, 8, 16]), shape, 10)
    teacher = build(CNNSpec(kind="cnn", channels=[16, 32, 64]), shape, 10)
    return student, teacher, Info(shape, 10, torch.zeros(20, dtype=torch.long))


@pytest.mark.parametrize("name", ["sp", "cc", "vid", "rkd", "pkt", "nst", "dist", "ctkd", "byot", "reviewkd"])
def test_each_feature_method_trains_its_student_and_its_own_parts(name):
    """One step on a real CNN pair: the loss is finite and gradients reach the student and the method."""
    student, teacher, info = _cnn_pair()
    method = get(name)(parse_params(name, {}), student, teacher, info)
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 3, 4, 5])
    with torch.no_grad():
        t_out = teacher(x, features=True)
    loss, terms = method(student(x, features=True), t_out, _batch(y.tolist()))
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in terms.values())
    loss.backward()
    assert all(p.grad is not None for p in student.parameters())
    assert all(p.grad is not None for p in method.parameters())


def test_feature_methods_refuse_an_mlp_with_a_clear_message():
    from paperlab.lab.distillers import Info
    from paperlab.lab.nets import build
    from paperlab.lab.spec import MLPSpec

    mlp = build(MLPSpec(kind="mlp", hidden=[8]), (1, 8, 8), 10)
    with pytest.raises(BadInput, match="feature maps"):
        _method("nst", {}, mlp, mlp, Info((1, 8, 8), 10, torch.zeros(2, dtype=torch.long)))


# -- methods with several models ---------------------------------------------------------------------------
def test_dml_each_peer_learns_from_labels_and_the_others_by_hand():
    from paperlab.lab.distillers.dml import mutual_terms

    peers = [torch.tensor([S[0]]), torch.tensor([T[0]]), torch.tensor([[0.0, 0.0, 1.0]])]
    probs = [_softmax(p[0].tolist()) for p in peers]
    kl = lambda p, q: sum(a * math.log(a / b) for a, b in zip(p, q))  # noqa: E731
    by_hand = 0.0
    for i in range(3):
        ce = -math.log(probs[i][1])
        by_hand += ce + 0.5 * sum(kl(probs[j], probs[i]) for j in range(3) if j != i) / 2
    loss, _, _ = mutual_terms(peers, torch.tensor([1]), 1.0, 0.5)
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)


def test_ensemble_logits_are_the_log_of_the_mean_probability():
    from paperlab.lab.nets import Ensemble

    class Fixed(torch.nn.Module):
        def __init__(self, row):
            super().__init__()
            self.row = torch.tensor([row])

        def forward(self, x, features=False):
            return self.row.expand(len(x), -1)

    ens = Ensemble([Fixed(S[0]), Fixed(T[0])])
    mean = [(a + b) / 2 for a, b in zip(_softmax(S[0]), _softmax(T[0]))]
    assert torch.softmax(ens(torch.zeros(1, 1)), 1)[0].tolist() == pytest.approx(mean, rel=1e-6)


def test_mean_teacher_ema_update_and_rampup_by_hand():
    from paperlab.lab.distillers.mean_teacher import ema_update, rampup

    student, teacher = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        student.weight.fill_(2.0)
        teacher.weight.fill_(1.0)
    ema_update(teacher, student, 0.9)
    assert teacher.weight.item() == pytest.approx(0.9 * 1.0 + 0.1 * 2.0)
    assert rampup(0, 5) == pytest.approx(math.exp(-5)) and rampup(5, 5) == 1.0 and rampup(3, 0) == 1.0


def test_mean_teacher_learns_labels_only_where_kept():
    student, _, info = _cnn_pair()
    mt = _method("mean-teacher", {"labeled": 5, "weight": 0.0}, student, None, info)
    assert int(mt.is_labeled.sum()) == 5
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    index = torch.nonzero(~mt.is_labeled)[:4, 0]  # four unlabelled examples: no label term at all
    loss, terms = mt(Out(student(x)), None, Batch(x, y, index, 1, 0.0))
    assert terms["ce"].item() == 0.0 and loss.item() == 0.0


# -- phases and pre-activation methods ---------------------------------------------------------------------
def test_ab_boundary_loss_by_hand():
    from paperlab.lab.distillers.ab import boundary_loss

    r = [0.5, -2.0, 0.2, 3.0]   # student responses after the connector
    t = [-1.0, -1.0, 1.0, 2.0]  # teacher pre-activations: off, off, on, on
    m = 1.0
    by_hand = (0.5 + m) ** 2 + 0 + (0.2 - m) ** 2 + 0  # -2 < -m stays off; 3 > m is on enough
    got = boundary_loss(torch.tensor(r).view(1, 4, 1, 1), torch.tensor(t).view(1, 4, 1, 1), m)
    assert got.item() == pytest.approx(by_hand)


def test_fsp_matrix_by_hand():
    from paperlab.lab.distillers.fsp import fsp_matrix

    f1 = torch.tensor([[1.0, 2.0], [0.0, 1.0]]).view(1, 2, 1, 2)  # two channels, 1x2 positions
    f2 = torch.tensor([[3.0, 1.0]]).view(1, 1, 1, 2)
    assert fsp_matrix(f1, f2)[0].flatten().tolist() == pytest.approx([(3 + 2) / 2, (0 + 1) / 2])


def test_ofd_margin_and_partial_l2_by_hand():
    from paperlab.lab.distillers.ofd import margins, partial_l2

    t = torch.tensor([[-1.0, -3.0, 2.0], [0.5, 1.0, -0.5]]).view(1, 2, 1, 3)
    assert margins(t).tolist() == pytest.approx([-2.0, -0.5])
    target = torch.tensor([-2.0, 1.0, 0.0]).view(1, 3, 1, 1)
    r = torch.tensor([-3.0, 0.0, 0.5]).view(1, 3, 1, 1)
    # element 0: r <= target <= 0, ignored; element 1: (0 - 1)^2; element 2: r > target, (0.5)^2
    assert partial_l2(r, target).item() == pytest.approx(1.0 + 0.25)


def test_fsp_refuses_nets_of_other_widths():
    student, teacher, info = _cnn_pair()
    with pytest.raises(BadInput, match="same widths"):
        _method("fsp", {}, student, teacher, info)


@pytest.mark.parametrize("name", ["ab", "ofd"])
def test_preactivation_methods_train_their_connectors(name):
    student, teacher, info = _cnn_pair()
    method = _method(name, {}, student, teacher, info)
    x, y = torch.randn(6, 1, 8, 8), torch.arange(6)
    with torch.no_grad():
        t_out = teacher(x, features=True)
    loss, _ = method(student(x, features=True), t_out, _batch(y.tolist()))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in method.connectors.parameters())


def test_reviewkd_hierarchical_context_loss_by_hand():
    from paperlab.lab.distillers.reviewkd import hcl

    o = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    t = torch.zeros(1, 1, 2, 2)
    full = (1 + 4 + 9 + 16) / 4
    pooled = 2.5 ** 2              # the 1x1 level (levels 4 and 2 are not below the size 2)
    assert hcl(o, t).item() == pytest.approx((full + 0.5 * pooled) / 1.5)


def test_ft_factor_loss_by_hand():
    from paperlab.lab.distillers.ft import factor_loss

    # one sample, two channels, two positions: a = mean over channels of F^2, L2-normalised over positions
    fs = [[1.0, 2.0], [1.0, 0.0]]   # channel-major: channel 0 at positions 0, 1; channel 1
    ft = [[0.0, 2.0], [2.0, 2.0]]
    a_s = _unit([(1 + 1) / 2, (4 + 0) / 2])   # [1, 2] / sqrt(5)
    a_t = _unit([(0 + 4) / 2, (4 + 4) / 2])   # [2, 4] / sqrt(20): the same direction
    by_hand = (abs(a_s[0] - a_t[0]) + abs(a_s[1] - a_t[1])) / 2
    got = factor_loss(torch.tensor(fs).view(1, 2, 1, 2), torch.tensor(ft).view(1, 2, 1, 2))
    assert got.item() == pytest.approx(by_hand, abs=1e-7) and by_hand == pytest.approx(0.0)
    other = factor_loss(torch.tensor(fs).view(1, 2, 1, 2), torch.tensor([[3.0, 0.0], [0.0, 0.0]]).view(1, 2, 1, 2))
    assert other.item() == pytest.approx((abs(1 / 5 ** 0.5 - 1) + abs(2 / 5 ** 0.5 - 0)) / 2)


def test_ft_paraphraser_phase_leaves_the_teacher_s_weights_alone():
    """Only the paraphraser learns: with weight decay in the recipe the net's weights still do not move."""
    _, teacher, info = _cnn_pair()
    phase = _method("ft-paraphraser", {}, teacher, None, info)
    before = [p.detach().clone() for p in teacher.parameters()]
    optimizer = torch.optim.SGD([*teacher.parameters(), *phase.parameters()], lr=0.1, weight_decay=5e-4)
    x = torch.randn(6, 1, 8, 8)
    loss, _ = phase(teacher(x, features=True), None, _batch([0, 1, 2, 3, 4, 5]))
    loss.backward()
    optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters()))
    assert any(p.grad is not None for p in phase.parameters())


def test_byot_each_head_learns_from_labels_the_deepest_classifier_and_its_features_by_hand():
    """loss = CE(deepest) + sum over heads of (1-a) CE(head) + a T^2 KL(deepest^T || head^T) + lam ||f_i - f_C||^2,
    from the heads' own outputs, summed in plain Python; the deepest classifier is not moved by what it teaches."""
    student, _, info = _cnn_pair()
    a, t, lam = 0.25, 2.0, 0.5
    byot = _method("byot", {"alpha": a, "temperature": t, "lam": lam, "skip": 0}, student, None, info).eval()
    x, y = torch.randn(2, 1, 8, 8), [0, 2]
    out = student(x, features=True)
    out.logits.retain_grad()
    loss, terms = byot(out, None, _batch(y))
    deep, f_c = out.logits.tolist(), out.pooled.tolist()
    ce = lambda logits, labels: -sum(math.log(_softmax(r)[c]) for r, c in zip(logits, labels)) / len(labels)  # noqa: E731
    by_hand = ce(deep, y)
    for head, f in zip(byot.heads, out.feats[:-1]):
        logits, pooled = (v.tolist() for v in head(f))
        kl = sum(sum(p * math.log(p / q) for p, q in zip(_softmax(d, t), _softmax(h, t)))
                 for d, h in zip(deep, logits)) / 2 * t * t
        hint = sum(sum((u - v) ** 2 for u, v in zip(pi, pc)) for pi, pc in zip(pooled, f_c)) / 2
        by_hand += (1 - a) * ce(logits, y) + a * kl + lam * hint
    assert len(byot.heads) == 2 and loss.item() == pytest.approx(by_hand, rel=1e-5)
    assert terms["ce"].item() == pytest.approx(ce(deep, y), rel=1e-6)
    loss.backward()  # the deepest logits' gradient is their own CE's alone: (softmax - onehot) / batch
    expected = [[(p - (c == k)) / 2 for k, p in enumerate(_softmax(r))] for r, c in zip(deep, y)]
    assert out.logits.grad.flatten().tolist() == pytest.approx(sum(expected, []), abs=1e-6)


def test_byot_bottleneck_heads_shrink_each_map_to_the_deepest_size_with_one_strided_conv():
    student, _, info = _cnn_pair()  # maps of 8x8, 4x4 and 2x2
    byot = _method("byot", {"skip": 0, "head": "bottleneck"}, student, None, info)
    strides = [[m.stride[0] for m in h.bottleneck if isinstance(m, torch.nn.Conv2d)] for h in byot.heads]
    widths = [[m.out_channels for m in h.bottleneck if isinstance(m, torch.nn.Conv2d)] for h in byot.heads]
    assert strides == [[1, 4, 1], [1, 2, 1]] and widths == [[4, 4, 16], [4, 4, 16]]
    loss, _ = byot(student(torch.randn(3, 1, 8, 8), features=True), None, _batch([1, 2, 3]))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in byot.parameters())


def test_byot_paper_profile_puts_bottleneck_heads_on_resnet18s_first_three_stages():
    from paperlab.lab.distillers import Info
    from paperlab.lab.nets import build
    from paperlab.lab.templates import load

    spec = load("byot")
    net = build(spec.student.net, (3, 32, 32), 100)
    byot = _method("byot", spec.distill, net, None, Info((3, 32, 32), 100, torch.zeros(4, dtype=torch.long)))
    strides = [[m.stride[0] for m in h.bottleneck if isinstance(m, torch.nn.Conv2d)][1] for h in byot.heads]
    assert strides == [8, 4, 2] and [h.fc.in_features for h in byot.heads] == [512] * 3


def test_mean_teacher_ce_over_the_batch_and_a_teacher_with_dropout():
    """The TensorFlow code's classification cost: the labelled examples' summed CE over the whole batch. With
    `teacher_dropout` the EMA teacher runs in training mode while the student trains."""
    student, _, info = _cnn_pair()
    mt = _method("mean-teacher", {"labeled": 5, "weight": 0.0, "ce_over": "batch"}, student, None, info)
    kept = torch.nonzero(mt.is_labeled)[:2, 0]
    index = torch.cat([kept, torch.nonzero(~mt.is_labeled)[:2, 0]])  # two labelled, two not
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    logits = student(x)
    loss, terms = mt(Out(logits), None, Batch(x, y, index, 1, 0.0))
    rows = logits.tolist()
    by_hand = sum(-math.log(_softmax(rows[i])[y[i]]) for i in (0, 1)) / 4
    assert terms["ce"].item() == pytest.approx(by_hand, rel=1e-5) and loss.item() == pytest.approx(by_hand, rel=1e-5)
    mt.train()
    mt(Out(student(x)), None, Batch(x, y, index, 1, 0.0))
    assert not mt.ema.training
    dropping = _method("mean-teacher", {"teacher_dropout": True}, student, None, info)
    dropping.train()
    dropping(Out(student(x)), None, Batch(x, y, index, 1, 0.0))
    assert dropping.ema.training
    dropping.eval()
    dropping(Out(student(x)), None, Batch(x, y, index, 1, 0.0))
    assert not dropping.ema.training


def test_mean_teacher_s_ema_is_validated_each_epoch_beside_the_student(tmp_path):
    """The EMA teacher is a shadow of the method: fit() counts its validation errors each epoch, and the last
    count is the EMA's own as it stands after training (not the student's)."""
    from paperlab.lab.distillers import Info
    from paperlab.lab.nets import build
    from paperlab.lab.spec import MLPSpec, TrainSpec
    from paperlab.lab.trainer import Tensors, fit, predict

    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 2, 2), torch.arange(64) % 3
    student = build(MLPSpec(kind="mlp", hidden=[8]), (1, 2, 2), 3)
    mt = _method("mean-teacher", {"decay": 0.5, "weight": 1.0, "rampup_epochs": 0}, student, None,
                 Info((1, 2, 2), 3, y[:48]))
    assert set(mt.shadows()) == {"ema"} and _method("ce", {}).shadows() == {}
    spec = TrainSpec(optimizer="sgd", lr=0.5, batch_size=16, epochs=3, val_size=1, milestones=[])
    result = fit(student, mt, Tensors(x[:48], y[:48], x[48:], y[48:]), spec, seed=0, label="mt")
    assert [sorted(h.shadow_val_errors) for h in result.history] == [["ema"]] * 3
    ema_errors = int((predict(mt.ema, x[48:]).argmax(1) != y[48:]).sum())
    assert result.history[-1].shadow_val_errors["ema"] == ema_errors
    assert any(not torch.equal(a, b) for a, b in zip(mt.ema.parameters(), student.parameters()))


def test_a_claim_on_the_ema_model_reads_its_last_epoch_test_errors():
    from pydantic import ValidationError

    from paperlab.lab.spec import Claim
    from paperlab.reports.claims import claim_rows as _claims

    with pytest.raises(ValidationError, match="say epoch: last"):
        Claim(stage="s", metric="test_error_ema", value=1, tolerance=1, dataset="cifar10")
    tags = {"paperlab.dataset": "cifar10", "paperlab.student_net": "convnet13", "paperlab.teacher_net": "resnet32x4"}
    run = {"template": "mean-teacher", "stage": "mean-teacher", "tags": tags, "params": {},
           "metrics": {"test_error": 1300.0, "test_error_last": 1310.0, "test_error_ema_last": 1250.0}}
    rows = {r.label: r for r in _claims([run], ["mean-teacher"]) if r.stage == "mean-teacher"}
    assert rows["mean-teacher"].ours_mean == 1300.0 and rows["mean-teacher"].verdict == "reproduced"
    ema = rows["mean-teacher (test error ema)"]
    assert ema.ours_mean == 1250.0 and ema.epoch == "last" and ema.diff == 1250.0 - 1231

"""Each method's loss beside the code that produced the number its template is compared with, on one batch in
float64: the nets' features (our weights copied into the reference nets), then per method the loss value
and its gradient with respect to every student tensor it reads, connectors' weights copied across.

    python benchmarks/check_references.py --repdistiller DIR --mdistiller DIR [--ls DIR] [--pair resnet|wrn]

DIR: a checkout of HobbitLong/RepDistiller (CRD's benchmark), megvii-research/mdistiller and
sunshangquan/logit-standardization-KD. Nothing of theirs is copied into paperlab: this imports their files
from the checkouts and runs them. Prints one Markdown row per method: equal (loss and gradient within
1e-5, relative) or the largest difference.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from paperlab.lab.distillers import Batch, Info, get, parse_params
from paperlab.lab.nets import Out, build
from paperlab.lab.spec import CifarNetSpec

PAIRS = {"resnet": ("resnet32x4", "resnet8x4"), "wrn": ("wrn_40_2", "wrn_16_2")}
TOL = 1e-5


@dataclass
class Feats:
    """One net's outputs as the references hand them over: [f0, f1, f2, f3, pooled] and the pre-activations."""
    feat: list[torch.Tensor]
    preact: list[torch.Tensor]
    logits: torch.Tensor


def _reference_net(models, name, ours):
    net = models.model_dict[name](num_classes=100).double()
    theirs, mine = net.state_dict(), ours.state_dict()
    assert len(theirs) == len(mine), name
    net.load_state_dict({k: v.clone() for k, v in zip(theirs, mine.values())})
    return net


def _leaves(out: Out) -> Out:
    leaf = lambda t: t.detach().clone().requires_grad_(True)  # noqa: E731
    feats = [leaf(f) for f in out.feats]
    # a pre-activation equal to a feature map stays the same tensor (the WRN stem)
    preact = [feats[i] if torch.equal(p, out.feats[i]) else leaf(p) for i, p in enumerate(out.preact)]
    return Out(leaf(out.logits), feats, preact, leaf(out.pooled))


def _compare(ours: torch.Tensor, ref: torch.Tensor, leaves: list[torch.Tensor]) -> float:
    """The largest relative difference of the loss and of its gradient on each student tensor."""
    g_ours = torch.autograd.grad(ours, leaves, allow_unused=True, retain_graph=True)
    g_ref = torch.autograd.grad(ref, leaves, allow_unused=True, retain_graph=True)
    worst = abs(ours.item() - ref.item()) / max(abs(ref.item()), 1e-12)
    for a, b in zip(g_ours, g_ref):
        if a is None and b is None:
            continue
        a = torch.zeros_like(b) if a is None else a
        b = torch.zeros_like(a) if b is None else b
        worst = max(worst, ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item())
    return worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repdistiller", required=True)
    parser.add_argument("--mdistiller", required=True)
    parser.add_argument("--ls", default=None)
    parser.add_argument("--pair", choices=list(PAIRS), action="append")
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    rows = []
    for pair in args.pair or list(PAIRS):
        rows += check_pair(pair, args)
    print("| pair | method | reference | result |\n| --- | --- | --- | --- |")
    for pair, method, ref, worst in rows:
        verdict = "equal" if worst is not None and worst < TOL else \
            ("not run" if worst is None else f"differs (max relative {worst:.3g})")
        print(f"| {pair} | {method} | {ref} | {verdict} |")


def check_pair(pair: str, args) -> list[tuple]:
    sys.path.insert(0, args.repdistiller)
    import distiller_zoo as zoo  # noqa: E402  (RepDistiller's)
    import models  # noqa: E402
    from models.util import ConvReg, LinearEmbed, Paraphraser, Translator  # noqa: E402

    torch.manual_seed(0)
    t_name, s_name = PAIRS[pair]
    shape, classes = (3, 32, 32), 100
    teacher = build(CifarNetSpec(kind=t_name), shape, classes).double().eval()
    student = build(CifarNetSpec(kind=s_name), shape, classes).double().train()
    t_ref, s_ref = _reference_net(models, t_name, teacher).eval(), _reference_net(models, s_name, student).train()
    x, y = torch.randn(8, *shape), torch.randint(0, classes, (8,))
    info = Info(shape, classes, y)
    rows = []
    with torch.no_grad():
        t_out = teacher(x, features=True)
        t_feat, t_logit = t_ref(x, is_feat=True)
        t_pre, _ = t_ref(x, is_feat=True, preact=True)
    s_out = student(x, features=True)
    s_ref_feat, s_ref_logit = s_ref(x, is_feat=True)
    nets = max((a - b).abs().max().item() for a, b in zip([*s_out.feats, s_out.pooled], s_ref_feat))
    nets = max(nets, max((a - b).abs().max().item() for a, b in zip([*t_out.feats, t_out.pooled], t_feat)))
    # the stem's pre-activation: RepDistiller's resnets hand over the stem after its ReLU, ours before it (no
    # method reads it: every shipped template skips the stem)
    nets = max(nets, max((a - b).abs().max().item() for a, b in zip([*t_out.preact[1:], t_out.pooled], t_pre[1:])))
    nets = max(nets, (s_out.logits - s_ref_logit).abs().max().item(), (t_out.logits - t_logit).abs().max().item())
    rows.append((pair, "nets (logits, feats, preact after the stem, pooled)", "RepDistiller models/", nets))
    s = _leaves(s_out)
    t = Out(t_out.logits, t_out.feats, t_out.preact, t_out.pooled)
    sf = [*s.feats, s.pooled]        # the reference lists, from the same student tensors
    sp = [*s.preact, s.pooled]
    tf, tp = [*t.feats, t.pooled], [*t.preact, t.pooled]
    leaves = [s.logits, *s.feats, *s.preact, s.pooled]
    batch = Batch(x, y, torch.arange(8), 30, 0.5)
    ce = F.cross_entropy(s.logits, y)

    def ours(name, params, teacher_net=teacher):
        torch.manual_seed(1)
        m = get(name)(parse_params(name, params), copy.deepcopy(student), teacher_net, info).double().train()
        return m, m(s, t, batch)[0]

    def row(name, ref_name, m_loss, ref_loss):
        rows.append((pair, name, ref_name, _compare(m_loss, ref_loss, leaves)))

    _, loss = ours("kd", {"temperature": 4.0, "alpha": 0.9})
    row("kd", "RepDistiller DistillKL, -r 0.1 -a 0.9", loss, 0.1 * ce + 0.9 * zoo.DistillKL(4)(s.logits, t.logits))
    _, loss = ours("at", {"p": 2.0, "beta": 1000.0, "ce_weight": 1.0, "skip": 1})
    row("at", "RepDistiller Attention, -b 1000", loss, ce + 1000 * sum(zoo.Attention()(sf[1:-1], tf[1:-1])))
    _, loss = ours("sp", {"beta": 3000.0, "ce_weight": 1.0})
    row("sp", "RepDistiller Similarity, -b 3000", loss, ce + 3000 * sum(zoo.Similarity()([sf[-2]], [tf[-2]])))
    _, loss = ours("rkd", {})
    row("rkd", "RepDistiller RKDLoss, -b 1", loss, ce + zoo.RKDLoss()(sf[-1], tf[-1]))
    _, loss = ours("pkt", {"beta": 30000.0, "ce_weight": 1.0})
    row("pkt", "RepDistiller PKT, -b 30000", loss, ce + 30000 * zoo.PKT()(sf[-1], tf[-1]))
    _, loss = ours("nst", {"beta": 50.0, "ce_weight": 1.0, "skip": 1})
    row("nst", "RepDistiller NSTLoss, -b 50", loss, ce + 50 * sum(zoo.NSTLoss()(sf[1:-1], tf[1:-1])))

    m, loss = ours("fitnet", {"hint_layer": 2, "beta": 100.0, "ce_weight": 1.0})
    reg = ConvReg(sf[2].shape, tf[2].shape).double().train()
    _copy_regressor(m.regressor, reg)
    row("fitnet", "RepDistiller HintLoss + ConvReg, -b 100", loss, ce + 100 * zoo.HintLoss()(reg(sf[2]), tf[2]))

    m, loss = ours("vid", {"beta": 1.0, "ce_weight": 1.0, "skip": 1})
    vids = [zoo.VIDLoss(a.shape[1], b.shape[1], b.shape[1]).double() for a, b in zip(sf[1:-1], tf[1:-1])]
    for ref_vid, mine in zip(vids, m.regressors):
        for a, b in zip([c for c in ref_vid.regressor if isinstance(c, torch.nn.Conv2d)],
                        [c for c in mine.mean if isinstance(c, torch.nn.Conv2d)]):
            a.weight.data.copy_(b.weight.data)
        ref_vid.log_scale.data.copy_(mine.raw_var.data)
    row("vid", "RepDistiller VIDLoss, -b 1", loss, ce + sum(v(a, b) for v, a, b in zip(vids, sf[1:-1], tf[1:-1])))

    m, loss = ours("cc", {"dim": 128, "beta": 0.02, "ce_weight": 1.0})
    es, et = LinearEmbed(sf[-1].shape[1], 128).double(), LinearEmbed(tf[-1].shape[1], 128).double()
    es.linear.load_state_dict(m.embed_s.state_dict())
    et.linear.load_state_dict(m.embed_t.state_dict())
    row("cc", "RepDistiller Correlation + LinearEmbed, -b 0.02", loss, ce + 0.02 * zoo.Correlation()(es(sf[-1]), et(tf[-1])))

    m, loss = ours("ft", {"rate": 0.5, "beta": 200.0, "ce_weight": 1.0})
    para, trans = Paraphraser(tf[-2].shape).double().eval(), Translator(sf[-2].shape, tf[-2].shape).double().train()
    _copy_in_order(m.paraphraser.encoder, para.encoder)
    _copy_in_order(m.translator, trans.encoder)
    with torch.no_grad():
        factor_t = para(tf[-2], is_factor=True)
    row("ft", "RepDistiller FactorTransfer + Paraphraser/Translator, -b 200", loss,
        ce + 200 * zoo.FactorTransfer()(trans(sf[-2]), factor_t))

    m, loss = ours("ab", {"margin": 1.0, "beta": 1.0, "skip": 1})
    ab_ref = zoo.ABLoss(len(sp[1:-1]))
    if all(isinstance(c, torch.nn.Identity) for c in m.connectors):
        row("ab", "RepDistiller ABLoss(len(feat_s[1:-1])), identity connectors", loss,
            sum(ab_ref([p for p in sp[1:-1]], [p for p in tp[1:-1]])))
    else:
        rows.append((pair, "ab", "RepDistiller ABLoss (shapes differ: ConvReg)", None))

    rows += _mdistiller(pair, args, s, t, y, sp, tp, ce, leaves, ours, teacher)
    rows += _logit_standardisation(pair, args, s, t, y, ce, leaves, ours)
    sys.path.remove(args.repdistiller)
    _forget("models", "distiller_zoo", "crd", "helper")
    return rows


def _forget(*packages: str) -> None:
    """Another checkout's packages of the same name are imported afresh."""
    for name in [k for k in sys.modules if k.split(".")[0] in packages]:
        del sys.modules[name]


def _copy_regressor(mine, ref) -> None:
    if mine.conv.weight.shape == ref.conv.weight.shape:
        ref.conv.weight.data.copy_(mine.conv.weight.data)
        ref.conv.bias.data.zero_()
    ref.bn.load_state_dict(mine.bn.state_dict())


def _copy_in_order(mine, ref) -> None:
    """Same layers in the same order (convolutions, BNs): copy every parameter and buffer across."""
    a, b = mine.state_dict(), ref.state_dict()
    assert len(a) == len(b)
    ref.load_state_dict({k: v.clone() for k, v in zip(b, a.values())})


def _mdistiller(pair, args, s, t, y, sp, tp, ce, leaves, ours, teacher) -> list[tuple]:
    _forget("mdistiller")
    sys.path.insert(0, args.mdistiller)
    DKDmod, OFDmod, RKmod = (importlib.import_module(f"mdistiller.distillers.{n}") for n in ("DKD", "OFD", "ReviewKD"))

    rows = []
    m, loss = ours("ofd", {"ce_weight": 1.0, "feat_weight": 1e-3, "skip": 1})
    holder = type("OFDState", (), {})()  # mdistiller's OFD methods, run on a plain object: no student to build
    holder._align_list = lambda *lists: [x[-min(len(z) for z in lists):] for x in lists]
    OFDmod.OFD.init_ofd_modules(holder, [c.shape[1] for c in tp[1:-1]], [c.shape[1] for c in sp[1:-1]],
                                teacher.preact_norms()[1:])
    holder.connectors.connectors = m.connectors  # ours, so that both start from one set of weights
    ref = ce + 1e-3 * OFDmod.OFD.ofd_loss(holder, sp[1:-1], tp[1:-1])
    rows.append((pair, "ofd", "mdistiller OFD (margins from the teacher's BN)", _compare(loss, ref, leaves)))

    m, loss = ours("reviewkd", {"weight": 5.0, "ce_weight": 1.0, "warmup": 20, "skip": 1})
    feats = [*s.feats[1:], s.pooled[:, :, None, None]][::-1]
    results = []
    res = None
    for i, f in enumerate(feats):
        fusion = m.fusions[len(feats) - 1 - i]
        abf = RKmod.ABF(f.shape[1], fusion.reduce[0].out_channels, fusion.out[0].out_channels,
                        fusion.attention is not None).double()
        names = {"reduce": "conv1", "out": "conv2", "attention": "att_conv"}
        abf.load_state_dict({names[k.split(".")[0]] + k[k.index("."):]: v for k, v in fusion.state_dict().items()})
        size = m.sizes[len(feats) - 1 - i]
        if res is None:
            out, res = abf(f, out_shape=size[0])
        else:
            out, res = abf(f, res, f.shape[-1], size[0])
        results.insert(0, out)
    targets = [*t.preact[1:], t.pooled[:, :, None, None]]
    ref = ce + 5.0 * min(30 / 20, 1.0) * RKmod.hcl_loss(results, targets)
    rows.append((pair, "reviewkd", "mdistiller ReviewKD (ABF, hcl_loss, weight 5)", _compare(loss, ref, leaves)))

    _, loss = ours("dkd", {"alpha": 1.0, "beta": 8.0, "temperature": 4.0, "warmup": 20, "ce_weight": 1.0})
    ref = ce + min(30 / 20, 1.0) * DKDmod.dkd_loss(s.logits, t.logits, y, 1.0, 8.0, 4.0)
    rows.append((pair, "dkd", "mdistiller DKD (beta 8, T 4, warm-up 20)", _compare(loss, ref, leaves)))
    sys.path.remove(args.mdistiller)
    return rows


def _logit_standardisation(pair, args, s, t, y, ce, leaves, ours) -> list[tuple]:
    rows = []
    if args.ls is None:
        return [(pair, "kd-ls, dkd-ls", "logit-standardization-KD", None)]
    _forget("mdistiller")
    sys.path.insert(0, args.ls)
    LSDKD, LSKD = (importlib.import_module(f"mdistiller.distillers.{n}") for n in ("DKD", "KD"))

    _, loss = ours("kd", {"temperature": 2.0, "kd_weight": 9.0, "ce_weight": 0.1, "standardize": True})
    ref = 0.1 * ce + 9.0 * LSKD.kd_loss(s.logits, t.logits, 2.0, True)
    rows.append((pair, "kd-ls", "logit-standardization-KD KD.py, --kd-weight 9 --base-temp 2", _compare(loss, ref, leaves)))
    _, loss = ours("dkd", {"alpha": 9.0, "beta": 72.0, "temperature": 2.0, "warmup": 20, "ce_weight": 1.0,
                           "standardize": True})
    ref = ce + LSDKD.dkd_loss(s.logits, t.logits, y, 9.0, 72.0, 2.0, True)
    rows.append((pair, "dkd-ls", "logit-standardization-KD DKD.py, alpha/beta x 9", _compare(loss, ref, leaves)))
    sys.path.remove(args.ls)
    return rows


if __name__ == "__main__":
    main()

"""Factor transfer (Kim et al. 2018, arXiv 1802.04977): a paraphraser, trained first as an autoencoder of
the teacher's last feature map, turns it into "teacher factors"; a translator on the student's last map
produces student factors; the student matches the L2-normalised factors in L1.

    phase (method ft-paraphraser, on the teacher's net, `init:` the teacher, `cache: true`):
        loss = mean || P_dec(P_enc(f_t)) - f_t ||^2        (the features detached: the teacher does not move)
    main (method ft, `method_from:` the phase, which hands over the trained paraphraser):
        F_t = P_enc(f_t), F_s = translator(f_s)   (the larger map average-pooled to the smaller's size)
        a(F) = L2-normalised (over positions) mean over channels of F^2
        ft = mean over the batch and positions of | a(F_s) - a(F_t) |
        loss = ce_weight * CE + beta * ft

Equal to CRD's benchmark (RepDistiller distiller_zoo/FT.py `FactorTransfer(p1=2, p2=1)` and
models/util.py), value and gradient, whose beta = 200 this uses: its loss compares the factors' channel
means of squares, not the paper's normalised factors themselves (eq. 3). Rate k = 0.5; the paraphraser's
encoder and decoder are three 3x3 convolutions (with bias) and LeakyReLU(0.1) each, without BN; the
translator three conv-BN-LeakyReLU(0.1) layers. The phase keeps its copy of the teacher's net in eval mode
(`frozen_model`), as the benchmark's `init` does with the teacher; the main stage reads the teacher stage's
own net.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from paperlab.lab.distillers.base import Distiller, Params, feature_maps, register, same_size


def _convs(widths: list[int], transpose: bool = False, bn: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    conv = nn.ConvTranspose2d if transpose else nn.Conv2d
    for a, b in zip(widths, widths[1:]):
        layers += [conv(a, b, 3, padding=1), *([nn.BatchNorm2d(b)] if bn else []), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers)


class Paraphraser(nn.Module):
    def __init__(self, channels: int, rate: float):
        super().__init__()
        factor = max(1, int(channels * rate))
        self.encoder = _convs([channels, channels, factor, factor], bn=False)
        self.decoder = _convs([factor, factor, channels, channels], transpose=True, bn=False)


def attention(f: torch.Tensor) -> torch.Tensor:
    return F.normalize(f.pow(2).mean(1).flatten(1))


def factor_loss(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    fs, ft = same_size(fs, ft)
    return (attention(fs) - attention(ft)).abs().mean()


@register("ft-paraphraser")
class FTParaphraser(Distiller):
    class Params(Params):
        rate: float = Field(0.5, gt=0, le=4)

    needs = frozenset({"feats"})
    taught = False
    frozen_model = True

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        feats, _ = feature_maps(student, student, info, "ft-paraphraser")
        self.paraphraser = Paraphraser(feats[-1].shape[1], params.rate)

    def forward(self, s, t, b):
        f = s.feats[-1].detach()
        rebuilt = self.paraphraser.decoder(self.paraphraser.encoder(f))
        loss = (rebuilt - f).pow(2).mean()
        return loss, {"reconstruction": loss}


@register("ft")
class FactorTransfer(Distiller):
    class Params(Params):
        rate: float = Field(0.5, gt=0, le=4)
        beta: float = Field(200.0, ge=0)
        ce_weight: float = Field(1.0, ge=0)

    needs = frozenset({"feats"})

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        s, t = feature_maps(student, teacher, info, "ft")
        self.paraphraser = Paraphraser(t[-1].shape[1], params.rate)
        for p in self.paraphraser.parameters():
            p.requires_grad_(False)  # trained in the phase; here it only encodes
        factor = max(1, int(t[-1].shape[1] * params.rate))
        self.translator = _convs([s[-1].shape[1], s[-1].shape[1], factor, factor])

    def forward(self, s, t, b):
        self.paraphraser.eval()
        with torch.no_grad():
            teacher_factor = self.paraphraser.encoder(t.feats[-1])
        ft = factor_loss(self.translator(s.feats[-1]), teacher_factor)
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.beta * ft, {"ce": ce, "ft": ft}

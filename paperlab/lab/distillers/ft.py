"""Factor transfer (Kim et al. 2018, arXiv 1802.04977): a paraphraser, trained first as an autoencoder of
the teacher's last feature map, turns it into "teacher factors"; a translator on the student's last map
produces student factors; the student matches the L2-normalised factors in L1.

    phase (method ft-paraphraser, on the teacher's net, `init:` the teacher, `cache: true`):
        loss = mean || P_dec(P_enc(f_t)) - f_t ||^2        (the features detached: the teacher does not move)
    main (method ft, `method_from:` the phase, which hands over the trained paraphraser):
        F_t = P_enc(f_t), F_s = translator(f_s)
        ft = mean over the batch of || F_t / ||F_t||_2 - F_s / ||F_s||_2 ||_1
        loss = ce_weight * CE + beta * ft

Paraphrase rate k = 0.5 and beta = 200 as in CRD's benchmark. Encoder, decoder and translator are three 3x3
conv-BN-LeakyReLU(0.1) layers each (ours). The phase runs the teacher's net in training mode, so its BN
statistics follow the batches during that phase; the main stage reads the teacher stage's own net.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from paperlab.lab.distillers.base import Distiller, Params, feature_maps, register


def _convs(widths: list[int], transpose: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    conv = nn.ConvTranspose2d if transpose else nn.Conv2d
    for a, b in zip(widths, widths[1:]):
        layers += [conv(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers)


class Paraphraser(nn.Module):
    def __init__(self, channels: int, rate: float):
        super().__init__()
        factor = max(1, int(channels * rate))
        self.encoder = _convs([channels, channels, factor, factor])
        self.decoder = _convs([factor, factor, channels, channels], transpose=True)


def factor_loss(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    return (F.normalize(fs.flatten(1)) - F.normalize(ft.flatten(1))).abs().sum(1).mean()


@register("ft-paraphraser")
class FTParaphraser(Distiller):
    class Params(Params):
        rate: float = Field(0.5, gt=0, le=4)

    needs = frozenset({"feats"})
    taught = False

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
        self.size = tuple(t[-1].shape[-2:])

    def forward(self, s, t, b):
        self.paraphraser.eval()
        with torch.no_grad():
            teacher_factor = self.paraphraser.encoder(t.feats[-1])
        fs = s.feats[-1]
        if tuple(fs.shape[-2:]) != self.size:
            fs = F.adaptive_avg_pool2d(fs, self.size)
        ft = factor_loss(self.translator(fs), teacher_factor)
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.beta * ft, {"ce": ce, "ft": ft}

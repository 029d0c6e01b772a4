"""Contrastive representation distillation (Tian et al. 2020, arXiv 1910.10699).

Student and teacher penultimate embeddings are projected to `feat_dim` and L2-normalised. A memory bank
holds one embedding per training example for each side. For a sample i, the positive is i itself and
`nce_k` negatives are drawn from examples of other classes (the paper's "exact" sampling). Scores are
exp(<v, m_j> / nce_t) / Z, with Z fixed from the first batch (the NCE normaliser, N * mean score). With
Pn = 1/N and m = nce_k, the loss on each side (student anchor vs teacher bank, and the reverse) is

    -(1/B) * sum_i [ log(P_i0 / (P_i0 + m Pn)) + sum_j log(m Pn / (P_ij + m Pn)) ]

and the bank rows of the batch move to normalize(mom * row + (1 - mom) * v) after each step.
    loss = ce_weight * CE + beta * (L_student_anchor + L_teacher_anchor)
Defaults are the paper's CIFAR-100 settings: feat_dim 128, nce_k 16384, nce_t 0.07, momentum 0.5, beta 0.8.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from paperlab.errors import BadInput
from paperlab.lab import distributed as dd
from paperlab.lab.distillers.base import Distiller, Params, probe, register

EPS = 1e-7


def nce_loss(scores: torch.Tensor, n_data: int) -> torch.Tensor:
    """scores: (B, 1 + K) normalised probabilities, the positive first."""
    m_pn = (scores.shape[1] - 1) / n_data
    pos = torch.log(scores[:, 0] / (scores[:, 0] + m_pn + EPS))
    neg = torch.log(m_pn / (scores[:, 1:] + m_pn + EPS))
    return -(pos.sum() + neg.sum()) / scores.shape[0]


class Embed(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x):
        return F.normalize(self.linear(x.flatten(1)), dim=1)


@register("crd")
class CRD(Distiller):
    class Params(Params):
        feat_dim: int = Field(128, gt=0)
        nce_k: int = Field(16384, gt=0)
        nce_t: float = Field(0.07, gt=0)
        momentum: float = Field(0.5, ge=0, lt=1)
        beta: float = Field(0.8, ge=0)
        ce_weight: float = Field(1.0, ge=0)

    needs = frozenset({"pooled"})

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        s, t = probe(student, info).pooled, probe(teacher, info).pooled
        labels = info.train_labels
        n = len(labels)
        counts = torch.bincount(labels, minlength=info.classes)
        if params.nce_k > n - int(counts.max()):
            raise BadInput(f"crd: distill.nce_k={params.nce_k} negatives need that many training examples of "
                           f"other classes (this training set has {n - int(counts.max())}); lower distill.nce_k")
        self.embed_s, self.embed_t = Embed(s.shape[1], params.feat_dim), Embed(t.shape[1], params.feat_dim)
        bound = 1.0 / math.sqrt(params.feat_dim / 3)
        device = labels.device
        self.register_buffer("bank_s", torch.rand(n, params.feat_dim, device=device) * 2 * bound - bound)
        self.register_buffer("bank_t", torch.rand(n, params.feat_dim, device=device) * 2 * bound - bound)
        self.register_buffer("z", torch.full((2,), -1.0, device=device))  # NCE normalisers, set on first use
        self.register_buffer("by_class", torch.argsort(labels, stable=True))
        self.register_buffer("class_start", torch.cumsum(counts, 0) - counts)
        self.register_buffer("class_count", counts)
        self.n = n

    def negatives(self, y: torch.Tensor) -> torch.Tensor:
        """nce_k indices per sample, uniform over the examples of the other classes."""
        count, start = self.class_count[y][:, None], self.class_start[y][:, None]
        r = (torch.rand(len(y), self.p.nce_k, device=y.device) * (self.n - count)).long()
        r = torch.minimum(r, self.n - count - 1)
        return self.by_class[r + count * (r >= start)]

    def _scores(self, bank: torch.Tensor, idx: torch.Tensor, v: torch.Tensor, side: int) -> torch.Tensor:
        raw = torch.exp(torch.bmm(bank[idx], v[:, :, None]).squeeze(2) / self.p.nce_t)
        if self.z[side] < 0:  # under torchrun: the mean over every rank's batch, so that all ranks agree
            self.z[side] = (dd.total(raw.mean()) / dd.world() * self.n).detach()
        return raw / self.z[side].clone()  # a copy: the bank of the other side may set z in place

    def forward(self, s, t, b):
        vs, vt = self.embed_s(s.pooled), self.embed_t(t.pooled)
        idx = torch.cat([b.index[:, None], self.negatives(b.y)], dim=1)
        loss_s = nce_loss(self._scores(self.bank_t, idx, vs, 0), self.n)  # student anchor, teacher bank
        loss_t = nce_loss(self._scores(self.bank_s, idx, vt, 1), self.n)  # teacher anchor, student bank
        with torch.no_grad():
            m = self.p.momentum
            index, vs, vt = dd.gather(b.index, vs.detach(), vt.detach())  # under torchrun: every rank's rows
            self.bank_s[index] = F.normalize(self.bank_s[index] * m + vs * (1 - m), dim=1)
            self.bank_t[index] = F.normalize(self.bank_t[index] * m + vt * (1 - m), dim=1)
        ce = F.cross_entropy(s.logits, b.y)
        crd = loss_s + loss_t
        return self.p.ce_weight * ce + self.p.beta * crd, {"ce": ce, "crd": crd}

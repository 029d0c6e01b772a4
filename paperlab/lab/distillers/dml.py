"""Deep mutual learning (Zhang et al. 2018, arXiv 1706.00384): a cohort of peers learns together, each
from the labels and from the others' predictions; no pre-trained teacher.

    L_k = CE(p_k, y) + kl_weight / (K - 1) * sum over l != k of T^2 * KL(p_l || p_k)   (p_l held fixed)
    loss = sum over peers k of L_k

The paper updates the peers one after another within a step (p_1 updated before p_2's loss); here all
peers step at once on the same batch, which is how most reimplementations run it. The stage needs
`peers: K` (K >= 2); each peer is tracked as a child run.
"""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field

from paperlab.errors import BadInput
from paperlab.lab.distillers.base import Distiller, Params, register
from paperlab.lab.distillers.kd import soft_kl


def mutual_terms(logits: list, y, temperature: float, kl_weight: float):
    """Each peer's CE and its mean KL towards the other (detached) peers."""
    k = len(logits)
    ce = [F.cross_entropy(z, y) for z in logits]
    kl = [sum(soft_kl(z, other.detach(), temperature) for j, other in enumerate(logits) if j != i) / (k - 1)
          for i, z in enumerate(logits)]
    return sum(c + kl_weight * d for c, d in zip(ce, kl)), ce, kl


@register("dml")
class DeepMutualLearning(Distiller):
    class Params(Params):
        kl_weight: float = Field(1.0, ge=0)
        temperature: float = Field(1.0, gt=0, le=1000)

    needs = frozenset({"peers"})
    taught = False

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        if len(getattr(student, "peers", [])) < 2:
            raise BadInput("dml: the stage needs peers: 2 or more")

    def forward(self, s, t, b):
        loss, ce, kl = mutual_terms(s.peers, b.y, self.p.temperature, self.p.kl_weight)
        return loss, {**{f"ce{i + 1}": c for i, c in enumerate(ce)}, **{f"kl{i + 1}": d for i, d in enumerate(kl)}}

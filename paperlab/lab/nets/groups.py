"""Models made of several nets: an ensemble (a fixed average, trains nothing) and a cohort (peers trained
together, DML)."""

from __future__ import annotations

import math

import torch
from torch import nn

from paperlab.lab.nets.base import Out


class Ensemble(nn.Module):
    """Averages its members' class probabilities (Hinton et al. 2015, section 3's ensembles); its logits
    are the log of that average, so softmax(logits) is the average and softmax(logits / T) a softening."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor, features: bool = False):
        logp = torch.stack([torch.log_softmax(self._logits(m, x), dim=1) for m in self.members])
        logits = torch.logsumexp(logp, dim=0) - math.log(len(self.members))
        return Out(logits) if features else logits

    @staticmethod
    def _logits(member: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = member(x)
        return out.logits if isinstance(out, Out) else out


class Cohort(nn.Module):
    """Peers trained together. Evaluated alone it is its first peer; asked for features it gives every
    peer's logits in `Out.peers` (the first peer's as `logits`)."""

    def __init__(self, peers: list[nn.Module]):
        super().__init__()
        self.peers = nn.ModuleList(peers)

    def forward(self, x: torch.Tensor, features: bool = False):
        if not features:
            return self.peers[0](x)
        logits = [p(x) for p in self.peers]
        return Out(logits[0], peers=logits)

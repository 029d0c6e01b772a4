"""What every net returns when asked for its features, and the init the CIFAR reference nets use."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class Out:
    logits: torch.Tensor
    feats: list[torch.Tensor] = field(default_factory=list)   # stage outputs, shallow to deep
    preact: list[torch.Tensor] = field(default_factory=list)  # the same before their last ReLU
    pooled: torch.Tensor | None = None                        # the penultimate embedding
    peers: list[torch.Tensor] = field(default_factory=list)   # a cohort's logits, one per peer (DML)


def conv_init(module: nn.Module) -> None:
    """Kaiming-normal (fan-out) convolutions, unit BN scales: the init of the reference CIFAR nets."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def conv3x3(cin: int, cout: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

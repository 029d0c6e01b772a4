"""A small CNN for 8x8 and 28x28 grey images: conv-BN-ReLU stages, 2x2 max-pooling between them, global
average pooling and one linear layer. Stage outputs are its features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.lab.nets.base import Out, conv3x3, conv_init


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int, classes: int, channels: list[int]):
        super().__init__()
        widths = [in_channels, *channels]
        self.convs = nn.ModuleList(conv3x3(a, b) for a, b in zip(widths, widths[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm2d(b) for b in channels)
        self.fc = nn.Linear(channels[-1], classes)
        conv_init(self)

    def preact_norms(self) -> list[nn.BatchNorm2d]:
        return list(self.bns)

    def forward(self, x: torch.Tensor, features: bool = False):
        feats, preact = [], []
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            if i:
                x = F.max_pool2d(x, 2) if min(x.shape[-2:]) >= 2 else x
            pre = bn(conv(x))
            x = F.relu(pre)
            feats.append(x)
            preact.append(pre)
        pooled = x.mean(dim=(2, 3))
        logits = self.fc(pooled)
        return Out(logits, feats, preact, pooled) if features else logits

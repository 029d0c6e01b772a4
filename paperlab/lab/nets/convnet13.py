"""The 13-layer ConvNet of the semi-supervised CIFAR-10 benchmarks (Laine & Aila's Pi model, 1610.02242;
mean teacher, 1703.01780, appendix and its TensorFlow code's `tower`): three blocks of 3x3 convolutions
(128 x3, 256 x3, then 512 valid, 256 1x1, 128 1x1), leaky ReLU 0.1, 2x2 max-pooling and dropout 0.5 after
the first two blocks, global average pooling and one linear layer. The papers' layers are weight-normalised
with mean-only batch norm; here each convolution has ordinary batch norm. The block outputs are its
features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.lab.nets.base import Out

BLOCKS = (((128, 3), (128, 3), (128, 3)), ((256, 3), (256, 3), (256, 3)), ((512, 3), (256, 1), (128, 1)))
SLOPE = 0.1


def _block(cin: int, layers, padded: bool) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i, (width, k) in enumerate(layers):
        pad = (k // 2) if padded or i else 0  # the third block's first 3x3 is 'valid': 8x8 -> 6x6
        mods += [nn.Conv2d(cin, width, k, padding=pad, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(SLOPE)]
        cin = width
    return nn.Sequential(*mods[:-1])  # the last activation in forward, so that pre-activations can be read


class ConvNet13(nn.Module):
    def __init__(self, in_channels: int, classes: int, dropout: float = 0.5):
        super().__init__()
        widths = [in_channels] + [b[-1][0] for b in BLOCKS]
        self.blocks = nn.ModuleList(_block(widths[i], b, padded=i < 2) for i, b in enumerate(BLOCKS))
        self.dropout = dropout
        self.fc = nn.Linear(BLOCKS[-1][-1][0], classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=SLOPE, nonlinearity="leaky_relu")

    def forward(self, x: torch.Tensor, features: bool = False):
        feats, preact = [], []
        for i, block in enumerate(self.blocks):
            pre = block(x)
            x = F.leaky_relu(pre, SLOPE)
            feats.append(x)
            preact.append(pre)
            if i < 2:
                x = F.dropout(F.max_pool2d(x, 2), self.dropout, self.training)
        pooled = x.mean(dim=(2, 3))
        logits = self.fc(pooled)
        return Out(logits, feats, preact, pooled) if features else logits

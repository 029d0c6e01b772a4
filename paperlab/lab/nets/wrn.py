"""Wide ResNets (Zagoruyko & Komodakis 2016) with pre-activation blocks: wrn_<depth>_<widen>.

Features as CRD's benchmark (RepDistiller's models/wrn.py) and mdistiller hand them over: the stem and each
group's raw output (the last one too, before the final BN and ReLU). Pre-activations: the stem, then each
group's output after the BN that follows it (the next group's first bn1, or the final BN), before its ReLU;
that BN runs once per forward (the references call it twice and count its running statistics twice)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.lab.nets.base import Out, conv3x3, conv_init


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv3x3(cin, cout, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), conv3x3(cout, cout)
        self.shortcut = None if cin == cout else nn.Conv2d(cin, cout, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor, pre: torch.Tensor | None = None) -> torch.Tensor:
        """`pre`: bn1(x) when the caller has computed it already (the previous group's pre-activation)."""
        act = F.relu(self.bn1(x) if pre is None else pre)
        out = self.conv2(F.relu(self.bn2(self.conv1(act))))
        return out + (x if self.shortcut is None else self.shortcut(act))


class WideResNet(nn.Module):
    def __init__(self, depth: int, widen: int, in_channels: int, classes: int):
        super().__init__()
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = conv3x3(in_channels, widths[0])
        self.groups = nn.ModuleList(
            nn.Sequential(*(PreActBlock(widths[i] if j == 0 else widths[i + 1], widths[i + 1],
                                        2 if i and j == 0 else 1) for j in range(n)))
            for i in range(3))
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], classes)
        conv_init(self)
        nn.init.zeros_(self.fc.bias)

    def preact_norms(self) -> list[nn.BatchNorm2d | None]:
        """The BN whose output each pre-activation is (None for the stem): OFD's margins read them."""
        return [None, *(g[0].bn1 for g in self.groups[1:]), self.bn]

    def forward(self, x: torch.Tensor, features: bool = False):
        x = self.conv1(x)
        feats, preact, pre = [x], [x], None
        for i, group in enumerate(self.groups):
            for j, block in enumerate(group):
                x = block(x, pre if j == 0 else None)
            pre = self.groups[i + 1][0].bn1(x) if i + 1 < len(self.groups) else self.bn(x)
            feats.append(x)
            preact.append(pre)
        pooled = F.relu(pre).mean(dim=(2, 3))
        logits = self.fc(pooled)
        return Out(logits, feats, preact, pooled) if features else logits


WRNS = {f"wrn_{d}_{w}": (d, w) for d in (16, 40) for w in (1, 2)}

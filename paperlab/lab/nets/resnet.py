"""CIFAR ResNets (He et al. 2016, section 4.2) as the distillation benchmarks define them: resnet8..110 with
16-16-32-64 channels and resnet8x4 / resnet32x4 with 32-64-128-256. Features: the stem and the three
stages; pre-activations: the same before the last ReLU of each stage."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.lab.nets.base import Out, conv3x3, conv_init


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # before the last ReLU
        out = F.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out)) + self.shortcut(x)


class CifarResNet(nn.Module):
    def __init__(self, depth: int, widths: tuple[int, int, int, int], in_channels: int, classes: int):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1, self.bn1 = conv3x3(in_channels, widths[0]), nn.BatchNorm2d(widths[0])
        self.stages = nn.ModuleList()
        cin = widths[0]
        for i, cout in enumerate(widths[1:]):
            self.stages.append(nn.ModuleList(Block(cin if j == 0 else cout, cout, 2 if i and j == 0 else 1)
                                             for j in range(n)))
            cin = cout
        self.fc = nn.Linear(widths[3], classes)
        conv_init(self)

    def forward(self, x: torch.Tensor, features: bool = False):
        pre = self.bn1(self.conv1(x))
        x = F.relu(pre)
        feats, preact = [x], [pre]
        for stage in self.stages:
            for block in stage:
                pre = block(x)
                x = F.relu(pre)
            feats.append(x)
            preact.append(pre)
        pooled = x.mean(dim=(2, 3))
        logits = self.fc(pooled)
        return Out(logits, feats, preact, pooled) if features else logits


RESNETS = {f"resnet{d}": (d, (16, 16, 32, 64)) for d in (8, 14, 20, 32, 44, 56, 110)}
RESNETS.update({"resnet8x4": (8, (32, 64, 128, 256)), "resnet32x4": (32, (32, 64, 128, 256))})

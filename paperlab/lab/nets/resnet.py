"""CIFAR ResNets (He et al. 2016, section 4.2) as the distillation benchmarks define them: resnet8..110 with
16-16-32-64 channels and resnet8x4 / resnet32x4 with 32-64-128-256; and resnet18, the ImageNet ResNet-18
adapted to 32x32 inputs as BYOT (1905.08094) and Tf-KD train it on CIFAR-100: a 3x3 stem without max-pool,
then four stages of two basic blocks, 64-128-256-512 channels. Features: the stem and every stage;
pre-activations: the same before the last ReLU of each stage."""

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
    def __init__(self, blocks: tuple[int, ...], widths: tuple[int, ...], in_channels: int, classes: int):
        """`widths`: the stem's channels, then each stage's; `blocks`: the basic blocks of each stage."""
        super().__init__()
        self.conv1, self.bn1 = conv3x3(in_channels, widths[0]), nn.BatchNorm2d(widths[0])
        self.stages = nn.ModuleList()
        cin = widths[0]
        for i, (n, cout) in enumerate(zip(blocks, widths[1:])):
            self.stages.append(nn.ModuleList(Block(cin if j == 0 else cout, cout, 2 if i and j == 0 else 1)
                                             for j in range(n)))
            cin = cout
        self.fc = nn.Linear(widths[-1], classes)
        conv_init(self)

    def preact_norms(self) -> list[nn.BatchNorm2d]:
        """The BN before each pre-activation's ReLU (the stem's, then each stage's last bn2; the shortcut is
        added after it): OFD's margins read them, as mdistiller's get_bn_before_relu."""
        return [self.bn1, *(stage[-1].bn2 for stage in self.stages)]

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


RESNETS = {f"resnet{d}": (((d - 2) // 6,) * 3, (16, 16, 32, 64)) for d in (8, 14, 20, 32, 44, 56, 110)}
RESNETS.update({"resnet8x4": ((1, 1, 1), (32, 64, 128, 256)), "resnet32x4": ((5, 5, 5), (32, 64, 128, 256)),
                "resnet18": ((2, 2, 2, 2), (64, 64, 128, 256, 512))})

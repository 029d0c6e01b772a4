"""VGG with batch norm for 32x32 inputs (Simonyan & Zisserman 2015, as the CIFAR distillation benchmarks
cut it): five conv blocks, max-pooling after the first three, global pooling, one linear layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.lab.nets.base import Out, conv3x3


def _block(cin: int, widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [conv3x3(cin, w, bias=True), nn.BatchNorm2d(w), nn.ReLU()]
        cin = w
    return nn.Sequential(*layers[:-1])  # the block's last ReLU is applied in forward (pre-activations)


class VGG(nn.Module):
    def __init__(self, cfg: list[list[int]], in_channels: int, classes: int):
        super().__init__()
        widths = [in_channels] + [c[-1] for c in cfg]
        self.blocks = nn.ModuleList(_block(widths[i], c) for i, c in enumerate(cfg))
        self.classifier = nn.Linear(cfg[-1][-1], classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def preact_norms(self) -> list[nn.BatchNorm2d]:
        return [block[-1] for block in self.blocks]

    def forward(self, x: torch.Tensor, features: bool = False):
        feats, preact = [], []
        for i, block in enumerate(self.blocks):
            pre = block(x)
            x = F.relu(pre)
            feats.append(x)
            preact.append(pre)
            if i < 3 and min(x.shape[-2:]) >= 2:
                x = F.max_pool2d(x, 2)
        pooled = x.mean(dim=(2, 3))
        logits = self.classifier(pooled)
        return Out(logits, feats, preact, pooled) if features else logits


VGGS = {"vgg8": [[64], [128], [256], [512], [512]],
        "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
        "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]]}

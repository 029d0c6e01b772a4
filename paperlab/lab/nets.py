"""The model zoo: an MLP with Hinton-style dropout and a max-norm constraint (CNNs and ResNets later)."""

from __future__ import annotations

import torch
from torch import nn

from paperlab.lab.templates import NetSpec


class MLP(nn.Module):
    def __init__(self, in_features: int, classes: int, spec: NetSpec):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        if spec.input_dropout:
            layers.append(nn.Dropout(spec.input_dropout))
        width = in_features
        for hidden in spec.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if spec.dropout:
                layers.append(nn.Dropout(spec.dropout))
            width = hidden
        layers.append(nn.Linear(width, classes))
        self.layers = nn.Sequential(*layers)
        self.max_norm = spec.max_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Max-norm: each unit's incoming weight vector is scaled back onto the ball of radius max_norm."""
        if self.max_norm is None:
            return
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                layer.weight.copy_(torch.renorm(layer.weight, 2, 0, self.max_norm))


def build(spec: NetSpec, input_shape: tuple[int, ...], classes: int) -> nn.Module:
    features = 1
    for size in input_shape:
        features *= size
    return MLP(features, classes, spec)

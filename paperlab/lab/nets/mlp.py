"""Fully connected nets with Hinton-style dropout and a max-norm constraint (1503.02531, 1207.0580)."""

from __future__ import annotations

import torch
from torch import nn

from paperlab.lab.nets.base import Out


class MLP(nn.Module):
    def __init__(self, in_features: int, classes: int, spec):
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

    def forward(self, x: torch.Tensor, features: bool = False):
        if not features:
            return self.layers(x)
        feats, preact = [], []
        for layer in self.layers:
            if isinstance(layer, nn.ReLU):
                preact.append(x)
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                feats.append(x)
        return Out(x, feats, preact, feats[-1])

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Max-norm: each unit's incoming weight vector is scaled back onto the ball of radius max_norm."""
        if self.max_norm is None:
            return
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                layer.weight.copy_(torch.renorm(layer.weight, 2, 0, self.max_norm))

"""The net registry: `build(spec, shape, classes)` picks a net by the template's `kind`."""

from __future__ import annotations

from torch import nn

from paperlab.lab.nets.base import Out, n_params
from paperlab.lab.nets.cnn import SmallCNN
from paperlab.lab.nets.convnet13 import ConvNet13
from paperlab.lab.nets.groups import Cohort, Ensemble
from paperlab.lab.nets.mlp import MLP
from paperlab.lab.nets.resnet import RESNETS, CifarResNet
from paperlab.lab.nets.vgg import VGGS, VGG
from paperlab.lab.nets.wrn import WRNS, WideResNet

__all__ = ["Cohort", "Ensemble", "Out", "build", "n_params", "as_out"]


def build(spec, shape: tuple[int, ...], classes: int) -> nn.Module:
    """`shape` is one input's (channels, height, width)."""
    kind = spec.kind
    if kind == "mlp":
        features = 1
        for size in shape:
            features *= size
        return MLP(features, classes, spec)
    if kind == "cnn":
        return SmallCNN(shape[0], classes, spec.channels)
    if kind == "convnet13":
        return ConvNet13(shape[0], classes)
    if kind in RESNETS:
        return CifarResNet(*RESNETS[kind], shape[0], classes)
    if kind in WRNS:
        return WideResNet(*WRNS[kind], shape[0], classes)
    return VGG(VGGS[kind], shape[0], classes)


def as_out(value) -> Out:
    return value if isinstance(value, Out) else Out(value)

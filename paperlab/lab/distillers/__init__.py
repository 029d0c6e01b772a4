"""Objectives by name: each method is one small class; `get(name)` is the whole registry lookup."""

from paperlab.lab.distillers.base import REGISTRY, CrossEntropy, Objective, get, register
from paperlab.lab.distillers.kd import HintonKD

__all__ = ["REGISTRY", "CrossEntropy", "HintonKD", "Objective", "get", "register"]

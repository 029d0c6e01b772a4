"""Distillation methods by name: one file each, registered by decorator; `get(name)` is the lookup."""

from paperlab.lab.distillers import (ab, at, byot, cc, crd, ctkd, dist, dkd, dml, fitnet, fsp, ft,  # noqa: F401
                                    kd, mean_teacher, nst, ofd, pkt, reviewkd, rkd, sp, tfkd, vid)  # registration
from paperlab.lab.distillers.base import (FEATURES, REGISTRY, Batch, CrossEntropy, Distiller, Info, get,
                                          parse_params, register)
from paperlab.lab.distillers.kd import HintonKD

__all__ = ["FEATURES", "REGISTRY", "Batch", "CrossEntropy", "Distiller", "HintonKD", "Info", "get",
           "parse_params", "register"]

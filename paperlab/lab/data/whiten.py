"""Global contrast normalisation and ZCA whitening, the input preparation of mean teacher's CIFAR-10 runs
(1703.01780; its TensorFlow code, datasets/preprocess_cifar10.py): each image is centred and scaled to an L2
norm of 55 (Goodfellow et al.'s factor), then whitened by W = E diag((d + 0.1)^-1/2) E^T from the eigen-
decomposition of the training images' covariance (0.1: the filter bias that keeps small eigenvalues from
blowing up noise). Fitted on the training split only; validation and test images take the same transform."""

from __future__ import annotations

from dataclasses import dataclass

import torch

SCALE = 55.0
FILTER_BIAS = 0.1


def gcn(x: torch.Tensor, scale: float = SCALE) -> torch.Tensor:
    flat = x.reshape(len(x), -1)
    flat = flat - flat.mean(1, keepdim=True)
    norms = flat.pow(2).sum(1, keepdim=True).sqrt() / scale
    return (flat / torch.where(norms < 1e-8, torch.ones_like(norms), norms)).reshape(x.shape)


@dataclass
class GcnZca:
    mean: torch.Tensor  # (D,)
    w: torch.Tensor     # (D, D)

    @classmethod
    def fit(cls, x: torch.Tensor, bias: float = FILTER_BIAS) -> "GcnZca":
        flat = gcn(x).reshape(len(x), -1).double()
        mean = flat.mean(0)
        centred = flat - mean
        cov = centred.T @ centred / (len(x) - 1)
        d, e = torch.linalg.eigh(cov + bias * torch.eye(len(cov), dtype=cov.dtype, device=cov.device))
        # directions the data does not span (GCN removes each image's mean) have eigenvalue 0 up to rounding,
        # which may come out as -2e-14: they are left out (a pseudo-inverse), not turned into NaN by rsqrt
        spanned = d > d.max() * len(d) * torch.finfo(d.dtype).eps
        w = e @ torch.diag(torch.where(spanned, d.rsqrt(), 0.0)) @ e.T
        return cls(mean.to(x.dtype), w.to(x.dtype))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = gcn(x).reshape(len(x), -1)
        return ((flat - self.mean) @ self.w).reshape(x.shape)

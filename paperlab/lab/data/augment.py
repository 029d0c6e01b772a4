"""On-device augmentation of the training inputs: shifts (Hinton's jitter, a padded random crop, a mirrored
border), horizontal flips, Gaussian noise; drawn from the training loop's generator, so a run repeats."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def shift(x: torch.Tensor, pixels: int, generator: torch.Generator, fill: torch.Tensor | None = None,
          reflect: bool = False) -> torch.Tensor:
    """Shift each image by its own random (dy, dx) in [-pixels, pixels]: Hinton's jitter, or torchvision's
    random crop after padding by `pixels`. The border takes `fill` per channel (black: 0, or its normalised
    value), or with `reflect` the image mirrored at its edge (mean teacher's random_translate)."""
    if pixels == 0:
        return x
    b, c, h, w = x.shape
    shifts = torch.randint(0, 2 * pixels + 1, (2, b), generator=generator, device=x.device)  # no host sync
    fill = None if reflect else fill
    padded = F.pad(x if fill is None else x - fill, (pixels,) * 4, mode="reflect" if reflect else "constant")
    padded = padded.permute(0, 2, 3, 1)
    rows = torch.arange(h, device=x.device)[None, :] + shifts[0][:, None]
    cols = torch.arange(w, device=x.device)[None, :] + shifts[1][:, None]
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return out if fill is None else out + fill


jitter = shift


def flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    mask = torch.rand(len(x), generator=generator, device=x.device) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(3), x)


@dataclass
class Augment:
    """On-device augmentation of the training inputs of one stage."""
    shift: int = 0
    flip: bool = False
    fill: torch.Tensor | None = None  # per-channel border value, shape (1, C, 1, 1)
    noise: float = 0.0                # std of Gaussian noise added last (mean teacher's input noise)
    reflect: bool = False             # the shifted-in border mirrors the image instead of taking `fill`

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = shift(x, self.shift, generator, self.fill, self.reflect)
        x = flip(x, generator) if self.flip else x
        if self.noise:
            x = x + self.noise * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x

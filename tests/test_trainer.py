"""Pieces of the training loop: jitter, the max-norm constraint, device choice."""

import pytest
import torch

from paperlab.errors import PaperlabError
from paperlab.lab.nets import build
from paperlab.lab.spec import MLPSpec
from paperlab.lab.trainer import jitter, pick_device


def test_jitter_shifts_each_image_by_at_most_the_given_pixels():
    x = torch.zeros(64, 1, 12, 12)
    x[:, 0, 5, 6] = 1.0  # one bright pixel well inside the frame
    out = jitter(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.all(out.sum(dim=(1, 2, 3)) == 1)
    rows, cols = out[:, 0].nonzero()[:, 1], out[:, 0].nonzero()[:, 2]
    assert rows.min() >= 3 and rows.max() <= 7 and cols.min() >= 4 and cols.max() <= 8
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # images get their own shifts
    same = jitter(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(out, same) and torch.equal(jitter(x, 0, torch.Generator()), x)


def test_max_norm_keeps_each_units_incoming_weights_on_the_ball():
    net = build(MLPSpec(kind="mlp", hidden=[16], max_norm=1.5), (1, 4, 4), 3)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(100)
    net.apply_constraints()
    first = net.layers[1].weight
    assert torch.all(first.norm(dim=1) <= 1.5 + 1e-5)


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(PaperlabError, match="no CUDA device"):
            pick_device("cuda")

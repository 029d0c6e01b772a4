"""Run by test_distributed under torchrun (2 workers, gloo): the helpers of lab/distributed.py and CRD's memory
bank, checked against what one process computes; each worker writes what it saw as JSON into
$PAPERLAB_TEST_OUT."""

import json
import os
from pathlib import Path

import torch

from paperlab.lab import distributed as dd
from paperlab.lab.distillers import get, parse_params
from paperlab.lab.distillers.base import Batch, Info
from paperlab.lab.nets import Out, build
from paperlab.lab.spec import MLPSpec

dd.start("cpu")
rows = torch.arange(5)
mine, weight = dd.shard(rows)
lone, lone_weight = dd.shard(torch.arange(1))             # a last batch of one row: rank 1 takes it with weight 0
(gathered,) = dd.gather(mine * 10)
total = dd.total(torch.tensor(float(dd.rank() + 1)))

torch.manual_seed(0)  # the same nets, method and bank on both ranks
net = build(MLPSpec(kind="mlp", hidden=[16]), (1, 4, 4), 3)
labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
crd = get("crd")(parse_params("crd", {"nce_k": 4, "feat_dim": 8}), net, net, Info((1, 4, 4), 3, labels))
before = crd.bank_s.clone()
batch = torch.tensor([1, 4, 7, 10, 11])                  # this batch's rows of the training set
idx, _ = dd.shard(batch)
torch.manual_seed(1)
s = Out(torch.randn(12, 3)[idx], pooled=torch.randn(12, 16)[idx])
t = Out(torch.randn(12, 3)[idx], pooled=torch.randn(12, 16)[idx])
crd(s, t, Batch(torch.zeros(len(idx), 1, 4, 4), labels[idx], idx, 1, 0.0))
changed = sorted(int(i) for i in (crd.bank_s != before).any(1).nonzero())
(bank,) = dd.gather(crd.bank_s.reshape(1, -1))
Path(os.environ["PAPERLAB_TEST_OUT"], f"rank{dd.rank()}.json").write_text(json.dumps({"rank": dd.rank(), "mine": mine.tolist(), "weight": weight, "lone": lone.tolist(),
                  "lone_weight": lone_weight, "gathered": gathered.tolist(), "total": float(total),
                  "changed": changed, "banks_agree": bool(torch.equal(bank[0], bank[1])), "z": crd.z.tolist()}))
dd.stop()

"""Training past one process: torchrun's workers (`paperlab run ... --nproc N`, or `torchrun -m paperlab run ...`).

Every rank trains the same stages on its share of each global batch (the template's batch size), the
student and the method's trainable parts wrapped in DistributedDataParallel, the teacher not; train losses
and validation errors are summed over the ranks. Only rank 0 touches the workspace and MLflow: the run
state, checkpoints, cached models and every tracked number; the others read what rank 0 wrote (one machine,
or a workspace that every machine shares). Outside torchrun every helper is the identity.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from datetime import timedelta
from typing import NoReturn

import torch
import torch.distributed as dist


def world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if world() > 1 else 0


def leader() -> bool:
    return rank() == 0


def launched() -> bool:
    """Started by torchrun with more than one worker."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: str) -> str:
    """Join torchrun's process group (gloo on CPU, NCCL on CUDA); the device this rank trains on."""
    if not launched() or dist.is_initialized():
        return device
    cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    minutes = float(os.environ.get("PAPERLAB_DIST_TIMEOUT_MIN", "30"))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=minutes))
    return "cuda" if cuda else ("cpu" if device == "auto" else device)  # "cuda": this rank's, set above


def stop() -> None:
    if world() > 1:
        dist.destroy_process_group()


def barrier() -> None:
    if world() > 1:
        dist.barrier()


def shard(rows: torch.Tensor) -> tuple[torch.Tensor, float]:
    """This rank's share of a batch (every world-th row) and the weight of its mean loss, share size x world /
    batch size, so that DistributedDataParallel's average of the ranks' gradients is the gradient of the
    whole batch's mean. A rank left without rows (a last batch smaller than the world) takes one with weight 0."""
    if world() == 1:
        return rows, 1.0
    mine = rows[rank()::world()]
    if len(mine) == 0:
        return rows[:1], 0.0
    return mine, len(mine) * world() / len(rows)


def total(value: torch.Tensor) -> torch.Tensor:
    """The sum of `value` over the ranks."""
    if world() == 1:
        return value
    out = value.detach().clone()
    dist.all_reduce(out)
    return out


def gather(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each tensor's rows from every rank, concatenated in rank order (shares may differ in length)."""
    if world() == 1:
        return tensors
    n = torch.tensor([len(tensors[0])], device=tensors[0].device)
    sizes = [torch.zeros_like(n) for _ in range(world())]
    dist.all_gather(sizes, n)
    most = int(max(sizes))
    out = []
    for t in tensors:
        padded = torch.zeros((most, *t.shape[1:]), dtype=t.dtype, device=t.device)
        padded[:len(t)] = t.detach()
        parts = [torch.empty_like(padded) for _ in range(world())]
        dist.all_gather(parts, padded)
        out.append(torch.cat([p[:int(k)] for p, k in zip(parts, sizes)]))
    return tuple(out)


def wrap(module: torch.nn.Module, buffers: bool = True) -> torch.nn.Module:
    """`module` under DistributedDataParallel where there are several ranks and it has trainable parameters;
    `buffers`: rank 0's buffers (batch-norm statistics) are broadcast before each forward."""
    if world() == 1 or not any(p.requires_grad for p in module.parameters()):
        return module
    import warnings

    from torch.nn.parallel import DistributedDataParallel

    # a conv weight's gradient of equivalent but differently written strides is copied into its bucket: harmless
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    ids = [torch.cuda.current_device()] if next(module.parameters()).is_cuda else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # broadcast_buffers' successor still syncs at the start
        # static_graph: the same parameters take part in every step, some perhaps never (a method's unused part)
        return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=buffers, static_graph=True)


def launch(nproc: int, args: list[str], device: str) -> int:
    """`paperlab ARGS` on `nproc` workers of this machine through torchrun's launcher (standalone rendezvous
    on a free local port); the exit code. A worker that fails ends the others; the workers do not print their
    errors but hand them here (errors.tell_launcher), so that one line is said once (`_failed`)."""
    import logging
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from paperlab.errors import WORKER_ERRORS, PaperlabError, told_launcher

    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))  # no oversubscription
    elif torch.cuda.device_count() < nproc:
        raise PaperlabError(f"--nproc {nproc}: this machine has {torch.cuda.device_count()} CUDA devices; "
                            f"give at most that many, or --device cpu")
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, start_method="spawn")
    logging.disable(logging.CRITICAL)  # the launcher's own log lines: its failure report is ours, in one line
    with tempfile.TemporaryDirectory(prefix="paperlab-workers-") as errors:
        os.environ[WORKER_ERRORS] = errors
        try:
            elastic_launch(config, sys.executable)("-m", "paperlab", *args)
        except SignalException as exc:  # Ctrl-C or a kill: the workers had it too, and rank 0 said so
            return 128 + int(exc.sigval)
        except ChildFailedError as exc:
            _failed(exc.failures, told_launcher(errors), nproc)
        finally:
            logging.disable(logging.NOTSET)
            os.environ.pop(WORKER_ERRORS, None)
    return 0


def _failed(failures: dict, told: dict[int, tuple[int, str]], nproc: int) -> NoReturn:
    """The one line for workers that failed, raised: a worker killed from outside first (the others were stopped
    because of it), else rank 0's own error (or the lowest rank's) as the worker said it, with its exit code."""
    from paperlab.errors import PaperlabError

    killed = sorted((f.timestamp, rank, f.exitcode) for rank, f in failures.items()
                    if f.exitcode < 0 and f.exitcode != -signal.SIGTERM)
    if killed or not told:
        _, worker, code = killed[0] if killed else min((f.timestamp, r, f.exitcode) for r, f in failures.items())
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else \
            f"failed with exit code {code} (--debug shows its error)"
        raise PaperlabError(f"worker {worker} of {nproc} {how}, so the run stopped; the same command with "
                            f"--resume continues it")
    code, message = told[min(told)]
    said = PaperlabError(message)
    said.exit_code = code  # bad input stays exit 2
    raise said

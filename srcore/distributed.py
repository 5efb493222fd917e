"""Several processes of one run (torchrun): who we are, joining the group, and the few collectives srcore uses.

Every function is a no-op (or answers for one process) when no process group exists, so the
same code runs in one process, under ``torchrun --nproc_per_node=N`` on CUDA (NCCL, each rank on
``cuda:$LOCAL_RANK``) and on CPU (gloo). Rank 0 is the process that evaluates and writes files.
"""
from __future__ import annotations

import datetime
import os

import numpy as np
import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the one that evaluates and writes files."""
    return rank() == 0


def init_distributed() -> int:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); the world size.

    A no-op without torchrun's environment or when already joined. NCCL on CUDA (each rank on
    ``cuda:$LOCAL_RANK``), gloo on CPU. The timeout is long because rank 0 alone evaluates while
    the others wait.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return world_size()
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=datetime.timedelta(hours=2))
    return world_size()


def _collective_device(device: torch.device | str | None = None) -> torch.device:
    """Where a collective's tensor must live: the rank's GPU for NCCL, the CPU for gloo."""
    if dist.get_backend() == "nccl":
        return torch.device(device) if device is not None else torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])  # logical (NCHW) order whatever each tensor's layout


def _unflat(flat: torch.Tensor, tensors: list[torch.Tensor]) -> None:
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view(t.shape))
        offset += t.numel()


def _by_kind(tensors) -> dict:
    groups: dict = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    return groups


def broadcast_tensors(tensors, src: int = 0) -> None:
    """Overwrite ``tensors`` in place with rank ``src``'s values, one broadcast per (device, dtype)."""
    for group in _by_kind(tensors).values():
        flat = _flat(group)
        dist.broadcast(flat, src)
        _unflat(flat, group)


def average_gradients(params) -> None:
    """Mean of each ``.grad`` over all ranks, one all-reduce per (device, dtype) (ranks must agree which have one)."""
    grads = [p.grad for p in params if p.grad is not None]
    for group in _by_kind(grads).values():
        flat = _flat(group)
        dist.all_reduce(flat)
        _unflat(flat.div_(world_size()), group)


def mean_over_ranks(values: list[float], device=None) -> list[float]:
    """The mean of each number over all ranks (float64); the numbers themselves in one process."""
    if world_size() == 1 or not values:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_collective_device(device))
    dist.all_reduce(t)
    return (t / world_size()).tolist()


def any_rank(flag: bool, device=None) -> bool:
    """True on every rank when ``flag`` is true on any one (every rank must call it)."""
    if world_size() == 1:
        return flag
    t = torch.tensor([float(flag)], device=_collective_device(device))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (every rank must call it); ``obj`` itself in one process."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src)
    return box[0]


def gather_objects(obj) -> list | None:
    """Every rank's ``obj``, in rank order, on every rank; None in one process."""
    if world_size() == 1:
        return None
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def shard_data(data, rank_: int, world: int, split_batch: bool, jump: bool = True) -> None:
    """Per-rank data for a PatchSampler-like source (``rng``: numpy Generator, ``batch_size``: int).

    The random stream is jumped ``rank`` times (2^127 draws each: independent streams, rank 0's
    unchanged) and, with ``split_batch``, each rank draws ``batch_size / world`` patches. Done
    once per source, so a sampler shared by two trainers is not split twice.
    """
    if world <= 1 or getattr(data, "_srcore_sharded", False):
        return
    rng = getattr(data, "rng", None)
    if jump and isinstance(rng, np.random.Generator):
        data.rng = np.random.Generator(rng.bit_generator.jumped(rank_))
    batch = getattr(data, "batch_size", None)
    if split_batch and isinstance(batch, int):
        if batch % world:
            raise ValueError(f"batch_size {batch} is not divisible by the {world} processes; "
                             f"change batch_size or set TrainConfig(split_batch=False) for {batch} per process")
        data.batch_size = batch // world
    data._srcore_sharded = True

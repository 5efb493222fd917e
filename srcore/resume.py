"""What a training run needs to resume exactly: one atomic checkpoint with every random state, and its logs.

A checkpoint (``<run_dir>/last.pt``) holds the networks, optimisers and LR schedules, the step
and training seconds, the log rows, and every random state: torch, CUDA, NumPy, Python and the
patch sampler's (under torchrun, every rank's). :func:`save` writes it through a temporary file
and a rename, so a kill never leaves half a checkpoint; :func:`load` puts a Trainer back exactly
where it was. ``log.csv`` and ``eval.csv`` beside it are the same rows for people to read.
"""
from __future__ import annotations

import csv
import os
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from srcore import distributed


def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a kill never leaves a half-written checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_csv(path: Path, rows: list[dict]) -> None:
    """``rows`` as CSV (columns in order of first appearance), written atomically; nothing for no rows."""
    if not rows:
        return
    keys = list(dict.fromkeys(k for row in rows for k in row))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, keys)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def save(trainer, data=None) -> None:
    """Checkpoint, log.csv and eval.csv of ``trainer``, written by rank 0; every rank must call it (it gathers random states)."""
    local = {"rng": rng_state(), "data": data.state_dict() if hasattr(data, "state_dict") else None}
    ranks = distributed.gather_objects(local)
    if trainer.rank != 0:
        return
    state = {
        "step": trainer.step, "elapsed": trainer.elapsed, "config": asdict(trainer.cfg),
        "nets": {k: v.state_dict() for k, v in trainer.nets.items()},
        "optimizers": {k: v.state_dict() for k, v in trainer.optimizers.items()},
        "schedulers": {k: v.state_dict() for k, v in trainer.schedulers.items()},
        "rng": local["rng"], "data": local["data"],
        "log": trainer.log_rows, "eval": trainer.eval_rows,
    }
    if ranks is not None:
        state["ranks"] = ranks  # every rank's random state and sampler, for an exact multi-process resume
    atomic_save(state, trainer.checkpoint_path)
    write_csv(trainer.run_dir / "log.csv", trainer.log_rows)
    write_csv(trainer.run_dir / "eval.csv", trainer.eval_rows)


def load(trainer, data=None) -> bool:
    """Restore ``trainer`` (and ``data``'s sampler) from its last checkpoint; True if there was one.

    Rank 0 reads the file and sends it to the others. Resumed with another number of processes,
    every rank starts from rank 0's random state, its sampler stream jumped by the rank.
    """
    path = trainer.checkpoint_path
    state = None
    if trainer.rank == 0 and path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=False)
    state = distributed.broadcast_object(state)
    if state is None:
        return False
    try:
        for k, net in trainer.nets.items():
            net.load_state_dict(state["nets"][k])
    except (RuntimeError, KeyError) as e:
        raise RuntimeError(f"{path} was made with other networks or settings ({str(e).strip().splitlines()[0]}): "
                           f"delete that folder or retrain (notebooks: -p retrain=true)") from e
    for k, opt in trainer.optimizers.items():
        opt.load_state_dict(state["optimizers"][k])
    for k, sched in trainer.schedulers.items():
        sched.load_state_dict(state["schedulers"][k])
    mine = {"rng": state["rng"], "data": state["data"]}
    same_world = len(state.get("ranks") or [None]) == trainer.world_size
    if same_world and trainer.world_size > 1:
        mine = state["ranks"][trainer.rank]
    set_rng_state(mine["rng"])
    if mine["data"] is not None and hasattr(data, "load_state_dict"):
        data.load_state_dict(mine["data"])
    if not same_world:  # resumed with another number of processes: rank 0's state, jumped per rank
        distributed.shard_data(data, trainer.rank, trainer.world_size, trainer.cfg.split_batch, jump=True)
    trainer.step, trainer.elapsed = state["step"], state["elapsed"]
    trainer.log_rows, trainer.eval_rows = state["log"], state["eval"]
    return True


def finished_steps(path: Path) -> int | None:
    """The step of the checkpoint at ``path`` (None without one), read without loading every tensor."""
    if not Path(path).is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False, mmap=True)["step"]

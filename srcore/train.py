"""One step-based training loop for every paper.

The loop owns what every paper shares: device, seeds, bf16 autocast on CUDA, step LR
schedules, atomic checkpoints, resume, progress bar, loss log (CSV) and a periodic
evaluation hook. What a method does in one step is a plain function, so one network
with L1, a teacher/student pair, a GAN (two optimisers) or a cohort of four networks
all fit::

    def step_fn(t: Trainer, batch):
        lr, hr = batch
        with t.autocast():
            loss = F.l1_loss(t.nets["G"](lr), hr)
        t.backward_step("G", loss)
        return {"l1": loss.item()}

    Trainer(run_dir, {"G": net}, {"G": Adam(net.parameters(), 1e-4)}, step_fn, TrainConfig(steps=1000)).fit(batches)

A run killed at any point resumes from its last checkpoint and ends with exactly the
weights of an uninterrupted run: the checkpoint holds networks, optimisers, schedules,
every random state (torch, CUDA, numpy, Python, the patch sampler) and the log rows.
"""
from __future__ import annotations

import contextlib
import csv
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


@dataclass
class TrainConfig:
    steps: int
    lr_milestones: tuple[int, ...] = ()  # step LR: multiply by lr_gamma at these steps
    lr_gamma: float = 0.5
    ckpt_every: int = 1000
    log_every: int = 10
    eval_every: int = 0  # 0: evaluate only at the end (if an eval_fn is given)
    seed: int = 0
    amp: bool = True  # bf16 autocast, on CUDA only
    progress: bool = True


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a kill never leaves a half-written checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Trainer:
    run_dir: Path
    nets: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    step_fn: Callable[["Trainer", object], dict]
    cfg: TrainConfig
    eval_fn: Callable[["Trainer"], dict] | None = None
    device: torch.device = field(default_factory=default_device)
    desc: str = "train"

    def __post_init__(self):
        self.run_dir = Path(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.schedulers = {name: torch.optim.lr_scheduler.MultiStepLR(opt, list(self.cfg.lr_milestones), self.cfg.lr_gamma)
                           for name, opt in self.optimizers.items()}
        self.step = 0
        self.elapsed = 0.0  # training seconds, summed over resumed sessions
        self.log_rows: list[dict] = []
        self.eval_rows: list[dict] = []
        for net in self.nets.values():
            net.to(self.device)
        self.use_amp = self.cfg.amp and self.device.type == "cuda"

    # --- what step functions use -------------------------------------------------------
    def autocast(self):
        """bf16 autocast on CUDA when cfg.amp; a no-op elsewhere."""
        if self.use_amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward_step(self, optimizer: str, loss: torch.Tensor) -> None:
        """zero_grad, backward, step for one named optimiser (bf16 needs no loss scaling)."""
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # --- checkpoints -----------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def done(self) -> bool:
        """True when a finished run of ``cfg.steps`` steps is already on disk."""
        return self.checkpoint_path.is_file() and torch.load(self.checkpoint_path, map_location="cpu",
                                                               weights_only=False)["step"] >= self.cfg.steps

    def save(self, data=None) -> None:
        state = {
            "step": self.step, "elapsed": self.elapsed, "config": asdict(self.cfg),
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "rng": _rng_state(), "data": data.state_dict() if hasattr(data, "state_dict") else None,
            "log": self.log_rows, "eval": self.eval_rows,
        }
        atomic_save(state, self.checkpoint_path)
        self._write_csv("log.csv", self.log_rows)
        self._write_csv("eval.csv", self.eval_rows)

    def load(self, data=None) -> bool:
        """Restore the last checkpoint if there is one; True if restored."""
        if not self.checkpoint_path.is_file():
            return False
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        for k, net in self.nets.items():
            net.load_state_dict(state["nets"][k])
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        for k, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][k])
        _set_rng_state(state["rng"])
        if state["data"] is not None and hasattr(data, "load_state_dict"):
            data.load_state_dict(state["data"])
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.log_rows, self.eval_rows = state["log"], state["eval"]
        return True

    def _write_csv(self, name: str, rows: list[dict]) -> None:
        if not rows:
            return
        keys = list(dict.fromkeys(k for row in rows for k in row))
        tmp = self.run_dir / f".{name}.tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, keys)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.run_dir / name)

    # --- the loop --------------------------------------------------------------------
    def _to_device(self, batch):
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, (tuple, list)):
            return type(batch)(self._to_device(b) for b in batch)
        return batch

    def _evaluate(self) -> None:
        for net in self.nets.values():
            net.eval()
        with torch.no_grad():
            row = self.eval_fn(self)
        self.eval_rows.append({"step": self.step, **row})

    def fit(self, data) -> "Trainer":
        """Train until ``cfg.steps``, resuming from the last checkpoint in ``run_dir`` if there is one."""
        if not self.load(data):
            seed_everything(self.cfg.seed)
        cfg = self.cfg
        bar = tqdm(total=cfg.steps, initial=self.step, desc=self.desc, disable=not cfg.progress, dynamic_ncols=True)
        tic = time.perf_counter()
        while self.step < cfg.steps:
            batch = self._to_device(next(data))
            for net in self.nets.values():
                net.train()
            losses = self.step_fn(self, batch)
            for sched in self.schedulers.values():
                sched.step()
            self.step += 1
            bar.update(1)
            last = self.step == cfg.steps
            if self.step % cfg.log_every == 0 or last:
                lrs = {f"lr_{k}": opt.param_groups[0]["lr"] for k, opt in self.optimizers.items()}
                self.log_rows.append({"step": self.step, **lrs, **losses})
                bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()})
            if self.eval_fn is not None and ((cfg.eval_every and self.step % cfg.eval_every == 0) or last):
                self._evaluate()
            if self.step % cfg.ckpt_every == 0 or last:
                self.elapsed += time.perf_counter() - tic
                tic = time.perf_counter()
                self.save(data)
        bar.close()
        for net in self.nets.values():
            net.eval()
        return self

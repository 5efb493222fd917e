"""Trained runs, reused only under the same settings: the key, the folder, and training a run into it.

Every trained run of a notebook lives in ``<checkpoints>/<paper>/<name>_x<scale>-<key>/`` where
``key`` hashes everything that shapes it: its name, scale, steps and seed, the training
parameters every paper shares (:data:`TRAINING_KEYS`, those the paper has), the paper's own
``shaped_by`` parameters, the data it trains on and the keys of the runs it ``depends_on`` (a
student's key holds its teacher's). The folder's ``settings.json`` holds what made the key.
Change any of it and the run trains again in a new folder; the same settings load the finished
run (0 steps trained, "reused"); ``retrain=true`` deletes the folder first.

Seeds: a run trained with seed ``s`` (``fit(..., seed=s)``, one of the profile's ``seeds``) has
``s`` in its key, its initial weights, its patch stream and the Trainer's random state; the
``seed`` parameter seeds what is not repeated over seeds.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from srcore import data, distributed, train

# Shared training parameters: part of every run's key when the paper has them (seed: the run's own).
TRAINING_KEYS = ("train_sets", "train_limit", "small_images", "lr_patch", "hr_patch", "batch_size", "lr", "betas",
                 "lr_milestones", "lr_gamma", "seed", "autocast")


def settings_key(settings: dict) -> str:
    """The 10-hex-digit key of a run's settings (JSON, sorted keys): the one place run folders are named."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


def folder_name(name: str, scale, key: str) -> str:
    return f"{name.replace('+', '_').replace(' ', '_')}{'' if scale is None else f'_x{scale}'}-{key}"


@dataclass
class Pretrained:
    """A network loaded from a released file instead of trained (``teacher_weights``): usable as a run.

    ``info`` is :func:`srcore.releases.load_teacher`'s ``{"file", "path", "sha256", "release"}``.
    The same file serves every seed.
    """
    name: str
    net: nn.Module
    info: dict
    step: int = 0
    trained_steps: int = 0
    elapsed: float = 0.0
    log_rows: list = field(default_factory=list)
    reused: bool = True
    stopped_early: bool = False
    seed: int | None = None

    def __post_init__(self):
        self.nets = {"net": self.net}
        self.key = self.info["sha256"][:10]
        self.notes = [f"{self.name} from {self.info['file']} (sha256 {self.info['sha256']})"]


class Runs:
    """The trained runs of one notebook run: each trained or reused in its keyed folder, listed in ``entries``.

    ``entries`` (``provenance["runs"]``): folder name -> name, scale, seed, key, steps, planned
    and trained steps, reused, stopped early, dependencies. ``train_set(scale)`` gives the
    patches of the default sampler; ``data_label()`` names the training data (part of the key).
    """

    def __init__(self, paper: str, P, ckpt_root: Path, device: torch.device, *, deadline: float | None,
                 train_set: Callable[[int], data.TrainSet], data_label: Callable[[], str | None]):
        self.paper, self.P, self.ckpt_root, self.device, self.deadline = paper, P, Path(ckpt_root), device, deadline
        self.train_set, self.data_label = train_set, data_label
        self.entries: dict[str, dict] = {}
        self._retrained: set[Path] = set()

    def settings(self, name: str, *, steps: int, scale=None, seed: int | None = None, shaped_by=(), depends_on=(),
                 **extra) -> dict:
        """Everything that shapes a run (what :func:`settings_key` hashes and settings.json holds)."""
        P = self.P
        missing = [k for k in shaped_by if k not in P]
        if missing:
            raise KeyError(f"shaped_by names {missing}, not parameters of {self.paper}")
        keys = [k for k in TRAINING_KEYS if k in P] + [k for k in shaped_by if k not in TRAINING_KEYS]
        parameters = {k: P[k] for k in keys}
        parameters["seed"] = P.seed if seed is None else seed
        return {"paper": self.paper, "name": name, "scale": scale, "steps": steps, "data": self.data_label(),
                "parameters": parameters, "depends_on": {d.name: d.key for d in depends_on}, **extra}

    def fit(self, name: str, nets, optimizers, step_fn, steps: int, *, scale=None, seed: int | None = None,
            shaped_by=(), depends_on=(), batches=None, settings: dict | None = None, **train_config) -> train.Trainer:
        """Train ``nets`` with ``step_fn`` for ``steps`` steps in the run's keyed folder, or reuse it finished.

        ``nets``: {name: module}, or better a function returning it: it is called after seeding with
        the run's seed, so its initial weights depend on the seed alone, not on which earlier runs
        were trained or loaded from cache in this run. ``seed``: one of ``P.seeds`` for a run
        repeated over seeds; None: ``P.seed``. ``optimizers``: {name: optimizer}, a function of the
        built nets returning that, or None for one Adam over every parameter of ``nets`` at ``P.lr``
        named "net". ``shaped_by``: the paper's parameters that shape this run (the shared
        :data:`TRAINING_KEYS` are added); ``depends_on``: runs (Trainers or :class:`Pretrained`)
        whose weights it uses; ``settings``: anything else that shapes it (e.g. ``{"head_blocks": 3}``).
        ``batches`` default to a PatchSampler over ``train_set(scale)`` seeded with the run's seed.
        ``train_config`` overrides TrainConfig fields. Returns the Trainer, with ``name``, ``key``,
        ``seed``, ``settings``, ``reused``, ``trained_steps`` and ``notes`` (this run's and its
        dependencies' notes, for every row it produces).
        """
        P = self.P
        seed = P.seed if seed is None else seed
        shape = self.settings(name, steps=steps, scale=scale, seed=seed, shaped_by=shaped_by, depends_on=depends_on,
                              **(settings or {}))
        key = settings_key(shape)
        run_dir = self.ckpt_root / folder_name(name, scale, key)
        if P.get("retrain") and run_dir not in self._retrained:
            if distributed.is_main_process():
                shutil.rmtree(run_dir, ignore_errors=True)
            distributed.barrier()
            self._retrained.add(run_dir)
        if callable(nets):
            train.seed_everything(seed)
            nets = nets()
        if callable(optimizers):  # built from the seeded nets: one optimiser per network of a GAN, say
            optimizers = optimizers(nets)
        elif optimizers is None:
            params = [p for m in nets.values() for p in m.parameters()]
            optimizers = {"net": torch.optim.Adam(params, lr=P.lr, **({"betas": tuple(P.betas)} if "betas" in P else {}))}
        trainer = train.Trainer(run_dir, nets, optimizers, step_fn, self._config(steps, seed, train_config),
                                device=self.device, desc=run_dir.name)
        if distributed.is_main_process():
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "settings.json").write_text(json.dumps({"key": key, **shape}, indent=2, default=str) + "\n")
        trainer.fit(batches if batches is not None else data.PatchSampler(self.train_set(scale), P.batch_size, seed=seed))
        self._describe(trainer, name, key, shape, seed, steps, depends_on)
        self._list(trainer, scale)
        return trainer

    def _config(self, steps: int, seed: int, overrides: dict) -> train.TrainConfig:
        P = self.P
        cfg = dict(steps=steps, lr_milestones=tuple(P.get("lr_milestones", ())), lr_gamma=P.get("lr_gamma", 0.5),
                   ckpt_every=P.get("ckpt_every", 1000), log_every=P.get("log_every", 10), seed=seed,
                   progress=P.profile != "smoke", channels_last=P.get("channels_last", False),
                   compile=P.get("compile", False), autocast=P.get("autocast", "auto"))
        if self.deadline is not None:
            cfg["deadline"] = self.deadline
        return train.TrainConfig(**{**cfg, **overrides})

    def _describe(self, trainer, name, key, shape, seed, steps, depends_on) -> None:
        before = trainer.resumed_at
        trainer.name, trainer.key, trainer.settings, trainer.seed = name, key, shape, seed
        trainer.trained_steps = trainer.step - before
        trainer.reused = before >= steps
        trainer.notes = [n for d in depends_on for n in d.notes]
        if trainer.stopped_early:
            trainer.notes.append(f"{name}: stopped early at step {trainer.step} of {steps} "
                                 f"(max_minutes={self.P.get('max_minutes') or 0:g})")

    def _list(self, trainer, scale) -> None:
        """The run's entry in ``entries`` (provenance["runs"]); printed as one line."""
        before = trainer.resumed_at
        what = ("reused finished run (same settings), 0 steps trained" if trainer.reused else
                f"trained {trainer.trained_steps} steps" + (f" (resumed at {before})" if before else ""))
        if distributed.is_main_process():
            print(f"{trainer.name}{'' if scale is None else f' x{scale}'} seed {trainer.seed}: {what} -> {trainer.run_dir}")
        folder = trainer.run_dir.name
        earlier = self.entries.get(folder, {})  # the same run asked for twice (e.g. Fig. 3's sweep)
        self.entries[folder] = {
            "name": trainer.name, "scale": scale, "seed": trainer.seed, "key": trainer.key, "steps": trainer.step,
            "planned_steps": trainer.cfg.steps,
            "trained_steps": earlier.get("trained_steps", 0) + trainer.trained_steps,
            "reused": earlier.get("reused", trainer.reused), "train_seconds": round(trainer.elapsed, 2),
            "stopped_early": trainer.stopped_early, "depends_on": trainer.settings["depends_on"]}

    def add_pretrained(self, run: Pretrained, scale: int) -> None:
        self.entries[f"{run.name}_x{scale}-{run.key}"] = {"name": run.name, "scale": scale, "key": run.key,
                                                          "release": run.info, "trained_steps": 0, "reused": True}


def summary(runs: dict, loss: str, label: str, seeds: list[int], scales: list) -> tuple:
    """(table, figure, curves) of trained runs ``{(method, scale[, seed]): run}``: each run's seed, steps,
    seconds and final ``loss``; the loss curves per scale (the first seed's); the numbers behind them."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    keyed = {(k[0], k[1], k[2] if len(k) > 2 else getattr(r, "seed", None)): r for k, r in runs.items()}
    table = pd.DataFrame([{label: m, "scale": x, "seed": s, "steps": r.step, "trained now": r.trained_steps,
                           "train_seconds": round(r.elapsed, 2), "s_per_step": r.elapsed / max(r.step, 1),
                           f"final_{loss}": r.log_rows[-1].get(loss, np.nan) if r.log_rows else np.nan}
                          for (m, x, s), r in keyed.items()],
                         columns=[label, "scale", "seed", "steps", "trained now", "train_seconds", "s_per_step",
                                  f"final_{loss}"])
    shown = {(m, x): r for (m, x, s), r in keyed.items() if s in (seeds[0], None)}
    scales = list(dict.fromkeys(x for _, x in shown)) or scales
    fig, axes = plt.subplots(1, len(scales), figsize=(4 * len(scales), 3), squeeze=False)
    curves = [pd.DataFrame(columns=[label, "scale", "step", loss])]
    for ax, x in zip(axes[0], scales):
        for (m, s), r in shown.items():
            if s == x and r.log_rows:
                log = pd.DataFrame(r.log_rows)
                ax.plot(log["step"], log[loss], label=m)
                curves.append(log.assign(**{label: m, "scale": x})[[label, "scale", "step", loss]])
        ax.set(title=f"x{x}" + (f", seed {seeds[0]}" if len(seeds) > 1 else ""), xlabel="step", ylabel=loss,
               yscale="log")
        if shown:
            ax.legend(fontsize=7)
    return table, fig, pd.concat(curves)

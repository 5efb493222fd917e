"""Runs: one type for every network a notebook uses, keyed by what its code reads, reused only under the same settings.

A :class:`Run` is what every way of getting a network gives: trained (:meth:`Runs.fit`, which also resumes an
interrupted run and reuses a finished one), released (:meth:`Runs.released`) or derived from another run
(:meth:`Runs.derive`, e.g. a pruned teacher). Its ``key`` is a hash of everything that shapes it, computed in
one place (:func:`settings_key`):

* the parameters its code reads while it is built: :meth:`Runs.fit` builds the networks, the step function and
  the optimisers inside :func:`srcore.paper.config.reading`, and reads the data and schedule parameters it uses
  itself there too; every parameter read is in the key, with its value, and nothing else is;
* the runs it uses (their keys: a student's key holds its teacher's), seen the same way when the build touches
  a run's networks;
* its name, scale, steps, seed, and ``settings`` that are not parameters (a loop's value, the device a timing
  ran on).

No notebook lists what shapes its runs. During a run's first training step the same reads are checked: a
parameter or run used there that the key does not hold stops the run with an error naming it (read it while
building the run instead), so a stale run cannot be reused by mistake.

Every trained run lives in ``<checkpoints>/<paper>/<name>_x<scale>-<key>/`` with ``settings.json`` (what made
the key). The same settings load the finished run (0 steps trained, "reused"); ``retrain=true`` deletes the
folder first.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from srcore import data, distributed, folders, train
from srcore.paper import config


def settings_key(settings: dict) -> str:
    """The 10-hex-digit key of a run's settings (JSON, sorted keys): the one place runs are keyed."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


def folder_name(name: str, scale, key: str) -> str:
    return f"{name.replace('+', '_').replace(' ', '_')}{'' if scale is None else f'_x{scale}'}-{key}"


@dataclass
class Run:
    """A network (or several) a notebook uses, and where it comes from.

    ``nets``: ``{name: module}``; ``step``: the training steps behind its weights; ``notes``: what every value it
    produces must say (stopped early, a release file); ``folder``: its checkpoint folder or release file;
    ``settings``: what made its key. Reading ``nets`` while another run is built records this run in that run's key.
    """

    name: str
    key: str
    _nets: dict[str, nn.Module] = field(repr=False)
    scale: int | None = None
    seed: int | None = None
    step: int = 0
    notes: list[str] = field(default_factory=list)
    folder: Path | None = None
    settings: dict = field(default_factory=dict)
    trained_steps: int = 0     # trained by this notebook run
    reused: bool = False       # a finished run loaded (or a release, or a run derived from one)
    stopped_early: bool = False
    train_seconds: float = 0.0
    log_rows: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return folder_name(self.name, self.scale, self.key)

    @property
    def nets(self) -> dict[str, nn.Module]:
        for reads in config._READING:
            reads.run(self.label, self.key)
        return self._nets

    @property
    def net(self) -> nn.Module:
        """The run's network ("net", else the generator "G")."""
        nets = self.nets
        return nets["net"] if "net" in nets else nets["G"]


class Runs:
    """The runs of one notebook run, each listed in ``entries`` (``provenance["runs"]``: label -> name, scale, seed,
    key, steps, planned and trained steps, reused, stopped early, train_seconds, runs it used, parameters read)."""

    def __init__(self, paper: str, P: config.Params, ckpt_root: Path, device: torch.device, *, deadline: float | None,
                 train_set: Callable[[int], data.TrainSet], data_label: Callable[[], str | None]):
        self.paper, self.P, self.ckpt_root, self.device, self.deadline = paper, P, Path(ckpt_root), device, deadline
        self.train_set, self.data_label = train_set, data_label
        self.entries: dict[str, dict] = {}
        self.known: dict[str, Run] = {}  # label -> every run made here: a run's notes carry those of the runs it used
        self._retrained: set[Path] = set()

    def fit(self, name: str, build: Callable[[], tuple[dict, Callable]], steps: int, *, scale=None,
            seed: int | None = None, optimizers=None, settings: dict | None = None, **train_config) -> Run:
        """Train the run that ``build`` makes for ``steps`` steps in its keyed folder, or reuse it finished.

        ``build()`` returns ``(nets, step_fn)``: ``{name: module}`` and the step function
        (:class:`srcore.train.Trainer`). It is called after seeding with the run's ``seed`` (one of ``P.seeds``;
        None: ``P.seed``), so initial weights depend on the seed alone. ``optimizers``: None for one Adam over
        every parameter at ``P.lr`` named "net", or a function of the built nets returning ``{name: optimizer}``.
        Everything read meanwhile keys the run (module docstring); ``settings``: what else shapes it.
        ``train_config`` overrides TrainConfig fields (``ckpt_every``...).
        """
        P = self.P
        seed = P.seed if seed is None else seed
        what = f"{name}{'' if scale is None else f' x{scale}'}"
        with config.reading(what) as reads:
            train.seed_everything(seed)
            nets, step_fn = build()
            optimizers = optimizers(nets) if optimizers else self._adam(nets)
            batches = data.PatchSampler(self.train_set(scale), P.batch_size, seed=seed)
            self._read_data_parameters()
            schedule = dict(lr_milestones=tuple(P.get("lr_milestones", ())), lr_gamma=P.get("lr_gamma", 0.5),
                            autocast=P.get("autocast", "auto"))
        shape = {"paper": self.paper, "name": name, "scale": scale, "steps": steps, "seed": seed,
                 "parameters": reads.parameters, "runs": reads.runs, **(settings or {})}
        key = settings_key(shape)
        folder = self.ckpt_root / folder_name(name, scale, key)
        # one process trains a keyed run at a time: another that needs it (the same teacher) waits, then reuses it
        main = distributed.is_main_process()  # under torchrun rank 0 holds it for every rank
        with folders.hold(folder, f"training {folder.name}", wait=True) if main else contextlib.nullcontext():
            if dict.get(P, "retrain") and folder not in self._retrained:
                if main:
                    shutil.rmtree(folder, ignore_errors=True)
                distributed.barrier()
                self._retrained.add(folder)
            trainer = train.Trainer(folder, nets, optimizers, _checked_first_step(step_fn, reads),
                                    self._config(steps, seed, {**schedule, **train_config}), device=self.device,
                                    desc=folder.name)
            if main:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "settings.json").write_text(json.dumps({"key": key, **shape}, indent=2, default=str) + "\n")
            trainer.fit(batches)
        run = Run(name, key, trainer.nets, scale, seed, trainer.step, [], folder, shape,
                  trained_steps=trainer.step - trainer.resumed_at, reused=trainer.resumed_at >= steps,
                  stopped_early=trainer.stopped_early, train_seconds=trainer.elapsed, log_rows=trainer.log_rows)
        run.notes = [n for label in reads.runs if label in self.known for n in self.known[label].notes]
        if run.stopped_early:
            run.notes.append(f"{name}: stopped early at step {run.step} of {steps} "
                             f"(max_minutes={dict.get(P, 'max_minutes') or 0:g})")
        self._list(run, steps)
        return run

    def released(self, name: str, net: nn.Module, info: dict, *, scale: int) -> Run:
        """A network loaded from a released file (``info``: :func:`srcore.pretrained.releases.load_teacher`'s file, path,
        sha256): keyed by the file's SHA-256, the same for every seed."""
        run = Run(name, info["sha256"][:10], {"net": net}, scale, None, 0,
                  [f"{name} from {info['file']} (sha256 {info['sha256']})"], Path(info["path"]), {"release": info},
                  reused=True)
        self._list(run, 0)
        return run

    def derive(self, name: str, parent: Run, nets: dict[str, nn.Module], *, step: int | None = None, **settings) -> Run:
        """A run made from ``parent`` without training (a pruned copy): keyed by the parent's key and ``settings``;
        its seed and notes are the parent's, and its step (the training behind its weights) too unless given."""
        key = settings_key({"from": parent.key, "name": name, **settings})
        run = Run(name, key, nets, parent.scale, parent.seed, parent.step if step is None else step, list(parent.notes), None,
                  {"from": {parent.label: parent.key}, **settings}, reused=True)
        self.known[run.label] = run
        return run

    def _adam(self, nets: dict) -> dict:
        P = self.P
        params = [p for m in nets.values() for p in m.parameters()]
        return {"net": torch.optim.Adam(params, lr=P.lr, **({"betas": tuple(P.betas)} if "betas" in P else {}))}

    def _read_data_parameters(self) -> None:
        """What shapes the training patches (the run's TrainSet was made from them), read into the key."""
        P = self.P
        for name in ("train_sets", "train_limit", "small_images", "lr_patch", "hr_patch"):
            P.get(name)

    def _config(self, steps: int, seed: int, overrides: dict) -> train.TrainConfig:
        """The Trainer's settings; those below shape no weights, so they are read outside the key."""
        P = self.P
        cfg = dict(steps=steps, ckpt_every=dict.get(P, "ckpt_every", 1000), log_every=dict.get(P, "log_every", 10),
                   seed=seed, progress=dict.get(P, "profile") != "smoke",
                   channels_last=dict.get(P, "channels_last", False), compile=dict.get(P, "compile", False))
        if self.deadline is not None:
            cfg["deadline"] = self.deadline
        return train.TrainConfig(**{**cfg, **overrides})

    def _list(self, run: Run, planned: int) -> None:
        """The run's entry in ``entries`` (provenance["runs"]); printed as one line."""
        self.known[run.label] = run
        what = ("released file" if "release" in run.settings else
                "reused finished run (same settings), 0 steps trained" if run.reused else
                f"trained {run.trained_steps} steps" + (f" (resumed at {run.step - run.trained_steps})"
                                                        if run.step > run.trained_steps else ""))
        if distributed.is_main_process():
            print(f"{run.name}{'' if run.scale is None else f' x{run.scale}'} seed {run.seed}: {what} -> {run.folder}")
        earlier = self.entries.get(run.label, {})  # the same run asked for twice (e.g. Fig. 3's sweep)
        self.entries[run.label] = {
            "name": run.name, "scale": run.scale, "seed": run.seed, "key": run.key, "steps": run.step,
            "planned_steps": planned, "trained_steps": earlier.get("trained_steps", 0) + run.trained_steps,
            "reused": earlier.get("reused", run.reused), "train_seconds": round(run.train_seconds, 2),
            "stopped_early": run.stopped_early, "depends_on": {  # the runs it used, by name: their keys
                self.known[label].name if label in self.known else label: key
                for label, key in run.settings.get("runs", {}).items()},
            "parameters": sorted(run.settings.get("parameters", {})),
            **({"release": run.settings["release"]} if "release" in run.settings else {})}


def _checked_first_step(step_fn: Callable, reads: config.Reads) -> Callable:
    """``step_fn``, whose first call may read only what ``reads`` holds (:class:`srcore.paper.config.UnkeyedRead`)."""
    def first(t, batch):
        t.step_fn = step_fn  # later steps run unchecked
        with config.reading(reads.what, frozen=reads):
            return step_fn(t, batch)
    return first


def summary(runs: dict, loss: str, label: str, seeds: list[int], scales: list) -> tuple:
    """(table, figure, curves) of trained runs ``{(method, scale[, seed]): run}``: each run's seed, steps,
    seconds and final ``loss``; the loss curves per scale (the first seed's); the numbers behind them."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    keyed = {(k[0], k[1], k[2] if len(k) > 2 else r.seed): r for k, r in runs.items()}
    table = pd.DataFrame([{label: m, "scale": x, "seed": s, "steps": r.step, "trained now": r.trained_steps,
                           "train_seconds": round(r.train_seconds, 2), "s_per_step": r.train_seconds / max(r.step, 1),
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

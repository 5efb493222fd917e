"""Learning check on CPU: two networks trained far enough to show that srcore's trainer learns.

    python benchmarks/learning.py                          # both networks, 2000 steps each (~13 min on 2 idle cores)
    python benchmarks/learning.py --lr-sweep 1e-4,5e-4,1e-3,2e-3 --sweep-steps 500   # the measurement behind LR

Trained with the notebooks' own data path and loop (srcore.data.load_folders -> TrainSet ->
PatchSampler -> srcore.train.Trainer with srcore.train.l1_step, Adam), on the CPU at 2 torch threads:

* SqueezeSR at the paper's width, x4 (seo_squeezesr_kd: 64 channels, squeeze 16, sub-pixel tail);
* a small EDSR, x2 (4 ResBlocks of 32 channels, res_scale 1).

Each for 2000 steps at batch 16 and LR patch 48 (HR 192 at x4, 96 at x2), the papers' patch: minutes on a
2-core CPU (results/learning.md gives the seconds per step and the minutes of the run it describes, with the
machine's load average: on a CPU shared with other work, times grow several-fold).

Data: T91 + BSD200 (the stand-in for DIV2K), LR by the MATLAB bicubic, images smaller than the HR patch
skipped (T91's small ones at x4). Evaluation: the standard protocol (srcore.evaluate.evaluate: PSNR and
SSIM on Y with ``scale`` pixels cropped) on Set5 and Set14 with the final weights, bicubic
(srcore.evaluate.bicubic_upscale) beside it; the PSNR-vs-step curve on Set5 every ``--eval-every`` steps.
The check: each network beats bicubic by at least 1 dB PSNR on both sets (exit status 1 otherwise).

Learning rate: Adam 2e-3 (the papers: 1e-4 or 2e-4 over 300k+ steps), halved after 3/4 of the steps.
Measured with ``--lr-sweep 1e-4,5e-4,1e-3,2e-3 --sweep-steps 500`` (constant rate, Set5 PSNR after 500 steps;
the table is repeated in results/learning.md while runs/learning/lr_sweep.csv is there):

    rate     SqueezeSR x4 (bicubic 28.43)   EDSR-4x32 x2 (bicubic 33.67)
    1e-4     28.50                          34.00
    5e-4     29.04                          35.05
    1e-3     28.98                          35.19
    2e-3     29.11                          35.63

1e-4 barely leaves bicubic in a few hundred steps; 2e-3 is the best for both (for SqueezeSR 5e-4..2e-3 are
within 0.1 dB). The halving for the last quarter settles the large rate's noise (in the 47-min run, Set5 rose by 0.1 dB
(SqueezeSR) and 0.6 dB (EDSR) over that quarter).

Writes results/learning.csv (network, scale, steps, dataset, psnr, ssim, bicubic_psnr: one row per
network and set), results/learning_curve.{png,csv} and results/learning.md. Checkpoints go to
runs/learning/<network>_x<scale>-<key>/ (key: everything that shapes the run, srcore.paper.runs.settings_key),
so an interrupted run resumes where it stopped and a finished one is only evaluated again.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import common
import numpy as np
import torch
from torch import nn

from srcore import data, evaluate, nets, report, train
from srcore.paper import runs

RUN_ROOT = common.ROOT / "runs" / "learning"
CSV_COLUMNS = ["network", "scale", "steps", "dataset", "psnr", "ssim", "bicubic_psnr"]
CURVE_COLUMNS = ["network", "scale", "step", "dataset", "psnr", "bicubic_psnr", "train_l1"]
TRAIN_SETS = ("T91", "BSD200")
TRAIN_LABEL = "T91+BSD200 (stand-in for DIV2K)"
EVAL_SETS = ("Set5", "Set14")
CURVE_SET = "Set5"
MIN_GAIN_DB = 1.0  # what "learns" means here: at least this much PSNR over bicubic on every evaluated set


class StoppedEarly(RuntimeError):
    """Training stopped before its steps (SIGTERM): nothing is evaluated or written; running again resumes."""


@dataclass
class Network:
    name: str
    scale: int
    make: Callable[[], nn.Module]
    what: str  # one line for the report


NETWORKS = {n.name: n for n in [
    Network("SqueezeSR", 4, lambda: nets.SqueezeSR(nets.SqueezeSRConfig(scale=4, n_feats=64, squeeze=16,
                                                                        upsampler="subpixel")),
            "seo_squeezesr_kd's student at the paper's width: 64 channels, 3 Squeeze Blocks, squeeze 16, sub-pixel tail"),
    Network("EDSR-4x32", 2, lambda: nets.EDSR(nets.EDSRConfig(scale=2, n_blocks=4, n_feats=32, res_scale=1.0)),
            "a small EDSR: 4 ResBlocks of 32 channels, res_scale 1, EDSR's tail"),
]}


@dataclass
class Recipe:
    """Everything that shapes a training run besides the network (part of the run folder's key)."""
    steps: int = 2000
    batch: int = 16
    lr_patch: int = 48
    lr: float = 2e-3
    decay_at: float = 0.75  # fraction of the steps after which the rate is halved (1: constant)
    seed: int = 0
    train_limit: int | None = None  # first N images of each training folder (tests)

    @property
    def milestones(self) -> tuple[int, ...]:
        return (int(self.steps * self.decay_at),) if 0 < self.decay_at < 1 else ()


def load_training_images(root: Path, limit: int | None = None) -> dict[str, np.ndarray]:
    """T91 + BSD200 as the notebooks load them: 'folder/file' -> uint8 (H,W,3)."""
    return data.load_folders([root / "train" / s for s in TRAIN_SETS], limit)


def load_eval_sets(root: Path, scale: int, limit: int | None = None) -> dict[str, list[data.Pair]]:
    return {s: data.benchmark_set(s, scale, root, limit=limit) for s in EVAL_SETS}


def mean_psnr(upscale, pairs, scale: int, dataset: str, with_ssim: bool = False) -> dict:
    """Mean PSNR (and SSIM) on Y over ``pairs`` under the standard protocol (srcore.evaluate.evaluate)."""
    df, _ = evaluate.evaluate(upscale, pairs, scale, dataset=dataset, with_ssim=with_ssim, progress=False, warmup=False)
    return df[["psnr", "ssim"] if with_ssim else ["psnr"]].mean().to_dict()


def bicubic(scale: int):
    return lambda lr: evaluate.bicubic_upscale(lr, scale)


def run_dir_for(net: Network, model: nn.Module, recipe: Recipe, run_root: Path) -> Path:
    """runs/learning/<name>_x<scale>-<key>: the key hashes the network's configuration, the recipe and the data."""
    settings = {"benchmark": "learning", "network": net.name, "config": repr(model.cfg), "scale": net.scale,
                "data": TRAIN_LABEL, **recipe.__dict__}
    return Path(run_root) / runs.folder_name(net.name, net.scale, runs.settings_key(settings))


def train_network(net: Network, recipe: Recipe, images: dict, curve_pairs: list[data.Pair], run_root: Path, *,
                  eval_every: int, log_every: int = 10, ckpt_every: int = 250, quiet: bool = False) -> train.Trainer:
    """Train (or resume, or reload finished) ``net`` with the notebooks' data path and Trainer; Set5 PSNR every ``eval_every``."""
    train_set = data.TrainSet(images, net.scale, hr_patch=recipe.lr_patch * net.scale, small_images="skip")
    sampler = data.PatchSampler(train_set, recipe.batch, seed=recipe.seed)
    train.seed_everything(recipe.seed)  # initial weights depend on the seed alone (as srcore.paper.runs.Runs.fit)
    model = net.make()
    tic = [time.perf_counter(), 0]

    def eval_fn(t: train.Trainer) -> dict:
        row = mean_psnr(t.nets["net"], curve_pairs, net.scale, CURVE_SET)
        if not quiet:
            now = time.perf_counter()
            recent = [r["l1"] for r in t.log_rows[-max(1, eval_every // log_every):]]
            per_step = (now - tic[0]) / max(t.step - tic[1], 1)
            print(f"  {net.name} x{net.scale} step {t.step:5d}: {CURVE_SET} PSNR {row['psnr']:.2f} dB, "
                  f"train L1 {np.mean(recent):.4f}, {per_step:.3f} s/step (incl. this evaluation)", flush=True)
            tic[:] = [now, t.step]
        return row

    cfg = train.TrainConfig(steps=recipe.steps, lr_milestones=recipe.milestones, lr_gamma=0.5, ckpt_every=ckpt_every,
                            log_every=log_every, eval_every=eval_every, seed=recipe.seed, autocast="off",
                            progress=False)
    trainer = train.Trainer(run_dir_for(net, model, recipe, run_root), {"net": model},
                            {"net": torch.optim.Adam(model.parameters(), lr=recipe.lr)}, train.l1_step, cfg,
                            eval_fn=eval_fn, device=torch.device("cpu"), desc=net.name)
    trainer.fit(sampler)
    trainer.train_set = train_set  # for the report: images used and skipped
    return trainer


def final_rows(net: Network, trainer: train.Trainer, eval_sets: dict[str, list[data.Pair]]) -> list[dict]:
    """One row per evaluation set: the trained network's PSNR/SSIM and bicubic's, on the final weights."""
    rows = []
    for name, pairs in eval_sets.items():
        ours = mean_psnr(trainer.nets["net"], pairs, net.scale, name, with_ssim=True)
        base = mean_psnr(bicubic(net.scale), pairs, net.scale, name, with_ssim=True)
        rows.append({"network": net.name, "scale": net.scale, "steps": trainer.step, "dataset": name,
                     "psnr": ours["psnr"], "ssim": ours["ssim"], "bicubic_psnr": base["psnr"],
                     "bicubic_ssim": base["ssim"], "images": len(pairs)})
    return rows


def curve_rows(net: Network, trainer: train.Trainer, bicubic_psnr: float) -> list[dict]:
    """The Set5 PSNR at every evaluation step, with the mean training L1 logged since the previous one."""
    rows, prev = [], 0
    for e in trainer.eval_rows:
        l1 = [r["l1"] for r in trainer.log_rows if prev < r["step"] <= e["step"]]
        rows.append({"network": net.name, "scale": net.scale, "step": e["step"], "dataset": CURVE_SET,
                     "psnr": e["psnr"], "bicubic_psnr": bicubic_psnr, "train_l1": float(np.mean(l1)) if l1 else math.nan})
        prev = e["step"]
    return rows


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()})
    return path


def plot_curve(rows: list[dict], path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name in dict.fromkeys(r["network"] for r in rows):
        mine = [r for r in rows if r["network"] == name]
        label = f"{name} x{mine[0]['scale']}"
        line, = a.plot([r["step"] for r in mine], [r["psnr"] for r in mine], marker=".", label=label)
        a.axhline(mine[0]["bicubic_psnr"], color=line.get_color(), ls="--", lw=1, label=f"bicubic x{mine[0]['scale']}")
        b.plot([r["step"] for r in mine], [r["train_l1"] for r in mine], marker=".", label=label)
    a.set(xlabel="step", ylabel=f"{CURVE_SET} PSNR on Y (dB)", title=f"{CURVE_SET} PSNR vs step")
    b.set(xlabel="step", ylabel="training L1 (mean since last point)", yscale="log", title="training loss")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1/5/15 min)"
    except OSError:
        return "unknown"


def check(rows: list[dict]) -> list[str]:
    """The rows where a network does not beat bicubic by MIN_GAIN_DB (empty: it learns)."""
    return [f"{r['network']} x{r['scale']} on {r['dataset']}: {r['psnr']:.2f} dB vs bicubic {r['bicubic_psnr']:.2f} dB"
            for r in rows if r["psnr"] - r["bicubic_psnr"] < MIN_GAIN_DB]


def md_table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_md(path: Path, *, final: list[dict], trained: list[dict], recipe: Recipe, meta: dict, sweep: list[dict],
             failures: list[str]) -> Path:
    table = [{**r, "gain_db": r["psnr"] - r["bicubic_psnr"]} for r in final]
    lines = [
        "# Learning check on CPU",
        "",
        (f"Written by `python benchmarks/learning.py` on {meta['date']}, commit `{meta['commit']}`, torch "
         f"{torch.__version__}, on {meta['machine']}. Load average at start {meta['load_start']}, at end "
         f"{meta['load_end']}: a load above the number of cores means other work shared them, and times are longer "
         "than on an idle machine."),
        "",
        ("Does srcore's trainer learn? Two networks trained with the notebooks' own data path and loop "
         "(`srcore.data.load_folders` -> `TrainSet` -> `PatchSampler` -> `srcore.train.Trainer` with "
         "`srcore.train.l1_step`, Adam), then evaluated under the standard protocol (`srcore.evaluate.evaluate`: PSNR "
         "and SSIM on Y, `scale` pixels cropped; bicubic by `srcore.evaluate.bicubic_upscale`)."),
        "",
        "## What was run",
        "",
        md_table(trained, ["network", "scale", "parameters", "steps", "batch", "lr_patch", "hr_patch", "lr", "train_images",
                           "skipped_small", "s_per_step", "train_min"]),
        "",
        *[f"* **{t['network']}**: {t['what']}." for t in trained],
        (f"* Training data: {TRAIN_LABEL}: `train/T91` and `train/BSD200` under the data root "
         "(`srcore.data.data_root()`), LR by the MATLAB bicubic, images smaller than the HR patch skipped."),
        (f"* Batch {recipe.batch}, LR patch {recipe.lr_patch} (HR patch = LR patch x scale), flips and 90-degree "
         f"rotations, L1 loss in float32, seed {recipe.seed}."),
        f"* Learning rate: Adam {recipe.lr:g} (betas 0.9, 0.999), "
        + (f"halved at step {recipe.milestones[0]}" if recipe.milestones else "constant")
        + ". The papers use 1e-4 or 2e-4 over hundreds of thousands of steps; for a 2000-step check the rate was "
          "measured with `--lr-sweep` (table at the end, when its CSV is present): at 1e-4 both networks are still "
          "within 0.4 dB of bicubic after 500 steps, 2e-3 gained most for both.",
        f"* LR patch {recipe.lr_patch}: the papers' patch; this run took {meta['wall_min']:.1f} min in all.",
        f"* Evaluation: {', '.join(EVAL_SETS)} on the final weights; the curve: {CURVE_SET} every {meta['eval_every']} steps.",
        f"* Times: training {meta['train_min']:.1f} min (s/step above, from the checkpoints, evaluations on {CURVE_SET} "
        f"included), total wall time of this invocation {meta['wall_min']:.1f} min"
        + (f" (training resumed or reused from runs/learning: {meta['resumed']})" if meta["resumed"] else "") + ".",
        f"* Checkpoints: {', '.join(f'`{d}`' for d in meta['run_dirs'])} (git-ignored; an interrupted run resumes there).",
        "",
        "## Results (final weights)",
        "",
        md_table(table, ["network", "scale", "steps", "dataset", "images", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim",
                         "gain_db"]),
        "",
        (f"Check: every network beats bicubic by at least {MIN_GAIN_DB:g} dB PSNR on every set: **passed**."
         if not failures else "Check **failed**: " + "; ".join(failures) + "."),
        "",
        ("Columns of `learning.csv`: " + ", ".join(CSV_COLUMNS)
         + " (PSNR in dB on Y, SSIM on Y, both with `scale` pixels cropped)."),
        "",
        f"## {CURVE_SET} PSNR vs step",
        "",
        "![PSNR vs step](learning_curve.png)",
        "",
        "Numbers behind it: `learning_curve.csv` (train_l1: the mean training L1 logged since the previous point).",
        "",
    ]
    if sweep:
        lines += ["## Learning-rate sweep (`--lr-sweep`)", "",
                  (f"Each rate trained from the same initial weights for the steps shown (batch {recipe.batch}, "
                   f"LR patch {recipe.lr_patch}, constant rate), then {CURVE_SET} PSNR:"), "",
                  md_table(sweep, ["network", "scale", "lr", "steps", "psnr", "bicubic_psnr", "train_l1"]), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.portable("\n".join(lines)))
    return path


def lr_sweep(names: list[str], lrs: list[float], steps: int, recipe: Recipe, images, root: Path, run_root: Path,
             eval_limit: int | None) -> list[dict]:
    """Each network trained ``steps`` steps at each rate (constant), then Set5 PSNR: the measurement behind ``--lr``."""
    rows = []
    for name in names:
        net = NETWORKS[name]
        pairs = data.benchmark_set(CURVE_SET, net.scale, root, limit=eval_limit)
        base = mean_psnr(bicubic(net.scale), pairs, net.scale, CURVE_SET)["psnr"]
        for lr in lrs:
            r = Recipe(**{**recipe.__dict__, "steps": steps, "lr": lr, "decay_at": 1.0})
            t = train_network(net, r, images, pairs, Path(run_root) / "sweep", eval_every=0, quiet=True)
            l1 = [x["l1"] for x in t.log_rows[-10:]]
            rows.append({"network": name, "scale": net.scale, "lr": lr, "steps": t.step, "psnr": t.eval_rows[-1]["psnr"],
                         "bicubic_psnr": base, "train_l1": float(np.mean(l1))})
            print(f"  sweep {name} x{net.scale} lr {lr:g}: {CURVE_SET} PSNR {rows[-1]['psnr']:.2f} dB "
                  f"(bicubic {base:.2f}), final train L1 {rows[-1]['train_l1']:.4f}", flush=True)
    return rows


def run(names: list[str], recipe: Recipe, *, out: Path, run_root: Path = RUN_ROOT, root: Path | None = None,
        eval_every: int = 100, eval_limit: int | None = None, log_every: int = 10, ckpt_every: int = 250,
        quiet: bool = False) -> dict:
    """Train and evaluate ``names``; write learning.csv, learning_curve.{csv,png} and learning.md into ``out``."""
    started, load_start, commit = time.perf_counter(), load_average(), report.git_commit()  # the code that ran
    root = data.data_root(root)
    images = load_training_images(root, recipe.train_limit)
    final, curve, trained, run_dirs, resumed = [], [], [], [], []
    for name in names:
        net = NETWORKS[name]
        eval_sets = load_eval_sets(root, net.scale, eval_limit)
        if not quiet:
            print(f"{name} x{net.scale}: {nets.count_parameters(net.make())} parameters, {recipe.steps} steps", flush=True)
        t = train_network(net, recipe, images, eval_sets[CURVE_SET], run_root, eval_every=eval_every,
                          log_every=log_every, ckpt_every=ckpt_every, quiet=quiet)
        if t.stopped_early:  # the Trainer checkpointed on SIGTERM: these are not the final weights
            raise StoppedEarly(f"{name} stopped at step {t.step} of {t.cfg.steps} (checkpoint in "
                               f"{report.portable(str(t.run_dir))}); run the same command again to resume")
        rows = final_rows(net, t, eval_sets)
        final += rows
        curve += curve_rows(net, t, rows[[r["dataset"] for r in rows].index(CURVE_SET)]["bicubic_psnr"])
        trained.append({"network": name, "scale": net.scale, "parameters": nets.count_parameters(t.nets["net"]),
                        "steps": t.step, "batch": recipe.batch, "lr_patch": recipe.lr_patch,
                        "hr_patch": recipe.lr_patch * net.scale, "lr": f"{recipe.lr:g}", "train_images": len(t.train_set),
                        "skipped_small": len(t.train_set.skipped), "s_per_step": t.elapsed / max(t.step, 1),
                        "train_min": t.elapsed / 60, "what": net.what, "log": t.log_rows, "resumed_at": t.resumed_at})
        run_dirs.append(report.portable(str(t.run_dir)))
        if t.resumed_at:
            resumed.append(f"{name} from step {t.resumed_at}")
        if not quiet:
            for r in rows:
                print(f"  {name} x{net.scale} {r['dataset']}: PSNR {r['psnr']:.2f} dB (bicubic {r['bicubic_psnr']:.2f}), "
                      f"SSIM {r['ssim']:.4f}", flush=True)
    failures = check(final)
    sweep_csv = Path(run_root) / "lr_sweep.csv"
    sweep = []
    if sweep_csv.is_file():
        with open(sweep_csv) as f:
            sweep = [{k: (float(v) if k in ("psnr", "bicubic_psnr", "train_l1") else v) for k, v in r.items()}
                     for r in csv.DictReader(f)]
    meta = {"date": datetime.date.today().isoformat(), "commit": commit,
            "machine": common.hardware(torch.device("cpu")), "load_start": load_start, "load_end": load_average(),
            "eval_every": eval_every, "train_min": sum(t["train_min"] for t in trained),
            "wall_min": (time.perf_counter() - started) / 60, "resumed": ", ".join(resumed), "run_dirs": run_dirs}
    out = Path(out)
    paths = {"csv": write_csv(out / "learning.csv", final, CSV_COLUMNS),
             "curve_csv": write_csv(out / "learning_curve.csv", curve, CURVE_COLUMNS),
             "curve_png": plot_curve(curve, out / "learning_curve.png")}
    paths["md"] = write_md(out / "learning.md", final=final, trained=trained, recipe=recipe, meta=meta, sweep=sweep,
                           failures=failures)
    return {"final": final, "curve": curve, "trained": trained, "failures": failures, "paths": paths, "meta": meta}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Recipe()
    ap.add_argument("--networks", default=",".join(NETWORKS), help=f"comma-separated: {', '.join(NETWORKS)}")
    ap.add_argument("--steps", type=int, default=d.steps)
    ap.add_argument("--batch", type=int, default=d.batch)
    ap.add_argument("--lr-patch", type=int, default=d.lr_patch, help="LR patch side; HR patch = lr_patch x scale")
    ap.add_argument("--lr", type=float, default=d.lr, help="Adam's rate (chosen by --lr-sweep)")
    ap.add_argument("--decay-at", type=float, default=d.decay_at, help="halve the rate after this fraction of the steps")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--eval-every", type=int, default=100, help=f"steps between {CURVE_SET} evaluations (the curve)")
    ap.add_argument("--eval-limit", type=int, default=None, help="first N images of each evaluation set (tests)")
    ap.add_argument("--train-limit", type=int, default=None, help="first N images of each training folder (tests)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--out", type=Path, default=common.RESULTS, help="folder for learning.csv/md and the curve")
    ap.add_argument("--run-root", type=Path, default=RUN_ROOT, help="checkpoint folders (resumable)")
    ap.add_argument("--lr-sweep", default="", help="comma-separated rates: measure them (Set5 PSNR) instead of the check")
    ap.add_argument("--sweep-steps", type=int, default=500)
    args = ap.parse_args(argv)
    names = args.networks.split(",")
    unknown = [n for n in names if n not in NETWORKS]
    if unknown:
        ap.error(f"unknown network {unknown}; known: {', '.join(NETWORKS)}")
    torch.set_num_threads(args.threads)
    recipe = Recipe(steps=args.steps, batch=args.batch, lr_patch=args.lr_patch, lr=args.lr, decay_at=args.decay_at,
                    seed=args.seed, train_limit=args.train_limit)
    print(common.header("learning", torch.device("cpu")) + f"; load average {load_average()}", flush=True)
    if args.lr_sweep:
        root = data.data_root()
        rows = lr_sweep(names, [float(x) for x in args.lr_sweep.split(",")], args.sweep_steps, recipe,
                        load_training_images(root, args.train_limit), root, args.run_root, args.eval_limit)
        print(f"sweep: {report.portable(str(write_csv(args.run_root / 'lr_sweep.csv', rows, list(rows[0]))))}")
        return 0
    print(f"batch {recipe.batch}, LR patch {recipe.lr_patch}, Adam {recipe.lr:g}"
          f"{f' halved at step {recipe.milestones[0]}' if recipe.milestones else ''}; data {TRAIN_LABEL}", flush=True)
    try:
        result = run(names, recipe, out=args.out, run_root=args.run_root, eval_every=args.eval_every,
                     eval_limit=args.eval_limit)
    except StoppedEarly as e:
        print(f"stopped: {e}; nothing written")
        return 2
    common.print_table([{k: r[k] for k in (*CSV_COLUMNS, "bicubic_ssim")} for r in result["final"]])
    m = result["meta"]
    print(f"training {m['train_min']:.1f} min, wall {m['wall_min']:.1f} min; wrote "
          + ", ".join(report.portable(str(p)) for p in result["paths"].values()))
    for f in result["failures"]:
        print(f"FAILED: {f} (less than {MIN_GAIN_DB:g} dB over bicubic)")
    if not result["failures"]:
        print(f"passed: every network beats bicubic by at least {MIN_GAIN_DB:g} dB on {', '.join(EVAL_SETS)}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())

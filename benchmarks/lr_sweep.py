"""Learning-rate sweep for a paper's quick profile: which rate and decay a short schedule should use.

    python benchmarks/lr_sweep.py --paper seo_squeezesr_kd --method SqueezeSR --scale 4 \\
        --grid 1e-4:-,1e-3:5000+7500,2e-3:5000+7500,4e-3:5000+7500 --jobs 2

Each point of ``--grid`` (``rate:milestones``, ``-`` for a constant rate; ``--gamma`` the factor at each
milestone) is one run of the paper's own notebook under the quick profile, through
``python -m srcore.reproduce`` with ``-p lr=... -p lr_milestones=[...]``, training ``--method`` alone at
``--scale`` with the quick profile's steps, data and evaluation sets: the same experiment the profile
runs, only the rate and its decay differ. Runs go to ``runs/lr_sweep/<point>/`` (keyed checkpoints: an
interrupted sweep resumes, a finished point is only read again); ``--jobs`` points run at once, each
on ``--threads`` torch threads (a small network gains little from a second thread on a busy CPU).

Writes ``results/lr_sweep.csv`` (one row per point and evaluation set: rate, milestones, steps, PSNR,
the published value and the gap to it, training seconds) and ``results/lr_sweep.md``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import common
import pandas as pd

from srcore import report
from srcore.paper import config

RUN_ROOT = common.ROOT / "runs" / "lr_sweep"


def parse_grid(text: str) -> list[tuple[float, list[int]]]:
    """'1e-3:5000+7500,2e-3:-' -> [(0.001, [5000, 7500]), (0.002, [])]."""
    points = []
    for item in text.split(","):
        rate, _, milestones = item.partition(":")
        points.append((float(rate), [int(m) for m in milestones.split("+") if m not in ("", "-")]))
    return points


def label(rate: float, milestones: list[int], gamma: float) -> str:
    return f"lr{rate:g}_" + ("constant" if not milestones else "x".join(map(str, milestones)) + f"_g{gamma:g}")


def run_point(args, rate: float, milestones: list[int]) -> Path:
    """One point: the paper's notebook under the quick profile, ``--method`` alone at ``--scale``; its run folder."""
    out_root = RUN_ROOT / args.paper / f"{args.method}_x{args.scale}" / label(rate, milestones, args.gamma)
    params = {"methods": f"[Bicubic, {args.method}]", "scales": f"[{args.scale}]", "lr": f"{rate:g}",
              "lr_milestones": f"[{', '.join(map(str, milestones))}]", "lr_gamma": f"{args.gamma:g}",
              "cpu_threads": str(args.threads), **dict(p.split("=", 1) for p in args.param)}
    cmd = [sys.executable, "-m", "srcore.reproduce", "--paper", args.paper, "--profile", "quick",
           "--out-root", str(out_root)] + [x for k, v in params.items() for x in ("-p", f"{k}={v}")]
    log = out_root / "sweep.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"{label(rate, milestones, args.gamma)}: {' '.join(cmd[1:])} (log {report.portable(str(log))})", flush=True)
    with open(log, "w") as f:
        done = subprocess.run(cmd, cwd=common.ROOT, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"{label(rate, milestones, args.gamma)} failed; see {log}")
    return out_root / args.paper


def rows_of(folder: Path, args, rate: float, milestones: list[int]) -> list[dict]:
    """The method's PSNR rows of one point, with its schedule and training time."""
    values = pd.read_csv(folder / "values.csv", dtype={"scale": str, "published": str}, keep_default_na=False)
    prov = json.loads((folder / "provenance.json").read_text())
    seconds = sum(r.get("train_seconds", 0) for r in prov["runs"].values() if r["name"] == args.method)
    mine = values[(values.method == args.method) & (values.metric == "PSNR") & (values.scale == str(args.scale))]
    bicubic = values[(values.method == "Bicubic") & (values.metric == "PSNR") & (values.scale == str(args.scale))]
    base = dict(zip(bicubic.dataset, pd.to_numeric(bicubic.reproduced)))
    return [{"network": args.method, "scale": args.scale, "lr": rate,
             "milestones": "+".join(map(str, milestones)) or "none", "gamma": args.gamma if milestones else "",
             "steps": r.steps, "dataset": r.dataset, "psnr": round(float(r.reproduced), 4),
             "bicubic": round(base.get(r.dataset, float("nan")), 4), "published": r.published,
             "gap_to_published": round(float(r.reproduced) - float(r.published), 4) if r.published else "",
             "train_minutes": round(seconds / 60, 1), "device": prov["device"], "commit": prov["commit"]}
            for r in mine.itertuples()]


POINT = ["network", "scale", "lr", "milestones", "gamma", "dataset"]


def write(rows: list[dict], args) -> tuple[Path, Path]:
    """results/lr_sweep.{csv,md}: these rows, and the earlier sweeps' rows of other points (or networks)."""
    csv_path = common.RESULTS / "lr_sweep.csv"
    table = pd.DataFrame(rows)
    if csv_path.is_file():
        old = pd.read_csv(csv_path, keep_default_na=False, dtype={"gamma": str, "milestones": str})
        table[POINT] = table[POINT].astype(str)
        old = old[~old.set_index(POINT).index.isin(table.set_index(POINT).index)]
        table = pd.concat([old.astype(table.dtypes.to_dict(), errors="ignore"), table], ignore_index=True)
    table.to_csv(csv_path, index=False)
    return csv_path, write_page(args)


def write_page(args) -> Path:
    """results/lr_sweep.md from results/lr_sweep.csv: one row per point of ``args.method`` x``args.scale``."""
    table = pd.read_csv(common.RESULTS / "lr_sweep.csv", keep_default_na=False, dtype={"gamma": str, "milestones": str})
    table = table[(table.network == args.method) & (table.scale.astype(str) == str(args.scale))]
    table = table.assign(lr=[f"{float(v):g}" for v in table.lr])
    wide = table.pivot_table(index=["lr", "milestones", "gamma", "steps", "train_minutes"], columns="dataset",
                             values="psnr", sort=False).reset_index()
    ref = table.drop_duplicates("dataset").set_index("dataset")
    sets = [c for c in wide.columns if c in ref.index]
    P = config.load(args.paper, "quick")
    lines = [f"# Learning-rate sweep: {args.method} x{args.scale} ({args.paper}, quick profile)", "",
             f"Written by `python benchmarks/lr_sweep.py` (the command is in its docstring). Each row is one run of "
             f"the paper's notebook under the quick profile ({P.student_steps if 'student_steps' in P else '?'} steps, "
             f"batch {P.batch_size}, LR patch {P.lr_patch}, {'+'.join(P.train_sets)}, whole evaluation sets), training "
             f"{args.method} alone at x{args.scale}; only Adam's rate and its step decay differ (the rate is multiplied "
             f"by gamma at each milestone). PSNR in dB on Y with `scale` pixels cropped, final weights.", "",
             report.markdown_table(wide.round(3)), "",
             "For comparison: " + "; ".join(f"{s} published {ref.published[s]}, bicubic {float(ref.bicubic[s]):.3f}"
                                           for s in sets) + ".", "",
             "The gap of each point to the published value: `lr_sweep.csv` (column gap_to_published).", ""]
    md_path = common.RESULTS / "lr_sweep.md"
    md_path.write_text(report.portable("\n".join(lines)))
    return md_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paper", required=True)
    ap.add_argument("--method", required=True, help="the trained method of the paper's notebook to sweep")
    ap.add_argument("--scale", type=int, required=True)
    ap.add_argument("--grid", help="rate:milestones,... ('-': constant), e.g. 1e-3:5000+7500,2e-3:-; without it, "
                                   "lr_sweep.md is written again from lr_sweep.csv")
    ap.add_argument("--gamma", type=float, default=0.5, help="factor applied to the rate at each milestone")
    ap.add_argument("--jobs", type=int, default=1, help="points at a time")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per point")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                    help="another override for every point (as srcore.reproduce's -p)")
    args = ap.parse_args(argv)
    if not args.grid:
        print(f"wrote {report.portable(str(write_page(args)))}")
        return 0
    points = parse_grid(args.grid)
    with ThreadPoolExecutor(args.jobs) as pool:
        folders = list(pool.map(lambda p: run_point(args, *p), points))
    rows = [r for folder, p in zip(folders, points) for r in rows_of(folder, args, *p)]
    for path in write(rows, args):
        print(f"wrote {report.portable(str(path))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Batch runner: execute the paper notebooks headless with papermill.

    python -m srcore.reproduce                       # every paper, default profile
    python -m srcore.reproduce --paper PAPER --profile quick -p "eval_limit={Urban100: 10}"
    python -m srcore.reproduce --paper PAPER --profile quick --shard scale --gpus 0,1,2   # srcore.runner.shards

The default profile is ``quick`` where CUDA is available and ``smoke`` elsewhere, so the
command runs anywhere. Parameters come from ``srcore/profiles/<profile>.yaml``; ``-p``
overrides one (checked before anything runs). Executed notebooks are kept under
``runs/<profile>/executed/``; results go where ``srcore.report.output_dir`` says.
Exits non-zero when a notebook fails.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from srcore import folders, report
from srcore.paper import config
from srcore.report import PROJECT_ROOT, output_dir
from srcore.runner import merge, promote, shards
from srcore.runner.execute import execute, papers

RESULTS = PROJECT_ROOT / "results"
WAY_OUT = "wait for it to finish, or give --out-root (or another profile) to run beside it"

MEANING = {
    "smoke": "smoke numbers only check the plumbing: networks trained for a few steps on a few images score "
             "around 11-20 dB PSNR (bicubic baselines and parameter counts are real); smoke runs are never "
             "promoted into results/",
    "quick": "quick numbers are real but come from a short training schedule (the steps column of "
             "values.csv) and may use part of a set (its note column): expect them below the published ones",
    "paper": "paper numbers come from the published settings: compare them with the published column directly",
}


def default_profile() -> str:
    import torch
    return "quick" if torch.cuda.is_available() else "smoke"


def executed_path(paper: str, profile: str, out_root: Path | None = None) -> Path:
    """Where the executed copy of a paper's notebook (outputs and any traceback) is kept."""
    return output_dir(paper, profile, out_root and out_root / paper).parent / "executed" / f"{paper}.ipynb"


def run(paper: str, profile: str, overrides: dict, out_root: Path | None = None, log=print) -> Path:
    """Execute one notebook; returns its run folder (runs/<profile>/<paper>, or <out_root>/<paper>).

    Raises on a failing cell, after removing the run's half-written folder.
    """
    config.load(paper, profile, **overrides)  # unknown parameters fail here, before any work
    out_dir = out_root / paper if out_root else None
    params = {"profile": profile, **overrides, **({"out_dir": str(out_dir)} if out_dir else {})}
    executed = executed_path(paper, profile, out_root)
    results = output_dir(paper, profile, out_dir)
    log(f"[{paper}] profile={profile} -> executed notebook: {executed}")
    tic = time.perf_counter()
    what = f"{paper} {profile} run"  # a second run of the same paper and profile stops here, naming this one
    with folders.hold(executed, what, way_out=WAY_OUT), folders.hold(results, what, way_out=WAY_OUT):
        try:
            execute(paper, params, executed)  # the notebook's kernel holds the same folder again (srcore.folders)
        finally:
            folders.recover(results)  # a failed run leaves no .partial beside its folder
    log(f"[{paper}] done in {time.perf_counter() - tic:.0f} s -> run folder: {results}")
    return results


def missing_data(paper: str, P, fetch: bool = False) -> str:
    """Why the run of ``paper`` with ``P`` cannot find its data ("" when it can, or when it runs on the embedded
    photos); with ``fetch``, the sets its data root lacks are downloaded first (:mod:`srcore.download`)."""
    from srcore import data, download
    from srcore.paper import inputs

    named = inputs.sets_read(paper, P)
    train = [s for s, params in named.items() if "train_sets" in params]
    benchmarks = [s for s in named if s not in train]
    try:
        data.find_root(P.get("data_root"), benchmarks=benchmarks, train_sets=train,
                       allow_embedded=P.get("allow_embedded", False))
        return ""
    except data.DataError as e:
        if not fetch:
            return str(e)
    root = data.configured_root(P.get("data_root"))
    try:
        download.fetch([s for s in named if s in download.CATALOGUE], root)
    except download.DownloadError as e:
        return str(e)
    return ""


def summary(profile: str, outcome: dict[str, dict]) -> str:
    """The closing lines: per paper where its results are (or which notebook failed), then what the numbers mean.

    ``outcome[paper]``: ``{"folder": Path}`` for a finished run, plus ``"promoted": bool`` and
    ``"why"`` (the first reason it was not) when promotion was tried; ``{"error": str,
    "executed": Path}`` for a failed one.
    """
    lines = [f"summary ({profile} profile):"]
    width = max(map(len, outcome), default=0)
    for paper, o in outcome.items():
        if "error" in o:
            lines.append(f"  {paper:<{width}}  FAILED: {o['error']}")
            lines.append(f"  {'':<{width}}  traceback in the executed notebook {o['executed']}")
            continue
        folder = o["folder"]
        lines.append(f"  {paper:<{width}}  {folder / 'README.md'}")  # the page Results.write makes
        if o.get("promoted"):
            lines.append(f"  {'':<{width}}  promoted into {RESULTS / paper}")
        elif "promoted" in o:
            lines.append(f"  {'':<{width}}  {RESULTS / paper} left as it is: {o['why']}")
    lines.append(MEANING[profile] + ".")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srcore.reproduce", description=__doc__.split("\n\n")[0])
    ap.add_argument("--paper", nargs="+", metavar="KEY", help=f"papers to run (default: all of {papers()})")
    ap.add_argument("--profile", choices=config.PROFILES, help="default: quick with CUDA, smoke without")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="override a profile parameter")
    ap.add_argument("--out-root", type=Path, help="write results and executed notebooks under this folder "
                    "(nothing is promoted into results/)")
    ap.add_argument("--dry-run", action="store_true",
                    help="check the parameters, print each paper's overrides as they were read, and run nothing")
    ap.add_argument("--download", action="store_true",
                    help="fetch the data sets the runs read that the data root lacks (python -m srcore.download) first")
    ap.add_argument("--promote-anyway", action="store_true",
                    help="promote quick/paper runs into results/ even when they are less complete than what is "
                         "there (what is lost is listed first)")
    scale = ap.add_argument_group("several GPUs, processes or cluster jobs (srcore.runner.shards)")
    scale.add_argument("--shard", choices=["scale"], help="one notebook execution per scale, in parallel, merged into "
                       "one run folder (runs/<profile>/<paper>/shards/x<scale>/, then runs/<profile>/<paper>/)")
    scale.add_argument("--executor", choices=shards.EXECUTORS, default="local",
                       help="local: one process per shard (default); slurm: one SLURM job per shard (submitit); "
                            "submitit-local: the SLURM path on this machine")
    scale.add_argument("--jobs", type=int, help="local: shards at a time (default: one per GPU group, 1 on a CPU)")
    scale.add_argument("--gpus", type=lambda t: [int(g) for g in t.split(",") if g != ""],
                       help="local: the GPUs to use, e.g. 0,1,2,3 (default: every visible GPU)")
    scale.add_argument("--nproc-per-shard", type=int, default=1, metavar="N",
                       help="execute each shard under torchrun with N processes (N GPUs; gloo on a CPU); rank 0 "
                            "evaluates and writes, the global batch stays the recipe's")
    slurm = config.slurm_defaults()
    for flag, key, kind, what in [("--partition", "partition", str, "SLURM partition"),
                                  ("--time-limit", "time_min", int, "minutes per job"),
                                  ("--gpus-per-job", "gpus_per_job", int, "GPUs per job"),
                                  ("--cpus-per-job", "cpus_per_job", int, "CPUs per job")]:
        scale.add_argument(flag, dest=key, type=kind, default=slurm[key],
                           help=f"slurm: {what} (default {slurm[key]}, profiles/common.yaml slurm:)")
    args = ap.parse_args(argv)
    sharded = args.shard is not None or args.executor != "local" or args.nproc_per_shard > 1
    if args.nproc_per_shard > 1 and args.executor == "slurm" and args.gpus_per_job < args.nproc_per_shard:
        args.gpus_per_job = args.nproc_per_shard  # one GPU per process

    profile = args.profile or default_profile()
    chosen = args.paper or papers()
    try:
        unknown = [p for p in chosen if p not in papers()]
        if unknown:
            raise config.ParameterError(f"no notebook for {unknown}; papers: {', '.join(papers())}")
        overrides = dict(config.parse_override(p) for p in args.param)
        checked = {paper: config.load(paper, profile, **overrides) for paper in chosen}
    except config.ParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        for paper, P in checked.items():
            print(f"{paper} ({profile}): {json.dumps(P.overrides)}")
        return 0
    missing = {paper: why for paper, P in checked.items() if (why := missing_data(paper, P, fetch=args.download))}
    if missing:  # before any work: the runs would stop at their first cell
        for paper, why in missing.items():
            print(f"error: {paper} ({profile}): {why}", file=sys.stderr)
        print("Fetch what the runs read with `python -m srcore.download --paper P --profile X` (or give --download), "
              "or set SRCORE_DATA to a data root that holds it.", file=sys.stderr)
        return 2

    if args.out_root is None:
        for paper in papers():  # a promotion killed half-way is settled before anything runs
            folders.recover(RESULTS / paper)
    outcome: dict[str, dict] = {}
    root = args.out_root or PROJECT_ROOT / "runs" / profile
    for paper in chosen:
        try:
            if sharded:
                parts, done = shards.run(paper, profile, overrides, root, by=args.shard, executor=args.executor,
                                         jobs=args.jobs, gpus=args.gpus, nproc=args.nproc_per_shard,
                                         slurm={k: getattr(args, k) for k in ("partition", "time_min", "gpus_per_job",
                                                                              "cpus_per_job")})
                folder = merge.merge(root / paper, [s.folder for s in parts],
                                     reused={Path(s.folder).name for s in done})
            else:
                folder = run(paper, profile, overrides, args.out_root)
        except Exception as e:  # report and go on with the other papers
            error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
            print(f"[{paper}] FAILED: {error}", file=sys.stderr)
            where = root / paper / "shards" if sharded else executed_path(paper, profile, args.out_root)
            outcome[paper] = {"error": error, "executed": where}
            continue
        outcome[paper] = {"folder": folder}
        if args.out_root is None and profile in promote.PROMOTED_PROFILES:
            verdict = promote.promote(folder, RESULTS / paper, force=args.promote_anyway,
                                      log=lambda m: print(f"[{paper}] {m}"))
            outcome[paper].update(promoted=verdict.promoted, why=verdict.headline())
            if verdict.promoted:
                outcome[paper]["folder"] = RESULTS / paper
    if any(o.get("promoted") for o in outcome.values()):
        report.write_summary(RESULTS)  # results/README.md: one row per paper, from the promoted values.csv
    print(summary(profile, outcome))
    return 1 if any("error" in o for o in outcome.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Batch runner: execute the paper notebooks headless with papermill.

    python -m srcore.reproduce                       # every paper, default profile
    python -m srcore.reproduce --paper seo_squeezesr_kd --profile quick -p teacher_steps=2000

The default profile is ``quick`` where CUDA is available and ``smoke`` elsewhere, so the
command runs anywhere. Parameters come from ``srcore/profiles/<profile>.yaml``; ``-p``
overrides one (checked before anything runs). Executed notebooks are kept under
``runs/<profile>/executed/``; results go where ``srcore.report.output_dir`` says.
Exits non-zero when a notebook fails.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import yaml

from srcore import config
from srcore.report import PROJECT_ROOT, output_dir

NOTEBOOKS = PROJECT_ROOT / "notebooks"


class _KnownToConfig(logging.Filter):
    """papermill only sees `profile` and `out_dir` in the parameters cell; the rest is checked by srcore.config."""

    def filter(self, record):
        return not record.getMessage().startswith("Passed unknown parameter")


logging.getLogger("papermill").addFilter(_KnownToConfig())


def papers() -> list[str]:
    """Papers that have a notebook, in name order."""
    return sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


def default_profile() -> str:
    import torch
    return "quick" if torch.cuda.is_available() else "smoke"


def parse_override(text: str) -> tuple[str, object]:
    """'name=value' with value parsed as YAML ('3' -> 3, '[2, 4]' -> list, '{}' -> dict, 'true' -> True).

    Only flow-style collections count: 'a note: with a colon' stays a string.
    """
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise config.ParameterError(f"-p expects name=value, got {text!r}")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    if isinstance(value, (dict, list)) and not raw.strip().startswith(("{", "[")):
        value = raw
    return name.strip(), value


def run(paper: str, profile: str, overrides: dict, out_root: Path | None = None, log=print) -> Path:
    """Execute one notebook; returns its results folder. Raises on a failing cell."""
    import papermill as pm

    config.load(paper, profile, **overrides)  # unknown parameters fail here, before any work
    # The kernel imports srcore from this checkout, not from whichever copy pip last installed.
    path = os.environ.get("PYTHONPATH", "")
    if str(PROJECT_ROOT) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), path) if p)
    out_dir = out_root / paper if out_root else None
    params = {"profile": profile, **overrides, **({"out_dir": str(out_dir)} if out_dir else {})}
    executed = (out_root or PROJECT_ROOT / "runs" / profile) / "executed" / f"{paper}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    log(f"[{paper}] profile={profile} -> executed notebook: {executed}")
    tic = time.perf_counter()
    pm.execute_notebook(NOTEBOOKS / f"{paper}.ipynb", executed, parameters=params,
                        cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False, log_output=False)
    results = output_dir(paper, profile, out_dir)
    log(f"[{paper}] done in {time.perf_counter() - tic:.0f} s -> results: {results}")
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srcore.reproduce", description=__doc__.split("\n\n")[0])
    ap.add_argument("--paper", nargs="+", metavar="KEY", help=f"papers to run (default: all of {papers()})")
    ap.add_argument("--profile", choices=config.PROFILES, help="default: quick with CUDA, smoke without")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="override a profile parameter")
    ap.add_argument("--out-root", type=Path, help="write results and executed notebooks under this folder")
    args = ap.parse_args(argv)

    profile = args.profile or default_profile()
    chosen = args.paper or papers()
    try:
        unknown = [p for p in chosen if p not in papers()]
        if unknown:
            raise config.ParameterError(f"no notebook for {unknown}; papers: {', '.join(papers())}")
        overrides = dict(parse_override(p) for p in args.param)
        for paper in chosen:
            config.load(paper, profile, **overrides)
    except config.ParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    failed = []
    for paper in chosen:
        try:
            run(paper, profile, overrides, args.out_root)
        except Exception as e:  # report and go on with the other papers
            print(f"[{paper}] FAILED: {type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}",
                  file=sys.stderr)
            failed.append(paper)
    if failed:
        print(f"failed: {', '.join(failed)} (see the executed notebooks for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Footprint benchmark: wall time, peak memory and disk of every paper notebook, for planning a run.

    python benchmarks/footprint.py                         # smoke x2, then quick at a few steps; every paper
    python benchmarks/footprint.py --profiles quick --paper seo_squeezesr_kd --steps 2 --timeout 900
    python benchmarks/footprint.py --report-only           # rewrite results/footprint.md from the csv

Each measurement runs ONE notebook as a subprocess, one at a time, exactly as a user would:
``python -m srcore.reproduce --paper P --profile PROFILE --out-root TMP -p ...`` (data found the
way srcore finds it). Measured per run:

- wall seconds of the whole command (smoke: the minimum over ``--repeats``, the machine is shared);
- peak memory, three ways: (1) the peak of the summed RSS of the whole process tree (runner, and
  the notebook kernel, which is a grandchild), sampled every ``--poll`` seconds; (2) the largest
  VmHWM (the kernel's own high-water mark, so no spike between two samples is missed) of any
  process of the tree, and which process it was; (3) GNU ``/usr/bin/time -v``'s maximum RSS (the
  largest single process among those waited for: jupyter_client waits for the kernel, so it counts);
- disk left in the out-root afterwards: ``checkpoints/`` (one ``last.pt`` per training run, rewritten
  in place by srcore.train.Trainer.save, so this is what a full run leaves too) and the rest;
- quick only: seconds per training step, from each checkpoint's ``elapsed`` / ``step`` (the training
  loop's own clock, which excludes building, evaluation and figures).

The quick profile runs at the papers' real widths, with every ``*_steps`` parameter (and ``steps``)
cut to ``--steps`` and ``--eval-images`` images per evaluation set: peak memory and checkpoint
sizes are those of a full quick run, the wall time is not. A run that passes ``--timeout`` is
stopped (its whole process group) and reported with what it measured so far.
``--selftest`` checks the memory method on a known allocation in a grandchild process.

Rows are appended to results/footprint.csv (a measurement already there is replaced);
results/footprint.md is written from the whole csv after every run.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import common
import psutil

from srcore.report import portable  # noqa: E402  (common puts this checkout on sys.path)

ROOT = common.ROOT
CSV = common.RESULTS / "footprint.csv"
MD = common.RESULTS / "footprint.md"
GNU_TIME = Path("/usr/bin/time")
KEYS = ["paper", "profile", "repeat", "status", "wall_s", "peak_tree_gb", "peak_process_gb", "peak_process",
        "time_v_maxrss_gb", "disk_checkpoints_mb", "disk_other_mb", "checkpoint_runs", "largest_checkpoint_mb",
        "s_per_step_max", "s_per_step_run", "s_per_step_sum", "train_runs", "load_start", "load_mean", "load_end", "overrides",
        "error", "date", "commit", "hardware"]
GB, MB = 1024 ** 3, 1024 ** 2


# --- the measured command -----------------------------------------------------------------
class TreeSampler(threading.Thread):
    """Polls a process and its descendants: peak summed RSS, each process's VmHWM, the 1-minute load."""

    def __init__(self, pid: int, every: float):
        super().__init__(daemon=True)
        self.root, self.every = psutil.Process(pid), every
        self.peak_tree = 0
        self.hwm: dict[int, tuple[int, str]] = {}  # pid -> (VmHWM bytes, short name)
        self.loads: list[float] = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.every)

    def sample(self):
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
                hwm = _vm_hwm(p.pid)
                if hwm and hwm >= self.hwm.get(p.pid, (0, ""))[0]:
                    self.hwm[p.pid] = (hwm, _short_name(p))
            except psutil.Error:
                continue
        self.peak_tree = max(self.peak_tree, total)
        self.loads.append(os.getloadavg()[0])


def _vm_hwm(pid: int) -> int:
    """The kernel's high-water mark of a process's resident memory, in bytes (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _short_name(p: psutil.Process) -> str:
    cmd = " ".join(p.cmdline())
    if "ipykernel" in cmd:
        return "kernel"
    if "srcore.reproduce" in cmd:
        return "runner"
    return p.name()


def measure(cmd: list[str], log: Path, timeout: float, poll: float) -> dict:
    """Run ``cmd`` (under /usr/bin/time -v when present) in its own process group; wall, memory and load."""
    timev = log.with_suffix(".time")
    full = [str(GNU_TIME), "-v", "-o", str(timev), *cmd] if GNU_TIME.exists() else cmd
    load_start = os.getloadavg()[0]
    tic = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
        sampler = TreeSampler(proc.pid, poll)
        sampler.start()
        try:
            rc = proc.wait(timeout=timeout)
            status = "ok" if rc == 0 else f"exit {rc}"
        except subprocess.TimeoutExpired:
            sampler.sample()
            os.killpg(proc.pid, signal.SIGTERM)  # the group: runner, kernel and anything they started
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            status = f"stopped at {timeout:.0f} s"
    wall = time.perf_counter() - tic
    sampler.stop.set()
    sampler.join()
    maxrss = None
    if timev.is_file():  # GNU time writes it only when its child exits by itself
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timev.read_text())
        maxrss = int(m.group(1)) * 1024 if m else None
    pid_hwm = max(sampler.hwm.values(), default=(0, ""))
    loads = sampler.loads or [load_start]
    return {"status": status, "wall_s": round(wall, 1), "peak_tree_gb": round(sampler.peak_tree / GB, 2),
            "peak_process_gb": round(pid_hwm[0] / GB, 2), "peak_process": pid_hwm[1],
            "time_v_maxrss_gb": round(maxrss / GB, 2) if maxrss else "",
            "load_start": round(load_start, 1), "load_mean": round(sum(loads) / len(loads), 1),
            "load_end": round(os.getloadavg()[0], 1)}


# --- what a run leaves ----------------------------------------------------------------------
def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def checkpoints(root: Path) -> list[dict]:
    """Every training run's last.pt under ``root``: name, size, steps and training seconds it records."""
    import torch
    rows = []
    for f in sorted(root.rglob("last.pt")):
        try:  # mmap: the step count and clock without reading every tensor
            state = torch.load(f, map_location="cpu", weights_only=False, mmap=True)
            step, elapsed = int(state["step"]), float(state["elapsed"])
        except Exception:  # noqa: BLE001 - a half-written file of a stopped run
            step, elapsed = 0, 0.0
        rows.append({"run": str(f.parent.relative_to(root)), "bytes": f.stat().st_size, "step": step,
                     "elapsed": elapsed})
    return rows


def last_error(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    failed = [ln for ln in lines if "FAILED" in ln or ln.startswith("error:")]
    return (failed[-1] if failed else "").strip()[:300]


# --- the profiles ---------------------------------------------------------------------------
def few_step_overrides(paper: str, steps: int, eval_images: int) -> dict:
    """The quick profile at its widths, with every step count cut to ``steps`` and few evaluation images."""
    from srcore.paper import config
    p = config.load(paper, "quick")
    over = {}
    for k, v in p.items():
        if (k.endswith("_steps") or k == "steps") and k != "paper_steps" and isinstance(v, int) and v > 0:
            over[k] = min(v, steps)  # paper_steps (moon) only scales a time estimate: no training
        elif k in ("rating_images", "runtime_images") and isinstance(v, int):
            over[k] = min(v, eval_images)
    over["eval_limit"] = {s: eval_images for s in p["eval_sets"]}
    config.load(paper, "quick", **over)  # refused values fail here, before any run
    return over


def command(paper: str, profile: str, out_root: Path, over: dict) -> list[str]:
    cmd = [sys.executable, "-m", "srcore.reproduce", "--paper", paper, "--profile", profile, "--out-root", str(out_root)]
    for k, v in over.items():
        text = "{" + ", ".join(f"{a}: {b}" for a, b in v.items()) + "}" if isinstance(v, dict) else str(v)
        cmd += ["-p", f"{k}={text}"]
    return cmd


def run_one(paper: str, profile: str, repeat: int, over: dict, args) -> dict:
    out_root = Path(tempfile.mkdtemp(prefix=f"footprint-{paper}-{profile}-"))
    log = out_root / "reproduce.log"
    print(f"[{paper}] {profile} #{repeat}: {' '.join(command(paper, profile, out_root, over)[1:])}", flush=True)
    row = {"paper": paper, "profile": profile, "repeat": repeat,
           "overrides": " ".join(f"{k}={v}" for k, v in over.items()).replace(",", ";")}
    try:
        row.update(measure(command(paper, profile, out_root, over), log, args.timeout, args.poll))
        ckpts = checkpoints(out_root / "checkpoints")
        ck_bytes = folder_bytes(out_root / "checkpoints")
        row.update(disk_checkpoints_mb=round(ck_bytes / MB, 1),
                   disk_other_mb=round((folder_bytes(out_root) - ck_bytes) / MB, 1),
                   checkpoint_runs=len(ckpts),
                   largest_checkpoint_mb=round(max((c["bytes"] for c in ckpts), default=0) / MB, 1),
                   error=last_error(log))
        trained = [c for c in ckpts if c["step"] > 0]
        row["train_runs"] = "; ".join(f"{c['run']}: {c['step']} steps {c['elapsed']:.1f} s {c['bytes'] / MB:.0f} MB"
                                      for c in ckpts)
        if trained:
            top = max(trained, key=lambda c: c["elapsed"] / c["step"])
            row.update(s_per_step_max=round(top["elapsed"] / top["step"], 2), s_per_step_run=top["run"],
                       s_per_step_sum=round(sum(c["elapsed"] / c["step"] for c in trained), 2))
    finally:
        if args.keep:
            print(f"  kept {out_root}")
        else:
            shutil.rmtree(out_root, ignore_errors=True)
    print("  " + ", ".join(f"{k}={row.get(k)}" for k in ("status", "wall_s", "peak_tree_gb", "peak_process_gb",
                                                       "peak_process", "time_v_maxrss_gb", "disk_checkpoints_mb",
                                                       "disk_other_mb", "s_per_step_max", "load_mean", "error")),
          flush=True)
    return row


# --- the csv and the page -----------------------------------------------------------------
def read_rows() -> list[dict]:
    if not CSV.is_file():
        return []
    with open(CSV, newline="") as f:
        return list(csv.DictReader(f))


def save_row(row: dict) -> None:
    row = {**row, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": common.commit(), "hardware": hardware()}
    key = (row["paper"], row["profile"], str(row["repeat"]))
    rows = [r for r in read_rows() if (r["paper"], r["profile"], r["repeat"]) != key] + [row]
    rows.sort(key=lambda r: (r["profile"] != "smoke", r["paper"], int(r["repeat"])))
    CSV.parent.mkdir(exist_ok=True)
    with open(CSV, "w", newline="") as f:
        w = csv.DictWriter(f, KEYS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def hardware() -> str:
    mem = psutil.virtual_memory().total / GB
    return f"{common.cpu_model()}, {os.cpu_count()} logical CPUs, {mem:.0f} GB RAM"


def _f(v, fmt=".1f") -> str:
    try:
        return format(float(v), fmt)
    except (TypeError, ValueError):
        return "n/a"


def quick_steps(paper: str) -> int:
    """The largest training step count of a paper's quick profile."""
    from srcore.paper import config
    p = config.load(paper, "quick")
    return max(v for k, v in p.items() if (k.endswith("_steps") or k == "steps") and k != "paper_steps")


def peak_gb(row: dict) -> float:
    """The largest of the three memory measurements of a run."""
    return max(float(row[k] or 0) for k in ("peak_tree_gb", "peak_process_gb", "time_v_maxrss_gb"))


def write_page() -> Path:
    rows = read_rows()
    smoke = [r for r in rows if r["profile"] == "smoke"]
    quick = [r for r in rows if r["profile"] == "quick"]
    papers = sorted({r["paper"] for r in rows})
    lines = ["# Footprint: time, memory and disk per paper", "",
             (f"Written by `python benchmarks/footprint.py` (measurements {min((r['date'] for r in rows), default='')} "
             f"to {max((r['date'] for r in rows), default='')}, commit {rows[-1]['commit'] if rows else ''}); "
             "every row of `results/footprint.csv` is one run of `python -m srcore.reproduce` for one paper."), "",
             (f"Machine: {rows[-1]['hardware'] if rows else hardware()}. The 1-minute load average during each run is "
             "in the tables: above the number of cores means other work shared them, so wall times are upper "
             "bounds (on an idle machine expect them shorter, roughly in proportion)."), ""]
    if smoke:
        lines += ["## Smoke profile (CPU, tiny widths, the default of `make reproduce` without a GPU)", "",
                  "| paper | wall s (min of runs) | runs | peak memory GB | disk: checkpoints MB | disk: rest MB | load avg | status |",
                  "|---|---:|---:|---:|---:|---:|---|---|"]
        for p in papers:
            rs = [r for r in smoke if r["paper"] == p]
            if not rs:
                continue
            ok = [r for r in rs if r["status"] == "ok"] or rs
            best = min(ok, key=lambda r: float(r["wall_s"]))
            peak = max(peak_gb(r) for r in rs)
            loads = ", ".join(r["load_mean"] for r in rs)
            status = "; ".join(sorted({r["status"] + (f" ({r['error']})" if r["error"] else "") for r in rs}))
            lines.append(f"| {p} | {_f(best['wall_s'], '.0f')} | {len(rs)} | {peak:.2f} | "
                         f"{_f(best['disk_checkpoints_mb'])} | {_f(best['disk_other_mb'])} | {loads} | {status} |")
        lines.append("")
    if quick:
        lines += ["## Quick profile at its real widths, a few training steps (CPU)", "",
                  ("Every step count cut to a few steps and 1 image per evaluation set (the `-p` overrides are in the "
                  "csv): the memory and checkpoint sizes are those of a full quick run; the wall time is not. "
                  "Seconds per step: the slowest training run of the paper (named), from its checkpoint's own "
                  "clock (training only)."), "",
                  "| paper | peak memory GB | s/step on this CPU (run) | checkpoints MB (runs) | largest checkpoint MB | wall s | load avg | status |",
                  "|---|---:|---|---:|---:|---:|---:|---|"]
        for r in sorted(quick, key=lambda r: r["paper"]):
            peak = peak_gb(r)
            status = r["status"] + (f" ({r['error']})" if r["error"] else "")
            lines.append(f"| {r['paper']} | {peak:.2f} | {_f(r['s_per_step_max'])} ({r['s_per_step_run'] or '-'}) | "
                         f"{_f(r['disk_checkpoints_mb'], '.0f')} ({r['checkpoint_runs'] or 0}) | "
                         f"{_f(r['largest_checkpoint_mb'], '.0f')} | {_f(r['wall_s'], '.0f')} | {r['load_mean']} | {status} |")
        lines += ["", ("A rough upper estimate of a full quick run's *training* on this CPU: the seconds per step of every "
                  "training run the few-step run made, summed, times the largest step count of the quick profile "
                  "(evaluation and figures come on top; runs the few-step run did not reach are missing, so a "
                  "stopped run's estimate is low)."), "",
                  "| paper | training runs timed | sum of s/step | largest quick step count | estimate, hours |",
                  "|---|---:|---:|---:|---:|"]
        for r in sorted(quick, key=lambda r: r["paper"]):
            n = quick_steps(r["paper"])
            # rows written before the s_per_step_sum column: the same sum from the per-run text
            runs = re.findall(r": (\d+) steps ([\d.]+) s", r["train_runs"])
            total = float(r["s_per_step_sum"] or sum(float(t) / int(n_) for n_, t in runs if int(n_)))
            timed_runs = sum(1 for t in r["train_runs"].split("; ") if t and ": 0 steps" not in t)
            lines.append(f"| {r['paper']} | {timed_runs} | {_f(total)} | {n} | {total * n / 3600:.1f} |")
        lines.append("")
    install = [r for r in rows if r["profile"] == "install"]
    if install:
        r = install[-1]
        lines += ["## Install", "",
                  f"The virtual environment `make install` builds from requirements/lock.txt ({r['overrides']}): "
                  f"{float(r['disk_other_mb']) / 1024:.1f} GB on disk"
                  + (f", built in {float(r['wall_s']):.0f} s" if r["wall_s"] else "") + f". {r['error']}", ""]
    lines += ["## How memory is measured", "",
              ("Peak memory is the largest of (1) the peak of the summed resident memory (RSS) of the process tree "
              "(`srcore.reproduce`, the notebook kernel it starts, and their children), sampled every 0.5 s with "
              "psutil, and (2) the largest per-process high-water mark (`VmHWM` in /proc, which the kernel keeps, "
              "so spikes between samples are not missed; `peak_process` in the csv names the process, `kernel` "
              "being the notebook) and (3) GNU `/usr/bin/time -v`'s maximum RSS (`time_v_maxrss_gb`: the largest "
              "single process it waited for, kernel included, up to its exit). `--selftest` checks the method on a 1.5 GB "
              "allocation made by a grandchild process."), "",
              "## Cleaning up", "",
              ("- Checkpoints and executed notebooks: `make clean-runs` (= `rm -rf runs/`). Each training run keeps "
              "one `last.pt`, rewritten in place (srcore.train.Trainer.save), under "
              "`runs/<profile>/checkpoints/<paper>/`; `results/` is kept."),
              ("- The bicubic LR cache (srcore.data, on main from 2026-12-02 on): `$SRCORE_CACHE`, default "
              "`~/.cache/srcore/lr_bicubic`; `rm -r ~/.cache/srcore/lr_bicubic` or "
              "`python -c \"import srcore.data as d; d.clear_cache()\"`; `SRCORE_CACHE=none` turns it off. "
              "The runs above predate it, so its size is not in the disk columns."),
              ("- Downloaded weights (VGG, pyiqa's NIQE): torch's hub folder, `$TORCH_HOME` (default "
              "`~/.cache/torch`); datasets: `data/` (or `$SRCORE_DATA`)."),
              ("- The virtual environment: `rm -rf .venv` (rebuilt by the next `make`); pip's download cache: "
              "`python -m pip cache purge` (or `~/.cache/pip`)."), ""]
    MD.write_text("\n".join(lines))
    return MD


# --- self-test of the memory method -----------------------------------------------------------
def selftest(args) -> None:
    """A grandchild touches 1.5 GB and exits; every method must report at least that."""
    inner = "import time; b = bytes(1536 * 1024 * 1024); b = b'x' * len(b); time.sleep(2)"
    outer = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {inner!r}], check=True)"
    with tempfile.TemporaryDirectory() as tmp:
        m = measure([sys.executable, "-c", outer], Path(tmp) / "selftest.log", 120, args.poll)
    print(f"selftest (a grandchild allocates 1.50 GB): peak tree {m['peak_tree_gb']} GB, peak process "
          f"{m['peak_process_gb']} GB, /usr/bin/time -v {m['time_v_maxrss_gb']} GB")
    for k in ("peak_tree_gb", "peak_process_gb", "time_v_maxrss_gb"):
        if m[k] != "" and float(m[k]) < 1.5:
            raise SystemExit(f"selftest: {k} = {m[k]} GB misses the grandchild's 1.5 GB")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paper", nargs="+", help="default: every notebook")
    ap.add_argument("--profiles", default="smoke,quick", help="comma-separated: smoke, quick")
    ap.add_argument("--repeats", type=int, default=2, help="smoke runs per paper (the minimum wall time is reported)")
    ap.add_argument("--first-repeat", type=int, default=1, help="number of the first smoke repeat (to add runs later)")
    ap.add_argument("--steps", type=int, default=2, help="quick: every *_steps parameter cut to this")
    ap.add_argument("--eval-images", type=int, default=1, help="quick: images per evaluation set")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="quick: one more override for srcore.reproduce -p (e.g. scales=[4] to reach the largest scale)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before a run is stopped")
    ap.add_argument("--poll", type=float, default=0.5, help="seconds between memory samples")
    ap.add_argument("--keep", action="store_true", help="keep each run's out-root (printed)")
    ap.add_argument("--selftest", action="store_true", help="check the memory method, then stop")
    ap.add_argument("--report-only", action="store_true", help="rewrite results/footprint.md from the csv")
    ap.add_argument("--install-venv", type=Path, help="record the size of this virtual environment (e.g. .venv)")
    ap.add_argument("--install-seconds", type=float, help="with --install-venv: how long its `make install` took")
    ap.add_argument("--install-note", default="", help="with --install-venv: how the time was measured")
    args = ap.parse_args(argv)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)

    if args.selftest:
        return selftest(args)
    if args.install_venv:
        save_row({"paper": "(all)", "profile": "install", "repeat": 1, "status": "ok",
                  "wall_s": args.install_seconds or "", "disk_other_mb": round(folder_bytes(args.install_venv) / MB),
                  "overrides": portable(str(args.install_venv.resolve())), "error": args.install_note})
    if not args.report_only:
        from srcore import reproduce
        papers = args.paper or reproduce.papers()
        for profile in args.profiles.split(","):
            for paper in papers:
                if profile == "smoke":
                    for i in range(args.first_repeat, args.first_repeat + args.repeats):
                        save_row(run_one(paper, "smoke", i, {}, args))
                        write_page()
                else:
                    from srcore.paper.config import parse_override
                    over = {**few_step_overrides(paper, args.steps, args.eval_images), **dict(map(parse_override, args.set))}
                    save_row(run_one(paper, profile, 1, over, args))
                    write_page()
    print(f"wrote {write_page()} and {CSV}")


if __name__ == "__main__":
    main()

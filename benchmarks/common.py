"""Shared pieces of the benchmarks: the machine and commit, robust timing summaries, networks, FLOP counts, CSV rows."""
from __future__ import annotations

import csv
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
# `python benchmarks/x.py` from a fresh clone: this checkout's srcore, without PYTHONPATH or an install
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: torch.device) -> str:
    cpu = f"{cpu_model()}, {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}"
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} + {cpu}"
    return cpu


def header(name: str, device: torch.device) -> str:
    return (f"# {name}: {datetime.date.today().isoformat()}, commit {commit()}, torch {torch.__version__}, "
            f"device {device}, {hardware(device)}")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def summary(times: list[float]) -> dict:
    """Median and spread (min, max, interquartile range) of a list of seconds."""
    times = sorted(times)
    q = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
    return {"median_s": statistics.median(times), "min_s": times[0], "max_s": times[-1], "iqr_s": q[2] - q[0],
            "n": len(times)}


def timed(fn, device: torch.device) -> float:
    sync(device)
    tic = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - tic


def print_table(rows: list[dict], floatfmt: str = ".4g") -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: format(v, floatfmt) if isinstance(v, float) else str(v)
    cells = [[fmt(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print(" | ".join(k.ljust(w) for k, w in zip(keys, widths)))
    print("-|-".join("-" * w for w in widths))
    for c in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(c, widths)))


def write_csv(name: str, rows: list[dict], device: torch.device) -> Path:
    """results/benchmarks_<name>.csv, with date, commit and hardware in every row."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"benchmarks_{name}.csv"
    meta = {"date": datetime.date.today().isoformat(), "commit": commit(), "torch": torch.__version__,
            "device": str(device), "hardware": hardware(device)}
    rows = [{**r, **meta} for r in rows]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


# --- networks -------------------------------------------------------------------------------
def edsr(scale: int, n_blocks: int = 16, n_feats: int = 64, res_scale: float = 1.0) -> nn.Module:
    """EDSR (baseline: 16x64; the papers' teacher: 32x256, res_scale 0.1), from srcore.nets."""
    from srcore import nets
    if hasattr(nets, "EDSR"):
        return nets.EDSR(nets.EDSRConfig(scale=scale, n_feats=n_feats, n_blocks=n_blocks, res_scale=res_scale))
    return _EDSRFromParts(scale, n_blocks, n_feats, res_scale)


class _EDSRFromParts(nn.Module):
    """EDSR from srcore.nets' pieces, for a checkout without nets.EDSR."""

    def __init__(self, scale, n_blocks, n_feats, res_scale):
        super().__init__()
        from srcore import nets
        self.sub_mean, self.add_mean = nets.MeanShift(-1), nets.MeanShift(+1)
        self.head = nets.conv3x3(3, n_feats)
        self.body = nn.Sequential(*[nets.ResidualModule(n_feats, res_scale) for _ in range(n_blocks)],
                                  nets.conv3x3(n_feats, n_feats))
        self.tail = nets.make_tail("edsr", scale, n_feats)

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        x = x + self.body(x)
        return self.add_mean(self.tail(x))


def conv_flops(net: nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds x 2 of every Conv2d in one forward pass of ``x`` (analytic: 2 Cin/g k^2 Cout Hout Wout B)."""
    total = [0.0]

    def hook(m, _inp, out):
        kh, kw = m.kernel_size
        total[0] += 2.0 * m.in_channels // m.groups * kh * kw * out.numel()

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return total[0]


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int, reps: int) -> float:
    """Measured FLOP/s of an n x n x n matmul (the ceiling convolutions are compared with)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = min(timed(lambda: [a @ b for _ in range(reps)], device) for _ in range(3))
    return 2.0 * n ** 3 * reps / best

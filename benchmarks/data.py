"""Data benchmark: building the training set (LR cache: first vs second start) and HR/LR patch pairs per second.

    python benchmarks/data.py [--sets T91,BSD200] [--scale 2] [--lr-patch 48] [--batch 16]

As the notebooks use them: the in-memory TrainSet and PatchSampler. Measured:

* building the TrainSet (modcrop + LR by the MATLAB bicubic) at a first start, with an empty LR
  cache, and at a second start, which reads the cache (a fresh cache folder unless ``--cache``);
* pairs/s of the sampler before this change (``before``: float conversion by torch) and now
  (``now``: NumPy only; ``draw``: the uint8 batch handed to a GPU), alternating batch by
  batch, at 1 and 2 torch threads, on the machine as it is and with a competing CPU process
  (one busy Python loop), since a shared CPU is what made torch's threads collapse;
* what the Trainer waits for a batch when a (simulated) GPU step takes ``--step-ms``: reading
  the sampler in the loop vs the background prefetch;
* imresize calls while drawing batches (must be 0) and, when train_step.py has been run, the
  rate at which training consumes pairs.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
import time

import common
import numpy as np
import torch

from srcore import data, train


class SamplerBefore(data.PatchSampler):
    """The sampler's batch assembly before uint8 hand-over: np.stack, a transposed copy, float and /255 in torch."""

    def __next__(self):
        lrs, hrs = zip(*(self._patch() for _ in range(self.batch_size)))
        to_t = lambda xs: torch.from_numpy(np.stack(xs).transpose(0, 3, 1, 2).copy()).float().div_(255)  # noqa: E731
        return to_t(lrs), to_t(hrs)


def load_average() -> str:
    try:
        return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1/5/15 min)"
    except OSError:
        return "load average unknown"


def build_twice(images, scale: int, hr_patch: int, cache: str) -> tuple[data.TrainSet, float, float, int, int]:
    """Seconds to build the TrainSet with an empty LR cache, then again from the cache; imresize calls of each."""
    calls, lock = [0], threading.Lock()
    real = data.imresize

    def counting(*a, **k):
        with lock:  # TrainSet resizes on several threads
            calls[0] += 1
        return real(*a, **k)

    old_env = os.environ.get("SRCORE_CACHE")
    os.environ["SRCORE_CACHE"] = cache
    data.imresize = counting  # bicubic_lr calls srcore.data.imresize on a miss
    try:
        tic = time.perf_counter()
        data.TrainSet(images, scale, hr_patch, small_images="skip")
        first = time.perf_counter() - tic
        first_calls = calls[0]
        tic = time.perf_counter()
        ts = data.TrainSet(images, scale, hr_patch, small_images="skip")
        second = time.perf_counter() - tic
    finally:
        data.imresize = real
        if old_env is None:
            os.environ.pop("SRCORE_CACHE")
        else:
            os.environ["SRCORE_CACHE"] = old_env
    return ts, first, second, first_calls, calls[0] - first_calls


def pairs_per_s(ts, batch: int, batches: int, threads: tuple[int, ...]) -> dict[tuple[str, int], list[float]]:
    """Seconds per batch of each (implementation, torch threads), measured in alternation, batch by batch."""
    samplers = {"before": SamplerBefore(ts, batch, seed=0), "now": data.PatchSampler(ts, batch, seed=0)}
    draw = data.PatchSampler(ts, batch, seed=0)
    kinds = {"before": lambda: next(samplers["before"]), "now": lambda: next(samplers["now"]), "draw (uint8)": draw.draw}
    times = {(k, n): [] for k in kinds for n in threads}
    default = torch.get_num_threads()
    try:
        for fn in kinds.values():
            fn()  # warm-up
        for _ in range(batches):
            for n in threads:
                torch.set_num_threads(n)
                for k, fn in kinds.items():
                    tic = time.perf_counter()
                    fn()
                    times[(k, n)].append(time.perf_counter() - tic)
    finally:
        torch.set_num_threads(default)
    return times


def wait_per_batch(ts, batch: int, steps: int, step_ms: float) -> dict[str, list[float]]:
    """Seconds the loop waits for each batch when a step takes ``step_ms`` (a GPU step: the CPU thread sleeps)."""
    out = {"in the loop": [], "prefetched": []}
    for name in out:
        sampler = data.PatchSampler(ts, batch, seed=0)
        produce = lambda: sampler.draw(pin=torch.cuda.is_available())  # noqa: E731  (what the Trainer does on CUDA)
        source = train._Prefetch(sampler, produce) if name == "prefetched" else None
        get = (lambda: next(source)) if source else produce
        get()
        try:
            for _ in range(steps):
                tic = time.perf_counter()
                get()
                out[name].append(time.perf_counter() - tic)
                time.sleep(step_ms / 1e3)
        finally:
            if source:
                source.close()
    return out


def summary_row(what: str, times: list[float], batch: int, **extra) -> dict:
    s = common.summary(times)
    return {"what": what, "median_ms": 1e3 * s["median_s"], "iqr_ms": 1e3 * s["iqr_s"], "n": s["n"],
            "pairs_per_s": batch / s["median_s"], **extra}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="T91,BSD200", help="training folders under <data root>/train (the notebooks')")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--lr-patch", type=int, default=48)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=100, help="timed batches per implementation and thread count")
    ap.add_argument("--step-ms", type=float, default=10.0, help="simulated GPU step for the wait-per-batch rows")
    ap.add_argument("--cache", default=None, help="LR cache folder (default: a fresh temporary one, then deleted)")
    ap.add_argument("--no-contention", action="store_true", help="skip the rows with a competing CPU process")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(common.header("data", device))
    print(f"machine at start: {load_average()}")

    root = data.data_root()
    tic = time.perf_counter()
    images = data.load_folders([root / "train" / s for s in args.sets.split(",")])
    decode_s = time.perf_counter() - tic
    with tempfile.TemporaryDirectory() as tmp:
        ts, first_s, second_s, first_calls, second_calls = build_twice(
            images, args.scale, args.lr_patch * args.scale, args.cache or tmp)
    rows = [{"what": "decode training images", "images": len(images), "seconds": decode_s},
            {"what": "TrainSet, first start (LR cache empty: imresize, cache written)", "images": len(ts),
             "seconds": first_s, "imresize_calls": first_calls, "MP_per_s": ts.megapixels / first_s},
            {"what": "TrainSet, second start (LR from the cache)", "images": len(ts), "seconds": second_s,
             "imresize_calls": second_calls, "MP_per_s": ts.megapixels / second_s,
             "speedup": first_s / second_s}]

    calls = [0]
    real = data.imresize
    data.imresize = lambda *a, **k: (calls.__setitem__(0, calls[0] + 1), real(*a, **k))[1]
    try:
        conditions = [("machine as it is", None)]
        if not args.no_contention:
            conditions.append(("+ 1 competing CPU process", [sys.executable, "-c", "while True: pass"]))
        for label, cmd in conditions:
            hog = subprocess.Popen(cmd) if cmd else None
            try:
                time.sleep(0.5 if hog else 0)
                note = load_average()
                times = pairs_per_s(ts, args.batch, args.batches, threads=(1, 2))
            finally:
                if hog:
                    hog.kill()
                    hog.wait()
            for (kind, n), t in times.items():
                rows.append(summary_row(f"sampler {kind}, torch threads {n}, {label}", t, args.batch, load=note))
        waits = wait_per_batch(ts, args.batch, args.batches, args.step_ms)
        for name, t in waits.items():
            rows.append(summary_row(f"loop waits per batch, {name} (uint8 draw; {args.step_ms:g} ms step)", t,
                                    args.batch))
    finally:
        data.imresize = real
    best = max(r["pairs_per_s"] for r in rows if r["what"].startswith("sampler now"))
    consumed = None
    path = common.RESULTS / "benchmarks_train_step.csv"
    if path.is_file():
        with open(path, newline="") as f:
            previous = list(csv.DictReader(f))
        for r in previous:
            if r["net"].startswith("EDSR-baseline") and r["loop"] == "srcore" and r.get("steps_per_s"):
                rate = float(r["steps_per_s"]) * int(r["batch"])
                rows.append({"what": f"training consumes ({r['variant']} on {r['device']}, train_step.py)",
                             "pairs_per_s": rate, "headroom": best / rate})
                consumed = rate
    common.print_table([{k: v for k, v in r.items() if k != "load"} for r in rows])
    print(f"LR cache: first start {first_s:.2f} s, second start {second_s:.3f} s ({first_s / second_s:.0f}x); "
          f"{len(ts.skipped)} image(s) skipped as smaller than the patch; {calls[0]} imresize calls while drawing")
    print(f"machine at the end: {load_average()}")
    if consumed is None:
        print("run benchmarks/train_step.py first to compare with the training step rate")
    print(f"csv: {common.write_csv('data', rows, device)}")


if __name__ == "__main__":
    main()

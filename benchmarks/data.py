"""Data benchmark: HR/LR patch pairs per second from the in-memory TrainSet/PatchSampler, as the notebooks use them.

    python benchmarks/data.py [--sets T91,BSD200] [--scale 2] [--lr-patch 48] [--batch 16]

Also checks that LR images are made once, when the TrainSet is built (imresize is counted
while batches are drawn: it must be 0), and compares the rate with what training consumes
(steps/s x batch from results/benchmarks_train_step.csv, when train_step.py has been run).
"""
from __future__ import annotations

import argparse
import csv
import time

import common
import torch

from srcore import data, resize


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="T91,BSD200", help="training folders under <data root>/train (the notebooks')")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--lr-patch", type=int, default=48)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=200)
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(common.header("data", device))

    calls = [0]
    real = resize.imresize

    def counting(*a, **k):
        calls[0] += 1
        return real(*a, **k)

    data.imresize = counting  # TrainSet calls srcore.data.imresize
    try:
        root = data.data_root()
        tic = time.perf_counter()
        images = data.load_folders([root / "train" / s for s in args.sets.split(",")])
        decode_s = time.perf_counter() - tic
        tic = time.perf_counter()
        ts = data.TrainSet(images, args.scale, args.lr_patch * args.scale, small_images="skip")
        build_s = time.perf_counter() - tic
        built_calls = calls[0]
        sampler = data.PatchSampler(ts, args.batch, seed=0)
        next(sampler)
        # alternate batch by batch between torch's default thread count and 1 thread: the uint8 -> float
        # conversion is a small element-wise op, which several threads slow down on a busy machine
        threads = torch.get_num_threads()
        times = {threads: [], 1: []}
        for k in range(2 * args.batches):
            n = threads if k % 2 == 0 else 1
            torch.set_num_threads(n)
            tic = time.perf_counter()
            next(sampler)
            times[n].append(time.perf_counter() - tic)
        torch.set_num_threads(threads)
        sample_calls = calls[0] - built_calls
    finally:
        data.imresize = real
    rows = [{"what": "decode training images", "images": len(images), "seconds": decode_s},
            {"what": "TrainSet: modcrop + LR by imresize (once)", "images": len(ts), "seconds": build_s,
             "imresize_calls": built_calls, "MP_per_s": ts.megapixels / build_s},
            ]
    for n, t in times.items():
        s = common.summary(t)
        rows.append({"what": f"PatchSampler batch of {args.batch}, torch threads {n}", "imresize_calls": sample_calls,
                     "median_ms": 1e3 * s["median_s"], "iqr_ms": 1e3 * s["iqr_s"], "n": s["n"],
                     "pairs_per_s": args.batch / s["median_s"]})
    best = max(r["pairs_per_s"] for r in rows[2:])
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
    common.print_table(rows)
    print(f"LR images made once: {built_calls} imresize calls building {len(ts)} images "
          f"({len(ts.skipped)} skipped as smaller than the patch), {sample_calls} while drawing {2 * args.batches} batches")
    if consumed is None:
        print("run benchmarks/train_step.py first to compare with the training step rate")
    print(f"csv: {common.write_csv('data', rows, device)}")


if __name__ == "__main__":
    main()

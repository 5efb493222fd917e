"""Evaluation benchmark: SR + PSNR + SSIM on Y of the student (EDSR-baseline x4) on BSD100 and Urban100, and
imresize throughput against the straightforward NumPy implementation.

    python benchmarks/eval.py [--limit N] [--resize-limit 10]

The student has random weights: only times are measured here, never quality. ``--limit``
keeps the first N images of each set (default: all on CUDA, 10 on a CPU, where EDSR at x4
takes seconds per Urban100 image); the table gives the per-image times and the projection to
the whole set. imresize is timed on Urban100's HR images downscaled by 1/4 (how LR images are
made), alternating the two implementations image by image; their outputs are compared too
(bit-identity itself is tested in tests/test_resize.py).

Metrics: PSNR + SSIM on Y of bicubic SR on Set5 and Set14 at x2-x4, NumPy (the reference)
against torch float64 on this device (at 1 and 2 torch threads on a CPU), alternating image by
image, with the largest differences between the two. ``evaluate`` scores on the GPU when SR is
there and with NumPy on a CPU, where it is the faster.
"""
from __future__ import annotations

import argparse
import time

import common
import numpy as np
import torch

from srcore import data, evaluate, metrics, resize

FULL = {"BSD100": 100, "Urban100": 100}


def metric_rows(device: torch.device) -> list[dict]:
    """Seconds of PSNR+SSIM per image, NumPy vs torch on ``device``, on Set5 + Set14 bicubic SR at x2-x4."""
    cases = []
    for name in ("Set5", "Set14"):
        for scale in (2, 3, 4):
            for pair in data.benchmark_set(name, scale):
                hr = pair.hr
                cases.append((hr, resize.imresize(pair.lr, scale), scale))
    threads = (1, 2) if device.type == "cpu" else (torch.get_num_threads(),)
    default = torch.get_num_threads()
    times = {("numpy", None): [], **{("torch", n): [] for n in threads}}
    worst = {"psnr": 0.0, "ssim": 0.0}
    try:
        for hr, sr, scale in cases:
            ref = None
            for kind, n in times:
                if n:
                    torch.set_num_threads(n)
                x = torch.from_numpy(sr).to(device) if kind == "torch" else sr
                common.sync(device)
                tic = time.perf_counter()
                got = metrics.evaluate_pair(x, hr, scale)
                common.sync(device)
                times[(kind, n)].append(time.perf_counter() - tic)
                if ref is None:
                    ref = got
                for k in worst:
                    worst[k] = max(worst[k], abs(got[k] - ref[k]))
    finally:
        torch.set_num_threads(default)
    rows = []
    for (kind, n), t in times.items():
        where = "NumPy (reference)" if kind == "numpy" else f"torch float64 on {device}" + (f", {n} threads" if n else "")
        rows.append({"what": f"PSNR+SSIM on Y, {where}, Set5+Set14 x2-x4 bicubic", "images": len(t),
                     "seconds": sum(t), "ms_per_image": 1e3 * float(np.median(t)),
                     "max_dpsnr_db": worst["psnr"], "max_dssim": worst["ssim"]})
    return rows


def main(argv=None):
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None if cuda else 10)
    ap.add_argument("--resize-limit", type=int, default=10, help="Urban100 images for the imresize comparison")
    ap.add_argument("--scale", type=int, default=4)
    args = ap.parse_args(argv)
    device = torch.device("cuda" if cuda else "cpu")
    print(common.header("eval", device))
    rows = []

    # imresize vs the reference, image by image in alternation
    paths = data.list_images(data.data_root() / "benchmark" / "Urban100" / "HR")[:args.resize_limit]
    fast, ref, mp = [], [], []
    for path in paths:
        hr = data.modcrop(data.load_image(path), args.scale)
        a = time.perf_counter()
        lr_fast = resize.imresize(hr, 1 / args.scale)
        b = time.perf_counter()
        lr_ref = resize.imresize_reference(hr, 1 / args.scale)
        c = time.perf_counter()
        assert np.array_equal(lr_fast, lr_ref), path.name
        fast.append(b - a)
        ref.append(c - b)
        mp.append(hr.shape[0] * hr.shape[1] / 1e6)
    total_mp = sum(mp)
    for name, t in (("imresize (sparse matrices)", fast), ("imresize_reference (loops)", ref)):
        rows.append({"what": f"{name}, Urban100 HR x1/{args.scale}", "images": len(t), "seconds": sum(t),
                     "MP_per_s": total_mp / sum(t), "median_MP_per_s": float(np.median(np.array(mp) / np.array(t)))})
    rows[-2]["speedup"] = sum(ref) / sum(fast)

    rows += metric_rows(device)

    torch.manual_seed(0)
    net = common.edsr(args.scale).to(device).eval()
    upscale = net  # evaluate() runs super_resolve and keeps SR on the device (scored there on a GPU)
    for name in ("BSD100", "Urban100"):
        tic = time.perf_counter()
        pairs = data.benchmark_set(name, args.scale, limit=args.limit)
        load_s = time.perf_counter() - tic
        tic = time.perf_counter()
        df, _ = evaluate.evaluate(upscale, pairs, args.scale, dataset=name, progress=False)
        total = time.perf_counter() - tic
        sr_s = df["ms"].sum() / 1e3
        n = len(pairs)
        lr_mp = sum(p.lr.shape[0] * p.lr.shape[1] for p in pairs) / 1e6
        rows.append({"what": f"evaluate EDSR-baseline x{args.scale} on {name}", "images": n,
                     "load_s": load_s, "seconds": total, "sr_s": sr_s, "metrics_s": total - sr_s,
                     "ms_per_image": 1e3 * total / n, "LR_MP_per_s": lr_mp / sr_s,
                     "projected_full_set_s": total / n * FULL[name]})
    common.print_table(rows)
    print("evaluate() includes one untimed warm-up image (in `seconds`, not in `sr_s`); metrics_s = PSNR + SSIM on Y "
          "+ that warm-up")
    print(f"csv: {common.write_csv('eval', rows, device)}")


if __name__ == "__main__":
    main()

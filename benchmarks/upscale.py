"""Upscale benchmark: what ``python -m srcore.upscale`` costs beyond the network's own forward pass.

    python benchmarks/upscale.py [--sets Set5 Set14] [--scale 2] [--blocks N --feats C] [--repeats 3] [--threads T]

The same network (an EDSR with random weights, saved as a checkpoint file) and the same LR images
(the sets' MATLAB LR images, or srcore's bicubic where the data root has none, written as PNGs)
two ways: a bare forward ``net(x)`` of each image already in memory as a tensor, and the command
(:func:`srcore.upscale.main`, in this process: loading the checkpoint, checking and decoding every
image, super-resolving, encoding and writing each PNG). Throughput is megapixels of output per
second; ``ratio_to_bare`` is a way's time over the bare forward's (the command's overhead as a
factor). The command's time is split into its parts, measured separately on the same images, and
one more row shows the command with tiles (``--tile 128``, each computed with 32 LR pixels of
context a side, where by default these images go whole). Each measurement is repeated, alternating
the ways, and the median is shown. Default network: EDSR-baseline (16 x 64) on CUDA, 4 x 32 on a
CPU (where EDSR-baseline takes minutes per pass over Set14).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import tempfile
from pathlib import Path

import common
import torch

from srcore import data, evaluate, upscale


def main(argv=None):
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["Set5", "Set14"])
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=16 if cuda else 4)
    ap.add_argument("--feats", type=int, default=64 if cuda else 32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(),
                    help="torch threads (default: torch's; 1 is much faster for small networks on a busy CPU)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if cuda else "cpu")
    print(common.header("upscale", device))

    torch.manual_seed(0)
    net = common.edsr(args.scale, n_blocks=args.blocks, n_feats=args.feats).eval()
    lrs = [pair.lr for name in args.sets for pair in data.benchmark_set(name, args.scale)]
    out_mp = sum(lr.shape[0] * lr.shape[1] for lr in lrs) * args.scale ** 2 / 1e6
    tmp = Path(tempfile.mkdtemp(prefix="srcore_bench_upscale_"))
    ckpt = tmp / "net.pt"
    torch.save(net.state_dict(), ckpt)
    folder = tmp / "lr"
    folder.mkdir()
    for k, lr in enumerate(lrs):
        data.save_image(lr, folder / f"{k:03d}.png")
    net = net.to(device)
    tensors = [data.image_to_tensor(data.to_rgb(lr)).to(device) for lr in lrs]

    @torch.no_grad()
    def bare():
        for x in tensors:
            net(x)

    def command(*extra):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its lines, bar
            code = upscale.main([str(ckpt), str(folder), str(tmp / "out"), "--device", str(device), *extra])
        assert code == 0

    # the command's parts on the same images: decode (twice: checked, then read), SR, PNG encode + write
    pictures = [upscale.read_image(p) for p in data.list_images(folder)]
    srs = [upscale.upscale_picture(net, p, args.scale, tile=upscale.tile_for(p, None, device)) for p in pictures]
    parts = {
        "decode each image twice (check, then read)": lambda: [upscale.read_image(p) for p in
                                                               2 * data.list_images(folder)],
        "super_resolve (uint8 in, uint8 out)": lambda: [upscale.upscale_picture(
            net, p, args.scale, tile=upscale.tile_for(p, None, device)) for p in pictures],
        "PNG encode + atomic write": lambda: [upscale.write_png(sr, tmp / "parts" / f"{k:03d}.png")
                                              for k, sr in enumerate(srs)],
        "load the checkpoint": lambda: evaluate.open_checkpoint(ckpt),
    }
    ways = {"bare forward net(x), tensors in memory": bare,
            "python -m srcore.upscale (main, in-process)": command,
            "python -m srcore.upscale --tile 128": lambda: command("--tile", "128"), **parts}
    for fn in ways.values():  # warm-up: allocator, cuDNN autotune, pyiqa-free imports
        fn()
    times = {name: [] for name in ways}
    for _ in range(args.repeats):  # alternated, so a busy moment of the machine hits every way alike
        for name, fn in ways.items():
            times[name].append(common.timed(fn, device))

    base = statistics.median(times["bare forward net(x), tensors in memory"])
    rows = []
    for name, t in times.items():
        s = common.summary(t)
        rows.append({"what": name, "images": len(lrs), "output_MP": out_mp, "median_s": s["median_s"],
                     "iqr_s": s["iqr_s"], "output_MP_per_s": out_mp / s["median_s"],
                     "ratio_to_bare": s["median_s"] / base, "network": f"EDSR {args.blocks}x{args.feats} x{args.scale}",
                     "sets": "+".join(args.sets), "repeats": args.repeats, "torch_threads": args.threads})
    shutil.rmtree(tmp)
    common.print_table(rows)
    print("ratio_to_bare: seconds over the bare forward's; the parts are measured apart from the command "
          "(with its checks, progress bar and printing, the command is a little more than their sum)")
    print(f"csv: {common.write_csv('upscale', rows, device)}")


if __name__ == "__main__":
    main()

"""Training-step benchmark: srcore.train.Trainer against a minimal hand-written PyTorch loop.

    python benchmarks/train_step.py                 # CPU: fp32; CUDA: fp32, bf16+channels_last, +torch.compile
    python benchmarks/train_step.py --pairs 20 --variants fp32,fp32+cl

EDSR-baseline x2 (16 ResBlocks, 64 channels), batch 16, LR patch 48, L1, Adam(1e-4). Both
loops run in one process on identical networks and the same pre-made batches, and are
*interleaved*: the Trainer's data source runs a chunk of minimal-loop steps each time the
Trainer asks for a batch, so the time between two requests is the Trainer's own step(s) and
machine load hits both alike (chunk 1 on CPU, 20 on CUDA with a synchronise at each end).
Medians and spreads are printed; a tiny network measures the Trainer's fixed per-step
overhead in microseconds. TFLOP/s count convolutions analytically (forward x 3 for a
training step) against a matmul measured in the same run (bf16 on CUDA, fp32 on CPU).
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time
from dataclasses import dataclass

import common
import torch
import torch.nn.functional as F
from torch import nn

from srcore import train


@dataclass
class Variant:
    name: str
    amp: bool = False
    channels_last: bool = False
    compile: bool = False

    @classmethod
    def parse(cls, text: str) -> Variant:
        parts = text.split("+")
        known = {"fp32", "bf16", "cl", "compile"}
        if set(parts) - known or parts[0] not in ("fp32", "bf16"):
            raise SystemExit(f"variant {text!r}: write fp32|bf16 followed by +cl and/or +compile")
        return cls(text, amp=parts[0] == "bf16", channels_last="cl" in parts, compile="compile" in parts)


def l1_step(t, batch):
    """The step as the notebooks write it: L1 through Trainer.autocast and backward_step."""
    lr, hr = batch
    with t.autocast():
        loss = F.l1_loss(t.nets["G"](lr), hr)
    t.backward_step("G", loss)
    return {"l1": loss.detach()}


def make_batches(n: int, batch: int, lr_patch: int, scale: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(batch, 3, lr_patch, lr_patch, generator=g),
             torch.rand(batch, 3, lr_patch * scale, lr_patch * scale, generator=g)) for _ in range(n)]


def interleaved(net: nn.Module, v: Variant, batches, device, pairs: int, chunk: int, warm: int, progress: bool):
    """Per-step seconds of the Trainer and of the minimal loop, measured in alternation; also the Trainer."""
    fmt = torch.channels_last if v.channels_last else torch.preserve_format
    use_amp = v.amp and device.type == "cuda"

    # -- the minimal loop: what a user would write by hand --
    ref = copy.deepcopy(net).to(device, memory_format=fmt)
    if v.compile:
        ref.compile()
    ref_opt = torch.optim.Adam(ref.parameters(), 1e-4)

    def minimal_step(batch):
        lr, hr = (t.to(device, non_blocking=True, memory_format=fmt) for t in batch)
        with torch.autocast("cuda", torch.bfloat16, enabled=use_amp):
            loss = F.l1_loss(ref(lr), hr)
        ref_opt.zero_grad(set_to_none=True)
        loss.backward()
        ref_opt.step()

    # -- srcore: the same work through Trainer.fit, written as the notebooks write it --

    ours, mine = [], []

    def source():
        last, i = None, 0
        while True:
            if i < warm:
                minimal_step(batches[i % len(batches)])
            elif (i - warm) % chunk == 0:
                common.sync(device)
                now = time.perf_counter()
                if last is not None:
                    ours.append((now - last) / chunk)
                tic = time.perf_counter()
                for j in range(chunk):
                    minimal_step(batches[(i + j) % len(batches)])
                common.sync(device)
                last = time.perf_counter()
                mine.append((last - tic) / chunk)
            yield batches[i % len(batches)]
            i += 1

    net = copy.deepcopy(net)
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = train.TrainConfig(steps=warm + pairs * chunk + 1, autocast="auto" if v.amp else "off",
                                channels_last=v.channels_last,
                                compile=v.compile, progress=progress)  # log_every, ckpt_every: the defaults
        t = train.Trainer(run_dir, {"G": net}, {"G": torch.optim.Adam(net.parameters(), 1e-4)}, l1_step, cfg,
                          device=device, desc=f"train_step {v.name}")
        data = source()
        t.fit(data)
        save_s = min(common.timed(lambda: t.save(None), device) for _ in range(3))
    return ours[:pairs], mine[:pairs], save_s, cfg


def trainer_only(net: nn.Module, v: Variant, batches, device, steps: int, warm: int) -> float:
    """Median seconds per Trainer step in chunks of ``steps`` (for the teacher, where no comparison is needed)."""
    times = []


    def source():
        i = 0
        while True:
            if i == warm or i == warm + steps:
                common.sync(device)
                times.append(time.perf_counter())
            yield batches[i % len(batches)]
            i += 1

    with tempfile.TemporaryDirectory() as run_dir:
        cfg = train.TrainConfig(steps=warm + steps + 1, autocast="auto" if v.amp else "off",
                                channels_last=v.channels_last, compile=v.compile,
                                progress=False)
        train.Trainer(run_dir, {"G": net}, {"G": torch.optim.Adam(net.parameters(), 1e-4)}, l1_step, cfg,
                      device=device).fit(source())
    return (times[1] - times[0]) / steps


def main(argv=None):
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=100 if cuda else 5, help="timed (Trainer, minimal) pairs per variant")
    ap.add_argument("--chunk", type=int, default=20 if cuda else 1, help="steps per timed chunk")
    ap.add_argument("--warm", type=int, default=10 if cuda else 1, help="untimed warm-up steps (compile needs some)")
    ap.add_argument("--variants", default="fp32,bf16+cl,bf16+cl+compile" if cuda else "fp32")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr-patch", type=int, default=48)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--overhead-pairs", type=int, default=300, help="pairs of the tiny-network overhead measurement")
    ap.add_argument("--teacher", action=argparse.BooleanOptionalAction, default=cuda,
                    help="also time the 32x256 EDSR teacher (minutes per step on a CPU)")
    ap.add_argument("--progress", action="store_true", help="show the Trainer's progress bar (as notebooks do)")
    args = ap.parse_args(argv)
    device = train.default_device()
    print(common.header("train_step", device))
    torch.backends.cudnn.benchmark = True

    batches = make_batches(4, args.batch, args.lr_patch, args.scale)
    if cuda:
        peak, peak_name = common.matmul_rate(device, torch.bfloat16, 8192, 20), "bf16 matmul 8192^3"
    else:
        peak, peak_name = common.matmul_rate(device, torch.float32, 1024, 5), "fp32 matmul 1024^3"
    print(f"measured {peak_name}: {peak / 1e12:.3f} TFLOP/s")
    rows = []

    # fixed per-step overhead of the Trainer, on a network too small to hide it
    torch.manual_seed(0)
    tiny = nn.Sequential(nn.Conv2d(3, 3 * args.scale ** 2, 3, padding=1), nn.PixelShuffle(args.scale))
    small = make_batches(4, 1, 8, args.scale)  # ~1 ms steps: the Trainer's own microseconds become visible
    ours, mine, _, _ = interleaved(tiny, Variant("fp32"), small, device, args.overhead_pairs, 1, 5, args.progress)
    so, sm = common.summary(ours), common.summary(mine)
    for loop, s in (("minimal", sm), ("srcore", so)):
        rows.append({"net": "tiny conv, batch 1x8x8 (overhead)", "variant": "fp32", "loop": loop,
                     "median_ms": 1e3 * s["median_s"], "min_ms": 1e3 * s["min_s"], "max_ms": 1e3 * s["max_s"],
                     "iqr_ms": 1e3 * s["iqr_s"], "n": s["n"]})
    rows[-1]["srcore/minimal"] = so["median_s"] / sm["median_s"]
    rows[-1]["overhead_us"] = 1e6 * (so["median_s"] - sm["median_s"])

    torch.manual_seed(0)
    student = common.edsr(args.scale)
    x = batches[0][0]
    flops = 3 * common.conv_flops(student, x)  # forward + grad input + grad weight
    baseline = None
    for v in map(Variant.parse, args.variants.split(",")):
        ours, mine, save_s, cfg = interleaved(student, v, batches, device, args.pairs, args.chunk, args.warm,
                                              args.progress)
        so, sm = common.summary(ours), common.summary(mine)
        if v.name == "fp32":
            baseline = sm["median_s"]
        for loop, s in (("minimal", sm), ("srcore", so)):
            rows.append({"net": "EDSR-baseline 16x64", "variant": v.name, "loop": loop,
                         "median_ms": 1e3 * s["median_s"], "min_ms": 1e3 * s["min_s"], "max_ms": 1e3 * s["max_s"],
                         "iqr_ms": 1e3 * s["iqr_s"], "n": s["n"], "steps_per_s": 1 / s["median_s"],
                         "TFLOP_s": flops / s["median_s"] / 1e12, "of_peak": flops / s["median_s"] / peak,
                         "vs_fp32_minimal": (baseline / s["median_s"]) if baseline else ""})
        rows[-1]["srcore/minimal"] = so["median_s"] / sm["median_s"]
        rows[-1]["ckpt_ms_per_step"] = 1e3 * save_s / cfg.ckpt_every  # one save every ckpt_every steps, amortised
    if args.teacher:
        torch.manual_seed(0)
        teacher = common.edsr(args.scale, n_blocks=32, n_feats=256, res_scale=0.1)
        tflops = 3 * common.conv_flops(teacher, x)
        v = Variant.parse("bf16+cl" if cuda else "fp32")
        s = trainer_only(teacher, v, batches, device, steps=args.chunk * 5 if cuda else 1, warm=args.warm)
        rows.append({"net": "EDSR teacher 32x256", "variant": v.name, "loop": "srcore", "median_ms": 1e3 * s, "n": 1,
                     "steps_per_s": 1 / s, "TFLOP_s": tflops / s / 1e12, "of_peak": tflops / s / peak})
    for r in rows:
        r["peak_TFLOP_s"] = peak / 1e12
        r["batch"], r["lr_patch"], r["scale"] = args.batch, args.lr_patch, args.scale
    common.print_table([{k: v for k, v in r.items() if k not in ("batch", "lr_patch", "scale", "peak_TFLOP_s")}
                        for r in rows])
    print(f"student conv FLOPs per training step: {flops / 1e9:.1f} GFLOP; csv: {common.write_csv('train_step', rows, device)}")


if __name__ == "__main__":
    main()

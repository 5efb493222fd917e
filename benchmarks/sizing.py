"""Sizing of the quick profile for one GPU call: FLOPs, projected minutes, bundle size, recommended steps.

    python benchmarks/sizing.py                      # every paper, quick; writes results/sizing.{md,csv}
    python benchmarks/sizing.py --paper moon2023_clsd --no-write

Per paper and call (the whole quick profile, or one call per scale where the paper has scales):

* training FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on one forward+backward of each
  trained network at the profile's batch and patch (frozen teachers: forward only), times the
  steps of each run the notebook trains; GAN steps count the discriminator 3 times (SRGAN: D on
  fake for G, on real and fake for D) or 4 times (ESRGAN's RaGAN);
* GPU minutes at 30% of 790 TFLOP/s (bf16 on an H200) plus a per-step overhead measured here on
  CPU: one step of the same networks at width 4, batch 1, 8-pixel patches, which costs almost
  only the Python and kernel-launch work a GPU cannot hide either;
* evaluation: forward FLOPs of every evaluated network over the evaluation images at the same
  rate, plus PSNR/SSIM on the CPU, measured here per megapixel;
* data preparation (decode + MATLAB bicubic of the training images, per scale) measured here;
* the bundle's size (code, wheels, data) from ``srcore.bundle.plan`` and which sets are partial;
* the same call with 3 seeds (``-p seeds=[0,1,2]``): training and evaluation of the trained networks
  three times (an upper bound: moon's Table 6 probes, counted three times here, are not repeated);
* ``--paper-profile``: the paper profile's training hours on 1 H200 and on 8 (``--shard scale``, the
  GPUs shared evenly among the shards, data parallel within each: compute divided, per-step
  overhead not), by the same FLOP and overhead method.

A call must fit 8 minutes including ~1 min start-up. The recommended steps scale every step
parameter of the paper by one factor so that training fills what is left (rounded down).
Networks are built from the profile in ONE function per paper (``*_runs``); RRDBNet only in
:func:`rrdbnet` (its config fields are being renamed nf/nb/gc -> n_feats/n_blocks/growth).
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from srcore import bundle, config, nets, shards  # noqa: E402
from srcore.checkpoints import make_rrdbnet  # noqa: E402

PEAK = 790e12          # bf16 dense, measured on an H200 of this workplace (KINDS.md)
EFFICIENCY = 0.30      # what convolutional SR training reaches of it (assumed)
BUDGET_MIN = 8.0       # one call, start-up included
STARTUP_MIN = 1.0      # machine start and transfer (the device guide's "a minute or more")
INSTALL_MIN = 0.1      # pip install --no-index of ~30 wheels: 1-2 s measured in the rehearsal
LAUNCH_S = 10e-6      # one kernel launch with its Python and dispatch work on the GPU host (assumed)
MARGIN = 0.85          # share of the remaining minutes given to training (the rest: kernel start, I/O, noise)
STEP_KEYS = {          # the step parameters scaled together by the recommendation
    "seo_squeezesr_kd": ["teacher_steps", "student_steps"],
    "moon2023_clsd": ["teacher_steps", "student_steps", "fig3_steps"],
    "lee2021_srgan_kd": ["teacher_steps", "student_steps"],
    "lee2022_mutual_srgan": ["steps"],
    "baek2024_esrgan_prune_kd": ["teacher_steps", "teacher_l1_steps", "distill_steps"],
}


@dataclass
class Role:
    """One network in a training step: ``make(width_scale)`` builds it, ``inp`` its input side, how it runs."""
    make: callable
    side: int            # input patch side (LR for generators, HR for discriminators)
    mode: str = "train"  # train: forward+backward; frozen: forward only
    times: int = 1       # passes per step (a GAN's discriminator: 3 or 4)
    disc: bool = False   # a discriminator: its input side is fixed


@dataclass
class Run:
    name: str
    steps: int
    roles: list[Role]


@dataclass
class Call:
    paper: str
    label: str
    scales: list[int] | None
    runs: list[Run]
    evaluated: list[tuple[callable, int]] = field(default_factory=list)  # (make, scale) of each evaluated network


def _w(width: int, tiny: bool) -> int:
    return 4 if tiny else width


# --- one function per paper: the runs its notebook trains under params P ---------------------------
def seo_runs(P, scales):
    teacher = lambda x, t=False: nets.EDSRT(nets.EDSRTConfig(scale=x, n_feats=_w(P.teacher_feats, t),  # noqa: E731
                                                              n_modules=P.teacher_modules))
    student = lambda x, t=False: nets.SqueezeSR(nets.SqueezeSRConfig(  # noqa: E731
        scale=x, n_feats=_w(P.student_feats, t), squeeze=_w(P.student_squeeze, t) if not t else 2,
        upsampler=P.student_upsampler))
    runs, ev = [], []
    for x in scales:
        lp = P.lr_patch
        runs += [Run(f"EDSR-T x{x}", P.teacher_steps, [Role(lambda t, x=x: teacher(x, t), lp)]),
                 Run(f"SqueezeSR x{x}", P.student_steps, [Role(lambda t, x=x: student(x, t), lp)]),
                 Run(f"SqueezeSR-KD x{x}", P.student_steps, [Role(lambda t, x=x: student(x, t), lp),
                                                            Role(lambda t, x=x: teacher(x, t), lp, "frozen")])]
        ev += [(lambda t, x=x: teacher(x, t), x), (lambda t, x=x: student(x, t), x), (lambda t, x=x: student(x, t), x)]
    return runs, ev


def moon_runs(P, scales):
    teacher = lambda x, t=False: nets.EDSR(nets.EDSRConfig(scale=x, n_feats=_w(P.teacher_feats, t),  # noqa: E731
                                                            n_blocks=P.teacher_blocks, res_scale=P.teacher_res_scale))
    student = lambda x, t=False: nets.EDSR(nets.EDSRConfig(scale=x, n_feats=_w(P.student_feats, t),  # noqa: E731
                                                            n_blocks=P.student_blocks))

    class WithHeads(nn.Module):  # DS / CLSD: the student and its heads in one pass
        def __init__(self, x, t, head_blocks):
            super().__init__()
            self.net = student(x, t)
            self.heads = nets.DeepSupervisionHeads(self.net, P.head_taps, head_blocks)

        def forward(self, lr):
            sr, aux = nets.student_with_heads(self.net, self.heads, lr)
            return sr.sum() + sum(a.sum() for a in aux)

    lp, runs, ev = P.lr_patch, [], []
    for x in scales:
        runs.append(Run(f"Teacher x{x}", P.teacher_steps, [Role(lambda t, x=x: teacher(x, t), lp)]))
        ev.append((lambda t, x=x: teacher(x, t), x))
        for m in P.methods:
            if m == "L_SR+L_ASR" and x != 2:
                continue
            if m in ("FAKD", "LFD"):
                roles = [Role(lambda t, x=x: student(x, t), lp), Role(lambda t, x=x: teacher(x, t), lp, "frozen")]
            elif m == "Baseline":
                roles = [Role(lambda t, x=x: student(x, t), lp)]
            else:
                roles = [Role(lambda t, x=x: WithHeads(x, t, P.head_blocks), lp)]
            runs.append(Run(f"{m} x{x}", P.student_steps, roles))
            ev.append((lambda t, x=x: student(x, t), x))
    if 2 in scales and "CLSD" in P.methods:
        for nb in P.fig3_blocks:
            if not (nb == P.head_blocks and P.fig3_steps == P.student_steps):
                runs.append(Run(f"Fig. 3 CLSD PH{nb} x2", P.fig3_steps,
                                [Role(lambda t, nb=nb: WithHeads(2, t, nb), lp)]))
    if P.probe_steps and P.probe_scale in scales:  # Table 6's timed steps (the paper's networks = quick's)
        runs.append(Run("Table 6 probe: Teacher", P.probe_steps, [Role(lambda t: teacher(2, t), lp)]))
        for m in ("FAKD", "LFD"):
            runs.append(Run(f"Table 6 probe: {m}", P.probe_steps,
                            [Role(lambda t: student(2, t), lp), Role(lambda t: teacher(2, t), lp, "frozen")]))
        for m in ("DS", "CLSD"):
            runs.append(Run(f"Table 6 probe: {m}", P.probe_steps, [Role(lambda t: WithHeads(2, t, 5), lp)]))
    return runs, ev


def srgan_d(P, tiny):
    return nets.SRGANDiscriminator(nets.SRGANDiscriminatorConfig(input_size=P.hr_patch, n_feats=_w(P.disc_feats, tiny),
                                                                 dense=_w(P.disc_dense, tiny)))


def lee2021_runs(P, scales):
    x, lp = P.scale, P.hr_patch // P.scale
    gen = lambda f, b, t: nets.SRResNet(nets.SRResNetConfig(scale=x, n_feats=_w(f, t), n_blocks=b))  # noqa: E731
    teacher = lambda t=False: gen(P.teacher_feats, P.teacher_blocks, t)  # noqa: E731
    student = lambda t=False: gen(P.student_feats, P.student_blocks, t)  # noqa: E731
    d = Role(lambda t: srgan_d(P, t), P.hr_patch, times=3, disc=True)
    kd = round(P.kd_fraction * P.student_steps)
    frozen = Role(teacher, lp, "frozen")
    schedules = {  # the notebook's SCHEDULES: (steps with D, steps without)
        "Teacher": [Run("Teacher", P.teacher_steps, [Role(teacher, lp), d])],
        "Teacher-G": [Run("Teacher-G", P.teacher_steps, [Role(teacher, lp)])],
        "Student": [Run("Student", P.student_steps, [Role(student, lp), d])],
        "GAN2GAN": [Run("GAN2GAN", P.student_steps, [Role(student, lp), d, frozen])],
        "GAN2G": [Run("GAN2G", P.student_steps, [Role(student, lp), frozen])],
        "GAN2G+AL": [Run("GAN2G+AL (KD)", kd, [Role(student, lp), frozen]),
                     Run("GAN2G+AL (GAN)", P.student_steps - kd, [Role(student, lp), d])],
        "G2G+AL": [Run("G2G+AL (KD)", kd, [Role(student, lp), frozen]),
                   Run("G2G+AL (GAN)", P.student_steps - kd, [Role(student, lp), d])],
    }
    needed = set(P.methods) | ({"Teacher"} if {"GAN2GAN", "GAN2G", "GAN2G+AL"} & set(P.methods) else set()) \
        | ({"Teacher-G"} if "G2G+AL" in P.methods else set())
    runs = [r for m in schedules if m in needed for r in schedules[m]]
    ev = [(teacher if m.startswith("Teacher") else student, x) for m in needed if m != "Bicubic"]
    return runs, ev


def lee2022_runs(P, scales):
    gen = lambda x, t: nets.SRResNet(nets.SRResNetConfig(scale=x, n_feats=_w(P.gen_feats, t), n_blocks=P.gen_blocks))  # noqa: E731
    runs, ev = [], []
    for x in scales:
        lp = P.hr_patch // x
        g = Role(lambda t, x=x: gen(x, t), lp, times=2)  # a cohort: G1, G2, D1, D2 in every step
        d = Role(lambda t: srgan_d(P, t), P.hr_patch, times=6, disc=True)
        for m in P.methods:
            runs.append(Run(f"{m} x{x}", P.pretrain_steps + P.steps, [g, d]))
            ev += [(lambda t, x=x: gen(x, t), x)] * 2
    return runs, ev


def baek_runs(P, scales):
    x, hp = 4, P.hr_patch
    lp = hp // x
    teacher = lambda t=False: make_rrdbnet(_w(P.teacher_nf, t), P.teacher_nb, _w(P.gc, t))  # noqa: E731
    d = Role(lambda t: nets.VGGStyleDiscriminator(_w(P.disc_feats, t), hp), hp, times=4, disc=True)
    runs = [Run("ESRGAN teacher", P.teacher_steps, [Role(teacher, lp), d])]
    ev = [(teacher, x)] * 4  # ESRGAN and its three pruned copies (dense masks: the same FLOPs)
    for m in P.methods:
        if m.startswith("Student_"):
            k = int(m.split("_")[1])
            s = lambda t, k=k: make_rrdbnet(_w(P.student_feats[k], t), P.teacher_nb, _w(P.gc, t))  # noqa: E731
            runs.append(Run(m, P.distill_steps, [Role(s, lp), Role(teacher, lp, "frozen"), d]))
            ev.append((s, x))
    return runs, ev


PAPERS = {"seo_squeezesr_kd": seo_runs, "moon2023_clsd": moon_runs, "lee2021_srgan_kd": lee2021_runs,
          "lee2022_mutual_srgan": lee2022_runs, "baek2024_esrgan_prune_kd": baek_runs}


# --- measuring ----------------------------------------------------------------------------------------
def _out_sum(y):
    return y if y.dim() == 0 else y.float().sum()


def role_flops(role: Role, batch: int) -> float:
    """FLOPs of one pass of the role at its real width (forward+backward when trained)."""
    with torch.device("meta"):  # shapes only: counting needs no arithmetic
        net = role.make(False)
        x = torch.rand(batch, 3, role.side, role.side)
    with FlopCounterMode(display=False) as fc:
        if role.mode == "train":
            _out_sum(net(x)).backward()
        else:
            with torch.no_grad():
                net(x)
    return fc.get_total_flops() * role.times


class _OpCounter(TorchDispatchMode):
    """Counts aten operations: about one kernel launch each on a GPU."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def role_ops(role: Role) -> int:
    """aten operations of one pass of the role (forward+backward when trained), counted on meta tensors."""
    with torch.device("meta"):
        net = role.make(False)
        x = torch.rand(1, 3, role.side, role.side)
    with _OpCounter() as c:
        if role.mode == "train":
            _out_sum(net(x)).backward()
        else:
            with torch.no_grad():
                net(x)
    return c.n * role.times


def role_overhead_s(role: Role, reps: int = 3) -> float:
    """CPU seconds of one pass at width 4, batch 1, on one thread: the per-step overhead (launches, Python).

    Process time rather than wall time: this machine is shared, and other processes' load would count.

    Generators see an 8-pixel LR patch; discriminators keep their input side (their dense layer is sized for it).
    """
    net = role.make(True)
    side = role.side if role.disc else 8
    x = torch.rand(1, 3, side, side)
    times = []
    for _ in range(reps + 1):
        tic = time.process_time()
        if role.mode == "train":
            _out_sum(net(x)).backward()
        else:
            with torch.no_grad():
                net(x)
        times.append(time.process_time() - tic)
    return float(np.median(times[1:])) * role.times


def per_lr_pixel_flops(make, scale: int) -> float:
    with torch.device("meta"):
        net = make(False)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(torch.rand(1, 3, 32, 32, device="meta"))
    return fc.get_total_flops() / (32 * 32)


def image_pixels(root: Path, files: list[str], scale: int) -> tuple[float, float]:
    """(LR pixels, HR pixels) of the HR images among ``files`` at ``scale``."""
    from PIL import Image
    lr = hr = 0
    for f in files:
        if "/HR/" in f:
            with Image.open(root / f) as im:
                w, h = im.size
            hr += (h - h % scale) * (w - w % scale)
            lr += (h // scale) * (w // scale)
    return lr, hr


def metrics_s_per_mpix() -> float:
    """PSNR+SSIM on Y (srcore.metrics) per HR megapixel on this CPU."""
    from srcore.metrics import psnr, ssim
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    tic = time.process_time()
    psnr(a, b, 2), ssim(a, b, 2)
    return (time.process_time() - tic) / (512 * 512 / 1e6)


def data_prep_s(root: Path, files: list[str], scales: list[int]) -> float:
    """Decode the training images and make their LR (srcore.data.TrainSet) once per scale, timed here."""
    from srcore import data
    tic = time.process_time()
    images = {f: data.load_image(root / f) for f in files if f.startswith("train/")}
    for x in scales:
        data.TrainSet(images, x, hr_patch=x * 8, small_images="skip")
    return time.process_time() - tic


def calls(paper: str) -> list[tuple[str, list[int] | None]]:
    P = config.load(paper, "quick")
    if "scales" in P and len(P.scales) > 1:
        return [("all scales", None)] + [(f"x{x}", [x]) for x in P.scales]
    return [("x%d" % (P.get("scale") or 4), None)]


def size_call(paper: str, label: str, scales, mpix_s: float, cache: dict) -> dict:
    p = bundle.plan(paper, "quick", scales)
    P = config.load(paper, "quick", **p.overrides)
    run_scales = P.get("scales") or [P.get("scale", 4)]
    runs, evaluated = PAPERS[paper](P, run_scales)
    train_min, over_min, steps, launches = train_cost(paper, P, run_scales, cache)
    parts = p.parts()
    niqe = paper in bundle.NIQE_PAPERS and bool(P.get(bundle.NIQE_PAPERS[paper]))
    if ("wheels", niqe) not in cache:
        wheels = bundle.resolve_wheels("3.12", bundle.read_targets(bundle.DEFAULT_TARGET), niqe, log=lambda *a: None)
        cache["wheels", niqe] = sum(w.stat().st_size for w in wheels) / 2**20
    wheels_mib = cache["wheels", niqe]
    eval_files = tuple(f for g, fs in p.data.items() if g.startswith("benchmark/") for f in fs)
    eval_flops = eval_metric_s = 0.0
    for make, x in evaluated:
        if (eval_files, x) not in cache:
            cache[eval_files, x] = image_pixels(p.data_root, eval_files, x)
        lr_px, hr_px = cache[eval_files, x]
        eval_flops += per_lr_pixel_flops(make, x) * lr_px
        eval_metric_s += mpix_s * hr_px / 1e6
    prep_s = data_prep_s(p.data_root, [f for g, fs in p.data.items() if g.startswith("train/") for f in fs], run_scales)
    rate = PEAK * EFFICIENCY
    eval_min = eval_flops / rate / 60 + eval_metric_s / 60
    fixed = STARTUP_MIN + INSTALL_MIN + prep_s / 60 + eval_min
    total = fixed + train_min + over_min
    seeds3 = STARTUP_MIN + INSTALL_MIN + prep_s / 60 + SEEDS * (eval_min + train_min + over_min)
    factor = max(0.0, (BUDGET_MIN - fixed) * MARGIN / max(train_min + over_min, 1e-9))
    rec = {k: _nice(P[k] * factor) for k in STEP_KEYS[paper]}
    launch_min = launches * LAUNCH_S / 60  # the other estimate: launch-bound, not CPU-op-bound
    fixed_l = fixed + train_min + launch_min
    factor_l = max(0.0, (BUDGET_MIN - fixed) * MARGIN / max(train_min + launch_min, 1e-9))
    rec_l = {k: _nice(P[k] * factor_l) for k in STEP_KEYS[paper]}
    code = next(x.mib for x in parts if x.name == "code")
    data_mib = sum(x.mib for x in parts if x.name.startswith("data/"))
    partial = [f"{x.name.split('/')[-1]} {x.note.split(' images')[0]}" for x in parts
               if x.name.startswith("data/") and "partial" in x.note]
    return {
        "paper": paper, "call": label, "runs": len(runs), "steps": steps,
        "train_TFLOP": round(train_min * 60 * PEAK * EFFICIENCY / 1e12, 1), "train_min": round(train_min, 2),
        "overhead_min": round(over_min, 2), "launches_per_step": round(launches / max(steps, 1)),
        "launch_min": round(launch_min, 2), "total_launch_bound_min": round(fixed_l, 2), "eval_TFLOP": round(eval_flops / 1e12, 2),
        "eval_min": round(eval_min, 2), "data_prep_min": round(prep_s / 60, 2),
        "total_min": round(total, 2), "fits_8_min": total <= BUDGET_MIN,
        "total_min_3_seeds": round(seeds3, 2), "fits_8_min_3_seeds": seeds3 <= BUDGET_MIN,
        "code_MiB": round(code, 2), "wheels_MiB": round(wheels_mib, 2), "data_MiB": round(data_mib, 2),
        "bundle_MiB": round(code + wheels_mib + data_mib, 2), "fits_64_MiB": code + wheels_mib + data_mib <= 64,
        "partial_sets": "; ".join(partial),
        "now": ", ".join(f"{k}={P[k]}" for k in STEP_KEYS[paper]),
        "recommended": ", ".join(f"{k}={v}" for k, v in rec.items()),
        "recommended_launch_bound": ", ".join(f"{k}={v}" for k, v in rec_l.items()),
    }


SEEDS = 3  # the seeds of the seed-noise column (issue 22)
GPUS = 8   # the multi-GPU column of --paper-profile


def train_cost(paper: str, P, run_scales, cache: dict) -> tuple[float, float, int, float]:
    """(training minutes at EFFICIENCY of PEAK, CPU-measured per-step overhead minutes, steps, kernel launches)
    of the runs the notebook trains under ``P``."""
    runs, _ = PAPERS[paper](P, run_scales)
    flops = overhead = launches = 0.0
    steps = 0
    for r in runs:
        for role in r.roles:
            key = (paper, r.name.split(" x")[0], role.side, role.mode, role.times, repr(role.make(True))[:2000])
            if key not in cache:
                cache[key] = (role_flops(role, P.batch_size), role_overhead_s(role), role_ops(role))
            f, o, n = cache[key]
            flops += f * r.steps
            overhead += o * r.steps
            launches += n * r.steps
        steps += r.steps
    return flops / (PEAK * EFFICIENCY) / 60, overhead / 60, steps, launches


def paper_profile(paper: str, cache: dict) -> dict:
    """Training hours of the paper profile on one H200, and on GPUS of them sharded by scale."""
    P0 = config.load(paper, "paper")
    scales = P0.get("scales") or []
    parts = []
    for x in scales if len(scales) > 1 else [None]:
        ov = shards.shard_overrides(paper, "paper", x, {}) if x is not None else {}
        P = config.load(paper, "paper", **ov)
        parts.append(train_cost(paper, P, P.get("scales") or [P.get("scale", 4)], cache)[:3])
    per_shard = max(1, GPUS // len(parts))
    one = sum(t + o for t, o, _ in parts) / 60
    many = max(t / per_shard + o for t, o, _ in parts) / 60
    return {"paper": paper, "shards": len(parts), "steps": sum(n for _, _, n in parts),
            "train_h_1_gpu": round(one, 1), "compute_h": round(sum(t for t, _, _ in parts) / 60, 1),
            "overhead_h": round(sum(o for _, o, _ in parts) / 60, 1),
            f"train_h_{GPUS}_gpus": round(many, 1), "gpus_per_shard": per_shard}


def _nice(v: float) -> int:
    """Round down to 2 significant digits (1234 -> 1200)."""
    if v < 10:
        return int(v)
    e = 10 ** (int(math.log10(v)) - 1)
    return int(v // e * e)


COLUMNS = ["paper", "call", "runs", "steps", "train_TFLOP", "train_min", "overhead_min", "launches_per_step",
           "launch_min", "eval_TFLOP", "eval_min", "data_prep_min", "total_min", "total_launch_bound_min", "fits_8_min",
           "total_min_3_seeds", "fits_8_min_3_seeds", "code_MiB", "wheels_MiB", "data_MiB", "bundle_MiB",
           "fits_64_MiB", "partial_sets", "now", "recommended", "recommended_launch_bound"]


MD_COLUMNS = {"paper": "paper", "call": "call", "steps": "steps (all runs)", "train_TFLOP": "train TFLOP",
              "train_min": "train min", "overhead_min": "CPU-measured overhead min",
              "launch_min": "launch overhead min", "eval_min": "eval min",
              "data_prep_min": "data prep min", "total_min": "total min (CPU overhead)",
              "total_launch_bound_min": "total min (launch overhead)",
              "total_min_3_seeds": "total min, 3 seeds (CPU overhead)", "code_MiB": "code MiB",
              "wheels_MiB": "wheels MiB", "data_MiB": "data MiB", "bundle_MiB": "bundle MiB",
              "partial_sets": "partial sets (others whole)", "now": "quick now",
              "recommended": "fills 8 min (CPU overhead)", "recommended_launch_bound": "fills 8 min (launch overhead)"}
BEGIN, END = "<!-- sizing table: written by benchmarks/sizing.py -->", "<!-- end of sizing table -->"
PAPER_BEGIN, PAPER_END = "<!-- paper-profile table: benchmarks/sizing.py --paper-profile -->", "<!-- end of paper-profile table -->"


def write_md(rows: list[dict], path: Path, columns=MD_COLUMNS, begin=BEGIN, end=END) -> None:
    """The table into ``path`` between ``begin`` and ``end``, the rest of the file kept (appended when absent)."""
    from srcore.report import markdown_table
    df = pd.DataFrame(rows)
    if columns:
        df = df[list(columns)].rename(columns=columns)
    block = f"{begin}\n{markdown_table(df)}{end}"
    text = path.read_text() if path.is_file() else "# Sizing of the quick profile\n\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    path.write_text(head + block + tail)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paper", nargs="+", default=list(PAPERS))
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--md-only", action="store_true", help="rewrite results/sizing.md's table from results/sizing.csv")
    ap.add_argument("--paper-profile", action="store_true",
                    help=f"the paper profile's training hours on 1 and {GPUS} H200s (results/sizing_paper.csv)")
    args = ap.parse_args(argv)
    if args.paper_profile:
        torch.set_num_threads(1)
        cache, rows = {}, []
        for paper in args.paper:
            rows.append(paper_profile(paper, cache))
            print(rows[-1], flush=True)
        if not args.no_write:
            pd.DataFrame(rows).to_csv(ROOT / "results" / "sizing_paper.csv", index=False)
            write_md(rows, ROOT / "results" / "sizing.md", columns=None, begin=PAPER_BEGIN, end=PAPER_END)
        return 0
    if args.md_only:
        write_md(pd.read_csv(ROOT / "results" / "sizing.csv", keep_default_na=False).to_dict("records"),
                 ROOT / "results" / "sizing.md")
        return 0
    torch.set_num_threads(1)  # the overhead of one step, not how well the CPU parallelises it
    mpix_s = metrics_s_per_mpix()
    rows, cache = [], {}
    for paper in args.paper:
        for label, scales in calls(paper):
            row = size_call(paper, label, scales, mpix_s, cache)
            rows.append(row)
            print(" | ".join(str(row[c]) for c in COLUMNS), flush=True)
    if not args.no_write:
        with open(ROOT / "results" / "sizing.csv", "w", newline="") as f:
            w = csv.DictWriter(f, COLUMNS)
            w.writeheader()
            w.writerows(rows)
        write_md(rows, ROOT / "results" / "sizing.md")
        print(f"wrote {ROOT / 'results' / 'sizing.csv'} and sizing.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

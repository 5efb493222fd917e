"""What each paper costs on one GPU: projected minutes of the quick profile, GPU-hours of the paper profile.

    python benchmarks/cost.py                  # every paper; writes results/cost.{csv,md} and the README's table
    python benchmarks/cost.py --paper moon2023_clsd --no-write

A projection, made before any GPU run, from what a run trains (the runs each notebook trains under the
profile, built in one function per paper below) and two measurements:

* **compute**: ``torch.utils.flop_counter.FlopCounterMode`` on one forward+backward of each trained network at
  the profile's batch and patch (frozen teachers: forward only), times the steps of each run; GAN steps count
  the discriminator 3 times (SRGAN: D on fake for G, on real and fake for D), 4 (ESRGAN's RaGAN) or 6 (a cohort
  of two SRGANs); at EFFICIENCY of PEAK, the bf16 dense rate of an H100/H200-class GPU;
* **per-step overhead**: one step of the same networks at width 4, batch 1, on 8-pixel patches, timed on this
  CPU: almost only the Python and kernel-launch work that a GPU cannot hide either, and that more GPUs do not
  divide;
* **evaluation**: forward FLOPs of every evaluated network over the profile's evaluation images at the same
  rate, plus PSNR/SSIM on the CPU, timed here per megapixel.

The paper profile on 8 GPUs: ``--shard scale`` (one shard per scale, the GPUs shared evenly among them, data
parallel within each shard: compute divided, per-step overhead not). Where ``results/<paper>/provenance.json``
holds trained runs of the quick profile, their measured training time and device are shown beside the
projection.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from srcore import data, nets
from srcore.paper import config  # noqa: E402
from srcore.pretrained.checkpoints import make_rrdbnet  # noqa: E402

PEAK = 989e12      # bf16 dense FLOP/s of an H100 SXM (NVIDIA's datasheet; an H200 has the same compute)
EFFICIENCY = 0.30  # the share of it convolutional SR training reaches (assumed)
GPUS = 8           # the multi-GPU column of the paper profile


@dataclass
class Role:
    """One network in a training step: ``make(tiny)`` builds it (tiny: width 4), ``side`` its input side."""
    make: callable
    side: int            # input patch side (LR for generators, HR for discriminators)
    mode: str = "train"  # train: forward+backward; frozen: forward only
    times: int = 1       # passes per step (a GAN's discriminator: 3, 4 or 6)
    disc: bool = False   # a discriminator: its input side is fixed


@dataclass
class Run:
    name: str
    steps: int
    roles: list[Role]


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
    teacher = lambda t=False: make_rrdbnet(_w(P.teacher_feats, t), P.teacher_blocks, _w(P.growth_feats, t))  # noqa: E731
    d = Role(lambda t: nets.VGGStyleDiscriminator(_w(P.disc_feats, t), hp), hp, times=4, disc=True)
    runs = [Run("ESRGAN teacher", P.teacher_steps, [Role(teacher, lp), d])]
    ev = [(teacher, x)] * 4  # ESRGAN and its three pruned copies (dense masks: the same FLOPs)
    for m in P.methods:
        if m.startswith("Student_"):
            k = int(m.split("_")[1])
            s = lambda t, k=k: make_rrdbnet(_w(P.student_feats[k], t), P.teacher_blocks, _w(P.growth_feats, t))  # noqa: E731
            runs.append(Run(m, P.distill_steps, [Role(s, lp), Role(teacher, lp, "frozen"), d]))
            ev.append((s, x))
    return runs, ev


PAPERS = {  # a paper without an entry here gets no projection (its notebook runs all the same)
    "seo_squeezesr_kd": seo_runs, "moon2023_clsd": moon_runs, "lee2021_srgan_kd": lee2021_runs,
          "lee2022_mutual_srgan": lee2022_runs, "baek2024_esrgan_prune_kd": baek_runs}


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


def role_overhead_s(role: Role, reps: int = 3) -> float:
    """CPU seconds of one pass at width 4, batch 1, on one thread: the per-step overhead (launches, Python).

    Process time rather than wall time: another process's load on the CPU would count otherwise.

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


def image_pixels(files: list[Path], scale: int) -> tuple[float, float]:
    """(LR pixels, HR pixels) of the HR images ``files`` at ``scale``."""
    from PIL import Image
    lr = hr = 0
    for f in files:
        with Image.open(f) as im:
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


def train_cost(paper: str, P, scales, cache: dict) -> tuple[float, float, int]:
    """(compute minutes at EFFICIENCY of PEAK, per-step overhead minutes, steps) of the runs trained under ``P``."""
    runs, _ = PAPERS[paper](P, scales)
    flops = overhead = 0.0
    for r in runs:
        for role in r.roles:
            key = (paper, r.name.split(" x")[0], role.side, role.mode, role.times, repr(role.make(True))[:2000])
            if key not in cache:
                cache[key] = (role_flops(role, P.batch_size), role_overhead_s(role))
            f, o = cache[key]
            flops += f * r.steps
            overhead += o * r.steps
    return flops / (PEAK * EFFICIENCY) / 60, overhead / 60, sum(r.steps for r in runs)


def eval_minutes(paper: str, P, scales, mpix_s: float) -> tuple[float, list[str]]:
    """Minutes to evaluate every evaluated network on the profile's evaluation images (GPU FLOPs, CPU metrics),
    and the sets left out of the count because the data root lacks them."""
    root = data.data_root()
    _, evaluated = PAPERS[paper](P, scales)
    limits = P.get("eval_limit") or {}
    absent = [s for s in P.eval_sets if not (root / "benchmark" / s / "HR").is_dir()]
    files = [p for s in P.eval_sets if s not in absent
             for p in data.list_images(root / "benchmark" / s / "HR")[:limits.get(s)]]
    flops = metric_s = 0.0
    for make, x in evaluated:
        lr_px, hr_px = image_pixels(files, x)
        flops += per_lr_pixel_flops(make, x) * lr_px
        metric_s += mpix_s * hr_px / 1e6
    return flops / (PEAK * EFFICIENCY) / 60 + metric_s / 60, absent


def measured(paper: str) -> dict:
    """Training seconds and device of the committed quick results' trained runs, if any."""
    prov = ROOT / "results" / paper / "provenance.json"
    if not prov.is_file():
        return {}
    p = json.loads(prov.read_text())
    trained = [r for r in (p.get("runs") or {}).values() if r.get("steps") and r.get("train_seconds")]
    if p.get("profile") != "quick" or not trained:
        return {}
    each = ", ".join(f"{r['name']}{'' if r.get('scale') is None else ' x' + str(r['scale'])} "
                     f"{r['train_seconds'] / 60:.0f}" for r in trained)
    return {"measured": f"training minutes: {each} ({p.get('device')})"}


def quick(paper: str, mpix_s: float, cache: dict) -> dict:
    P = config.load(paper, "quick")
    scales = P.get("scales") or [P.get("scale", 4)]
    compute, overhead, steps = train_cost(paper, P, scales, cache)
    ev, absent = eval_minutes(paper, P, scales, mpix_s)
    return {"paper": paper, "steps": steps, "compute_min": round(compute, 1), "overhead_min": round(overhead, 1),
            "eval_min": round(ev, 1), "total_min": round(compute + overhead + ev, 1), **measured(paper),
            "note": f"evaluation without {', '.join(absent)} (not in the data root)" if absent else ""}


def cpu_smallest(paper: str, batch_probe: int = 2) -> dict:
    """The quick profile's smallest run that needs no other trained network, timed on this CPU (all its cores):
    one step of its networks at their real widths (after one untimed), on ``batch_probe`` patches, scaled to the
    profile's batch; and the minutes its quick steps take at that rate."""
    P = config.load(paper, "quick")
    scales = P.get("scales") or [P.get("scale", 4)]
    runs = [r for r in PAPERS[paper](P, scales)[0]
            if all(role.mode == "train" for role in r.roles) and not r.name.startswith(("Table 6", "Fig. 3"))]
    run = min(runs, key=lambda r: sum(role_flops(role, P.batch_size) for role in r.roles))
    nets_ = [(role, role.make(False)) for role in run.roles]
    times = []
    for _ in range(2):
        tic = time.perf_counter()
        for role, net in nets_:
            x = torch.rand(batch_probe, 3, role.side, role.side)
            for _ in range(role.times):
                _out_sum(net(x)).backward()
        times.append(time.perf_counter() - tic)
    s_step = times[-1] * P.batch_size / batch_probe
    return {"paper": paper, "cpu_run": run.name, "cpu_steps": run.steps, "cpu_s_per_step": round(s_step, 2),
            "cpu_min": round(run.steps * s_step / 60)}


def paper_profile(paper: str, cache: dict) -> dict:
    """Training hours of the paper profile on one GPU, and on GPUS of them sharded by scale."""
    P = config.load(paper, "paper")
    scales = P.get("scales") or [P.get("scale", 4)]
    parts = [train_cost(paper, P, [x], cache) for x in scales]  # one shard per scale
    per_shard = max(1, GPUS // len(parts))
    return {"paper": paper, "steps": sum(n for _, _, n in parts),
            "gpu_h_1": round(sum(t + o for t, o, _ in parts) / 60, 1),
            f"h_{GPUS}_gpus": round(max(t / per_shard + o for t, o, _ in parts) / 60, 1),
            "overhead_h": round(sum(o for _, o, _ in parts) / 60, 1), "shards": len(parts)}


QUICK_COLUMNS = {"paper": "paper", "steps": "training steps (all runs)", "total_min": "projected minutes on 1 GPU",
                 "compute_min": "of which compute", "overhead_min": "per-step overhead", "eval_min": "evaluation",
                 "measured": "measured", "cpu_run": "smallest run (CPU)", "cpu_s_per_step": "its s/step on a CPU",
                 "cpu_min": "its minutes on a CPU", "note": "note"}
PAPER_COLUMNS = {"paper": "paper", "steps": "training steps (all runs)", "gpu_h_1": "GPU-hours on 1 GPU",
                 f"h_{GPUS}_gpus": f"hours on {GPUS} GPUs", "overhead_h": "of which per-step overhead (h)",
                 "shards": "shards (--shard scale)"}


def write(quick_rows: list[dict], paper_rows: list[dict]) -> None:
    """results/cost.csv and cost.md, and the README's cost table."""
    from srcore.report import markdown_table
    q, p = pd.DataFrame(quick_rows), pd.DataFrame(paper_rows)
    pd.concat([q.assign(profile="quick"), p.assign(profile="paper")]).to_csv(ROOT / "results" / "cost.csv", index=False)
    text = ["# What each paper costs on one GPU", "",
            f"Written by `python benchmarks/cost.py` (the method is in its docstring): projections for an H100/H200-class "
            f"GPU at {EFFICIENCY:.0%} of {PEAK / 1e12:.0f} TFLOP/s bf16, plus a per-step overhead timed on a CPU, from "
            "the runs each notebook trains. Data preparation (decoding and the MATLAB bicubic of the training images, "
            "once per machine) is not included.", "",
            "## quick profile: minutes per paper", "",
            markdown_table(q.reindex(columns=list(QUICK_COLUMNS)).rename(columns=QUICK_COLUMNS)),
            "## paper profile: GPU-hours", "",
            markdown_table(p[list(PAPER_COLUMNS)].rename(columns=PAPER_COLUMNS))]
    (ROOT / "results" / "cost.md").write_text("\n".join(text))
    readme_table(q, p)


BEGIN, END = "<!-- cost table: written by benchmarks/cost.py from results/cost.csv -->", "<!-- end of cost table -->"


def readme_table(q: pd.DataFrame, p: pd.DataFrame) -> None:
    """The README's cost table (between BEGIN and END): quick minutes (projected on a GPU, measured, and the smallest
    run's on a CPU) and paper GPU-hours per paper."""
    from srcore.report import markdown_table
    q = q.assign(cpu=[f"{r.cpu_run}: {int(r.cpu_steps)} steps x {r.cpu_s_per_step:g} s = {r.cpu_min:g} min"
                      if "cpu_run" in q and pd.notna(r.cpu_run) else "" for r in q.itertuples()])
    both = q.reindex(columns=["paper", "total_min", "measured", "cpu"]).merge(p[["paper", "gpu_h_1", f"h_{GPUS}_gpus"]],
                                                                              on="paper")
    both = both.rename(columns={"total_min": "quick: minutes on 1 GPU (projected)", "measured": "quick: measured",
                                "cpu": "quick on a CPU: its smallest run",
                                "gpu_h_1": "paper: GPU-hours on 1 GPU", f"h_{GPUS}_gpus": f"paper: hours on {GPUS} GPUs"})
    readme = ROOT / "README.md"
    head, _, rest = readme.read_text().partition(BEGIN)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{BEGIN}\n{markdown_table(both)}\nProjections from FLOP counts and a per-step overhead "
                      f"timed on a CPU; the smallest run that needs no other trained network, timed on "
                      f"{common_cpu()} ([`results/cost.md`](results/cost.md), `python benchmarks/cost.py`). A CPU "
                      f"trains what takes about an hour there (`-p methods=[...]` picks it, `--shard scale --jobs N` "
                      f"runs scales side by side); the teachers and GANs the other rows need take hours to days on "
                      f"a CPU and minutes on a GPU.\n{END}{tail}")


def common_cpu() -> str:
    import platform
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"a {os.cpu_count()}-core {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"a {os.cpu_count()}-core {platform.machine()} CPU"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paper", nargs="+", default=list(PAPERS), choices=list(PAPERS))
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--from-csv", action="store_true",
                    help="write cost.md and the README's table again from results/cost.csv and the committed results' "
                         "measured times, measuring nothing")
    args = ap.parse_args(argv)
    if args.from_csv:
        rows = pd.read_csv(ROOT / "results" / "cost.csv")
        quick_rows = [{**{k: v for k, v in r.items() if k not in ("measured", "profile") and pd.notna(v)},
                       **measured(r["paper"])} for r in rows[rows.profile == "quick"].to_dict("records")]
        paper_rows = rows[rows.profile == "paper"].dropna(axis=1, how="all").to_dict("records")
        write(quick_rows, paper_rows)
        return 0
    torch.set_num_threads(1)  # the overhead of one step, not how well the CPU parallelises it
    mpix_s, cache = metrics_s_per_mpix(), {}
    quick_rows = [quick(paper, mpix_s, cache) for paper in args.paper]
    paper_rows = [paper_profile(paper, cache) for paper in args.paper]
    torch.set_num_threads(os.cpu_count() or 1)  # a CPU run uses them all
    for row in quick_rows:
        row.update(cpu_smallest(row["paper"]))
    for row in quick_rows + paper_rows:
        print(row, flush=True)
    if not args.no_write:
        write(quick_rows, paper_rows)
        print(f"wrote {ROOT / 'results' / 'cost.csv'} and cost.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

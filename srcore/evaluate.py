"""Evaluation under the standard protocol: SR a whole image (tiled only when memory runs out), then PSNR/SSIM on Y
with ``scale`` pixels cropped.

On a GPU the SR image stays there and is scored there (float64 torch, equal to the NumPy
reference to ~1e-14); on the CPU the NumPy metrics are used (faster there: 1.4x torch on one
thread, and torch's element-wise ops crawl with two threads on a busy CPU; benchmarks/eval.py).
cuDNN autotuning is on for CUDA, and a
network with channels_last weights (``TrainConfig(channels_last=True)`` or
:func:`srcore.train.prepare_network`) gets channels_last input.

From a shell, ``python -m srcore.evaluate CHECKPOINT --scale S`` scores any checkpoint srcore reads
(:func:`score`; ``--help`` says more); ``python -m srcore.upscale`` applies one to images.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from srcore import data
from srcore.data import (
    Pair,
    image_to_tensor,
    imresize,
    quantize,
    tensor_to_image,
    to_rgb,
)
from srcore.folders import write_atomic
from srcore.metrics import psnr, ssim
from srcore.nets import count_parameters
from srcore.train import enable_cudnn_autotune

if TYPE_CHECKING:
    from srcore.pretrained.releases import Release


TILE_OVERLAP = 32  # LR pixels of context on each side of a tile; tiles differ from whole-image SR only beyond it


def _channels_last(net: nn.Module) -> bool:
    """True when the network's first 4-D weight is stored NHWC (it was prepared with channels_last)."""
    for p in net.parameters():
        if p.dim() == 4:
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False


@torch.no_grad()
def super_resolve(net: nn.Module, lr: np.ndarray, device: torch.device | None = None, *,
                  tile: int | str | None = "auto", overlap: int = TILE_OVERLAP, on_device: bool = False):
    """uint8 LR image (single-channel repeated to RGB) -> uint8 (sH,sW,3) SR image.

    ``on_device``: return the SR image as a uint8 ``(sH,sW,3)`` tensor where the network ran
    (for :func:`evaluate`'s metrics on the GPU) instead of a NumPy array; the same values.

    ``tile``: None processes the whole image; an int processes ``tile x tile`` LR tiles, each
    with ``overlap`` LR pixels of context that is computed and thrown away; "auto" (default)
    processes the whole image and, only when CUDA runs out of memory, retries with tiles of
    512, 256, ... LR pixels. With ``overlap`` at least the network's receptive-field radius the
    tiles are identical to whole-image SR; the 32 default keeps PSNR within 0.01 dB for the
    papers' networks (tests/test_performance.py).
    """
    device = device or next(net.parameters()).device
    enable_cudnn_autotune(device)
    x = image_to_tensor(to_rgb(lr)).to(device)
    if _channels_last(net):
        x = x.contiguous(memory_format=torch.channels_last)
    out = quantize if on_device else tensor_to_image
    if tile is None:
        return out(net(x))
    if isinstance(tile, int):
        return out(_tiled(net, x, tile, overlap))
    if tile != "auto":
        raise ValueError(f"tile must be None, an int or 'auto', got {tile!r}")
    try:
        return out(net(x))
    except torch.cuda.OutOfMemoryError:
        pass
    side = 512
    while True:
        torch.cuda.empty_cache()
        try:
            return out(_tiled(net, x, side, overlap))
        except torch.cuda.OutOfMemoryError:
            if side <= 32:
                raise
            side //= 2


def _tiled(net: nn.Module, x: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """SR of (1,3,H,W) ``x`` tile by tile; the output (1,3,sH,sW) is assembled on the CPU."""
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile must be >= 1 and overlap >= 0, got {tile}, {overlap}")
    _, _, h, w = x.shape
    out, s = None, None
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ya, xa = max(y0 - overlap, 0), max(x0 - overlap, 0)  # the tile with its context
            yb, xb = min(y1 + overlap, h), min(x1 + overlap, w)
            sr = net(x[:, :, ya:yb, xa:xb])
            if out is None:
                s = sr.shape[-1] // (xb - xa)
                out = torch.empty(1, sr.shape[1], s * h, s * w)
            out[:, :, s * y0:s * y1, s * x0:s * x1] = sr[:, :, s * (y0 - ya):s * (y1 - ya), s * (x0 - xa):s * (x1 - xa)].float().cpu()
    return out


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    return imresize(lr, scale)


def _score(sr, hr: np.ndarray, scale: int, with_ssim: bool) -> dict:
    # A single-channel HR (Set14's bridge) is compared as Y directly when SR is single-channel too,
    # and as its RGB repetition when SR is a network's RGB output.
    if isinstance(sr, torch.Tensor) and sr.device.type == "cpu":
        sr = sr.numpy()  # the NumPy metrics are the faster ones on a CPU (benchmarks/eval.py)
    if sr.ndim == 3 and hr.ndim == 2:
        hr = to_rgb(hr)
    row = {"psnr": psnr(sr, hr, crop_border=scale)}
    if with_ssim:
        row["ssim"] = ssim(sr, hr, crop_border=scale)
    return row


def evaluate(upscale, pairs: list[Pair], scale: int, *, dataset: str = "", with_ssim: bool = True,
             progress: bool = True, keep: set[str] = frozenset(), warmup: bool = True,
             ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Per-image PSNR/SSIM and ms per image of ``upscale(lr) -> sr`` (a network via ``super_resolve`` or bicubic).

    ``upscale`` may be the network itself (an ``nn.Module``: ``super_resolve`` on its device,
    the SR image kept there and scored there), or any function returning a uint8 NumPy image
    or a uint8 tensor (scored on its device). Returns the per-image table and the SR images
    (NumPy) whose names are in ``keep`` (for figures). ``warmup`` runs the first image once
    untimed (worth it for timings, not for one-image smoke sets).
    """
    if isinstance(upscale, nn.Module):
        net = upscale
        upscale = lambda lr: super_resolve(net, lr, on_device=True)  # noqa: E731
    rows, kept = [], {}
    if pairs and warmup:
        upscale(pairs[0].lr)  # warm-up (allocator, cuDNN autotune) so the first timing is not an outlier
    for pair in tqdm(pairs, desc=f"eval {dataset} x{scale}", disable=not progress, leave=False):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        tic = time.perf_counter()
        sr = upscale(pair.lr)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        ms = 1e3 * (time.perf_counter() - tic)
        if sr.shape[:2] != pair.hr.shape[:2]:
            raise ValueError(f"{dataset}/{pair.name}: SR is {sr.shape[:2]} but HR is {pair.hr.shape[:2]} at x{scale}")
        rows.append({"dataset": dataset, "scale": scale, "image": pair.name, "ms": ms, **_score(sr, pair.hr, scale, with_ssim)})
        if pair.name in keep:
            kept[pair.name] = sr.cpu().numpy() if isinstance(sr, torch.Tensor) else sr
    return pd.DataFrame(rows), kept


# --- the commands: python -m srcore.evaluate CHECKPOINT --scale S (and srcore.upscale) -------------
# What follows serves the two commands: it reads checkpoints, releases and published values, so it
# imports them where it uses them and the evaluation above imports nothing beyond data and metrics.

DEFAULT_SETS = ("Set5", "Set14", "BSD100", "Urban100")  # the sets every paper here reports
# How the papers' tables name the network a release stands for (Release.role -> published.csv method)
ROLE_METHOD = {"teacher": "Teacher", "student-reference": "Baseline"}
PUBLISHED_SET_NAMES = {"BSD100": ("BSD100", "B100")}  # moon2023_clsd prints BSD100 as B100


class BadInput(ValueError):
    """What a user handed to a command cannot be used; the message names it and says what to do."""


@dataclass
class Checkpoint:
    """An SR network a user handed over (a file, a release name or a run folder), loaded, and what it is."""

    net: nn.Module           # eval mode; float (B,3,h,w) in [0,1] -> (B,3,sh,sw)
    scale: int               # what it was built for (net.cfg.scale)
    name: str                # the release's name, the run's name, or the file's name
    path: Path               # the file that was read
    sha256: str              # of that file
    release: Release | None = None  # the catalogue's entry, when the file is a release

    def describe(self) -> str:
        """One line: name, network and its configuration, where it comes from, the file and its hash."""
        cfg = ", ".join(f"{k} {v}" for k, v in asdict(self.net.cfg).items() if k != "scale")
        what = f"{type(self.net).__name__} x{self.scale} ({cfg}; {count_parameters(self.net) / 1e6:.2f} M parameters)"
        origin = (f"release used by {self.release.paper} as its {self.release.role}; " if self.release else
                  "srcore run; " if self.path.name == "last.pt" else "")
        return f"{self.name}: {what}; {origin}file {self.path}, sha256 {self.sha256[:12]}"


def pick_device(name: str | torch.device | None = None) -> torch.device:
    """``name`` ("cpu", "cuda", "cuda:1"); None: CUDA when torch sees a GPU, else the CPU. An unusable one is refused."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise BadInput(f"--device {name!r} is not a device: use cpu, cuda or cuda:<index>") from None
    if device.type == "cuda":
        n = torch.cuda.device_count()
        if n == 0:
            raise BadInput(f"--device {name}: torch sees no CUDA GPU on this machine; use --device cpu")
        if device.index is not None and device.index >= n:
            raise BadInput(f"--device {name}: torch sees {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}")
    elif device.type != "cpu":
        raise BadInput(f"--device {name}: only cpu and cuda devices are supported")
    return device


def _locate(spec: str | os.PathLike) -> tuple[Path, Release | None, str]:
    """(file to read, its Release or None, a name for it) of a checkpoint file, release name or run folder."""
    from srcore.pretrained import releases

    text = str(spec)
    given = Path(text).expanduser()
    if given.is_dir():  # a run of srcore: <run>/last.pt (the Trainer's checkpoint), settings.json beside it
        last = given / "last.pt"
        if not last.is_file():
            raise BadInput(f"{given} is a folder without last.pt: not a srcore run folder (a trained run's folder "
                           f"under runs/ holds last.pt and settings.json); give a checkpoint file instead")
        settings = json.loads((given / "settings.json").read_text()) if (given / "settings.json").is_file() else {}
        name = "/".join(filter(None, [settings.get("paper"), settings.get("name")])) or given.name
        return last, None, name
    path = next((p for p in releases.candidate_paths(text) if p.is_file()), None)
    if path is not None:  # a file; a bare file name is also looked for in $SRCORE_WEIGHTS
        release = next((r for r in releases.RELEASES.values() if r.file == path.name), None)
        return path, release, release.name if release else path.name
    if text in releases.RELEASES:
        release = releases.RELEASES[text]
        path = releases.locate(release)
        if path is None:
            raise BadInput(f"release {text} ({release.network}) is not in {releases.user_dir()} ($SRCORE_WEIGHTS): "
                           f"fetch it with `python -m srcore.download release {text}` (or place {release.file} there)")
        return path, release, text
    if given.suffix or len(given.parts) > 1:
        raise BadInput(f"no checkpoint file or run folder {given}")
    raise BadInput(f"{text!r} is not a release name, a checkpoint file or a run folder; "
                   f"the releases are: {', '.join(releases.RELEASES)}")


def open_checkpoint(spec: str | os.PathLike, scale: int | None = None) -> Checkpoint:
    """The SR network of ``spec``: a checkpoint file in any layout of :data:`srcore.pretrained.checkpoints.LAYOUTS`, a
    release name of :data:`srcore.pretrained.releases.RELEASES` (its file in $SRCORE_WEIGHTS) or a srcore run folder.

    ``scale``: the scale the user asked for; another than the network's is refused, naming the network's.
    Every refusal is a :class:`BadInput` naming the file or name and what to do.
    """
    from srcore.pretrained import checkpoints, releases

    path, release, name = _locate(spec)
    try:
        digest = releases.verify(path, release)  # and checked, where the catalogue has a checksum
    except releases.ChecksumMismatch as e:
        raise BadInput(str(e)) from None
    try:
        sd = checkpoints.read(path)
    except checkpoints.UnsupportedCheckpoint as e:  # read, but no tensors inside
        raise BadInput(f"{path}: {e}") from None
    except Exception as e:  # torch.load's many ways of saying "not a checkpoint" (pickle, zip, EOF)
        raise BadInput(f"{path} is not a checkpoint: torch.load cannot read it ({type(e).__name__}); expected a "
                       f"file written by torch.save (.pt, .pth, .pth.tar)") from None
    try:
        net = checkpoints.from_checkpoint(sd)
    except checkpoints.UnsupportedCheckpoint as e:  # lists the recognised layouts (checkpoints.LAYOUTS)
        raise BadInput(f"{path}: {e}") from None
    built = getattr(getattr(net, "cfg", None), "scale", None)
    if built is None:
        raise BadInput(f"{path} holds a {type(net).__name__}, not a super-resolution network")
    if scale is not None and scale != built:
        raise BadInput(f"{path} holds a x{built} network ({type(net).__name__}, built for scale {built}): it "
                       f"cannot upscale x{scale}; use --scale {built}")
    return Checkpoint(net.eval(), built, name, path, digest, release)


def lr_source(root: Path, name: str, scale: int) -> str:
    """Where :func:`srcore.data.benchmark_set` takes set ``name``'s LR images from at ``scale``, in words."""
    hr_dir = Path(root) / "benchmark" / name / "HR"
    lr_dir = hr_dir.parent / "LR_bicubic" / f"X{scale}"
    paths = data.list_images(hr_dir)
    found = sum((lr_dir / f"{p.stem}x{scale}{p.suffix}").is_file() for p in paths)  # benchmark_set's naming
    if found == len(paths):
        return f"MATLAB LR files (LR_bicubic/X{scale})"
    if found == 0:
        return "srcore bicubic (MATLAB-exact) of HR"
    return f"MATLAB LR files for {found} of {len(paths)}, srcore bicubic for the rest"


def published_beside(release: Release | None, name: str, scale: int) -> dict:
    """The published PSNR/SSIM of the method ``release`` stands for in its paper, for set ``name`` at ``scale``.

    ``{"published PSNR": "29.0393", "published SSIM": "0.7354", "published in": "lee2021_srgan_kd Table 2,
    Teacher"}`` as printed in srcore/published.csv; ``{}`` when the paper prints none.
    """
    from srcore import report

    method = ROLE_METHOD.get(release.role) if release is not None else None
    if method is None:
        return {}
    pub = report.published(release.paper)
    rows = pub[pub.dataset.isin(PUBLISHED_SET_NAMES.get(name, (name,))) & (pub.scale == str(scale))
               & (pub.method == method) & pub.metric.isin(["PSNR", "SSIM"])]
    if rows.empty:
        return {}
    found = {f"published {r.metric}": r.value for r in rows.itertuples()}
    found["published in"] = f"{release.paper} {', '.join(dict.fromkeys(rows.table))}, {method}"
    return found


def _niqe(images: list[np.ndarray], scale: int) -> list[float] | str:
    """NIQE of each image (``scale`` pixels cropped), or the n/a reason (missing weights, an image too small)."""
    from srcore import perceptual
    try:  # not the "paper" profile: missing weights are an n/a with the reason, not a stop
        return [perceptual.measure("niqe", [img], None, strict=False, crop_border=scale) for img in images]
    except perceptual.MetricUnavailable as e:
        return e.reason
    except ValueError as e:
        return f"n/a: {e}"


def score(checkpoint, scale: int, sets=DEFAULT_SETS, *, data_root: str | os.PathLike | None = None,
          device: str | torch.device | None = None, niqe: bool = False, per_image: bool = False,
          progress: bool = True) -> pd.DataFrame:
    """PSNR/SSIM (and NIQE) of a checkpoint on benchmark sets, with bicubic beside each row: one row per set.

    ``checkpoint``: a :class:`Checkpoint` or what :func:`open_checkpoint` takes (file, release name, run folder).
    The standard protocol of :func:`evaluate`: LR from the set's MATLAB LR files where the data root has
    them, else srcore's MATLAB-exact bicubic (column ``LR`` says which); PSNR (dB) and SSIM on Y with
    ``scale`` pixels cropped, averaged over the set's images. Bicubic is :func:`bicubic_upscale` of the
    same LR. A release that a paper uses gets the paper's published values for the set beside its own
    (``published PSNR``, ``published SSIM``, ``published in``, as printed). ``niqe``: NIQE (lower is
    better) of SR and bicubic, or the n/a reason as the cell. ``per_image``: each image's row before
    its set's (whose ``image`` is "mean"). ``data_root``: :func:`srcore.data.find_root`'s rule.

    Everything is checked before any image is super-resolved (device, sets, checkpoint, every image);
    a problem raises :class:`BadInput` or :class:`srcore.data.DataError` naming it.
    """
    device = pick_device(device)
    unknown = [s for s in sets if s not in data.BENCHMARKS]
    if unknown:
        raise BadInput(f"unknown set(s) {', '.join(unknown)}; known: {', '.join(data.BENCHMARKS)}")
    root = data.find_root(data_root, benchmarks=list(sets))  # a missing set: DataError with its fetch command
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else open_checkpoint(checkpoint, scale)
    if ckpt.scale != scale:
        raise BadInput(f"{ckpt.path} holds a x{ckpt.scale} network: it cannot upscale x{scale}; use --scale {ckpt.scale}")
    pairs = {name: data.benchmark_set(name, scale, root) for name in sets}  # an unreadable image stops here
    net = ckpt.net.to(device)

    def bicubic(lr):
        return bicubic_upscale(lr, scale)

    rows = []
    for name, set_pairs in pairs.items():
        keep = {p.name for p in set_pairs} if niqe else frozenset()  # NIQE needs the SR images themselves
        sr, sr_images = evaluate(net, set_pairs, scale, dataset=name, progress=progress, keep=keep, warmup=False)
        bic, bic_images = evaluate(bicubic, set_pairs, scale, dataset=f"{name} bicubic", progress=progress,
                                   keep=keep, warmup=False)
        table = pd.DataFrame({"image": sr["image"], "PSNR": sr["psnr"], "SSIM": sr["ssim"],
                              "bicubic PSNR": bic["psnr"], "bicubic SSIM": bic["ssim"]})
        reasons = {}  # NIQE column -> why it is n/a (the set's row says it; its images' rows say "n/a")
        if niqe:
            for column, images in (("NIQE", sr_images), ("bicubic NIQE", bic_images)):
                values = _niqe([images[p.name] for p in set_pairs], scale)
                if isinstance(values, str):
                    reasons[column], values = values, "n/a"
                table[column] = values
        head = {"model": ckpt.name, "set": name, "scale": scale, "LR": lr_source(root, name, scale)}
        if per_image:
            rows += [{**head, **r} for r in table.to_dict("records")]
        mean = {c: reasons.get(c) or table[c].mean() for c in table.columns if c != "image"}
        rows.append({**head, "image": "mean", "images": len(table), **mean,
                     **published_beside(ckpt.release, name, scale)})
    df = pd.DataFrame(rows).astype({"images": "Int64"})  # empty on per-image rows
    if not per_image:
        df = df.drop(columns="image")
    first = ["model", "set", "image", "scale", "images", "LR", "PSNR", "published PSNR", "SSIM", "published SSIM",
             "bicubic PSNR", "bicubic SSIM", "NIQE", "bicubic NIQE", "published in"]
    return df[[c for c in first if c in df.columns]]


def score_table(df: pd.DataFrame) -> str:
    """:func:`score`'s table as Markdown: PSNR in dB to 2 decimals, SSIM to 4, NIQE to 3, published as printed."""
    from srcore.report import markdown_table

    decimals = {"PSNR": 2, "bicubic PSNR": 2, "SSIM": 4, "bicubic SSIM": 4, "NIQE": 3, "bicubic NIQE": 3}
    shown = df.copy()
    for column, d in decimals.items():
        if column in shown:
            shown[column] = [f"{v:.{d}f}" if isinstance(v, (int, float, np.floating)) else v for v in shown[column]]
    shown["images"] = ["" if pd.isna(v) else str(v) for v in shown["images"]]  # empty on per-image rows
    return markdown_table(shown)


def main(argv: list[str] | None = None) -> int:
    from srcore.pretrained.releases import RELEASES

    ap = argparse.ArgumentParser(
        prog="python -m srcore.evaluate",
        description="Score a super-resolution checkpoint on benchmark sets under the standard protocol: PSNR "
                    "and SSIM on Y with `scale` pixels cropped, bicubic beside each row, a Markdown table on stdout.",
        epilog="LR images are the set's MATLAB LR files (benchmark/<set>/LR_bicubic/X<s>/<name>x<s>.png) where the "
               "data root has them, else srcore's MATLAB-exact bicubic of the HR image; the LR column says which. "
               "For a release that a paper uses, the paper's published values are shown beside the measured ones. "
               "The same table from Python: srcore.evaluate.score(checkpoint, scale, sets).")
    ap.add_argument("checkpoint", metavar="CHECKPOINT",
                    help="a checkpoint file (EDSR, EDSR-baseline, RRDBNet/ESRGAN, SRGAN/SRResNet in any layout "
                         f"srcore.pretrained.checkpoints recognises, or srcore's own), a release name ({', '.join(RELEASES)}; "
                         f"its file in $SRCORE_WEIGHTS), or a srcore run folder (holding last.pt)")
    ap.add_argument("--scale", type=int, required=True, choices=data.SCALES, help="the scale to score")
    ap.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), choices=data.BENCHMARKS, metavar="SET",
                    help=f"benchmark sets under the data root (default: {' '.join(DEFAULT_SETS)}; "
                         f"known: {', '.join(data.BENCHMARKS)})")
    ap.add_argument("--niqe", action="store_true",
                    help="add NIQE (lower is better) of SR and bicubic; n/a with the reason where its weights are missing")
    ap.add_argument("--per-image", action="store_true", help="a row per image before each set's mean")
    ap.add_argument("--csv", type=Path, metavar="FILE", help="also write the table, full precision, to FILE")
    ap.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)")
    ap.add_argument("--data-root", type=Path, metavar="DIR",
                    help="folder holding benchmark/<set>/HR (default: $SRCORE_DATA, else data/ in the checkout)")
    args = ap.parse_args(argv)
    try:
        device = pick_device(args.device)
        if args.csv is not None and args.csv.is_dir():
            raise BadInput(f"--csv {args.csv} is a folder: give a file name")
        data.find_root(args.data_root, benchmarks=args.sets)  # the cheap checks first: sets, then the checkpoint
        ckpt = open_checkpoint(args.checkpoint, args.scale)
        df = score(ckpt, args.scale, args.sets, data_root=args.data_root, device=device, niqe=args.niqe,
                   per_image=args.per_image)
    except (BadInput, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(ckpt.describe())
    print(f"device {device}; PSNR (dB) and SSIM on Y, {args.scale} pixels cropped at each border\n")
    print(score_table(df), end="")
    if args.csv:
        try:
            csv_text = df.to_csv(index=False)
            write_atomic(args.csv, lambda tmp: tmp.write_text(csv_text))
        except OSError as e:
            print(f"error: cannot write --csv {args.csv} ({e}); the table above is complete", file=sys.stderr)
            return 1
        print(f"\ncsv: {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Evaluation under the standard protocol: SR a whole image (tiled only when memory runs out), then PSNR/SSIM on Y
with ``scale`` pixels cropped.

On a GPU the SR image stays there and is scored there (float64 torch, equal to the NumPy
reference to ~1e-14); on the CPU the NumPy metrics are used (faster there: 1.4x torch on one
thread, and torch's element-wise ops crawl with two threads on a busy CPU; benchmarks/eval.py).
cuDNN autotuning is on for CUDA, and a
network with channels_last weights (``TrainConfig(channels_last=True)`` or
:func:`srcore.train.prepare_network`) gets channels_last input.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from srcore.data import Pair, image_to_tensor, imresize, quantize, tensor_to_image, to_rgb
from srcore.metrics import psnr, ssim
from srcore.train import enable_cudnn_autotune


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

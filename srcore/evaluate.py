"""Evaluation under the standard protocol: SR a whole image (tiled only when memory runs out), then PSNR/SSIM on Y
with ``scale`` pixels cropped."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from srcore.data import Pair, image_to_tensor, imresize, tensor_to_image, to_rgb
from srcore.metrics import psnr, ssim


TILE_OVERLAP = 32  # LR pixels of context on each side of a tile; tiles differ from whole-image SR only beyond it


@torch.no_grad()
def super_resolve(net: nn.Module, lr: np.ndarray, device: torch.device | None = None, *,
                  tile: int | str | None = "auto", overlap: int = TILE_OVERLAP) -> np.ndarray:
    """uint8 LR image (single-channel repeated to RGB) -> uint8 (sH,sW,3) SR image.

    ``tile``: None processes the whole image; an int processes ``tile x tile`` LR tiles, each
    with ``overlap`` LR pixels of context that is computed and thrown away; "auto" (default)
    processes the whole image and, only when CUDA runs out of memory, retries with tiles of
    512, 256, ... LR pixels. With ``overlap`` at least the network's receptive-field radius the
    tiles are identical to whole-image SR; the 32 default keeps PSNR within 0.01 dB for the
    papers' networks (tests/test_performance.py).
    """
    device = device or next(net.parameters()).device
    x = image_to_tensor(to_rgb(lr)).to(device)
    if tile is None:
        return tensor_to_image(net(x))
    if isinstance(tile, int):
        return tensor_to_image(_tiled(net, x, tile, overlap))
    if tile != "auto":
        raise ValueError(f"tile must be None, an int or 'auto', got {tile!r}")
    try:
        return tensor_to_image(net(x))
    except torch.cuda.OutOfMemoryError:
        pass
    side = 512
    while True:
        torch.cuda.empty_cache()
        try:
            return tensor_to_image(_tiled(net, x, side, overlap))
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


def _score(sr: np.ndarray, hr: np.ndarray, scale: int, with_ssim: bool) -> dict:
    # A single-channel HR (Set14's bridge) is compared as Y directly when SR is single-channel too,
    # and as its RGB repetition when SR is a network's RGB output.
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

    Returns the per-image table and the SR images whose names are in ``keep`` (for figures).
    ``warmup`` runs the first image once untimed (worth it for timings, not for one-image smoke sets).
    """
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
            kept[pair.name] = sr
    return pd.DataFrame(rows), kept

"""Evaluation under the standard protocol: SR a whole image, then PSNR/SSIM on Y with ``scale`` pixels cropped."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from srcore.data import Pair, image_to_tensor, imresize, tensor_to_image, to_rgb
from srcore.metrics import psnr, ssim


@torch.no_grad()
def super_resolve(net: nn.Module, lr: np.ndarray, device: torch.device | None = None) -> np.ndarray:
    """uint8 LR image (single-channel repeated to RGB) -> uint8 (sH,sW,3) SR image."""
    device = device or next(net.parameters()).device
    return tensor_to_image(net(image_to_tensor(to_rgb(lr)).to(device)))


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
             progress: bool = True, keep: set[str] = frozenset()) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Per-image PSNR/SSIM and ms per image of ``upscale(lr) -> sr`` (a network via ``super_resolve`` or bicubic).

    Returns the per-image table and the SR images whose names are in ``keep`` (for figures).
    """
    rows, kept = [], {}
    if pairs:
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

"""PSNR and SSIM under the standard SR evaluation protocol.

The protocol is in the signatures so nobody computes it "the other way" by accident:
``psnr(sr, hr, crop_border, y_channel=True)``. Inputs are uint8 images (what an SR method
saves); with ``y_channel`` an RGB image is compared on its BT.601 luma in [16, 235], not
rounded; ``crop_border`` pixels are removed from every side (the standard choice is the
scale). Everything is float64 with peak 255. Both metrics: higher is better; PSNR in dB,
``inf`` for identical images; SSIM at most 1.

An SR image that is a uint8 ``(H, W[, C])`` torch tensor (on a GPU, say) is scored where it
is, with the same operations in float64 torch (``hr`` may stay NumPy: it is moved there); the
NumPy code is the reference, and the two agree to ~1e-14 (only summation order differs;
tests/test_metrics.py holds them within 1e-6 dB / 1e-7 on Set5 and Set14).
"""
import numpy as np
import torch
from scipy import ndimage

PEAK = 255.0
SSIM_WINDOW = 11  # Gaussian window side, Wang et al.'s ssim_index.m
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * PEAK) ** 2
SSIM_C2 = (0.03 * PEAK) ** 2


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float64 BT.601 luma in [16, 235], not rounded.

    MATLAB's ``rgb2ycbcr`` on uint8 input, without its final rounding back to uint8.
    """
    _check_uint8(img, "img")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"rgb_to_y expects an (H, W, 3) RGB image, got shape {img.shape}")
    rgb = img.astype(np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def psnr(sr: np.ndarray, hr: np.ndarray, crop_border: int, y_channel: bool = True) -> float:
    """PSNR in dB (peak 255) of uint8 ``sr`` against ``hr``, (H, W), (H, W, 1) or (H, W, 3).

    y_channel: compare RGB on Y (see :func:`rgb_to_y`); single-channel images are Y already.
    Without it RGB is compared on all three channels (one MSE over all values).
    """
    if isinstance(sr, torch.Tensor):
        a, b = _prepare_torch(sr, hr, crop_border, y_channel)
        mse = torch.mean((a - b) ** 2).item()
    else:
        a, b = _prepare(sr, hr, crop_border, y_channel)
        mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(PEAK**2 / mse))


def ssim(sr: np.ndarray, hr: np.ndarray, crop_border: int, y_channel: bool = True) -> float:
    """SSIM of uint8 ``sr`` against ``hr`` exactly as Wang et al.'s ``ssim_index.m``.

    11x11 Gaussian window (sigma 1.5), C1 = (0.01*255)^2, C2 = (0.03*255)^2, 'valid'
    filtering (no padding), mean of the SSIM map; RGB without ``y_channel``: mean over channels.
    """
    torch_path = isinstance(sr, torch.Tensor)
    a, b = _prepare_torch(sr, hr, crop_border, y_channel) if torch_path else _prepare(sr, hr, crop_border, y_channel)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after cropping, got {tuple(a.shape[:2])}")
    if torch_path:
        return float(torch.stack([_ssim_map_torch(a[..., c], b[..., c]).mean() for c in range(a.shape[2])]).mean())
    return float(np.mean([_ssim_map(a[..., c], b[..., c]).mean() for c in range(a.shape[2])]))


def evaluate_pair(sr: np.ndarray, hr: np.ndarray, scale: int) -> dict[str, float]:
    """The standard protocol for one image pair: Y channel, crop_border = scale."""
    return {"psnr": psnr(sr, hr, crop_border=scale), "ssim": ssim(sr, hr, crop_border=scale)}


def gaussian_window() -> np.ndarray:
    """The normalised 1-D Gaussian whose outer product is MATLAB's fspecial('gaussian', 11, 1.5)."""
    x = np.arange(SSIM_WINDOW) - SSIM_WINDOW // 2
    g = np.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """2-D correlation with the separable window g x g, 'valid' part only (MATLAB filter2 'valid')."""
    r = len(g) // 2
    rows = ndimage.correlate1d(img, g, axis=0, mode="constant")[r:-r]
    return ndimage.correlate1d(rows, g, axis=1, mode="constant")[:, r:-r]


def _ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM map of two float64 (H, W) images, (H-10, W-10), in ssim_index.m's order of operations."""
    g = gaussian_window()
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a * mu_a
    var_b = _filter_valid(b * b, g) - mu_b * mu_b
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)
    den = (mu_a * mu_a + mu_b * mu_b + SSIM_C1) * (var_a + var_b + SSIM_C2)
    return num / den


def _filter_valid_torch(x: torch.Tensor, g: np.ndarray) -> torch.Tensor:
    """:func:`_filter_valid` on the last two dims of float64 ``x``: a weighted sum of shifted views per axis.

    Eleven multiply-adds per axis over the whole image (element-wise, memory-bound on a GPU)
    rather than a float64 ``conv2d``, which was ~9x slower than scipy on a CPU.
    """
    r = len(g)
    h, w = x.shape[-2] - r + 1, x.shape[-1] - r + 1
    rows = x[..., 0:h, :] * float(g[0])
    for k in range(1, r):
        rows.add_(x[..., k:k + h, :], alpha=float(g[k]))
    out = rows[..., 0:w] * float(g[0])
    for k in range(1, r):
        out.add_(rows[..., k:k + w], alpha=float(g[k]))
    return out


def _ssim_map_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """:func:`_ssim_map` in float64 torch: the five images filtered together, rows then columns as NumPy."""
    x = torch.stack([a, b, a * a, b * b, a * b])  # (5, H, W)
    mu_a, mu_b, aa, bb, ab = _filter_valid_torch(x, gaussian_window())
    var_a = aa - mu_a * mu_a
    var_b = bb - mu_b * mu_b
    cov = ab - mu_a * mu_b
    num = (2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)
    den = (mu_a * mu_a + mu_b * mu_b + SSIM_C1) * (var_a + var_b + SSIM_C2)
    return num / den


def _prepare_torch(sr: torch.Tensor, hr, crop_border: int, y_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_prepare` for a uint8 tensor ``sr``; ``hr`` (NumPy or tensor) is moved to its device."""
    if sr.dtype != torch.uint8:
        raise TypeError(f"sr must be uint8 in [0, 255] (quantise SR output first), got {sr.dtype}")
    if isinstance(hr, np.ndarray):
        _check_uint8(hr, "hr")
        hr = torch.from_numpy(np.array(hr))  # a writable copy (decoded images are read-only)
    elif not isinstance(hr, torch.Tensor) or hr.dtype != torch.uint8:
        raise TypeError(f"hr must be a uint8 numpy array or tensor, got {getattr(hr, 'dtype', type(hr).__name__)}")
    hr = hr.to(sr.device)
    crop = _checked_crop(tuple(sr.shape), tuple(hr.shape), crop_border)
    h, w = sr.shape[:2]

    def convert(img: torch.Tensor) -> torch.Tensor:
        img = img.to(torch.float64)
        if img.ndim == 2:
            return img[..., None]
        if img.shape[2] == 3 and y_channel:  # rgb_to_y's operations in its order: the same float64 values
            return (16.0 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0)[..., None]
        return img

    a, b = convert(sr), convert(hr)
    return a[crop : h - crop, crop : w - crop], b[crop : h - crop, crop : w - crop]


def _check_uint8(img, name: str) -> None:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(img).__name__}")
    if img.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8 in [0, 255] (quantise SR output first), got {img.dtype}")


def _checked_crop(sr_shape: tuple, hr_shape: tuple, crop_border) -> int:
    """The crop, once the pair's shapes and the crop are checked (the same rules for NumPy and torch)."""
    if sr_shape != hr_shape:
        raise ValueError(f"sr and hr shapes differ: sr {sr_shape} vs hr {hr_shape}")
    if not (len(sr_shape) == 2 or (len(sr_shape) == 3 and sr_shape[2] in (1, 3))):
        raise ValueError(f"expected (H, W), (H, W, 1) or (H, W, 3) images, got shape {sr_shape}")
    crop = int(crop_border)
    if crop != crop_border or crop < 0:
        raise ValueError(f"crop_border must be an integer >= 0, got {crop_border!r}")
    h, w = sr_shape[:2]
    if 2 * crop >= min(h, w):
        raise ValueError(f"crop_border {crop} leaves nothing of a {h}x{w} image")
    return crop


def _prepare(sr, hr, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Checked, converted and cropped float64 (H, W, C) pair; C is 1 (Y or gray) or 3 (RGB)."""
    _check_uint8(sr, "sr")
    _check_uint8(hr, "hr")
    crop = _checked_crop(sr.shape, hr.shape, crop_border)
    h, w = sr.shape[:2]

    def convert(img: np.ndarray) -> np.ndarray:
        if img.ndim == 2:
            return img.astype(np.float64)[..., None]
        if img.shape[2] == 3 and y_channel:
            return rgb_to_y(img)[..., None]
        return img.astype(np.float64)

    a, b = convert(sr), convert(hr)
    return a[crop : h - crop, crop : w - crop], b[crop : h - crop, crop : w - crop]

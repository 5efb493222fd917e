"""PSNR/SSIM under the standard protocol: hand-worked cases, a slow SSIM, and the published bicubic row."""
import csv
import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import srcore
from srcore.metrics import SSIM_C1, SSIM_C2, evaluate_pair, psnr, rgb_to_y, ssim
from srcore.resize import imresize

RNG = np.random.default_rng(0)


def gray(value: int, shape=(12, 12)) -> np.ndarray:
    return np.full(shape, value, dtype=np.uint8)


def test_rgb_to_y_hand_values():
    px = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], dtype=np.uint8)
    y = rgb_to_y(px)
    assert y.dtype == np.float64 and y.shape == (1, 3)
    np.testing.assert_allclose(y[0], [16.0, 235.0, 16.0 + 65.481], rtol=0, atol=1e-12)


def test_psnr_of_a_constant_difference_of_one():
    expected = 10 * math.log10(255**2 / 1)  # 48.1308...
    assert psnr(gray(101), gray(100), crop_border=0) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(48.1308036, abs=1e-7)
    # RGB without the Y channel: the MSE runs over all values.
    rgb = RNG.integers(0, 255, size=(12, 12, 3), dtype=np.uint8)
    assert psnr(rgb + 1, rgb, crop_border=0, y_channel=False) == pytest.approx(expected, abs=1e-12)


def test_psnr_of_identical_images_is_inf():
    img = RNG.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    assert psnr(img, img.copy(), crop_border=2) == math.inf


def test_crop_border_removes_every_side():
    hr = RNG.integers(0, 200, size=(20, 24, 3), dtype=np.uint8)
    sr = hr.copy()
    sr[:3] += 50
    sr[-3:] += 50
    sr[:, :3] += 50
    sr[:, -3:] += 50
    assert psnr(sr, hr, crop_border=3) == math.inf
    assert psnr(sr, hr, crop_border=2) < 30
    sr[3, 3] += 1
    assert psnr(sr, hr, crop_border=3) < math.inf


def test_single_channel_is_used_as_y():
    a = RNG.integers(0, 256, size=(16, 16), dtype=np.uint8)
    b = RNG.integers(0, 256, size=(16, 16), dtype=np.uint8)
    mse = np.mean((a[2:-2, 2:-2].astype(np.float64) - b[2:-2, 2:-2]) ** 2)
    assert psnr(a, b, crop_border=2) == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-12)
    assert psnr(a[..., None], b[..., None], crop_border=2) == psnr(a, b, crop_border=2)
    assert ssim(a[..., None], b[..., None], crop_border=2) == ssim(a, b, crop_border=2)


def test_y_channel_of_rgb_matches_rgb_to_y():
    a = RNG.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    b = RNG.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    mse = np.mean((rgb_to_y(a) - rgb_to_y(b))[1:-1, 1:-1] ** 2)
    assert psnr(a, b, crop_border=1) == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-12)


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"\(8, 8, 3\).*\(8, 9, 3\)"):
        psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8), crop_border=0)
    with pytest.raises(ValueError, match=r"\(16, 16\).*\(16, 16, 3\)"):
        ssim(np.zeros((16, 16), np.uint8), np.zeros((16, 16, 3), np.uint8), crop_border=0)
    with pytest.raises(TypeError, match="uint8"):
        psnr(np.zeros((8, 8)), np.zeros((8, 8)), crop_border=0)
    with pytest.raises(ValueError, match="crop_border"):
        psnr(gray(0), gray(0), crop_border=6)


def ssim_by_loops(a: np.ndarray, b: np.ndarray) -> float:
    """ssim_index.m written out: fspecial('gaussian', 11, 1.5), filter2 'valid', mean of the map."""
    x = np.arange(11) - 5
    window = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5**2))
    window /= window.sum()
    a, b = a.astype(np.float64), b.astype(np.float64)
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            mu_a, mu_b = np.sum(window * pa), np.sum(window * pb)
            var_a = np.sum(window * pa * pa) - mu_a**2
            var_b = np.sum(window * pb * pb) - mu_b**2
            cov = np.sum(window * pa * pb) - mu_a * mu_b
            num = (2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)
            values.append(num / ((mu_a**2 + mu_b**2 + SSIM_C1) * (var_a + var_b + SSIM_C2)))
    return float(np.mean(values))


def test_ssim_of_identical_images_is_one():
    img = RNG.integers(0, 256, size=(32, 24, 3), dtype=np.uint8)
    assert ssim(img, img.copy(), crop_border=2) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_a_direct_loop_implementation():
    a = RNG.integers(0, 256, size=(16, 16), dtype=np.uint8)
    b = np.clip(a.astype(int) + RNG.integers(-40, 40, size=a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, b, crop_border=0) == pytest.approx(ssim_by_loops(a, b), abs=1e-12)
    rgb_a = RNG.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    rgb_b = RNG.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    per_channel = np.mean([ssim_by_loops(rgb_a[..., c], rgb_b[..., c]) for c in range(3)])
    assert ssim(rgb_a, rgb_b, crop_border=0, y_channel=False) == pytest.approx(per_channel, abs=1e-12)


def test_ssim_of_two_constant_images_is_the_closed_form():
    mu_a, mu_b = 90.0, 120.0
    expected = (2 * mu_a * mu_b + SSIM_C1) / (mu_a**2 + mu_b**2 + SSIM_C1)  # variances are zero
    assert ssim(gray(90, (20, 20)), gray(120, (20, 20)), crop_border=1) == pytest.approx(expected, abs=1e-12)


def test_ssim_agrees_with_scikit_image():
    from skimage.metrics import structural_similarity

    a = RNG.integers(0, 256, size=(40, 50), dtype=np.uint8)
    b = np.clip(a.astype(int) + RNG.integers(-30, 30, size=a.shape), 0, 255).astype(np.uint8)
    theirs = structural_similarity(
        a.astype(np.float64), b.astype(np.float64),
        data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    )
    assert ssim(a, b, crop_border=0) == pytest.approx(theirs, abs=1e-10)


def test_evaluate_pair_uses_the_standard_protocol():
    hr = RNG.integers(0, 256, size=(30, 30, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + RNG.integers(-5, 5, size=hr.shape), 0, 255).astype(np.uint8)
    scores = evaluate_pair(sr, hr, scale=3)
    assert scores == {
        "psnr": psnr(sr, hr, crop_border=3, y_channel=True),
        "ssim": ssim(sr, hr, crop_border=3, y_channel=True),
    }


# The torch path (SR on the GPU is scored there) equals the NumPy reference.


@pytest.fixture
def one_torch_thread():
    """The comparison runs on a shared CPU, where torch's element-wise ops with 2 threads crawl under contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_torch_metrics_equal_numpy_on_set5_and_set14_bicubic(data_root, one_torch_thread):
    worst_psnr = worst_ssim = 0.0
    n = 0
    for dataset in ("Set5", "Set14"):
        for img in hr_images(data_root, dataset):
            for scale in (2, 3, 4):
                h, w = img.shape[:2]
                hr = img[: h - h % scale, : w - w % scale]
                sr = imresize(imresize(hr, 1 / scale), scale)
                ref = evaluate_pair(sr, hr, scale)
                got = evaluate_pair(torch.from_numpy(sr), hr, scale)
                worst_psnr = max(worst_psnr, abs(got["psnr"] - ref["psnr"]))
                worst_ssim = max(worst_ssim, abs(got["ssim"] - ref["ssim"]))
                n += 1
    assert n == 3 * (5 + 14)
    assert worst_psnr <= 1e-6 and worst_ssim <= 1e-7, (worst_psnr, worst_ssim)


def test_torch_metrics_follow_the_protocol_options(one_torch_thread):
    a = RNG.integers(0, 256, size=(24, 20, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + RNG.integers(-20, 20, size=a.shape), 0, 255).astype(np.uint8)
    for crop, y in ((0, False), (3, True), (1, False)):
        assert psnr(torch.from_numpy(a), torch.from_numpy(b), crop, y) == pytest.approx(psnr(a, b, crop, y), abs=1e-9)
        assert ssim(torch.from_numpy(a), b, crop, y) == pytest.approx(ssim(a, b, crop, y), abs=1e-12)
    g = a[..., 1].copy()
    assert psnr(torch.from_numpy(g), g, 2) == math.inf
    assert ssim(torch.from_numpy(g[..., None]), b[..., 1:2].copy(), 2) == pytest.approx(ssim(g, b[..., 1].copy(), 2), abs=1e-12)
    with pytest.raises(TypeError, match="uint8"):
        psnr(torch.zeros(8, 8), np.zeros((8, 8), np.uint8), crop_border=0)
    with pytest.raises(ValueError, match=r"\(8, 8, 3\).*\(8, 9, 3\)"):
        psnr(torch.zeros(8, 8, 3, dtype=torch.uint8), np.zeros((8, 9, 3), np.uint8), crop_border=0)


# Acceptance: the bicubic baseline reproduces the published Bicubic row.

TOLERANCE_DB = 0.03


def published(paper: str, table: str, method: str, metric: str) -> dict[tuple[str, int], float]:
    with open(Path(srcore.__file__).parent / "published.csv", newline="") as f:
        return {
            (row["dataset"], int(row["scale"])): float(row["value"])
            for row in csv.DictReader(f)
            if (row["paper"], row["table"], row["method"], row["metric"]) == (paper, table, method, metric)
        }


BICUBIC_PSNR = published("seo_squeezesr_kd", "Table 1", "Bicubic", "PSNR")


@functools.lru_cache(maxsize=3)
def hr_images(root: Path, dataset: str) -> tuple[np.ndarray, ...]:
    def read(path: Path) -> np.ndarray:
        img = Image.open(path)
        return np.asarray(img if img.mode == "L" else img.convert("RGB"))  # Set14's bridge is gray

    return tuple(read(p) for p in sorted((root / "benchmark" / dataset / "HR").glob("*.png")))


@pytest.mark.parametrize("scale", [2, 3, 4])  # varies fastest: each dataset is read once
@pytest.mark.parametrize("dataset", ["Set5", "Set14", "Urban100"])
def test_bicubic_baseline_reproduces_published_psnr(data_root, dataset, scale):
    scores = []
    for img in hr_images(data_root, dataset):
        h, w = img.shape[:2]
        hr = img[: h - h % scale, : w - w % scale]
        sr = imresize(imresize(hr, 1 / scale), scale)
        scores.append(psnr(sr, hr, crop_border=scale, y_channel=True))
    measured, expected = float(np.mean(scores)), BICUBIC_PSNR[(dataset, scale)]
    print(f"{dataset} x{scale}: bicubic {measured:.4f} dB, published {expected:.2f}")
    assert measured == pytest.approx(expected, abs=TOLERANCE_DB), f"{dataset} x{scale}: {measured:.4f} vs {expected}"

"""srcore.data.load_image on every kind of PNG a benchmark folder may hold: grayscale kept as Y,
16 bits scaled (not clipped), palettes expanded, opaque alpha dropped with a warning, transparency refused."""
import logging
import math

import numpy as np
import pytest
from PIL import Image

from srcore import data
from srcore.metrics import psnr, ssim

RNG = np.random.default_rng(0)


def save(path, arr):
    Image.fromarray(arr).save(path)
    return path


def test_grayscale_stays_single_channel_and_is_scored_as_y_directly(tmp_path):
    hr = RNG.integers(0, 256, (24, 24), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + 3, 0, 255).astype(np.uint8)
    hr_loaded = data.load_image(save(tmp_path / "hr.png", hr))
    sr_loaded = data.load_image(save(tmp_path / "sr.png", sr))
    assert hr_loaded.shape == (24, 24) and hr_loaded.dtype == np.uint8 and np.array_equal(hr_loaded, hr)
    # Y used directly: the MSE of the gray values themselves, not of 16 + 219/255 * value
    d = (sr.astype(float) - hr.astype(float))[2:-2, 2:-2]
    assert psnr(sr_loaded, hr_loaded, crop_border=2) == pytest.approx(10 * math.log10(255**2 / np.mean(d**2)), abs=1e-12)
    assert psnr(sr_loaded, hr_loaded, crop_border=2) == psnr(sr_loaded[..., None], hr_loaded[..., None], crop_border=2)
    assert ssim(sr_loaded, hr_loaded, crop_border=2) == ssim(sr_loaded[..., None], hr_loaded[..., None], crop_border=2)
    Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1").save(tmp_path / "bit.png")  # 1-bit: 0 or 255
    assert data.load_image(tmp_path / "bit.png").tolist() == [[0, 255]]


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    g16 = np.array([[0, 257, 32896, 65535]], np.uint16)  # -> 0, 1, 128, 255
    Image.fromarray(g16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    out = data.load_image(tmp_path / "g16.png")
    assert out.dtype == np.uint8 and out.tolist() == [[0, 1, 128, 255]]


def test_palette_is_expanded_to_rgb(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = (200, 30, 10)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    assert np.array_equal(data.load_image(tmp_path / "p.png"), rgb)
    # a palette with a transparent entry is judged like RGBA: refused, naming the file
    im = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    im.save(tmp_path / "pt.png", transparency=im.getpixel((0, 0)))
    with pytest.raises(data.DataError, match=r"pt\.png: P image with transparency \(8 of 16 pixels"):
        data.load_image(tmp_path / "pt.png")


def test_opaque_alpha_is_dropped_with_a_warning_naming_the_file(tmp_path, caplog):
    rgba = RNG.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    path = save(tmp_path / "opaque.png", rgba)
    with caplog.at_level(logging.WARNING, logger="srcore.data"):
        out = data.load_image(path)
    assert np.array_equal(out, rgba[..., :3])
    assert [r.getMessage() for r in caplog.records] == [f"{path}: RGBA image with a fully opaque alpha channel: alpha dropped"]
    la = np.stack([rgba[..., 0], rgba[..., 3]], axis=-1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert np.array_equal(data.load_image(tmp_path / "la.png"), rgba[..., 0])


def test_real_transparency_is_refused_naming_the_file(tmp_path):
    rgba = np.full((4, 4, 4), 255, np.uint8)
    rgba[0, :3, 3] = 0
    path = save(tmp_path / "hole.png", rgba)
    with pytest.raises(data.DataError) as err:
        data.load_image(path)
    assert str(err.value).startswith(f"{path}: RGBA image with transparency (3 of 16 pixels have alpha < 255)")
    Image.fromarray(np.zeros((2, 2), np.int32), "I").save(tmp_path / "i32.tif")
    with pytest.raises(data.DataError, match=r"i32\.tif: image mode I is not supported"):
        data.load_image(tmp_path / "i32.tif")

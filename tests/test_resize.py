"""imresize is MATLAB's bicubic: checked against MATLAB-made LR images, a slow reference, and by hand."""
import numpy as np
import pytest
from PIL import Image

from srcore.resize import PADDINGS, cubic, imresize, imresize_reference

SET5 = ("baby", "bird", "butterfly", "head", "woman")
# The bar for "MATLAB-compatible", over all pixels of Set5 at one scale.
MIN_WITHIN_ONE = 0.995
MAX_MEAN_ABS_DIFF = 0.15


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def matlab_agreement(resize, data_root, scale: int) -> tuple[float, float, float]:
    """(fraction within +-1, mean |diff|, fraction equal) of resize(HR) against MATLAB's Set5 LR."""
    diffs = []
    for name in SET5:
        hr = modcrop(np.asarray(Image.open(data_root / f"benchmark/Set5/HR/{name}.png").convert("RGB")), scale)
        lr = np.asarray(Image.open(data_root / f"benchmark/Set5/LR_bicubic/X{scale}/{name}x{scale}.png").convert("RGB"))
        out = resize(hr)
        assert out.shape == lr.shape, (name, out.shape, lr.shape)
        diffs.append(np.abs(out.astype(np.int16) - lr.astype(np.int16)).ravel())
    d = np.concatenate(diffs)
    return float(np.mean(d <= 1)), float(d.mean()), float(np.mean(d == 0))


def meets_bar(within_one: float, mad: float) -> bool:
    return within_one >= MIN_WITHIN_ONE and mad <= MAX_MEAN_ABS_DIFF


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_downscale_matches_matlab_lr(data_root, scale, padding):
    within, mad, equal = matlab_agreement(lambda hr: imresize(hr, 1 / scale, padding=padding), data_root, scale)
    msg = f"x{scale} {padding}: within +-1 {within:.5f}, MAD {mad:.4f}, equal {equal:.5f}"
    print(msg)
    assert meets_bar(within, mad), msg


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_default_padding_reproduces_matlab_lr_bit_for_bit(data_root, scale):
    # The benchmark LR files come from a MATLAB release that clamps border taps.
    _, mad, equal = matlab_agreement(lambda hr: imresize(hr, 1 / scale), data_root, scale)
    assert equal == 1.0, f"x{scale}: equal {equal:.5f}, MAD {mad:.4f}"


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_pillow_bicubic_does_not_meet_the_bar(data_root, scale):
    def pillow(hr):
        h, w = hr.shape[:2]
        return np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), Image.BICUBIC))

    within, mad, _ = matlab_agreement(pillow, data_root, scale)
    assert not meets_bar(within, mad), f"Pillow x{scale}: within +-1 {within:.5f}, MAD {mad:.4f}"


SCALES = [1 / 2, 1 / 3, 1 / 4, 2, 3, 4]
SHAPES = [(7, 5), (9, 11, 3), (13, 6, 1), (5, 8, 3)]


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("shape", SHAPES)
def test_fast_equals_reference(shape, scale, padding):
    rng = np.random.default_rng(hash((shape, scale)) % 2**32)
    img = rng.integers(0, 256, size=shape, dtype=np.uint8)
    fast, slow = imresize(img, scale, padding=padding), imresize_reference(img, scale, padding=padding)
    assert fast.dtype == np.uint8 and fast.shape == slow.shape
    assert np.array_equal(fast, slow)

    as_float = img.astype(np.float32) / 255
    fast, slow = imresize(as_float, scale, padding=padding), imresize_reference(as_float, scale, padding=padding)
    assert fast.dtype == np.float64
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-10)


@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3])
def test_constant_image_stays_constant(scale):
    img = np.full((9, 7, 3), 137, dtype=np.uint8)
    assert np.all(imresize(img, scale) == 137)
    np.testing.assert_allclose(imresize(img.astype(np.float64), scale), 137.0, rtol=0, atol=1e-12)


def test_output_shapes_for_odd_sizes():
    img = np.zeros((7, 5), dtype=np.uint8)
    assert imresize(img, 1 / 2).shape == (4, 3)  # ceil(3.5), ceil(2.5)
    assert imresize(img, 3).shape == (21, 15)
    assert imresize(np.zeros((7, 5, 4), dtype=np.uint8), 1 / 3).shape == (3, 2, 4)


def test_cubic_kernel_at_the_x2_offsets():
    # Keys, a = -0.5: |x| <= 1: 1.5|x|^3 - 2.5|x|^2 + 1;  1 < |x| <= 2: -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2.
    # cubic(0.25) = 1.5/64 - 2.5/16 + 1              =  0.8671875
    # cubic(0.75) = 1.5*27/64 - 2.5*9/16 + 1          =  0.2265625
    # cubic(1.25) = -0.5*125/64 + 2.5*25/16 - 5 + 2   = -0.0703125
    # cubic(1.75) = -0.5*343/64 + 2.5*49/16 - 7 + 2   = -0.0234375
    offsets = np.array([1.75, 0.75, -0.25, -1.25])
    np.testing.assert_array_equal(cubic(offsets), [-0.0234375, 0.2265625, 0.8671875, -0.0703125])
    assert cubic(np.array([0.0, 1.0, 2.0, 2.5])).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_x2_upscale_of_a_ramp_by_hand():
    # Output pixel o (0-based) of a x2 upscale sits at input position o/2 - 0.25, so
    # o = 2k   uses inputs k-2..k+1 at distances 1.75, 0.75, 0.25, 1.25;
    # o = 2k+1 uses inputs k-1..k+2 at distances 1.25, 0.25, 0.75, 1.75.
    w_even = np.array([-0.0234375, 0.2265625, 0.8671875, -0.0703125])
    w_odd = w_even[::-1]
    row = np.array([0, 10, 20, 30, 45, 60, 80, 100, 120, 150, 180, 200], dtype=np.float64)
    out = imresize(np.tile(row, (3, 1)), 2)  # rows are identical: the vertical pass is exact
    assert out.shape == (6, 24)
    for k in range(2, len(row) - 2):  # interior: no tap touches the border
        assert out[0, 2 * k] == w_even @ row[k - 2 : k + 2]
        assert out[0, 2 * k + 1] == w_odd @ row[k - 1 : k + 3]
    # A linear ramp is reproduced exactly: value 10*(o/2 - 0.25) = 5*o - 2.5. On uint8 input
    # every interior output is a tie at .5, which MATLAB rounds away from zero (not to even).
    ramp = np.tile(np.arange(0, 120, 10, dtype=np.uint8), (3, 1))
    o = np.arange(4, 20)
    np.testing.assert_array_equal(imresize(ramp, 2)[1, 4:20], 5 * o - 2)


def test_bad_inputs():
    img = np.zeros((8, 8), dtype=np.uint8)
    for scale in (0, -2, float("nan")):
        with pytest.raises(ValueError, match="scale"):
            imresize(img, scale)
    with pytest.raises(TypeError, match="numpy array"):
        imresize([[0, 1], [2, 3]], 2)
    with pytest.raises(ValueError, match="shape"):
        imresize(np.zeros((2, 2, 2, 2), dtype=np.uint8), 2)
    with pytest.raises(TypeError, match="int64"):
        imresize(np.zeros((4, 4), dtype=np.int64), 2)
    with pytest.raises(ValueError, match="padding"):
        imresize(img, 2, padding="reflect")

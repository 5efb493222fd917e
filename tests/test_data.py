"""Data loading: the known layout, patch alignment, and clear errors on bad input."""
import io
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srcore import data, resize


def write_png(path, arr):
    Image.fromarray(arr).save(path)
    return path


def test_set5_reads_matlab_lr_and_modcrops(data_root):
    pairs = data.benchmark_set("Set5", 3, data_root)
    assert [p.name for p in pairs] == ["baby", "bird", "butterfly", "head", "woman"]
    for p in pairs:
        assert p.hr.shape[0] % 3 == 0 and p.hr.shape[1] % 3 == 0
        assert p.lr.shape[:2] == (p.hr.shape[0] // 3, p.hr.shape[1] // 3)
    lr_file = data.load_image(data_root / "benchmark/Set5/LR_bicubic/X3/birdx3.png")
    assert np.array_equal(pairs[1].lr, lr_file)


def test_set14_keeps_its_grayscale_image_and_names_filter(data_root):
    (bridge,) = data.benchmark_set("Set14", 2, data_root, names=["bridge"])
    assert bridge.hr.ndim == 2 and bridge.lr.ndim == 2
    with pytest.raises(data.DataError, match="img_999"):
        data.benchmark_set("Urban100", 4, data_root, names=["img_999"])


def test_patches_are_aligned_and_augmented_together():
    rng = np.random.default_rng(0)
    low = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    hr = np.kron(low, np.ones((2, 2, 1), dtype=np.uint8))  # every LR pixel a 2x2 HR block
    ts = data.TrainSet({"a": hr}, scale=2, hr_patch=8)
    ts.lr[0] = low  # the exact LR, so alignment can be checked to the pixel
    sampler = data.PatchSampler(ts, batch_size=64, seed=1)
    lr, hr_b = next(sampler)
    assert lr.shape == (64, 3, 4, 4) and hr_b.shape == (64, 3, 8, 8)
    assert lr.dtype == hr_b.dtype and 0 <= float(lr.min()) and float(lr.max()) <= 1
    assert np.array_equal(lr.numpy(), hr_b[:, :, ::2, ::2].numpy())
    # with 64 draws, flips/rotations must have produced more than one orientation of the same content
    assert len({tuple(x.flatten()[:4].tolist()) for x in lr}) > 1


def test_sampler_state_round_trips():
    ts = data.TrainSet({"a": np.zeros((16, 16, 3), np.uint8) + np.arange(16, dtype=np.uint8)[:, None, None]}, 2, 4)
    s1 = data.PatchSampler(ts, 3, seed=5)
    next(s1)
    state = s1.state_dict()
    want = next(s1)
    s2 = data.PatchSampler(ts, 3, seed=99)
    s2.load_state_dict(state)
    got = next(s2)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(want, got))


class SamplerBeforeUint8:
    """PatchSampler as it was before batches were handed over as uint8 (commit 20d7f48), kept as the reference."""

    def __init__(self, train_set, batch_size, seed=0):
        self.ts, self.batch_size = train_set, batch_size
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def _patch(self):
        ts, s, rng = self.ts, self.ts.scale, self.rng
        i = int(rng.integers(len(ts)))
        lp = ts.hr_patch // s
        lr_img, hr_img = ts.lr[i], ts.hr[i]
        y = int(rng.integers(lr_img.shape[0] - lp + 1))
        x = int(rng.integers(lr_img.shape[1] - lp + 1))
        lr = lr_img[y:y + lp, x:x + lp]
        hr = hr_img[y * s:(y + lp) * s, x * s:(x + lp) * s]
        hflip, vflip, rot = rng.integers(2, size=3)
        if hflip:
            lr, hr = lr[:, ::-1], hr[:, ::-1]
        if vflip:
            lr, hr = lr[::-1], hr[::-1]
        if rot:
            lr, hr = lr.transpose(1, 0, 2), hr.transpose(1, 0, 2)
        return lr, hr

    def __next__(self):
        lrs, hrs = zip(*(self._patch() for _ in range(self.batch_size)))
        to_t = lambda xs: torch.from_numpy(np.stack(xs).transpose(0, 3, 1, 2).copy()).float().div_(255)  # noqa: E731
        return to_t(lrs), to_t(hrs)


def random_train_set(scale=3, hr_patch=24):
    rng = np.random.default_rng(3)
    shapes = [(60, 45), (33, 90), (24, 24), (75, 75)]  # odd sizes, one exactly the patch, modcropped by TrainSet
    return data.TrainSet({f"i{k}": rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for k, hw in enumerate(shapes)},
                         scale, hr_patch)


def test_sampler_gives_the_same_patches_in_the_same_order_as_before(lr_cache):
    ts = random_train_set()
    new, old = data.PatchSampler(ts, 7, seed=11), SamplerBeforeUint8(ts, 7, seed=11)
    for _ in range(20):
        (lr, hr), (lr_ref, hr_ref) = next(new), next(old)
        assert lr.dtype == hr.dtype == torch.float32 and lr.shape == (7, 3, 8, 8) and hr.shape == (7, 3, 24, 24)
        assert torch.equal(lr, lr_ref) and torch.equal(hr, hr_ref)  # bit for bit
    lr8, hr8 = new.draw()  # uint8 hand-over: the same pixels, x / 255 is the float batch
    lr_ref, hr_ref = next(old)
    assert lr8.dtype == torch.uint8 and torch.equal(lr8.float().div_(255), lr_ref) and torch.equal(hr8.float() / 255, hr_ref)


def test_uint8_to_float_is_division_by_255():
    u = torch.arange(256, dtype=torch.uint8).reshape(2, 2, 8, 8)
    assert torch.equal(data.uint8_to_float(u), u.float().div_(255))


# --- the LR cache ----------------------------------------------------------------------------
@pytest.fixture
def lr_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SRCORE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "lr_bicubic"


@pytest.fixture
def resizes(monkeypatch):
    """The images imresize was called on (TrainSet and bicubic_lr call srcore.data.imresize)."""
    calls, real = [], data.imresize

    def counting(img, scale, **kw):
        calls.append((img.shape, scale, kw.get("padding")))
        return real(img, scale, **kw)

    monkeypatch.setattr(data, "imresize", counting)
    return calls


def test_lr_cache_hit_is_bit_identical_and_resizes_nothing(lr_cache, resizes):
    rng = np.random.default_rng(0)
    images = {f"i{k}": rng.integers(0, 256, (40 + 4 * k, 52, 3), dtype=np.uint8) for k in range(3)}
    first = data.TrainSet(images, 2, 16)
    assert len(resizes) == 3 and len(list(lr_cache.glob("*.npy"))) == 3
    second = data.TrainSet(images, 2, 16)
    assert len(resizes) == 3  # all three read from the cache
    for hr, a, b in zip(first.hr, first.lr, second.lr):
        assert a.dtype == b.dtype == np.uint8 and np.array_equal(a, b) and b.flags.writeable
        assert np.array_equal(b, resize.imresize(hr, 1 / 2))  # what imresize makes, to the bit
    assert not list(lr_cache.glob(".*"))  # no temporary file left behind


def test_lr_cache_misses_when_the_image_scale_or_padding_changes(lr_cache, resizes):
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (36, 48, 3), dtype=np.uint8)
    data.bicubic_lr(hr, 2)
    data.bicubic_lr(hr, 2)
    assert len(resizes) == 1
    changed = hr.copy()
    changed[17, 5, 1] ^= 1  # one bit of one pixel
    assert np.array_equal(data.bicubic_lr(changed, 2), resize.imresize(changed, 1 / 2))
    data.bicubic_lr(hr, 3)
    assert np.array_equal(data.bicubic_lr(hr, 2, padding="symmetric"), resize.imresize(hr, 1 / 2, padding="symmetric"))
    data.bicubic_lr(hr[..., 0].copy(), 2)  # the same pixels as a gray image: another shape, another key
    assert len(resizes) == 5 and len(list(lr_cache.glob("*.npy"))) == 5
    assert [c[1:] for c in resizes] == [(0.5, "replicate"), (0.5, "replicate"), (1 / 3, "replicate"),
                                        (0.5, "symmetric"), (0.5, "replicate")]


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "empty", "another shape"])
def test_a_corrupt_or_partial_cache_file_is_made_again(lr_cache, resizes, damage):
    hr = np.random.default_rng(2).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    want = data.bicubic_lr(hr, 4)
    (path,) = lr_cache.glob("*.npy")
    raw = path.read_bytes()
    if damage == "flip a byte":
        raw = raw[:200] + bytes([raw[200] ^ 0x10]) + raw[201:]
    elif damage == "truncate":
        raw = raw[:len(raw) // 2]
    elif damage == "empty":
        raw = b""
    else:  # a well-formed file (right CRC) holding an image of the wrong size is not trusted either
        buf = io.BytesIO()
        np.save(buf, np.zeros((5, 5, 3), np.uint8))
        raw = buf.getvalue() + zlib.crc32(buf.getvalue()).to_bytes(4, "little")
    path.write_bytes(raw)
    got = data.bicubic_lr(hr, 4)
    assert np.array_equal(got, want) and len(resizes) == 2
    assert np.array_equal(data.bicubic_lr(hr, 4), want) and len(resizes) == 2  # rewritten whole: a hit again


def test_clearing_the_lr_cache_while_another_run_fills_it_keeps_that_runs_file(tmp_path, monkeypatch, resizes):
    rng = np.random.default_rng(4)
    old, new = (rng.integers(0, 256, (24, 24), dtype=np.uint8) for _ in range(2))
    monkeypatch.setenv("SRCORE_CACHE", str(tmp_path))
    data.bicubic_lr(old, 2)
    listed = Path.iterdir

    def listed_then_another_run_writes(folder):
        entries = list(listed(folder))
        data.bicubic_lr(new, 2)  # another run caches an image after the clear listed the folder
        return iter(entries)

    with monkeypatch.context() as m:
        m.setattr(Path, "iterdir", listed_then_another_run_writes)
        assert data.clear_cache() > 0  # no "directory not empty" error
    assert len(list((tmp_path / "lr_bicubic").iterdir())) == 1
    data.bicubic_lr(new, 2)
    assert len(resizes) == 2  # the other run's file is still a hit


def test_lr_cache_is_moved_by_srcore_cache_cleared_and_switched_off(tmp_path, monkeypatch, resizes):
    hr = np.random.default_rng(3).integers(0, 256, (24, 24), dtype=np.uint8)
    monkeypatch.setenv("SRCORE_CACHE", str(tmp_path / "elsewhere"))
    assert data.cache_dir() == tmp_path / "elsewhere"
    data.bicubic_lr(hr, 2)
    assert len(list((tmp_path / "elsewhere" / "lr_bicubic").iterdir())) == 1
    assert data.clear_cache() > 0 and not (tmp_path / "elsewhere" / "lr_bicubic").exists()
    data.bicubic_lr(hr, 2)
    assert len(resizes) == 2  # cleared: made again
    monkeypatch.setenv("SRCORE_CACHE", "none")
    assert data.cache_dir() is None and data.clear_cache() == 0
    data.bicubic_lr(hr, 2)
    data.bicubic_lr(hr, 2)
    assert len(resizes) == 4  # no cache: every call resizes
    monkeypatch.delenv("SRCORE_CACHE")
    assert data.cache_dir() == Path.home() / ".cache" / "srcore"


def test_lr_cache_keys_fall_back_to_sha256_without_xxhash(lr_cache, resizes, monkeypatch):
    hr = np.random.default_rng(5).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    monkeypatch.setitem(sys.modules, "xxhash", None)  # import xxhash raises ImportError
    assert np.array_equal(data.bicubic_lr(hr, 2), data.bicubic_lr(hr, 2)) and len(resizes) == 1
    assert [p.name[:7] for p in lr_cache.glob("*.npy")] == ["sha256-"]


def test_an_unwritable_cache_warns_and_still_returns_the_lr(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SRCORE_CACHE", str(blocker))
    monkeypatch.setattr(data, "_warned_readonly", [])
    hr = np.random.default_rng(4).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="LR cache not written"):
        lr = data.bicubic_lr(hr, 3)
    assert np.array_equal(lr, resize.imresize(hr, 1 / 3))


# --- bad input gets a clear error naming the file or parameter ------------------------
def test_corrupt_png_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(data.DataError, match="broken.png: cannot decode"):
        data.load_image(bad)


def test_missing_image_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.png"):
        data.load_image(tmp_path / "nothere.png")


def test_grayscale_is_refused_where_rgb_is_needed_and_converted_on_request(tmp_path):
    gray = data.load_image(write_png(tmp_path / "g.png", np.full((8, 8), 7, np.uint8)))
    assert gray.shape == (8, 8)
    with pytest.raises(ValueError, match=r"RGB image of shape \(H,W,3\).*to_rgb"):
        data.image_to_tensor(gray)
    assert data.image_to_tensor(data.to_rgb(gray)).shape == (1, 3, 8, 8)


def test_image_smaller_than_a_patch_is_named(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    write_png(folder / "big.png", np.zeros((64, 64, 3), np.uint8))
    write_png(folder / "tiny.png", np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(data.DataError, match=r"train/tiny.png: 20x30 is smaller than the HR patch 48x48"):
        data.TrainSet.from_folders([folder], scale=2, hr_patch=48)
    ts = data.TrainSet.from_folders([folder], scale=2, hr_patch=48, small_images="skip")
    assert ts.names == ["train/big.png"] and ts.skipped == ["train/tiny.png"]
    with pytest.raises(data.DataError, match="empty"):
        data.TrainSet.from_folders([folder], scale=2, hr_patch=96, small_images="skip")


def test_wrong_scale():
    with pytest.raises(ValueError, match=r"scale must be one of \(2, 3, 4\), got 5"):
        data.benchmark_set("Set5", 5)
    with pytest.raises(ValueError, match="not a multiple of scale 3"):
        data.TrainSet({"a": np.zeros((64, 64, 3), np.uint8)}, 3, 32)


def test_missing_data_root_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("SRCORE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(data.DataError, match=r"SRCORE_DATA=.*nowhere does not exist"):
        data.benchmark_set("Set5", 2)
    monkeypatch.delenv("SRCORE_DATA")
    monkeypatch.setattr(data, "default_data_root", lambda: tmp_path / "data")
    with pytest.raises(data.DataError, match=r"default data root .*data \(SRCORE_DATA is not set\)"):
        data.data_root()


def test_data_is_fetched_where_it_is_read_and_none_stops_reading_not_where_files_go(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "default_data_root", lambda: tmp_path / "data")
    monkeypatch.setenv("SRCORE_DATA", str(tmp_path / "mine"))
    assert data.configured_root() == tmp_path / "mine" and data.configured_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("SRCORE_DATA", "none")  # python -m srcore.download and reproduce --download fetch into data/
    assert data.configured_root() == tmp_path / "data"
    monkeypatch.delenv("SRCORE_DATA")
    assert data.configured_root() == tmp_path / "data"


def test_missing_set_and_unknown_set(tmp_path):
    (tmp_path / "benchmark").mkdir()
    with pytest.raises(data.DataError, match="Set14/HR not found.*srcore.download"):
        data.benchmark_set("Set14", 2, tmp_path)
    with pytest.raises(ValueError, match="unknown benchmark set 'Set15'"):
        data.benchmark_set("Set15", 2, tmp_path)


def test_embedded_images_need_no_data():
    pairs = data.embedded_set(4, limit=2)
    assert len(pairs) == 2 and pairs[0].hr.shape[2] == 3
    assert pairs[0].lr.shape[:2] == (pairs[0].hr.shape[0] // 4, pairs[0].hr.shape[1] // 4)


def test_find_root_falls_back_to_embedded_only_when_no_root_was_asked_for(tmp_path, monkeypatch, data_root):
    assert data.find_root(data_root, benchmarks=["Set5"], train_sets=["T91"]) == data_root
    with pytest.raises(data.DataError, match="lacks benchmark/General100/HR, train/DIV2K: fetch them with "
                                             r"`python -m srcore.download General100 DIV2K( --root \S+)?`"):
        data.find_root(data_root, benchmarks=["Set5", "General100"], train_sets=["T91", "DIV2K"], allow_embedded=True)
    # a data root found at the default place that lacks a set is an error too, never a quiet switch to other images
    monkeypatch.delenv("SRCORE_DATA", raising=False)
    monkeypatch.setattr(data, "default_data_root", lambda: data_root)
    with pytest.raises(data.DataError, match="lacks benchmark/General100/HR: fetch it with "
                                             "`python -m srcore.download General100`"):
        data.find_root(None, benchmarks=["General100"], allow_embedded=True)
    monkeypatch.delenv("SRCORE_DATA", raising=False)
    monkeypatch.setattr(data, "default_data_root", lambda: tmp_path / "none")
    assert data.find_root(None, benchmarks=["Set5"], allow_embedded=True) is None
    with pytest.raises(data.DataError, match="does not exist"):
        data.find_root(None, benchmarks=["Set5"], allow_embedded=False)
    monkeypatch.setenv("SRCORE_DATA", "none")  # data exists, but the user asks for none
    monkeypatch.setattr(data, "default_data_root", lambda: data_root)
    assert data.find_root(None, benchmarks=["Set5"], allow_embedded=True) is None
    with pytest.raises(data.DataError, match="SRCORE_DATA=none"):
        data.find_root(None, benchmarks=["Set5"], allow_embedded=False)

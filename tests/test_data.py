"""Data loading: the known layout, patch alignment, and clear errors on bad input."""
import numpy as np
import pytest
from PIL import Image

from srcore import data


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
    with pytest.raises(data.DataError, match="lacks benchmark/General100/HR, train/DIV2K"):
        data.find_root(data_root, benchmarks=["Set5", "General100"], train_sets=["T91", "DIV2K"], allow_embedded=True)
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


def test_default_data_root_is_data_else_shared_datasets_beside_the_checkout(tmp_path, monkeypatch):
    from srcore import download
    checkout = tmp_path / "checkout"
    monkeypatch.setattr(download, "DEFAULT_DATA_ROOT", checkout / "data")
    monkeypatch.setattr(download, "SIBLING_DATA_ROOT", tmp_path / "shared" / "datasets")
    assert download.default_data_root() == checkout / "data"  # neither exists: the folder downloads go to
    (tmp_path / "shared" / "datasets").mkdir(parents=True)
    assert download.default_data_root() == tmp_path / "shared" / "datasets"
    (checkout / "data").mkdir(parents=True)
    assert download.default_data_root() == checkout / "data"  # the checkout's own data wins

"""Pretrained files (srcore.weights) and perceptual metrics (srcore.perceptual).

Every test runs on temporary caches (torch hub dir, pyiqa's cache dir) and a temporary
$SRCORE_WEIGHTS, so the real caches are never read or written; network access is refused
and recorded wherever a test could reach it.
"""
import os
import socket
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from srcore import perceptual, weights
from srcore.weights import WeightsUnavailable

SHARED_WEIGHTS = Path(os.environ.get("SRCORE_WEIGHTS") or Path(__file__).resolve().parents[1].parent / "shared" / "weights")
NIQE_MAT = SHARED_WEIGHTS / "niqe_modelparameters.mat"


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty torch hub / pyiqa caches and an empty $SRCORE_WEIGHTS under tmp_path."""
    import torch.hub

    pyiqa_download = pytest.importorskip("pyiqa.utils.download_util")
    hub = tmp_path / "hub"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))  # what torch.hub.set_dir sets; undone after the test
    # pyiqa fixed its cache folder when it was imported: point it into tmp too
    monkeypatch.setattr(pyiqa_download, "DEFAULT_CACHE_DIR", str(hub / "pyiqa"))
    user = tmp_path / "user"
    user.mkdir()
    monkeypatch.setenv("SRCORE_WEIGHTS", str(user))
    return SimpleNamespace(user=user, torchvision=hub / "checkpoints", pyiqa=hub / "pyiqa")


@pytest.fixture
def no_network(monkeypatch):
    """Every way these libraries reach the network raises and is recorded."""
    import torch.hub

    pyiqa_download = pytest.importorskip("pyiqa.utils.download_util")
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(pyiqa_download, "download_url_to_file", refuse)
    return attempts


def _put(folder: Path, name: str, data: bytes = b"weights") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


# ---------------------------------------------------------------- catalogue


def test_catalogue_names_are_the_ones_the_libraries_load():
    from torchvision.models import AlexNet_Weights, VGG19_Weights

    pytest.importorskip("pyiqa")
    from pyiqa.archs import inception, lpips_arch, niqe_arch, nrqm_arch

    def base(url):
        return url.rsplit("/", 1)[-1]

    names = {k: [f.name for f in w.files] for k, w in weights.WEIGHTS.items()}
    assert names == {
        "vgg19": [base(VGG19_Weights.IMAGENET1K_V1.url)],
        "niqe": [base(niqe_arch.default_model_urls["url"])],
        "lpips_alex": [base(lpips_arch.default_model_urls["0.1_alex"]), base(AlexNet_Weights.IMAGENET1K_V1.url)],
        "fid_inception": [base(inception.FID_WEIGHTS_URL)],
        "ma": [base(nrqm_arch.default_model_urls["url"])],
    }
    for m in perceptual.METRICS.values():
        assert set(m.needs) <= set(weights.WEIGHTS) and m.lower_better


def test_cache_dirs_follow_torch_hub_and_pyiqa(caches):
    assert weights.cache_dir("torchvision") == caches.torchvision
    assert weights.cache_dir("pyiqa") == caches.pyiqa
    with pytest.raises(KeyError, match="known: .*niqe"):
        weights.find("nique")


# ---------------------------------------------------------------- find / install / require


def test_find_looks_in_user_folder_then_cache(caches):
    assert weights.find("niqe") is None and not weights.available("niqe")
    cached = _put(caches.pyiqa, "niqe_modelparameters.mat")
    assert weights.find("niqe") == cached
    user = _put(caches.user, "niqe_modelparameters.mat")
    assert weights.find("niqe") == user
    # an entry of two files is found only when both are
    _put(caches.user, "LPIPS_v0.1_alex-df73285e.pth")
    assert weights.find("lpips_alex") is None
    assert weights.missing("lpips_alex") == ["alexnet-owt-7be5be79.pth"]
    _put(caches.torchvision, "alexnet-owt-7be5be79.pth")
    assert weights.find("lpips_alex") == caches.user / "LPIPS_v0.1_alex-df73285e.pth"


def test_install_copies_into_the_caches_the_loaders_read(caches):
    assert weights.install("lpips_alex") is None  # nothing to install
    _put(caches.user, "LPIPS_v0.1_alex-df73285e.pth", b"lin")
    _put(caches.user, "alexnet-owt-7be5be79.pth", b"alex")
    assert weights.install("lpips_alex") == caches.pyiqa / "LPIPS_v0.1_alex-df73285e.pth"
    assert (caches.pyiqa / "LPIPS_v0.1_alex-df73285e.pth").read_bytes() == b"lin"
    assert (caches.torchvision / "alexnet-owt-7be5be79.pth").read_bytes() == b"alex"
    _put(caches.user, "vgg19-dcbb9e9d.pth")
    assert weights.require("vgg19") == caches.torchvision / "vgg19-dcbb9e9d.pth"


def test_install_is_atomic_and_idempotent(caches, monkeypatch):
    src = _put(caches.user, "NRQM_model.mat", b"x" * 100_000)
    dst = caches.pyiqa / "NRQM_model.mat"

    # a copy that dies half-way leaves neither the file nor a temporary behind
    def dies(inp, out, *args):
        out.write(inp.read(10))
        raise OSError("disk full")

    with monkeypatch.context() as mp:
        mp.setattr(weights.shutil, "copyfileobj", dies)
        with pytest.raises(OSError, match="disk full"):
            weights.install("ma")
    assert not dst.exists() and list(caches.pyiqa.iterdir()) == []

    # the file appears in one step: os.replace of a complete temporary in the same folder
    replaced = []
    real_replace = os.replace

    def spy(a, b):
        assert Path(a).parent == Path(b).parent and Path(a).read_bytes() == src.read_bytes() and not Path(b).exists()
        replaced.append(b)
        real_replace(a, b)

    monkeypatch.setattr(weights.os, "replace", spy)
    assert weights.install("ma") == dst and dst.read_bytes() == src.read_bytes()
    stat = dst.stat()
    assert weights.install("ma") == dst and weights.require("ma") == dst  # second time: nothing copied
    assert len(replaced) == 1 and dst.stat().st_ino == stat.st_ino
    assert sorted(p.name for p in caches.pyiqa.iterdir()) == ["NRQM_model.mat"]


def test_require_says_what_where_and_how(caches):
    with pytest.raises(WeightsUnavailable) as err:
        weights.require("fid_inception")
    msg = str(err.value)
    for part in ("pt_inception-2015-12-05-6726825d.pth", str(caches.user), str(caches.pyiqa), "SRCORE_WEIGHTS", "fid"):
        assert part in msg
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(WeightsUnavailable) as err:
        weights.require("lpips_alex")
    assert str(caches.torchvision) in str(err.value) and "alexnet-owt-7be5be79.pth" in str(err.value)


def test_unavailable_reason(caches):
    assert weights.unavailable_reason("ma") == "n/a: weights unavailable (NRQM_model.mat)"
    _put(caches.user, "alexnet-owt-7be5be79.pth")
    assert weights.unavailable_reason("lpips_alex") == "n/a: weights unavailable (LPIPS_v0.1_alex-df73285e.pth)"


# ---------------------------------------------------------------- perceptual metrics without weights

IMG = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)


@pytest.mark.parametrize("metric, files", [
    ("lpips", "LPIPS_v0.1_alex-df73285e.pth, alexnet-owt-7be5be79.pth"),
    ("pi", "NRQM_model.mat"),
    ("fid", "pt_inception-2015-12-05-6726825d.pth"),
])
def test_missing_weights_give_na_or_fail_in_paper(caches, no_network, metric, files):
    _put(caches.user, "niqe_modelparameters.mat")  # PI's other half is here; only Ma's model is missing
    for profile in ("smoke", "quick"):
        with pytest.raises(perceptual.MetricUnavailable) as na:
            perceptual.measure(metric, [IMG, IMG], [IMG, IMG], profile=profile)
        assert na.value.reason == f"n/a: weights unavailable ({files})"
    with pytest.raises(WeightsUnavailable) as err:
        perceptual.measure(metric, [IMG, IMG], [IMG, IMG], profile="paper")
    assert not isinstance(err.value, perceptual.MetricUnavailable)  # a paper run fails, never an n/a row
    assert repr(metric) in str(err.value) and files.split(",")[0] in str(err.value)
    assert no_network == []


def test_pyiqa_is_never_allowed_to_download(caches, no_network):
    # were a file missing from the cache, pyiqa/torchvision would download it: the guard refuses
    import pyiqa

    with pytest.raises(WeightsUnavailable, match="refusing to download .*alexnet"), perceptual._no_downloads():
        pyiqa.create_metric("lpips", device="cpu")
    assert no_network == []


def test_broken_weights_raise_never_score(caches, no_network):
    _put(caches.user, "LPIPS_v0.1_alex-df73285e.pth", b"not a checkpoint")
    _put(caches.user, "alexnet-owt-7be5be79.pth", b"not a checkpoint")
    with pytest.raises(RuntimeError, match="could not load pretrained weights"):
        perceptual.measure("lpips", [IMG], [IMG], profile="smoke")
    assert no_network == []


def test_bad_arguments_fail_loudly(caches):
    with pytest.raises(KeyError, match="known: niqe, pi, lpips, fid"):
        perceptual.measure("nique", [IMG], None, profile="smoke")
    with pytest.raises(ValueError, match="profile"):
        perceptual.measure("niqe", [IMG], None, profile="Paper")
    with pytest.raises(ValueError, match="full-reference"):
        perceptual.measure("lpips", [IMG], None, profile="smoke")
    with pytest.raises(ValueError, match="differ"):
        perceptual.measure("lpips", [IMG], [IMG[:64]], profile="smoke")
    with pytest.raises(ValueError, match="uint8"):
        perceptual.measure("niqe", [IMG.astype(np.float32)], None, profile="smoke")


# ---------------------------------------------------------------- NIQE with the real parameters


@pytest.fixture
def niqe_ready(caches, monkeypatch):
    if not NIQE_MAT.is_file():
        pytest.skip(f"no {NIQE_MAT}: set SRCORE_WEIGHTS to a folder holding niqe_modelparameters.mat")
    monkeypatch.setenv("SRCORE_WEIGHTS", str(NIQE_MAT.parent))
    return caches


@pytest.fixture
def baboon(data_root):
    from PIL import Image

    return np.array(Image.open(data_root / "benchmark" / "Set14" / "HR" / "baboon.png").convert("RGB"))


def test_niqe_matches_matlab_on_baboon(niqe_ready, no_network, baboon):
    # Reference: BasicSR, basicsr/metrics/niqe.py (calculate_niqe docstring):
    #   "MATLAB R2021a result for tests/data/baboon.png: 5.72957338", official niqe_release
    #   parameters, Y of YCbCr, 96x96 blocks, crop_border 0.
    # BasicSR's tests/data/baboon.png (480x492) is Set14's baboon.png (480x500) cut to its
    # first 492 columns, pixel for pixel, and its niqe_pris_params.npz equals
    # niqe_modelparameters.mat (both checked when this test was written). pyiqa gave 5.72997.
    value = perceptual.measure("niqe", [baboon[:, :492]], None, profile="paper")
    assert value == pytest.approx(5.72957338, abs=2e-3)
    assert (niqe_ready.pyiqa / "niqe_modelparameters.mat").is_file()  # installed where pyiqa looks
    assert no_network == []


def test_niqe_prefers_sharp_to_blurred(niqe_ready, no_network, baboon):
    from PIL import Image, ImageFilter

    sharp = baboon[:288, :288]
    blurred = np.array(Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(3)))
    gray = np.array(Image.fromarray(sharp).convert("L"))  # (H,W): repeated to 3 channels
    s, b = (perceptual.measure("niqe", [x], None, profile="quick") for x in (sharp, blurred))
    g = perceptual.measure("niqe", [gray], None, profile="quick", crop_border=4)
    assert all(np.isfinite([s, b, g])) and 2 < s < 15 and 2 < g < 15
    assert b > s + 2
    with pytest.raises(ValueError, match="at least 96x96"):
        perceptual.measure("niqe", [sharp[:100, :100]], None, profile="quick", crop_border=4)
    assert no_network == []

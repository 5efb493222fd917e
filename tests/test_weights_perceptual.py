"""Pretrained files (srcore.pretrained.weights) and perceptual metrics (srcore.perceptual).

Every test runs on temporary caches (torch hub dir, pyiqa's cache dir) and a temporary
$SRCORE_WEIGHTS, so the real caches are never read or written; network access is refused
and recorded wherever a test could reach it.
"""
import hashlib
import io
import os
import socket
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from srcore import perceptual
from srcore.pretrained import weights
from srcore.pretrained.weights import WeightsUnavailable

SHARED_WEIGHTS = weights.user_dir()  # where the user keeps pretrained files (read before any test changes it)
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


@pytest.fixture
def stand_in_bytes(monkeypatch):
    """Finding and copying tested with a few bytes under the real names: no hash is checked
    (such bytes cannot match the prefixes those names carry; the checks are tested below)."""
    monkeypatch.setattr(weights, "expected_sha256", lambda name, sha256="", name_hash=True: None)


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


def test_find_looks_in_user_folder_then_cache(caches, stand_in_bytes):
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


def test_install_copies_into_the_caches_the_loaders_read(caches, stand_in_bytes):
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


def test_unavailable_reason(caches, stand_in_bytes):
    assert weights.unavailable_reason("ma") == "n/a: weights unavailable (NRQM_model.mat)"
    _put(caches.user, "alexnet-owt-7be5be79.pth")
    assert weights.unavailable_reason("lpips_alex") == "n/a: weights unavailable (LPIPS_v0.1_alex-df73285e.pth)"


# ---------------------------------------------------------------- checked before use and before caching


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _torch_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture
def toy(caches, monkeypatch):
    """A catalogue entry "toy" whose file name carries the hash prefix of ``toy.good``."""
    good = b"the published bytes"
    name = f"toy-{_sha(good)[:8]}.pth"
    monkeypatch.setitem(weights.WEIGHTS, "toy", weights.Weights(
        (weights.WeightFile(name, "torchvision", "https://example.invalid/" + name, name_hash=True),),
        used_by=("tests",)))
    return SimpleNamespace(name=name, good=good, bad=b"some other bytes", cached=caches.torchvision / name)


def test_a_file_failing_its_hash_is_refused_and_never_cached(caches, toy):
    path = _put(caches.user, toy.name, toy.bad)
    for call in (weights.require, weights.install, weights.available, weights.find, weights.missing):
        with pytest.raises(weights.WeightsRefused) as err:
            call("toy")
        msg = str(err.value)
        assert str(path) in msg and f"starting with {_sha(toy.good)[:8]}" in msg and _sha(toy.bad) in msg
    assert not caches.torchvision.exists() or list(caches.torchvision.iterdir()) == []  # no copy, no .part
    path.write_bytes(toy.good)
    assert weights.require("toy") == toy.cached and toy.cached.read_bytes() == toy.good


def test_a_poisoned_cache_is_refused_then_replaced_from_a_good_user_file(caches, toy):
    _put(caches.torchvision, toy.name, toy.bad)
    with pytest.raises(weights.WeightsRefused, match=f"{toy.cached}.*{_sha(toy.bad)}"):
        weights.available("toy")  # never "available" while only the bad copy is there
    with pytest.raises(weights.WeightsRefused, match="delete it"):
        weights.require("toy")
    _put(caches.user, toy.name, toy.good)
    assert weights.available("toy") and weights.find("toy") == caches.user / toy.name
    assert weights.require("toy") == toy.cached and toy.cached.read_bytes() == toy.good
    assert sorted(p.name for p in caches.torchvision.iterdir()) == [toy.name]


def test_a_sha256_listed_in_the_catalogue_is_checked(caches, monkeypatch):
    good = b"a model without a hash in its name"
    monkeypatch.setitem(weights.WEIGHTS, "listed", weights.Weights(
        (weights.WeightFile("model.mat", "pyiqa", "https://example.invalid/model.mat", sha256=_sha(good).upper()),),
        used_by=("tests",)))
    path = _put(caches.user, "model.mat", b"not it")
    with pytest.raises(weights.WeightsRefused) as err:
        weights.require("listed")
    assert f"expected {_sha(good)} (listed in srcore.pretrained.weights)" in str(err.value) and str(path) in str(err.value)
    path.write_bytes(good)
    assert weights.require("listed").read_bytes() == good
    # a copy in the cache that differs from the user's file is replaced (same name, other bytes)
    path.write_bytes(good)
    monkeypatch.setitem(weights.WEIGHTS, "unlisted", weights.Weights(
        (weights.WeightFile("plain.mat", "pyiqa", "https://example.invalid/plain.mat"),), used_by=("tests",)))
    _put(caches.pyiqa, "plain.mat", b"stale")
    _put(caches.user, "plain.mat", b"fresh")
    assert weights.require("unlisted").read_bytes() == b"fresh"
    # pyiqa's names carry hex that pyiqa never checks (nor promises to be a hash): not checked
    _put(caches.user, "pt_inception-2015-12-05-6726825d.pth", b"any bytes")
    assert weights.find("fid_inception") == caches.user / "pt_inception-2015-12-05-6726825d.pth"


def test_random_bytes_named_like_vgg19_are_refused_by_name(caches):
    from srcore import losses

    path = _put(caches.user, "vgg19-dcbb9e9d.pth", np.random.default_rng(0).bytes(4096))
    with pytest.raises(weights.WeightsRefused) as err:
        losses.vgg19_features()  # was: IndexError: pop from empty list, without a file name
    assert str(path) in str(err.value) and "starting with dcbb9e9d" in str(err.value)
    assert not caches.torchvision.exists()


def test_a_file_that_passes_its_hash_but_is_not_the_network_is_refused_by_name(tmp_path):
    import torch

    net = torch.nn.Conv2d(3, 8, 3)

    def named(data: bytes) -> Path:  # torchvision's convention: the name carries the content's hash prefix
        return _put(tmp_path, f"net-{_sha(data)[:10]}.pth", data)

    cases = {
        "is not a PyTorch checkpoint": named(np.random.default_rng(1).bytes(2048)),
        "holds a list, not a state dict": named(_torch_bytes(["not", "weights"])),
        "1 misshapen: weight (4, 3, 3, 3) (expected (8, 3, 3, 3))":
            named(_torch_bytes({"weight": torch.zeros(4, 3, 3, 3), "bias": torch.zeros(8)})),
        "2 missing: weight, bias; 2 unexpected: 0.weight, 0.bias":
            named(_torch_bytes(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)).state_dict())),
    }
    for said, path in cases.items():
        with pytest.raises(weights.WeightsRefused) as err:
            weights.load_state_dict(net, path)
        assert str(path) in str(err.value) and said in str(err.value)
    good = torch.nn.Conv2d(3, 8, 3).state_dict()
    path = named(_torch_bytes({"params_ema": good}))
    assert weights.load_state_dict(net, path, key="params_ema") is net
    assert torch.equal(net.weight, good["weight"])
    with pytest.raises(weights.WeightsRefused, match="has no 'params'"):
        weights.load_state_dict(net, path, key="params")
    bad_name = _put(tmp_path, "net-0123abcd.pth", _torch_bytes(good))  # the content does not match the name
    with pytest.raises(weights.WeightsRefused, match=f"{bad_name}.*starting with 0123abcd"):
        weights.load_state_dict(net, bad_name)
    assert weights.load_state_dict(net, bad_name, name_hash=False) is net  # EDSR/BasicSR-style names


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
            perceptual.measure(metric, [IMG, IMG], [IMG, IMG], strict=False)
        assert na.value.reason == f"n/a: weights unavailable ({files})"
    with pytest.raises(WeightsUnavailable) as err:
        perceptual.measure(metric, [IMG, IMG], [IMG, IMG], strict=True)
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
        perceptual.measure("lpips", [IMG], [IMG], strict=False)
    assert no_network == []


def test_bad_arguments_fail_loudly(caches):
    with pytest.raises(KeyError, match="known: niqe, pi, lpips, fid"):
        perceptual.measure("nique", [IMG], None, strict=False)
    with pytest.raises(ValueError, match="full-reference"):
        perceptual.measure("lpips", [IMG], None, strict=False)
    with pytest.raises(ValueError, match="differ"):
        perceptual.measure("lpips", [IMG], [IMG[:64]], strict=False)
    with pytest.raises(ValueError, match="uint8"):
        perceptual.measure("niqe", [IMG.astype(np.float32)], None, strict=False)


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
    value = perceptual.measure("niqe", [baboon[:, :492]], None, strict=True)
    assert value == pytest.approx(5.72957338, abs=2e-3)
    assert (niqe_ready.pyiqa / "niqe_modelparameters.mat").is_file()  # installed where pyiqa looks
    assert no_network == []


def test_niqe_prefers_sharp_to_blurred(niqe_ready, no_network, baboon):
    from PIL import Image, ImageFilter

    sharp = baboon[:288, :288]
    blurred = np.array(Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(3)))
    gray = np.array(Image.fromarray(sharp).convert("L"))  # (H,W): repeated to 3 channels
    s, b = (perceptual.measure("niqe", [x], None, strict=False) for x in (sharp, blurred))
    g = perceptual.measure("niqe", [gray], None, strict=False, crop_border=4)
    assert all(np.isfinite([s, b, g])) and 2 < s < 15 and 2 < g < 15
    assert b > s + 2
    with pytest.raises(ValueError, match="at least 96x96"):
        perceptual.measure("niqe", [sharp[:100, :100]], None, strict=False, crop_border=4)
    assert no_network == []

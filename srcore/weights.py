"""Pretrained files: where they are, and putting them where torchvision and pyiqa look.

These machines cannot download anything, so nothing here ever does. A user provides the
files once in a flat folder, ``$SRCORE_WEIGHTS`` (by default ``shared/weights`` beside
the checkout, like the data root in ``tests/conftest.py``); :func:`install` copies a file
from there into the cache folder that torchvision's / pyiqa's own loading code reads,
under the exact name that code asks for, so that code finds it and never goes online.

    require("niqe")              # Path in pyiqa's cache, or WeightsUnavailable
    unavailable_reason("ma")     # "n/a: weights unavailable (NRQM_model.mat)"

Cache folders, as the libraries compute them:
  * torchvision: ``torch.hub.get_dir()/checkpoints``
    (``torch.hub.load_state_dict_from_url`` with ``model_dir=None``);
  * pyiqa: ``pyiqa.utils.download_util.DEFAULT_CACHE_DIR``, fixed when pyiqa is imported
    to ``torch.hub.get_dir()/pyiqa`` (``load_file_from_url`` with ``model_dir=None``).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ENV = "SRCORE_WEIGHTS"
# Beside the checkout, as for the datasets: <checkout>/../shared/weights
DEFAULT_USER_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "weights"
REASON = "n/a: weights unavailable ({})"


class WeightsUnavailable(FileNotFoundError):
    """A pretrained file is neither in $SRCORE_WEIGHTS nor in the library's cache."""


@dataclass(frozen=True)
class WeightFile:
    name: str   # file name exactly as the library's loader derives it from its URL
    cache: str  # "torchvision" or "pyiqa": whose cache folder the loader reads
    url: str    # where it comes from, for a person fetching it on a machine with internet


@dataclass(frozen=True)
class Weights:
    files: tuple[WeightFile, ...]  # all are needed; the first is the one find() returns
    used_by: tuple[str, ...]       # metrics (see srcore.perceptual.METRICS) or losses


_HF = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/"  # pyiqa's get_url_from_name
_TV = "https://download.pytorch.org/models/"                                # torchvision's weight enums

WEIGHTS: dict[str, Weights] = {
    # torchvision VGG19_Weights.IMAGENET1K_V1: VGG feature (perceptual) losses
    "vgg19": Weights((WeightFile("vgg19-dcbb9e9d.pth", "torchvision", _TV + "vgg19-dcbb9e9d.pth"),),
                     used_by=("vgg_perceptual_loss",)),
    # NIQE pristine model (mu_prisparam, cov_prisparam) of the official MATLAB release
    "niqe": Weights((WeightFile("niqe_modelparameters.mat", "pyiqa", _HF + "niqe_modelparameters.mat"),),
                    used_by=("niqe", "pi")),
    # pyiqa LPIPS(net="alex", version="0.1"): its linear layers, on torchvision's
    # AlexNet_Weights.IMAGENET1K_V1 (loaded even when only the linear layers are asked for)
    "lpips_alex": Weights((WeightFile("LPIPS_v0.1_alex-df73285e.pth", "pyiqa", _HF + "LPIPS_v0.1_alex-df73285e.pth"),
                           WeightFile("alexnet-owt-7be5be79.pth", "torchvision", _TV + "alexnet-owt-7be5be79.pth")),
                          used_by=("lpips",)),
    # TensorFlow-FID Inception-v3 (2015-12-05) ported to PyTorch, as pyiqa's FID loads it
    "fid_inception": Weights((WeightFile("pt_inception-2015-12-05-6726825d.pth", "pyiqa",
                                         _HF + "pt_inception-2015-12-05-6726825d.pth"),),
                             used_by=("fid",)),
    # Ma et al.'s no-reference SR quality model (pyiqa's NRQM), the "Ma" in PI
    "ma": Weights((WeightFile("NRQM_model.mat", "pyiqa", _HF + "NRQM_model.mat"),), used_by=("pi",)),
}


def _entry(name: str) -> Weights:
    try:
        return WEIGHTS[name]
    except KeyError:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(sorted(WEIGHTS))}") from None


def user_dir() -> Path:
    """The flat folder a user fills with pretrained files: $SRCORE_WEIGHTS, else shared/weights."""
    env = os.environ.get(ENV)
    return Path(env) if env else DEFAULT_USER_DIR


def cache_dir(cache: str) -> Path:
    """The folder torchvision ("torchvision") or pyiqa ("pyiqa") reads its files from right now."""
    import torch.hub  # late: honours TORCH_HOME and torch.hub.set_dir at call time

    if cache == "torchvision":
        return Path(torch.hub.get_dir()) / "checkpoints"
    if cache == "pyiqa":
        # pyiqa freezes its folder at import; before that it will be get_dir()/pyiqa
        loaded = sys.modules.get("pyiqa.utils.download_util")
        return Path(loaded.DEFAULT_CACHE_DIR) if loaded else Path(torch.hub.get_dir()) / "pyiqa"
    raise ValueError(f"unknown cache {cache!r}; known: torchvision, pyiqa")


def _locate(f: WeightFile) -> Path | None:
    for folder in (user_dir(), cache_dir(f.cache)):
        if (folder / f.name).is_file():
            return folder / f.name
    return None


def missing(name: str) -> list[str]:
    """File names of `name` found neither in the user folder nor in the cache."""
    return [f.name for f in _entry(name).files if _locate(f) is None]


def find(name: str) -> Path | None:
    """Path of the first file of `name` ($SRCORE_WEIGHTS first, then the cache) if every
    file of the entry is found, else None. Copies nothing."""
    entry = _entry(name)
    if missing(name):
        return None
    return _locate(entry.files[0])


def available(name: str) -> bool:
    return not missing(name)


def _copy_atomic(src: Path, dst: Path) -> None:
    # a reader (or a second process installing the same file) sees no file or the whole file
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; the cache is shared like any other
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def install(name: str) -> Path | None:
    """Copy each file of `name` that is in $SRCORE_WEIGHTS but not yet in the library's cache
    into that cache (atomically; nothing is done when it is already there). Returns the cache
    path of the entry's first file, or None when some file is found nowhere."""
    entry = _entry(name)
    if missing(name):
        return None
    for f in entry.files:
        dst = cache_dir(f.cache) / f.name
        if not dst.is_file():
            _copy_atomic(user_dir() / f.name, dst)
    return cache_dir(entry.files[0].cache) / entry.files[0].name


def require(name: str) -> Path:
    """Like :func:`install`, but raises :class:`WeightsUnavailable` saying what is missing,
    every folder searched, and how to provide it."""
    path = install(name)
    if path is not None:
        return path
    entry, absent = _entry(name), missing(name)
    searched = [str(user_dir())] + sorted({str(cache_dir(f.cache)) for f in entry.files})
    urls = "; ".join(f.url for f in entry.files if f.name in absent)
    raise WeightsUnavailable(
        f"pretrained weights {name!r} (for {', '.join(entry.used_by)}) not found: "
        f"missing {', '.join(absent)}; searched {', '.join(searched)}. "
        f"Set {ENV} to a folder holding {' and '.join(absent)} "
        f"(nothing is downloaded here; the original is at {urls})."
    )


def unavailable_reason(*names: str) -> str:
    """The project's standard table entry for a value that needs missing weights, naming the
    missing files of `names` (all their files when none is missing)."""
    absent = [f for n in names for f in missing(n)] or [f.name for n in names for f in _entry(n).files]
    return REASON.format(", ".join(absent))

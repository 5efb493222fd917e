"""Pretrained files: where they are, and putting them where torchvision and pyiqa look.

Nothing here downloads (a run must not depend on a network, and compute nodes often have none): a
user provides the files once in a flat folder, ``$SRCORE_WEIGHTS`` (by default ``weights/`` in the
checkout, beside the data root ``data/``); :func:`install` copies a file
from there into the cache folder that torchvision's / pyiqa's own loading code reads,
under the exact name that code asks for, so that code finds it and never goes online.

    require("niqe")              # Path in pyiqa's cache, or WeightsUnavailable
    unavailable_reason("ma")     # "n/a: weights unavailable (NRQM_model.mat)"

Every file is checked before it is used or copied: a name that carries a hash prefix
(torchvision's convention, ``vgg19-dcbb9e9d.pth``: the first hex digits of the file's
SHA-256) or a catalogue entry that lists a SHA-256 must match, else the file is refused
(:class:`WeightsRefused`, naming it with the expected and found hashes) and never copied
into a cache; a bad copy already in a cache is replaced from a good ``$SRCORE_WEIGHTS``
file, or refused when there is none. :func:`load_state_dict` also refuses, by name, a
file that is not a checkpoint of the expected network (other keys or shapes).

Cache folders, as the libraries compute them:
  * torchvision: ``torch.hub.get_dir()/checkpoints``
    (``torch.hub.load_state_dict_from_url`` with ``model_dir=None``);
  * pyiqa: ``pyiqa.utils.download_util.DEFAULT_CACHE_DIR``, fixed when pyiqa is imported
    to ``torch.hub.get_dir()/pyiqa`` (``load_file_from_url`` with ``model_dir=None``).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from srcore.folders import write_atomic

ENV = "SRCORE_WEIGHTS"
DEFAULT_USER_DIR = Path(__file__).resolve().parents[2] / "weights"  # in the checkout, beside data/
REASON = "n/a: weights unavailable ({})"


class WeightsUnavailable(FileNotFoundError):
    """A pretrained file is neither in $SRCORE_WEIGHTS nor in the library's cache."""


class WeightsRefused(RuntimeError):
    """A pretrained file is there but is not the published file (hash) or not the expected network."""


@dataclass(frozen=True)
class WeightFile:
    name: str   # file name exactly as the library's loader derives it from its URL
    cache: str  # "torchvision" or "pyiqa": whose cache folder the loader reads
    url: str    # where it comes from, for a person fetching it on a machine with internet
    sha256: str = ""  # the published file's SHA-256 where known
    name_hash: bool = False  # the hex in the name is the SHA-256's prefix (torchvision's convention): checked


@dataclass(frozen=True)
class Weights:
    files: tuple[WeightFile, ...]  # all are needed; the first is the one find() returns
    used_by: tuple[str, ...]       # metrics (see srcore.perceptual.METRICS) or losses


_HF = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/"  # pyiqa's get_url_from_name
_TV = "https://download.pytorch.org/models/"                                # torchvision's weight enums

WEIGHTS: dict[str, Weights] = {
    # torchvision VGG19_Weights.IMAGENET1K_V1: VGG feature (perceptual) losses. torchvision's own
    # names carry the SHA-256 prefix (its loader checks it: check_hash=True since 0.15); pyiqa's
    # do not promise that (it downloads with hash_prefix=None), so their hex is not checked.
    "vgg19": Weights((WeightFile("vgg19-dcbb9e9d.pth", "torchvision", _TV + "vgg19-dcbb9e9d.pth", name_hash=True),),
                     used_by=("vgg_perceptual_loss",)),
    # NIQE pristine model (mu_prisparam, cov_prisparam) of the official MATLAB release
    "niqe": Weights((WeightFile("niqe_modelparameters.mat", "pyiqa", _HF + "niqe_modelparameters.mat"),),
                    used_by=("niqe", "pi")),
    # pyiqa LPIPS(net="alex", version="0.1"): its linear layers, on torchvision's
    # AlexNet_Weights.IMAGENET1K_V1 (loaded even when only the linear layers are asked for)
    "lpips_alex": Weights((WeightFile("LPIPS_v0.1_alex-df73285e.pth", "pyiqa", _HF + "LPIPS_v0.1_alex-df73285e.pth"),
                           WeightFile("alexnet-owt-7be5be79.pth", "torchvision", _TV + "alexnet-owt-7be5be79.pth",
                                      name_hash=True)),
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
    """The flat folder a user fills with pretrained files: $SRCORE_WEIGHTS, else weights/ in the checkout."""
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


# --------------------------------------------------------------------------- hashes

# torchvision's convention (torch.hub.HASH_REGEX): "<name>-<first hex digits of the SHA-256>.<ext>"
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
_SHA256_SEEN: dict[tuple, str] = {}  # (path, size, mtime, inode) -> SHA-256: each file hashed once per process


def expected_sha256(name: str, sha256: str = "", name_hash: bool = True) -> str | None:
    """The SHA-256 (or its leading hex digits) a file called ``name`` must have: ``sha256`` (a
    catalogue's) if given, else (with ``name_hash``) the hash prefix in the name, else None."""
    if sha256:
        return sha256.lower()
    m = _HASH_IN_NAME.search(name) if name_hash else None
    return m.group(1) if m else None


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, hex; remembered while the file's size, time and inode stay the same."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _SHA256_SEEN:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA256_SEEN[key] = h.hexdigest()
    return _SHA256_SEEN[key]


def _mismatch(path: Path, expected: str, found: str, sha256: str) -> WeightsRefused:
    source = "listed in srcore.pretrained.weights" if sha256 else "the prefix in its name, torchvision's convention"
    what = expected if len(expected) == 64 else f"one starting with {expected}"
    return WeightsRefused(
        f"could not load pretrained weights: {path} is not the published file: its SHA-256 is {found}, "
        f"expected {what} ({source}). It is refused (never used nor copied into a cache): delete it and "
        f"put the original file in ${ENV}.")


def verify(path: str | os.PathLike, sha256: str = "", *, name_hash: bool = True) -> Path:
    """``path`` if its SHA-256 matches ``sha256`` or, with ``name_hash``, the hash prefix in its name
    (``name-<8 or more hex>.ext``; nothing to check when there is neither); raises
    :class:`WeightsRefused` naming the file and both hashes. Pass ``name_hash=False`` for files
    whose names carry other hex (EDSR's and BasicSR's releases, see srcore.pretrained.releases)."""
    path = Path(path)
    expected = expected_sha256(path.name, sha256, name_hash)
    if expected is not None:
        found = file_sha256(path)
        if not found.startswith(expected):
            raise _mismatch(path, expected, found, sha256)
    return path


# --------------------------------------------------------------------------- the catalogue's files


def _locate(f: WeightFile) -> Path | None:
    """The copy of ``f`` to use, checked: $SRCORE_WEIGHTS's, else the cache's; None if in neither.

    A bad user file is refused. A bad cached copy is passed over when the user folder has a good
    one (install() replaces it) and refused when it has none: a poisoned cache never counts.
    """
    for folder in (user_dir(), cache_dir(f.cache)):
        if (folder / f.name).is_file():
            return verify(folder / f.name, f.sha256, name_hash=f.name_hash)
    return None


def missing(name: str) -> list[str]:
    """File names of `name` found neither in the user folder nor in the cache.

    Raises :class:`WeightsRefused` when the copy that would be used fails its hash (so do
    :func:`find`, :func:`available`, :func:`install` and :func:`require`)."""
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


class _Hashing:
    """A file object that hashes what is written through it."""

    def __init__(self, out):
        self.out, self.sha256 = out, hashlib.sha256()

    def write(self, data):
        self.sha256.update(data)
        return self.out.write(data)


def _copy_atomic(src: Path, dst: Path) -> None:
    # a reader (or a second process installing the same file) sees no file or the whole file,
    # and only the bytes that were checked: the copy is hashed as it is written
    checked = file_sha256(src)

    def copy_checked(tmp: Path) -> None:
        with open(tmp, "wb") as out, open(src, "rb") as inp:
            copy = _Hashing(out)
            shutil.copyfileobj(inp, copy)
        if copy.sha256.hexdigest() != checked:
            raise WeightsRefused(f"{src} changed while it was copied to {dst}: nothing was copied; try again")
    write_atomic(dst, copy_checked)


def install(name: str) -> Path | None:
    """Copy each file of `name` from $SRCORE_WEIGHTS into the library's cache (atomically, after
    checking it) unless the cache already holds the same bytes; a different (e.g. bad) cached copy
    is replaced. Returns the cache path of the entry's first file, or None when some file is found
    nowhere. Raises :class:`WeightsRefused` for a file that fails its hash."""
    entry = _entry(name)
    if missing(name):
        return None
    for f in entry.files:
        src, dst = _locate(f), cache_dir(f.cache) / f.name
        if src == dst or (dst.is_file() and file_sha256(dst) == file_sha256(src)):
            continue
        _copy_atomic(src, dst)
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


def load_checkpoint(path: str | os.PathLike, *, sha256: str = "", name_hash: bool = True):
    """``torch.load`` (CPU, tensors only) of a file checked by :func:`verify`; a file that fails its
    hash or is not a PyTorch checkpoint raises :class:`WeightsRefused` naming it (never a bare
    unpickling error)."""
    import torch

    path = verify(path, sha256, name_hash=name_hash)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # random bytes fail anywhere in unpickling (IndexError, UnpicklingError, ...)
        raise WeightsRefused(f"could not load pretrained weights: {path} is not a PyTorch checkpoint "
                             f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''})") from e


def load_state_dict(module, path: str | os.PathLike, *, sha256: str = "", name_hash: bool = True,
                    key: str | None = None):
    """Load the checked file ``path`` into ``module`` (strict) and return ``module``.

    ``key``: the state dict is ``checkpoint[key]`` (BasicSR's ``"params_ema"``, for example).
    Refuses, naming the file, anything but a state dict with exactly ``module``'s keys and shapes,
    listing a few missing, unexpected and misshapen entries and how many there are.
    """
    import torch

    path = Path(path)
    state = load_checkpoint(path, sha256=sha256, name_hash=name_hash)
    if key is not None:
        if not isinstance(state, dict) or key not in state:
            found = sorted(state)[:5] if isinstance(state, dict) else type(state).__name__
            raise WeightsRefused(f"could not load pretrained weights: {path} has no {key!r} (found {found})")
        state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsRefused(f"could not load pretrained weights: {path} holds a {type(state).__name__}, "
                             f"not a state dict of tensors for {type(module).__name__}")
    expected = module.state_dict()
    problems = {
        "missing": [k for k in expected if k not in state],
        "unexpected": [k for k in state if k not in expected],
        "misshapen": [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
                      for k, v in expected.items() if k in state and state[k].shape != v.shape],
    }
    if any(problems.values()):
        said = "; ".join(f"{len(v)} {kind}: {', '.join(v[:3])}{', ...' if len(v) > 3 else ''}"
                         for kind, v in problems.items() if v)
        raise WeightsRefused(f"could not load pretrained weights: {path} is not a checkpoint of "
                             f"{type(module).__name__} ({said})")
    module.load_state_dict(state)
    return module


def unavailable_reason(*names: str) -> str:
    """The project's standard table entry for a value that needs missing weights, naming the
    missing files of `names` (all their files when none is missing)."""
    absent = [f for n in names for f in missing(n)] or [f.name for n in names for f in _entry(n).files]
    return REASON.format(", ".join(absent))

"""Images, the MATLAB-style bicubic, benchmark sets and the in-memory training set.

Images are numpy ``uint8`` arrays, ``(H,W,3)`` RGB or ``(H,W)`` single-channel; tensors
are float ``(B,3,h,w)`` in ``[0,1]``. The data root is ``$SRCORE_DATA`` (laid out as
``benchmark/<Set>/HR``, ``benchmark/<Set>/LR_bicubic/X<s>``, ``train/<Folder>``), else the
checkout's ``data/`` folder (where ``python -m srcore.download`` puts things), whatever the current
directory (papermill runs notebooks from ``notebooks/``): the same rule for make, ``python -m``,
benchmarks and JupyterLab.

LR images made by the bicubic (training sets, benchmark sets without LR files) are cached on
disk under ``$SRCORE_CACHE`` (default ``~/.cache/srcore``), keyed by the HR pixels, the scale and
the resize settings, so every paper and every start after the first reads them instead of
resizing again. ``srcore.data.clear_cache()`` (or deleting the folder) empties it;
``SRCORE_CACHE=none`` turns it off.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from srcore.folders import write_atomic
from srcore.resize import imresize  # noqa: F401  (public API: srcore.data.imresize)

SCALES = (2, 3, 4)
BENCHMARKS = {"Set5": 5, "Set14": 14, "BSD100": 100, "Urban100": 100, "General100": 100, "Manga109": 109}  # set: images
IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


NO_DATA = "none"  # SRCORE_DATA=none: run as if no data existed (the embedded photos), even where data is found


class DataError(RuntimeError):
    """Missing or unusable data; the message names the file or folder and what to do."""


def check_scale(scale) -> int:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return int(scale)


def _data_env() -> tuple[str, bool]:
    """``$SRCORE_DATA`` ("" when unset) and whether it says "none" (run as if there were no data)."""
    env = os.environ.get("SRCORE_DATA") or ""
    return env, env.lower() == NO_DATA


# The data root when $SRCORE_DATA is not set: the checkout's data/ folder, where python -m srcore.download puts
# things. One rule for make, python -m, the benchmarks and JupyterLab.
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1] / "data"


def default_data_root() -> Path:
    """``data/`` in the checkout."""
    return DEFAULT_DATA_ROOT


def configured_root(root: str | os.PathLike | None = None) -> Path:
    """Where the data is read from and fetched into, whether or not it exists yet: ``root``, else
    ``$SRCORE_DATA``, else :func:`default_data_root` (also under ``SRCORE_DATA=none``, which stops reading, not
    where files go)."""
    env, none = _data_env()
    return Path(root if root is not None else env if env and not none else default_data_root())


def fetch_command(sets, root: Path | None = None) -> str:
    """The one command that fetches ``sets`` (names of srcore.download's catalogue) into ``root``."""
    where = "" if root is None or Path(root).resolve() == Path(default_data_root()).resolve() else f" --root {root}"
    return f"python -m srcore.download {' '.join(sets)}{where}"


def data_root(root: str | os.PathLike | None = None, *, needs=()) -> Path:
    """The dataset folder (:func:`configured_root`); it must exist.

    ``needs``: the sets the caller reads, named in the error's fetch command (default: every set).
    """
    env, none = _data_env()
    if root is None and none:
        raise DataError("SRCORE_DATA=none: no data root (smoke runs use the embedded photos)")
    source = "root" if root is not None else "SRCORE_DATA" if env else None
    path = configured_root(root)
    if not path.is_dir():
        how = f"{source}={path}" if source else f"the default data root {path.resolve()} (SRCORE_DATA is not set)"
        raise DataError(f"{how} does not exist: fetch the data with `{fetch_command(needs or ['all'], path)}`, "
                        f"or set SRCORE_DATA to a folder holding benchmark/ and train/")
    return path


def find_root(root: str | os.PathLike | None = None, *, benchmarks=(), train_sets=(),
              allow_embedded: bool = False) -> Path | None:
    """The data root holding ``benchmark/<set>/HR`` for ``benchmarks`` and ``train/<folder>`` for ``train_sets``.

    None means "use the embedded photos": only when ``allow_embedded`` (the smoke profile) and there
    is no data root at all (none asked for with ``root`` or ``$SRCORE_DATA``, none at the default
    places), or ``SRCORE_DATA=none``. A data root that lacks a set is an error naming the set and the
    command that fetches it, never a quiet switch to other images.
    """
    env, none = _data_env()
    needs = [*benchmarks, *train_sets]
    try:
        path = data_root(root, needs=needs)
    except DataError as e:
        if not allow_embedded or root is not None or (env and not none):
            raise
        print(f"no data ({e}): smoke run on scikit-image's embedded photos instead")
        return None
    missing = [s for s in benchmarks if not (path / "benchmark" / s / "HR").is_dir()]
    missing += [f for f in train_sets if not (path / "train" / f).is_dir()]
    if missing:
        folders = [f"benchmark/{s}/HR" if s in benchmarks else f"train/{s}" for s in missing]
        raise DataError(f"{path} lacks {', '.join(folders)}: fetch {'it' if len(missing) == 1 else 'them'} with "
                        f"`{fetch_command(missing, path)}`")
    return path


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to uint8: (H,W,3) RGB, or (H,W) if it is single-channel.

    Single-channel (L, 1-bit) stays (H,W): the metrics use it as Y directly (the SR protocol).
    16-bit images are scaled to 8 bits (round(v / 257): 65535 -> 255), not clipped. A palette
    image is expanded to RGB. An alpha channel that is fully opaque is dropped with a logged
    warning naming the file; real transparency is refused (what the transparent pixels should
    show is not in the file, and any choice of background would change the scores).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "P":  # palette: its transparency (if any) becomes alpha, judged like RGBA's
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode == "PA":
                im = im.convert("RGBA")
            if im.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
                arr = np.rint(np.asarray(im).astype(np.float64) / 257.0).astype(np.uint8)
            elif im.mode in ("L", "1"):
                arr = np.asarray(im.convert("L"))
            elif im.mode in ("RGB", "YCbCr"):
                arr = np.asarray(im.convert("RGB"))
            elif im.mode in ("RGBA", "LA"):
                arr = _drop_opaque_alpha(path, mode, np.asarray(im))
            else:  # I (32-bit), F, CMYK, LAB, HSV: no unambiguous 8-bit RGB or Y
                raise DataError(f"{path}: image mode {mode} is not supported (8/16-bit grayscale, RGB, RGBA "
                                f"without transparency and palette images are); convert it to RGB PNG")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"{path}: cannot decode image ({e})") from e
    return np.ascontiguousarray(arr)


def _drop_opaque_alpha(path: Path, mode: str, arr: np.ndarray) -> np.ndarray:
    """(H,W,4) RGBA or (H,W,2) LA uint8 -> RGB or (H,W) when every pixel is opaque; else DataError."""
    alpha = arr[..., -1]
    transparent = int(np.count_nonzero(alpha != 255))
    if transparent:
        raise DataError(f"{path}: {mode} image with transparency ({transparent} of {alpha.size} pixels have "
                        f"alpha < 255): SR benchmarks are opaque; flatten it onto the background you mean "
                        f"and save it as RGB")
    logging.getLogger(__name__).warning("%s: %s image with a fully opaque alpha channel: alpha dropped", path, mode)
    return arr[..., :-1] if arr.shape[-1] == 4 else arr[..., 0]


def save_image(img: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 image atomically (temporary file, then rename)."""
    kind = Path(path).suffix.lstrip(".").upper().replace("JPG", "JPEG") or "PNG"
    write_atomic(path, lambda tmp: Image.fromarray(img).save(tmp, format=kind))


def to_rgb(img: np.ndarray) -> np.ndarray:
    """(H,W) or (H,W,1) -> (H,W,3) by repetition; RGB unchanged."""
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
    raise ValueError(f"expected an (H,W), (H,W,1) or (H,W,3) image, got shape {img.shape}")


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right remainder so both sides are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H,W,3) -> float (1,3,H,W) in [0,1]."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image of shape (H,W,3), got {img.dtype} {img.shape}; "
                         f"convert single-channel images with srcore.data.to_rgb first")
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255).unsqueeze(0)


def quantize(t: torch.Tensor) -> torch.Tensor:
    """float (1,3,H,W) or (3,H,W) in [0,1] -> uint8 (H,W,3) tensor on the same device, rounded as EDSR's quantize."""
    t = t.detach().float().squeeze(0).clamp(0, 1).mul(255).round().to(torch.uint8)
    return t.permute(1, 2, 0)


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """float (1,3,H,W) or (3,H,W) in [0,1] -> uint8 (H,W,3) NumPy image, rounded as EDSR's quantize."""
    return quantize(t).cpu().numpy()


def uint8_to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 CPU tensor -> float32 in [0,1] (x / 255, correctly rounded), computed by NumPy in this thread.

    The same values as ``batch.float().div_(255)``, without torch's intra-op threads: a small
    element-wise op that several threads slow down badly when another process holds a core.
    """
    return torch.from_numpy(np.divide(batch.numpy(), np.float32(255), dtype=np.float32))


# --- the LR cache ---------------------------------------------------------------------------
LR_CACHE_VERSION = 1  # part of every key: bump it when srcore.resize.imresize changes its output


def cache_dir() -> Path | None:
    """``$SRCORE_CACHE``, else ``~/.cache/srcore``; None when ``SRCORE_CACHE=none`` (no caching)."""
    env = os.environ.get("SRCORE_CACHE")
    if env and env.lower() == NO_DATA:
        return None
    return Path(env).expanduser() if env else Path.home() / ".cache" / "srcore"


def clear_cache() -> int:
    """Delete every cached LR image (``<cache>/lr_bicubic``); the number of bytes freed.

    Same as ``rm -r ~/.cache/srcore/lr_bicubic``; from a shell:
    ``python -c "import srcore.data as d; d.clear_cache()"``.
    """
    root = cache_dir()
    folder = root / "lr_bicubic" if root else None
    if folder is None or not folder.is_dir():
        return 0
    freed = 0
    for path in folder.iterdir():
        try:
            freed += path.stat().st_size
            path.unlink()
        except FileNotFoundError:  # another process removed or replaced it meanwhile
            pass
    with contextlib.suppress(OSError):  # a run filling the cache meanwhile keeps the folder and its new files
        folder.rmdir()
    return freed


def _hasher():
    """(name, new hash object): xxHash's XXH3-128 where installed (pyiqa -> datasets brings it; ~10x faster, and
    a second start is mostly hashing), else SHA-256. The name is part of the key, so switching only misses."""
    try:
        import xxhash
        return "xxh3_128", xxhash.xxh3_128()
    except ImportError:
        return "sha256", hashlib.sha256()


def _lr_key(hr: np.ndarray, scale: int, padding: str) -> str:
    """Content hash of the HR pixels (shape, dtype, bytes) and every setting that shapes the LR image."""
    name, h = _hasher()
    settings = {"resize": "srcore.resize.imresize", "version": LR_CACHE_VERSION, "factor": f"1/{scale}",
                "padding": padding, "shape": list(hr.shape), "dtype": str(hr.dtype), "hash": name}
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(np.ascontiguousarray(hr).data)  # both release the GIL here: keys of several images hash in parallel
    return f"{name}-{h.hexdigest()}"


def _read_cached(path: Path, shape: tuple) -> np.ndarray | None:
    """The cached uint8 LR image, or None when missing, unreadable, corrupt (CRC) or of another shape."""
    try:
        with open(path, "rb") as f:
            raw = bytearray(os.fstat(f.fileno()).st_size)  # read in place: the array below is a writable view of it
            if f.readinto(raw) != len(raw):
                return None
    except OSError:
        return None
    payload = memoryview(raw)[:-4]  # views, no copies: a second start is mostly this and the key
    if len(raw) < 4 or zlib.crc32(payload) != int.from_bytes(raw[-4:], "little"):
        return None
    try:
        f = io.BytesIO(bytes(raw[:4096]))  # the .npy header (np.save writes 128 bytes for these arrays)
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            return None
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        if read_header(f) != (shape, False, np.dtype(np.uint8)):  # (shape, fortran_order, dtype)
            return None
        return np.frombuffer(raw, np.uint8, count=int(np.prod(shape)), offset=f.tell()).reshape(shape)
    except (ValueError, OSError, EOFError):
        return None


_warned_readonly = []


def _write_cached(path: Path, lr: np.ndarray) -> None:
    """NumPy's .npy bytes + a CRC32 of them, written to a temporary file and renamed (never half-written)."""
    buf = io.BytesIO()
    np.save(buf, lr, allow_pickle=False)
    payload = buf.getvalue()
    try:
        write_atomic(path, lambda tmp: tmp.write_bytes(payload + zlib.crc32(payload).to_bytes(4, "little")))
    except OSError as e:  # a read-only or full cache folder slows the next start, it does not stop this one
        if not _warned_readonly:
            _warned_readonly.append(True)
            warnings.warn(f"LR cache not written ({e}); set SRCORE_CACHE to a writable folder, or to none", stacklevel=3)


def bicubic_lr(hr: np.ndarray, scale: int, *, padding: str = "replicate", cache: bool = True) -> np.ndarray:
    """``imresize(hr, 1 / scale, padding=padding)``, read from the LR cache when it was made before.

    ``hr``: uint8 (H,W,3) or (H,W), sides multiples of ``scale``. The key is a 128-bit or longer
    hash of the HR pixels, the scale, the padding and :data:`LR_CACHE_VERSION`, so a changed
    image or setting misses; a cached file whose CRC or shape does not match is made again and replaced.
    """
    root = cache_dir() if cache else None
    if root is None:
        return imresize(hr, 1 / scale, padding=padding)
    path = root / "lr_bicubic" / f"{_lr_key(hr, scale, padding)}.npy"
    shape = (-(-hr.shape[0] // scale), -(-hr.shape[1] // scale), *hr.shape[2:])
    lr = _read_cached(path, shape)
    if lr is None:
        lr = imresize(hr, 1 / scale, padding=padding)
        _write_cached(path, lr)
    return lr


def _threads() -> int:
    return min(8, os.cpu_count() or 1)


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass
class Pair:
    name: str
    hr: np.ndarray  # uint8, modcropped; single-channel images stay (H,W)
    lr: np.ndarray  # uint8, hr downscaled by the MATLAB-style bicubic


def benchmark_set(name: str, scale: int, root: str | os.PathLike | None = None, limit: int | None = None,
                  names: list[str] | None = None) -> list[Pair]:
    """A benchmark set by name: HR modcropped to ``scale``; LR read from LR_bicubic/X<s> if present, else imresize.

    ``limit`` keeps the first ``limit`` images (sorted by name), for smoke runs; ``names``
    keeps only the images with these stems (e.g. ``["img_004"]``), in that order.
    """
    scale = check_scale(scale)
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark set {name!r}; known: {', '.join(BENCHMARKS)}")
    hr_dir = data_root(root) / "benchmark" / name / "HR"
    if not hr_dir.is_dir():
        raise DataError(f"{hr_dir} not found: benchmark set {name} is not in the data root "
                        f"(fetch it with `{fetch_command([name], hr_dir.parents[2])}`)")
    lr_dir = hr_dir.parent / "LR_bicubic" / f"X{scale}"
    paths = list_images(hr_dir)[:limit]
    if names is not None:
        by_stem = {p.stem: p for p in paths}
        missing = [n for n in names if n not in by_stem]
        if missing:
            raise DataError(f"{hr_dir}: no image named {missing}")
        paths = [by_stem[n] for n in names]
    pairs = []
    for path in paths:
        hr = modcrop(load_image(path), scale)
        lr_path = lr_dir / f"{path.stem}x{scale}{path.suffix}"
        if lr_path.is_file():
            lr = load_image(lr_path)
            want = (hr.shape[0] // scale, hr.shape[1] // scale)
            if lr.shape[:2] != want:
                raise DataError(f"{lr_path}: LR is {lr.shape[:2]}, expected {want} for HR {path.name} at x{scale}")
        else:
            lr = bicubic_lr(hr, scale)
        pairs.append(Pair(path.stem, hr, lr))
    if not pairs:
        raise DataError(f"{hr_dir} holds no images")
    return pairs


EMBEDDED_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "colorwheel")


def embedded_images() -> dict[str, np.ndarray]:
    """Small RGB photos that ship inside scikit-image: the data of last resort for smoke runs."""
    from skimage import data as skdata
    return {name: to_rgb(getattr(skdata, name)()) for name in EMBEDDED_IMAGES}


def embedded_set(scale: int, limit: int | None = None) -> list[Pair]:
    scale = check_scale(scale)
    pairs = []
    for name, img in list(embedded_images().items())[:limit]:
        hr = modcrop(img, scale)
        pairs.append(Pair(name, hr, bicubic_lr(hr, scale)))
    return pairs


def load_folders(folders, limit: int | None = None) -> dict[str, np.ndarray]:
    """Decode every image of ``folders`` (paths) in name order, the first ``limit`` per folder: 'folder/file' -> array."""
    images = {}
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise DataError(f"training folder {folder} not found (the data root needs train/{folder.name}: fetch it "
                            f"with `{fetch_command([folder.name], folder.parents[1])}`)")
        paths = list_images(folder)[:limit]
        if not paths:
            raise DataError(f"training folder {folder} holds no images")
        for path in paths:
            images[f"{folder.name}/{path.name}"] = load_image(path)
    return images


class TrainSet:
    """HR images decoded once into memory, with their LR made by the MATLAB-style bicubic once per machine.

    LR images come from the LR cache (:func:`bicubic_lr`) when an earlier start made them;
    keys are hashed and misses resized on several threads.

    ``images``: dict name -> uint8 (H,W,3). ``hr_patch`` is the HR patch side (a multiple
    of ``scale``); images smaller than it are refused with their name.
    """

    def __init__(self, images: dict[str, np.ndarray], scale: int, hr_patch: int, small_images: str = "error"):
        self.scale = check_scale(scale)
        if hr_patch % scale:
            raise ValueError(f"hr_patch {hr_patch} is not a multiple of scale {scale}")
        if small_images not in ("error", "skip"):
            raise ValueError(f"small_images must be 'error' or 'skip', got {small_images!r}")
        self.hr_patch = hr_patch
        self.names, self.hr, self.lr, self.skipped = [], [], [], []
        for name, img in images.items():
            img = modcrop(to_rgb(img), scale)
            if min(img.shape[:2]) < hr_patch:
                if small_images == "skip":  # e.g. T91 holds 78-px images; DIV2K has none
                    self.skipped.append(name)
                    continue
                raise DataError(f"{name}: {img.shape[0]}x{img.shape[1]} is smaller than the HR patch {hr_patch}x{hr_patch}")
            self.names.append(name)
            self.hr.append(img)
        with ThreadPoolExecutor(_threads()) as pool:
            self.lr = list(pool.map(lambda hr: bicubic_lr(hr, self.scale), self.hr))
        if not self.hr:
            raise DataError(f"the training set is empty (skipped as smaller than the HR patch {hr_patch}: {len(self.skipped)})")

    @classmethod
    def from_folders(cls, folders, scale: int, hr_patch: int, limit: int | None = None,
                     small_images: str = "error") -> "TrainSet":
        return cls(load_folders(folders, limit), scale, hr_patch, small_images)

    def __len__(self):
        return len(self.hr)

    @property
    def megapixels(self) -> float:
        return sum(im.shape[0] * im.shape[1] for im in self.hr) / 1e6


class PatchSampler:
    """Endless random HR/LR patch pairs with flips and 90-degree rotations, batched as tensors.

    ``next(sampler)``: float32 ``(B,3,h,w)`` LR and ``(B,3,sh,sw)`` HR tensors in [0,1].
    :meth:`draw`: the same batch as uint8 tensors (pinned on request), which the Trainer
    copies to the GPU (4x fewer bytes) and converts there. All the work is NumPy, using only
    the sampler's own random generator: no torch threads (its speed does not collapse when
    the CPU is busy) and safe to run in a background thread while a step runs, which
    :class:`srcore.train.Trainer` does.

    Its random state is part of a checkpoint (``state_dict``), so a resumed run draws the
    same batches as an uninterrupted one.
    """

    def __init__(self, train_set: TrainSet, batch_size: int, seed: int = 0):
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

    def __iter__(self):
        return self

    def draw(self, pin: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch as uint8 ``(B,3,h,w)`` LR and ``(B,3,sh,sw)`` HR CPU tensors; ``pin``: in page-locked memory."""
        b, s = self.batch_size, self.ts.scale
        lp = self.ts.hr_patch // s
        lr = torch.empty((b, 3, lp, lp), dtype=torch.uint8, pin_memory=pin)
        hr = torch.empty((b, 3, lp * s, lp * s), dtype=torch.uint8, pin_memory=pin)
        lr_np, hr_np = lr.numpy(), hr.numpy()  # views: the patches are written straight into the (pinned) tensors
        for k in range(b):
            lr_patch, hr_patch = self._patch()
            lr_np[k] = lr_patch.transpose(2, 0, 1)
            hr_np[k] = hr_patch.transpose(2, 0, 1)
        return lr, hr

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        lr, hr = self.draw()
        return uint8_to_float(lr), uint8_to_float(hr)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]

"""Perceptual metrics (NIQE, PI, LPIPS, FID) through pyiqa, never with random weights.

Each metric needs pretrained files (see :mod:`srcore.pretrained.weights`). When they are present they
are installed into pyiqa's / torchvision's cache and pyiqa loads them from there; when they
are not, :func:`measure` raises :class:`MetricUnavailable` (its ``reason`` is the standard
"n/a" text), which :meth:`srcore.paper.experiment.Experiment.measure` turns into the n/a row's reason;
with ``strict`` (the paper profile) it raises a plain :class:`~srcore.pretrained.weights.WeightsUnavailable`,
which nothing catches: a paper run fails. pyiqa is never allowed to download: the metric is built with its
download functions replaced by one that raises.

    value = measure("niqe", sr_images, None, strict=False, crop_border=4)
"""
from __future__ import annotations

import contextlib
import functools
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srcore.data import image_to_tensor, to_rgb
from srcore.pretrained import weights
from srcore.pretrained.weights import WeightsUnavailable
from srcore.train import default_device  # only "paper" insists on every number


@dataclass(frozen=True)
class PerceptualMetric:
    pyiqa_name: str
    lower_better: bool
    full_reference: bool        # needs the HR image of each SR image
    set_level: bool             # one score for the SR set against the HR set (not a mean)
    needs: tuple[str, ...]      # keys of srcore.pretrained.weights.WEIGHTS
    options: dict = field(default_factory=dict)  # pyiqa options differing from its defaults
    min_side: int = 1           # smallest image side (after crop_border) the metric is defined for
    note: str = ""


METRICS: dict[str, PerceptualMetric] = {
    # Y of YCbCr as in the PIRM 2018 code (and BasicSR), so NIQE here equals PI's NIQE term;
    # pyiqa's default is MATLAB rgb2gray ("yiq"), which differs in the 3rd decimal
    "niqe": PerceptualMetric("niqe", lower_better=True, full_reference=False, set_level=False,
                             needs=("niqe",), options={"color_space": "ycbcr"}, min_side=96,
                             note="Mittal et al. 2012; range ~0..~100"),
    # PI = ((10 - Ma) + NIQE) / 2 (Blau et al. 2018, PIRM); pyiqa shaves 4 px by default,
    # here the caller's crop_border is the only crop (PIRM shaves the scale factor)
    "pi": PerceptualMetric("pi", lower_better=True, full_reference=False, set_level=False,
                           needs=("ma", "niqe"), options={"crop_border": 0}, min_side=96,
                           note="Ma on Y of YCbCr, NIQE on Y of YCbCr"),
    "lpips": PerceptualMetric("lpips", lower_better=True, full_reference=True, set_level=False,
                              needs=("lpips_alex",), note="AlexNet, v0.1; range 0..1"),
    # clean-fid's "clean" resize to 299x299; pyiqa compares two folders of images
    "fid": PerceptualMetric("fid", lower_better=True, full_reference=True, set_level=True,
                            needs=("fid_inception",), note="Inception-v3 pool3, 2048-d"),
}


class MetricUnavailable(WeightsUnavailable):
    """A metric's pretrained files are missing outside the paper profile; ``reason`` is the n/a text of the row."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class UnknownMetric(KeyError):
    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def _metric(name: str) -> PerceptualMetric:
    try:
        return METRICS[name]
    except KeyError:
        raise UnknownMetric(f"unknown perceptual metric {name!r}; known: {', '.join(METRICS)}") from None


def _as_rgb(img: np.ndarray, crop_border: int) -> np.ndarray:
    """uint8 (H,W) or (H,W,1|3) -> uint8 (H',W',3), `crop_border` pixels shaved from each edge."""
    img = to_rgb(np.asarray(img))
    if img.dtype != np.uint8:
        raise ValueError(f"images must be uint8 in [0,255], got {img.dtype}")
    return img[crop_border:-crop_border, crop_border:-crop_border] if crop_border else img


@contextlib.contextmanager
def _no_downloads():
    """Make every download path pyiqa/torchvision use for these metrics raise instead."""
    import pyiqa.utils.download_util as pyiqa_download
    import torch.hub

    def refuse(url, dst, *args, **kwargs):
        raise WeightsUnavailable(f"refusing to download {url} to {dst}: provide the file via ${weights.ENV}")

    saved = [(m, m.download_url_to_file) for m in (torch.hub, pyiqa_download)]
    for module, _ in saved:
        module.download_url_to_file = refuse
    try:
        yield
    finally:
        for module, original in saved:
            module.download_url_to_file = original


def _build(name: str, device: str):
    """The pyiqa metric, its pretrained files already installed; raises rather than download."""
    stamp = []
    for w in METRICS[name].needs:  # the exact files pyiqa/torchvision will open must be there
        for f in weights.WEIGHTS[w].files:
            path = weights.cache_dir(f.cache) / f.name
            if not path.is_file():
                raise WeightsUnavailable(f"{name}: {f.name} is not in {path.parent}")
            st = path.stat()
            stamp.append((str(path), st.st_size, st.st_mtime_ns))
    return _build_cached(name, device, tuple(stamp))


@functools.cache
def _build_cached(name: str, device: str, stamp: tuple):
    # keyed by the files too: a replaced file or another cache folder builds afresh
    import pyiqa

    m = METRICS[name]
    with _no_downloads():
        try:
            return pyiqa.create_metric(m.pyiqa_name, as_loss=False, device=device, **m.options)
        except WeightsUnavailable:
            raise
        except Exception as e:  # a truncated or wrong file: never fall back to anything
            files = [f.name for w in m.needs for f in weights.WEIGHTS[w].files]
            raise RuntimeError(f"{name}: could not load pretrained weights {', '.join(files)}: {e}") from e


def _fid(metric, sr: list[np.ndarray], hr: list[np.ndarray]) -> float:
    from PIL import Image

    if len(sr) < 2 or len(hr) < 2:
        raise ValueError("fid needs at least 2 images in each set (it fits a covariance)")
    with tempfile.TemporaryDirectory(prefix="srcore_fid_") as tmp:
        dirs = []
        for label, images in (("sr", sr), ("hr", hr)):
            d = Path(tmp) / label
            d.mkdir()
            for i, img in enumerate(images):
                Image.fromarray(img).save(d / f"{i:05d}.png")  # lossless
            dirs.append(str(d))
        return float(metric(dirs[0], dirs[1], num_workers=0, verbose=False))  # pyiqa passes its device


def measure(metric: str, sr_images: list[np.ndarray], hr_images: list[np.ndarray] | None, *,
            strict: bool, crop_border: int = 0) -> float:
    """Mean `metric` over `sr_images` (for FID: the score of the SR set against the HR set).

    Images are uint8 RGB (H,W,3) in [0,255]; (H,W) grayscale is repeated to 3 channels.
    `crop_border` pixels are shaved from each edge of every image first (the scale factor,
    by the usual SR convention). `hr_images` pairs with `sr_images` for full-reference
    metrics and is ignored otherwise.

    Without the pretrained files: raises WeightsUnavailable when ``strict`` (the paper profile: a number the
    paper reports must not go missing quietly), otherwise :class:`MetricUnavailable` whose ``reason`` is :func:`srcore.pretrained.weights.unavailable_reason`'s
    "n/a: weights unavailable (<file>)".
    """
    m = _metric(metric)
    if not sr_images:
        raise ValueError(f"{metric}: no images")
    sr = [_as_rgb(x, crop_border) for x in sr_images]
    hr = None
    if m.full_reference:
        if hr_images is None:
            raise ValueError(f"{metric} is full-reference: hr_images are required")
        hr = [_as_rgb(x, crop_border) for x in hr_images]
        if not m.set_level and [x.shape for x in hr] != [x.shape for x in sr]:
            raise ValueError(f"{metric}: SR shapes {[x.shape for x in sr]} differ from HR shapes {[x.shape for x in hr]}")
    small = [x.shape[:2] for x in sr if min(x.shape[:2]) < m.min_side]
    if small:  # NIQE works on 96x96 blocks: a smaller image has none
        raise ValueError(f"{metric} needs images of at least {m.min_side}x{m.min_side} after crop_border, got {small}")

    absent = [w for w in m.needs if not weights.available(w)]
    if absent:
        if strict:
            reasons = []
            for w in absent:
                try:
                    weights.require(w)
                except WeightsUnavailable as e:
                    reasons.append(str(e))
            raise WeightsUnavailable(f"metric {metric!r} cannot be computed: {' '.join(reasons)}")
        raise MetricUnavailable(weights.unavailable_reason(*absent))
    for w in m.needs:
        weights.require(w)  # copies from $SRCORE_WEIGHTS into the cache pyiqa reads

    device = default_device()
    net = _build(metric, str(device))
    if m.set_level:
        return _fid(net, sr, hr)
    scores = []
    for i, x in enumerate(sr):
        if m.full_reference:
            score = net(image_to_tensor(x).to(device), image_to_tensor(hr[i]).to(device))
        else:
            score = net(image_to_tensor(x).to(device))
        scores.append(float(score.detach().cpu().reshape(-1)[0]))
    value = float(np.mean(scores))
    if not math.isfinite(value):
        raise ValueError(f"{metric} is not finite ({value}) on images of sizes {[x.shape for x in sr]}")
    return value

"""Fetch, by name, the data sets the papers read: download (resumable, verified), extract, arrange.

The layout under a data root, the one :mod:`srcore.data` reads::

    benchmark/<Set>/HR/<name>.png                    Set5, Set14, BSD100, Urban100, General100
    benchmark/<Set>/LR_bicubic/X<s>/<name>x<s>.png   MATLAB-bicubic LR where the source ships them
    train/<Folder>/*                                 DIV2K (800 images), T91, BSD200
    valid/DIV2K/*                                    the 100 DIV2K validation images

One catalogue, :data:`CATALOGUE`, says for each set where its archive is published, under which
terms, how large it is, its checksum (or that none is published), how the archive is packed and
how its files map onto the layout, renamed where the source names them otherwise. Sets may share
an archive (EDSR's benchmark.tar holds Set5, Set14, BSD100 and Urban100): fetching several of them
downloads it once. A set whose folder is already there is left alone, without a request.

Nothing half-written ever sits at a final path: a download streams to ``<file>.part`` (resumed
with an HTTP Range request) and is renamed once whole and verified; an archive is extracted into a
temporary sibling folder and renamed; a set's folder is assembled beside its final place and moved
there whole. An interrupted run leaves only things the next run resumes or ignores.

    python -m srcore.download Set5 Urban100 --root data
    python -m srcore.download all
    python -m srcore.download --paper <paper> --profile quick    # exactly what that run reads
    python -m srcore.download --list                             # sources, sizes, terms, checksums
    python -m srcore.download release edsr_x2                    # official weights into $SRCORE_WEIGHTS
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from srcore.data import DEFAULT_DATA_ROOT, configured_root


class DownloadError(RuntimeError):
    """A download, checksum or extraction failed; the message names the file and what to do."""


class UnknownDatasetError(KeyError):
    """A name that is not in ``CATALOGUE`` (nor ``all``/``benchmark``)."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


# ---------------------------------------------------------------------------------------------
# One file: download (resumable, verified) and extract (safely, whole or not at all).

def _offline(url: str, dest: Path, reason: object) -> str:
    return (f"cannot reach {url}: {reason}. This machine may be offline: download the file "
            f"by hand and place it at {dest}, then rerun")


def _digests(path: Path, algorithms) -> dict[str, str]:
    hashes = {name: hashlib.new(name, usedforsecurity=False) for name in algorithms}
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            for h in hashes.values():
                h.update(block)
    return {name: h.hexdigest() for name, h in hashes.items()}


def _stream(url: str, part: Path, dest: Path, chunk_size: int, timeout: float,
            progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (a Range request when ``part`` has bytes)."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "srcore"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:  # nothing after the part's end: it is whole
            return
        raise DownloadError(
            f"{url} answered HTTP {err.code} {err.reason}, so {dest} cannot be downloaded. "
            f"Check the URL (or --base-url), or download the file by hand and place it at "
            f"{dest}, then rerun") from err
    except (OSError, http.client.HTTPException) as err:  # refused, unknown host, timeout
        raise DownloadError(_offline(url, dest, getattr(err, "reason", err))) from err
    except ValueError as err:
        raise DownloadError(f"{url} is not a URL that can be downloaded to {dest}: {err}") from err

    with response:
        resumed = response.status == 206
        content_range = response.headers.get("Content-Range", "")
        if resumed and not content_range.startswith(f"bytes {offset}-"):
            raise DownloadError(f"{url} resumed at {content_range!r}, not at byte {offset}: "
                                f"delete {part} and rerun")
        if not resumed:
            offset = 0  # the server ignored Range and sends the whole file: start again
        total = None if response.length is None else offset + response.length
        part.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "ab" if resumed else "wb") as out, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=dest.name, disable=not progress) as bar:
            try:
                while chunk := response.read(chunk_size):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:
                raise DownloadError(f"the download of {url} broke off after {bar.n} bytes "
                                    f"({err}): rerun to resume from {part}") from err
    if total is not None and part.stat().st_size != total:
        raise DownloadError(f"the download of {url} stopped at {part.stat().st_size} of "
                            f"{total} bytes: rerun to resume from {part}")


def download(url: str, dest: Path, *, md5: str | None = None, sha256: str | None = None,
             size: int | None = None, chunk_size: int = 1 << 20, timeout: float = 30,
             progress: bool = True) -> Path:
    """Stream ``url`` to ``dest``, resuming the ``<dest>.part`` of an interrupted run.

    ``dest`` appears only whole (``os.replace`` from the part) and, when ``md5``/``sha256`` are
    given, verified (``size``: its length in bytes, too). A ``dest`` already there that matches
    (or with nothing to check it against) is returned without any request. On a checksum or
    size mismatch the part is deleted. Every failure raises ``DownloadError``.
    """
    dest = Path(dest)
    expected = {name: digest.lower() for name, digest in (("md5", md5), ("sha256", sha256))
                if digest}
    if (dest.is_file() and (size is None or dest.stat().st_size == size)
            and (not expected or _digests(dest, expected) == expected)):
        return dest
    part = dest.with_suffix(dest.suffix + ".part")
    _stream(url, part, dest, chunk_size, timeout, progress)

    if size is not None and part.stat().st_size != size:
        got = part.stat().st_size
        part.unlink()
        raise DownloadError(f"{url} gave {got} bytes, expected {size}. The partial file was deleted: "
                            f"rerun to download it again, or check the file yourself and place it at {dest}")
    actual = _digests(part, expected)
    if actual != expected:
        part.unlink()
        wrong = "; ".join(f"{name} expected {expected[name]}, got {actual[name]}"
                          for name in expected if actual[name] != expected[name])
        raise DownloadError(
            f"checksum mismatch for {url} ({wrong}). The partial file was deleted: rerun to "
            f"download it again, or check the file yourself and place it at {dest}")
    os.replace(part, dest)
    return dest


def _is_web_page(path: Path) -> bool:
    """Whether ``path`` holds an HTML page (a host's sign-in or "confirm download" page), not the file."""
    with open(path, "rb") as f:
        head = f.read(64).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _check_member(name: str, archive: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DownloadError(
            f"{archive} holds an unsafe member {name!r} (absolute path or '..'): refusing to "
            f"extract it. It is not the archive expected; delete it and check where it came from")


def _unreadable(archive: Path, err: object) -> DownloadError:
    return DownloadError(f"{archive} is not a readable zip or tar archive ({err}): it is truncated or "
                         f"corrupt. Delete it and rerun to download it again")


def _members(archive: Path) -> list[str]:
    """The file names inside a zip or a tar (plain, .gz, .bz2, .xz); ``DownloadError`` if it cannot be read."""
    archive = Path(archive)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return [i.filename for i in zf.infolist() if not i.is_dir()]
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                return [m.name for m in tf.getmembers() if m.isfile()]
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as err:
        raise _unreadable(archive, err) from err
    raise _unreadable(archive, "neither zip nor tar")


def _wanted(name: str, only: tuple[str, ...] | None) -> bool:
    return only is None or any(name.startswith(folder.rstrip("/") + "/") for folder in only)


def extract(archive: Path, dest_dir: Path, only: Iterable[str] | None = None) -> Path:
    """Unpack a zip or a tar (plain, .gz, .bz2, .xz) into ``dest_dir``; ``only``: just these folders.

    Extraction goes to a temporary sibling folder renamed to ``dest_dir`` when complete, so an
    existing ``dest_dir`` is a finished extraction and is returned untouched. Members with an
    absolute path or ``..`` (names or link targets) raise ``DownloadError`` before anything
    is written; so does an archive that is truncated or corrupt, naming it.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    only = None if only is None else tuple(only)
    if dest_dir.exists():
        return dest_dir
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".tmp", dir=dest_dir.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                names = zf.namelist()
                for name in names:
                    _check_member(name, archive)
                zf.extractall(tmp, members=[n for n in names if _wanted(n, only)])
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                chosen = []
                for member in tf.getmembers():
                    _check_member(member.name, archive)
                    if member.issym() or member.islnk():
                        _check_member(member.linkname, archive)
                    if _wanted(member.name, only):
                        chosen.append(member)
                # Python >= 3.10.12 / 3.11.4 filters members too; the check above covers older.
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tf.extractall(tmp, members=chosen, **safe)
        else:
            raise _unreadable(archive, "neither zip nor tar")
        os.rename(tmp, dest_dir)
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as err:
        raise DownloadError(f"cannot extract {archive} into {dest_dir}: {err}. It is truncated or "
                            f"corrupt: delete it and rerun to download it again") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir


# ---------------------------------------------------------------------------------------------
# The catalogue: each set by name, its archive, and how the archive's files land in the layout.

@dataclass(frozen=True)
class Archive:
    """One file a source publishes: where it is, what is known of it, how it is packed."""

    file: str            # its name under <root>/downloads, and under --base-url
    url: str
    page: str            # the project page that publishes it
    licence: str         # its terms as the source states them, or "not stated"
    size: int | None     # bytes, checked after the download; None: no exact size is published
    size_note: str       # where the size comes from, or what is known of it
    md5: str | None
    sha256: str | None
    checksum_note: str   # who publishes the checksums, or "no checksum is published"
    packing: str         # zip or tar, top folder, what else it holds

    def size_text(self) -> str:
        return f"{self.size / 1e6:,.0f} MB" if self.size else self.size_note

    def checksum_text(self) -> str:
        kinds = [kind for kind, digest in (("MD5", self.md5), ("SHA-256", self.sha256)) if digest]
        return " + ".join(kinds) or "none published"


@dataclass(frozen=True)
class Part:
    """One folder of an archive, where its images go in a set's folder, and what they must be."""

    inside: str                    # folder in the archive
    dest: str                      # folder in the set's folder ("": the set's folder itself)
    count: int                     # images it holds
    names: tuple[str, ...] = ()    # their file names once renamed, where the layout fixes them


def _same(name: str) -> str:
    return name


@dataclass(frozen=True)
class Placement:
    """One folder under the data root, assembled from the ``parts`` of one archive."""

    archive: Archive
    folder: str                                 # under the data root, e.g. "benchmark/BSD100"
    parts: tuple[Part, ...]
    rename: Callable[[str], str] = _same        # a file's name in the archive -> in the layout


@dataclass(frozen=True)
class DataSet:
    """A set by name: what it is, where its images come from, how they are renamed."""

    description: str
    placements: tuple[Placement, ...]
    renaming: str   # the rule in words


def _bmp_to_png(name: str) -> str:
    """``t1.bmp`` -> ``t1.png``; the image is re-encoded losslessly (the same pixels) as it moves."""
    if not name.lower().endswith(".bmp"):
        raise ValueError("is not a .bmp")
    return name[:-4] + ".png"


_URBAN100_NAME = re.compile(r"img(\d{3})((?:x[234])?\.png)")


def _urban100_name(name: str) -> str:
    """EDSR's ``img004.png`` / ``img004x2.png`` -> SelfExSR's ``img_004.png`` / ``img_004x2.png``."""
    match = _URBAN100_NAME.fullmatch(name)
    if not match:
        raise ValueError("is not named img<NNN>.png or img<NNN>x<s>.png")
    return f"img_{match[1]}{match[2]}"


# BSDS300's 100 test images (BSD100; EDSR's B100 names each by its BSD image ID) in SelfExSR's
# order, which numbers them img_001 .. img_100: the IDs sorted as text (MATLAB's dir order), so
# img_001 is 101085 (the totems) and img_067 is 3096 (the airplane). The IDs are BSDS300's test
# split, BSDS500's val folder (as PaddlePaddle/docs' sub-pixel SR tutorial lists it). The order is
# read off SelfExSR's BSD100 (jbhuang0604/SelfExSR, data/BSD100): its img_001, 006, 046, 067, 071,
# 079 and 084 are the totems, penguin, vase, airplane, jet, bird and seeds of 101085, 106024,
# 227092, 3096, 37073, 42049 and 58060, each the text-order rank of its ID; not published as such.
BSD100_IDS = (
    "101085", "101087", "102061", "103070", "105025", "106024", "108005", "108070", "108082",
    "109053", "119082", "12084", "123074", "126007", "130026", "134035", "14037", "143090",
    "145086", "147091", "148026", "148089", "156065", "157055", "159008", "160068", "16077",
    "163085", "167062", "167083", "170057", "175032", "175043", "182053", "189080", "19021",
    "196073", "197017", "208001", "210088", "21077", "216081", "219090", "220075", "223061",
    "227092", "229036", "236037", "24077", "241004", "241048", "253027", "253055", "260058",
    "271035", "285079", "291000", "295087", "296007", "296059", "299086", "300091", "302008",
    "304034", "304074", "306005", "3096", "33039", "351093", "361010", "37073", "376043", "38082",
    "38092", "385039", "41033", "41069", "42012", "42049", "43074", "45096", "54082", "55073",
    "58060", "62096", "65033", "66053", "69015", "69020", "69040", "76053", "78004", "8023",
    "85048", "86000", "86016", "86068", "87046", "89072", "97033",
)
_BSD100_NAME = re.compile(r"(\d+)((?:x[234])?\.png)")


def _bsd100_name(name: str) -> str:
    """EDSR's ``3096.png`` / ``3096x2.png`` -> SelfExSR's ``img_067.png`` / ``img_067x2.png``."""
    match = _BSD100_NAME.fullmatch(name)
    if not match or match[1] not in BSD100_IDS:
        raise ValueError("is not <BSD ID>.png or <BSD ID>x<s>.png for one of BSD100's 100 IDs")
    return f"img_{BSD100_IDS.index(match[1]) + 1:03d}{match[2]}"


def _named(stems: Iterable[str], tail: str = ".png") -> tuple[str, ...]:
    return tuple(f"{stem}{tail}" for stem in stems)


def _numbered(first: int, last: int) -> tuple[str, ...]:
    """DIV2K's names: ``0001.png`` .. ``0800.png``."""
    return _named(f"{i:04d}" for i in range(first, last + 1))


def _benchmark(archive: Archive, inside: str, folder: str, stems: tuple[str, ...],
               rename: Callable[[str], str] = _same) -> Placement:
    """A set of EDSR's benchmark.tar: ``<inside>/HR`` and ``<inside>/LR_bicubic/X2..X4``."""
    parts = [Part(f"{inside}/HR", "HR", len(stems), _named(stems))]
    parts += [Part(f"{inside}/LR_bicubic/X{s}", f"LR_bicubic/X{s}", len(stems), _named(stems, f"x{s}.png"))
              for s in (2, 3, 4)]
    return Placement(archive, folder, tuple(parts), rename)


# DIV2K's host publishes no checksum. MD5s: Coloquinte/torchSR (torchsr/datasets/div2k.py);
# sizes and SHA-256s: tensorflow/datasets (tensorflow_datasets/url_checksums/div2k.txt). Packing:
# deepinv/deepinv (deepinv/datasets/div2k.py: DIV2K_train_HR/0001.png .. DIV2K_valid_HR/0801.png).
# Terms: the DIV2K page ("made available for academic research purpose only"; eugenesiow/Div2k's
# dataset card records them as other-academic-use).
_DIV2K_PAGE = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
_DIV2K_TERMS = "academic research purpose only (the DIV2K page)"
_DIV2K_SUMS = "not published by the host; MD5 as torchSR pins it, SHA-256 and size as TensorFlow Datasets pins them"
DIV2K_TRAIN = Archive(
    file="DIV2K_train_HR.zip", url=_DIV2K_PAGE + "DIV2K_train_HR.zip", page=_DIV2K_PAGE, licence=_DIV2K_TERMS,
    size=3_530_603_713, size_note="TensorFlow Datasets (url_checksums/div2k.txt)",
    md5="bdc2d9338d4e574fe81bf7d158758658",
    sha256="9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
    checksum_note=_DIV2K_SUMS,
    packing="zip; one top folder DIV2K_train_HR/ holding 0001.png .. 0800.png")
DIV2K_VALID = Archive(
    file="DIV2K_valid_HR.zip", url=_DIV2K_PAGE + "DIV2K_valid_HR.zip", page=_DIV2K_PAGE, licence=_DIV2K_TERMS,
    size=448_993_893, size_note="TensorFlow Datasets (url_checksums/div2k.txt)",
    md5="9fcdda83005c5e5997799b69f955ff88",
    sha256="20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
    checksum_note=_DIV2K_SUMS,
    packing="zip; one top folder DIV2K_valid_HR/ holding 0801.png .. 0900.png")

# EDSR's benchmark archive, linked from sanghyun-son/EDSR-PyTorch's README ("benchmark datasets
# (250MB)"). No checksum on the page. MD5: Coloquinte/torchSR (torchsr/datasets/benchmarks.py,
# which also gives the folder names); SHA-256 and size: YeapJieShen/single-image-super-resolution
# (tests/reference/fetch_urban100.py). File names: B100 by BSD image ID (3096.png), Urban100 as
# img001.png, LR as <name>x<s>.png, as public code that reads the archive names them. Whether its
# Urban100 HR are cropped like SelfExSR's x4 release is not stated.
BENCHMARK_TAR = Archive(
    file="benchmark.tar", url="https://cv.snu.ac.kr/research/EDSR/benchmark.tar",
    page="https://github.com/sanghyun-son/EDSR-PyTorch", licence="not stated",
    size=250_112_000, size_note="YeapJieShen/single-image-super-resolution (tests/reference/fetch_urban100.py)",
    md5="4ace41d33c2384b97e6b320cd0afd6ba",
    sha256="80c21c333bbf6ceb5308b7243761f8284478274413a97b96f1d63e9045fd93e8",
    checksum_note="not published by the host; MD5 as torchSR pins it, SHA-256 and size as "
                  "YeapJieShen/single-image-super-resolution pins them",
    packing="uncompressed tar; benchmark/<Set>/HR/<name>.png and benchmark/<Set>/LR_bicubic/X{2,3,4}/"
            "<name>x<s>.png (MATLAB bicubic) for Set5, Set14, B100 (BSD100, files named by BSD image ID) "
            "and Urban100 (img001 .. img100); no Manga109")

# Berkeley's BSDS300 images, as pytorch/examples (super_resolution/data.py) downloads them; the page
# grants use "for non-commercial research and educational purposes" and gives no byte count (public
# instructions call the file "images (22MB)"). The tar holds BSDS300/images/{train,test}/<ID>.jpg
# and BSDS300/iids_{train,test}.txt, as pytorch/examples and OpenCV's datasets module read it.
# One public project pins SHA-256 a5f7d0e4...138652b4 for this file, yet its own check accepts
# other bytes holding the same images, so it is not enforced here: the 200 images are counted.
BSDS300 = Archive(
    file="BSDS300-images.tgz",
    url="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/BSDS300-images.tgz",
    page="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/",
    licence="free for non-commercial research and educational purposes; in exchange the authors ask "
            "for the results of your segmentation or boundary detector on the test set (the BSDS page)",
    size=None, size_note="about 22 MB (no exact size published)",
    md5=None, sha256=None,
    checksum_note="no checksum is published by the host (a SHA-256 reported by one third party is not "
                  "enforced); the archive is checked to open and to hold the 200 training images",
    packing="gzip tar; BSDS300/images/train/<ID>.jpg (200), BSDS300/images/test/<ID>.jpg (the 100 of "
            "BSD100, not used here), BSDS300/iids_train.txt, BSDS300/iids_test.txt")

# SRCNN's Caffe training code, linked from its project page; T91 sits in it as Train/*.bmp (the
# folder its generate_train.m reads). SHA-256: YeapJieShen/single-image-super-resolution
# (docs/reproduction.md, "retrieved 2026-09-01"). The top folder SRCNN/ is inferred from how that
# project unpacks it (SRCNN_train/SRCNN/...), not confirmed; the file names t1.bmp .. tt27.bmp are
# those of Yang et al.'s release, likewise not confirmed against the zip. No size is published.
SRCNN_TRAIN = Archive(
    file="SRCNN_train.zip", url="http://mmlab.ie.cuhk.edu.hk/projects/SRCNN/SRCNN_train.zip",
    page="http://mmlab.ie.cuhk.edu.hk/projects/SRCNN.html", licence="not stated",
    size=None, size_note="size not published",
    md5=None, sha256="001146419f7acfb12a3e7929c8acd5de88a08d687d6881085f81321ad6982b1a",
    checksum_note="not published by the host; SHA-256 as YeapJieShen/single-image-super-resolution "
                  "records it",
    packing="zip of SRCNN's Caffe training code; SRCNN/Train/ holds the 91 images as BMP (t1.bmp .. "
            "tt27.bmp) beside SRCNN/Test/Set5, SRCNN/Test/Set14, MATLAB scripts (generate_train.m, "
            "generate_test.m) and Caffe prototxt files (top folder inferred, not confirmed)")

# General-100, from FSRCNN's project page ("100 bmp-format images (with no compression)", as
# OpenCV's datasets module quotes it, telling users to download General-100.zip there). The URL is
# the Google Drive file that public FSRCNN code cites for General-100 (igv/FSRCNN-TensorFlow's
# README); that it is the page's own link is not confirmed. Packing General-100/im_<n>.bmp is
# inferred from code that reads it so; no size or checksum is published.
GENERAL100 = Archive(
    file="General-100.zip",
    url="https://drive.google.com/uc?export=download&id=0B7tU5Pj1dfCMVVdJelZqV0prWnM",
    page="http://mmlab.ie.cuhk.edu.hk/projects/FSRCNN.html", licence="not stated",
    size=None, size_note="size not published",
    md5=None, sha256=None,
    checksum_note="no checksum is published; the archive is checked to open and to hold the 100 images",
    packing="zip; General-100/im_1.bmp .. im_100.bmp, uncompressed BMP (top folder and names inferred, "
            "not confirmed)")

_SET5 = ("baby", "bird", "butterfly", "head", "woman")
_SET14 = ("baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers", "foreman", "lenna",
          "man", "monarch", "pepper", "ppt3", "zebra")
_SELFEXSR = tuple(f"img_{i:03d}" for i in range(1, 101))  # BSD100's and Urban100's names, as SelfExSR's

CATALOGUE: dict[str, DataSet] = {
    "DIV2K": DataSet(
        "800 training and 100 validation 2K images (Agustsson & Timofte, NTIRE 2017)",
        (Placement(DIV2K_TRAIN, "train/DIV2K", (Part("DIV2K_train_HR", "", 800, _numbered(1, 800)),)),
         Placement(DIV2K_VALID, "valid/DIV2K", (Part("DIV2K_valid_HR", "", 100, _numbered(801, 900)),))),
        "none: 0001.png .. 0900.png kept"),
    "T91": DataSet(
        "Yang et al.'s 91 training images (2010), as SRCNN's training code ships them",
        (Placement(SRCNN_TRAIN, "train/T91", (Part("SRCNN/Train", "", 91),), _bmp_to_png),),
        "t1.bmp -> t1.png, re-encoded losslessly (the same pixels)"),
    "BSD200": DataSet(
        "the 200 training images of Berkeley's BSDS300 (Martin et al., ICCV 2001); no overlap with BSD100",
        (Placement(BSDS300, "train/BSD200", (Part("BSDS300/images/train", "", 200),)),),
        "none: <BSD ID>.jpg kept (srcore.data reads JPEG)"),
    "General100": DataSet(
        "General-100 (Dong et al., FSRCNN, ECCV 2016): 100 images, HR only",
        (Placement(GENERAL100, "benchmark/General100", (Part("General-100", "HR", 100),), _bmp_to_png),),
        "im_1.bmp -> HR/im_1.png, re-encoded losslessly (the same pixels)"),
    "Set5": DataSet(
        "5 images (Bevilacqua et al., BMVC 2012), HR and MATLAB-bicubic LR x2, x3, x4",
        (_benchmark(BENCHMARK_TAR, "benchmark/Set5", "benchmark/Set5", _SET5),),
        "none: <name>.png and <name>x<s>.png kept"),
    "Set14": DataSet(
        "14 images (Zeyde et al., 2010), HR and MATLAB-bicubic LR x2, x3, x4",
        (_benchmark(BENCHMARK_TAR, "benchmark/Set14", "benchmark/Set14", _SET14),),
        "none: <name>.png and <name>x<s>.png kept"),
    "BSD100": DataSet(
        "B100: BSDS300's 100 test images (Martin et al., ICCV 2001), HR and MATLAB-bicubic LR x2, x3, x4",
        (_benchmark(BENCHMARK_TAR, "benchmark/B100", "benchmark/BSD100", _SELFEXSR, _bsd100_name),),
        "B100/<BSD ID>.png -> BSD100/img_<NNN>.png (and <ID>x<s>.png -> img_<NNN>x<s>.png), NNN the "
        "ID's place in BSD100_IDS: the IDs sorted as text, SelfExSR's numbering (3096 -> img_067)"),
    "Urban100": DataSet(
        "100 urban scenes (Huang et al., CVPR 2015), HR and MATLAB-bicubic LR x2, x3, x4",
        (_benchmark(BENCHMARK_TAR, "benchmark/Urban100", "benchmark/Urban100", _SELFEXSR, _urban100_name),),
        "img004.png -> img_004.png and img004x2.png -> img_004x2.png (SelfExSR's names)"),
}

# Names on the command line besides the catalogue's (which match in any case: div2k, set5).
GROUPS = {"all": tuple(CATALOGUE), "benchmark": ("Set5", "Set14", "BSD100", "Urban100")}


# ---------------------------------------------------------------------------------------------
# Fetching sets: each archive once, each set's folder assembled beside its place and moved in.

_IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg")  # what the catalogue's archives hold


def resolve(names: Iterable[str]) -> list[str]:
    """Catalogue names for ``names`` (any case; ``all``, ``benchmark``), in order, each once."""
    by_lower = {name.lower(): name for name in CATALOGUE}
    chosen: list[str] = []
    for given in names:
        key = given.lower()
        if key in GROUPS:
            found = GROUPS[key]
        elif key in by_lower:
            found = (by_lower[key],)
        else:
            raise UnknownDatasetError(
                f"unknown data set {given!r}; known: {', '.join(CATALOGUE)}, all "
                f"(and benchmark: {', '.join(GROUPS['benchmark'])})")
        chosen += [name for name in found if name not in chosen]
    return chosen


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)


def _move_image(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, re-encoding it losslessly where the suffix changes (BMP -> PNG)."""
    if src.suffix.lower() == dst.suffix.lower():
        shutil.move(src, dst)
        return
    from PIL import Image  # only T91 and General-100 need it

    with Image.open(src) as image:
        image.save(dst, format=dst.suffix.lstrip(".").upper())
    src.unlink()


def _check_part(folder: Path, part: Part, archive: Path, name: str) -> None:
    """Refuse a part whose images, once renamed, are not the count and names the catalogue states."""
    found = {p.name for p in _images(folder)}
    missing = sorted(set(part.names) - found)
    if len(found) != part.count or missing:
        detail = f", lacking {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}" if missing else ""
        raise DownloadError(
            f"{archive}: {part.inside}/ gave {len(found)} images for {name}, expected {part.count}{detail}. "
            f"It is not the archive the catalogue describes: delete it and rerun, or place {name} by hand")


def _place(contents: Path, placement: Placement, root: Path, archive: Path, name: str) -> Path:
    """Assemble ``placement``'s folder from the extracted ``contents``, check it, move it into place.

    The folder is built in a temporary sibling of its final place and renamed there whole, so the
    data root never holds half a set.
    """
    target = root / placement.folder
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        for part in placement.parts:
            dest = stage / part.dest
            dest.mkdir(parents=True, exist_ok=True)
            for image in _images(contents / part.inside):
                try:
                    new_name = placement.rename(image.name)
                except ValueError as err:
                    raise DownloadError(f"{archive}: {part.inside}/{image.name} {err}, so {name} cannot be "
                                        f"laid out. It is not the archive expected: delete it and rerun") from None
                _move_image(image, dest / new_name)
            _check_part(dest, part, archive, name)
        os.rename(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return target


def _fill(path: Path, pending: list[tuple[str, Placement]], root: Path) -> None:
    """Lay out the ``pending`` (set name, placement) pairs from the downloaded archive at ``path``."""
    folders = [part.inside for _, placement in pending for part in placement.parts]
    inside = _members(path)
    for name, placement in pending:
        for part in placement.parts:
            if not any(member.startswith(part.inside + "/") for member in inside):
                raise DownloadError(f"{path} has no {part.inside}/, which {name} needs: it is not the "
                                    f"archive expected. Delete it and rerun to download it again")
    contents = path.with_name(path.name + ".contents")
    shutil.rmtree(contents, ignore_errors=True)  # an interrupted run's, perhaps half moved out
    try:
        extract(path, contents, only=folders)
        for name, placement in pending:
            _place(contents, placement, root, path, name)
    finally:
        shutil.rmtree(contents, ignore_errors=True)


def _get(archive: Archive, downloads: Path, base_url: str | None, timeout: float, progress: bool) -> Path:
    """The archive at ``downloads/<file>``: downloaded (or found there), verified, not a web page."""
    url = archive.url if base_url is None else f"{base_url.rstrip('/')}/{archive.file}"
    path = download(url, downloads / archive.file, md5=archive.md5, sha256=archive.sha256,
                    size=archive.size, timeout=timeout, progress=progress)
    if _is_web_page(path):  # Google Drive answers so for a file it wants a sign-in or a click for
        path.unlink()
        raise DownloadError(f"{url} answered with a web page, not {archive.file}. Download it in a browser "
                            f"(from {archive.page}) and place it at {path}, then rerun")
    return path


def fetch(names: str | Iterable[str], root: Path, *, base_url: str | None = None,
          timeout: float = 30, progress: bool = True) -> dict[str, list[Path]]:
    """Download, verify, extract and lay out the sets ``names`` (catalogue names, ``all``) under ``root``.

    Each archive is downloaded once for all the sets that need it, and deleted once they are laid
    out. A set whose folders are all there is left alone, without a request: a second call does
    nothing. ``base_url`` replaces the hosts (a mirror, or a test server): files are fetched as
    ``<base_url>/<file>``. Returns each set's folders under ``root``.
    """
    chosen = resolve([names] if isinstance(names, str) else names)
    root = Path(root)
    downloads = root / "downloads"
    pending: dict[str, list[tuple[str, Placement]]] = {}  # archive file -> what it still has to fill
    for name in chosen:
        for placement in CATALOGUE[name].placements:
            if not (root / placement.folder).exists():
                pending.setdefault(placement.archive.file, []).append((name, placement))
    for needs in pending.values():
        path = _get(needs[0][1].archive, downloads, base_url, timeout, progress)
        _fill(path, needs, root)
        path.unlink()
    if downloads.is_dir() and not any(downloads.iterdir()):
        downloads.rmdir()
    return {name: [root / p.folder for p in CATALOGUE[name].placements] for name in chosen}


def sets_for_run(paper: str, profile: str) -> dict[str, list[str]]:
    """The data sets a run of ``paper`` under ``profile`` reads, each with the parameters naming it
    (:func:`srcore.paper.inputs.sets_read`)."""
    from srcore.paper import config, inputs

    return inputs.sets_read(paper, config.load(paper, profile))


# ---------------------------------------------------------------------------------------------
# Official weights (srcore.pretrained.releases), and the command line.

def fetch_release(name: str, dest_dir: Path | None = None, *, base_url: str | None = None,
                  timeout: float = 30, progress: bool = True) -> Path:
    """Download the official weights ``name`` of :data:`srcore.pretrained.releases.RELEASES` into ``dest_dir``
    (default ``$SRCORE_WEIGHTS``, where :func:`srcore.pretrained.releases.load_teacher` looks), resumably,
    checking its size and SHA-256 where the catalogue has them. ``base_url`` replaces the host
    (a mirror, or a test server): ``<base_url>/<file>``. A file already there is not fetched again.
    """
    from srcore.pretrained.releases import RELEASES
    from srcore.pretrained.weights import user_dir

    if name not in RELEASES:
        raise UnknownDatasetError(f"unknown release {name!r}; known: {', '.join(RELEASES)}")
    release = RELEASES[name]
    dest = Path(dest_dir if dest_dir is not None else user_dir()) / release.file
    url = release.url if base_url is None else f"{base_url.rstrip('/')}/{release.file}"
    path = download(url, dest, sha256=release.sha256, size=release.size, timeout=timeout, progress=progress)
    if _is_web_page(path):  # a host's "confirm download" page, not the weights
        path.unlink()
        raise DownloadError(f"{url} answered with a web page, not the weights file (Google Drive does so for "
                            f"large files). Download {release.file} in a browser and place it at {dest}")
    return path


def _release_main(argv: list[str]) -> int:
    from srcore.pretrained.releases import RELEASES
    from srcore.pretrained.weights import user_dir

    parser = argparse.ArgumentParser(
        prog="python -m srcore.download release",
        description="Download official pretrained weights into $SRCORE_WEIGHTS.")
    parser.add_argument("name", choices=list(RELEASES),
                        help="; ".join(f"{k}: {r.paper} {r.role} x{r.scale}" for k, r in RELEASES.items()))
    parser.add_argument("--dir", type=Path, default=None, help=f"folder (default: $SRCORE_WEIGHTS, now {user_dir()})")
    parser.add_argument("--base-url", help="download the file from this mirror instead")
    args = parser.parse_args(argv)
    try:
        path = fetch_release(args.name, args.dir, base_url=args.base_url)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    release = RELEASES[args.name]
    print(f"{args.name} ({release.network}) is at {path.resolve()}")
    if release.sha256 is None:
        print(f"note: no published SHA-256 to check it against ({release.sha256_note})")
    return 0


def _archives(name: str) -> list[Archive]:
    return list({p.archive.file: p.archive for p in CATALOGUE[name].placements}.values())


def _sharing(archive: Archive, name: str) -> list[str]:
    return [other for other in CATALOGUE
            if other != name and archive.file in {a.file for a in _archives(other)}]


def _summary() -> str:
    """One line per set (size, terms, checksums): the --help epilog."""
    lines = ["data sets (NAME), their download, terms and published checksums:"]
    for name in CATALOGUE:
        archives = _archives(name)
        size = " + ".join(a.size_text() for a in archives)
        shared = [f"shared with {', '.join(_sharing(a, name))}" for a in archives if _sharing(a, name)]
        lines.append(f"  {name:<11} {size}{' (' + '; '.join(shared) + ')' if shared else ''}")
        lines.append(f"  {'':<11} terms: {'; '.join(dict.fromkeys(a.licence for a in archives))}")
        lines.append(f"  {'':<11} checksum: {', '.join(dict.fromkeys(a.checksum_text() for a in archives))}")
    lines += [f"  {'all':<11} every set above",
              f"  {'benchmark':<11} {', '.join(GROUPS['benchmark'])}",
              "--list shows each source, its packing and the renaming.", "",
              "python -m srcore.download release <name>: official pretrained weights (srcore.pretrained.releases)"]
    return "\n".join(lines)


def catalogue_text() -> str:
    """The whole catalogue, set by set: what ``--list`` prints."""
    blocks = []
    for name, data_set in CATALOGUE.items():
        lines = [f"{name}: {data_set.description}"]
        for placement in data_set.placements:
            a = placement.archive
            sharing = _sharing(a, name)
            lines += [f"  archive   {a.file} <- {a.url}" + (f" (shared with {', '.join(sharing)})" if sharing else ""),
                      f"  page      {a.page}",
                      f"  size      {f'{a.size:,} bytes' if a.size else a.size_note}",
                      f"  terms     {a.licence}",
                      "  checksum  " + ", ".join(f"{k} {v}" for k, v in (("MD5", a.md5), ("SHA-256", a.sha256)) if v)
                      + (f" ({a.checksum_note})" if a.md5 or a.sha256 else a.checksum_note),
                      f"  packing   {a.packing}"]
            lines += [f"  layout    {part.inside}/ -> {Path(placement.folder, part.dest).as_posix()}/ ({part.count})"
                      for part in placement.parts]
        lines.append(f"  renaming  {data_set.renaming}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m srcore.download",
        description="Download data sets by name and lay them out under the data root "
                    "(benchmark/<Set>/HR, LR_bicubic/X<s>, train/<Folder>, valid/DIV2K).",
        epilog=_summary(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"{', '.join(CATALOGUE)}, all, or benchmark (any case)")
    parser.add_argument("--paper", help="fetch exactly the sets a run of this paper reads (its profile's "
                                        "train_sets and the sets its parameters name)")
    parser.add_argument("--profile", default="paper", help="the run's profile, with --paper (default: paper)")
    parser.add_argument("--root", type=Path, default=configured_root(),
                        help=f"data root (default: $SRCORE_DATA, else {DEFAULT_DATA_ROOT})")
    parser.add_argument("--base-url", help="download the files from this mirror instead: <base-url>/<file>")
    parser.add_argument("--list", action="store_true", help="show the catalogue: sources, sizes, terms, "
                                                            "checksums, packing, renaming")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["release"]:
        return _release_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        print(catalogue_text())
        return 0
    if not args.names and not args.paper:
        parser.error("name a data set (or all), or give --paper; --list shows the catalogue")
    names, notes = list(args.names), []
    if args.paper:
        from srcore.paper.config import ParameterError

        try:
            named = sets_for_run(args.paper, args.profile)
        except ParameterError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        for name, parameters in named.items():
            if name in CATALOGUE:
                names.append(name)
            else:
                where = f"train/{name}" if "train_sets" in parameters else f"benchmark/{name}/HR"
                notes.append(f"{name} (named by {', '.join(parameters)}) is not in the catalogue: "
                             f"place it at {args.root / where} by hand")
    try:
        chosen = resolve(names)
    except UnknownDatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    there = {name: all((args.root / p.folder).exists() for p in CATALOGUE[name].placements) for name in chosen}
    try:
        placed = fetch(chosen, args.root, base_url=args.base_url)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name, folders in placed.items():
        status = "already there" if there[name] else "fetched"
        print(f"{name} ({status}): {', '.join(str(folder.resolve()) for folder in folders)}")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

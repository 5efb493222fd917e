"""Fetch the data sets the papers use: download (resumable, checksummed), extract, arrange.

The layout under a data root, the one the notebooks and ``tests/conftest.py`` read::

    benchmark/<Set>/HR/*.png                 Set5, Set14, BSD100, Urban100
    benchmark/<Set>/LR_bicubic/X<s>/*.png    s = 2, 3, 4 (MATLAB bicubic, from EDSR's archive)
    train/DIV2K/*.png                        the 800 DIV2K training images
    valid/DIV2K/*.png                        the 100 DIV2K validation images

Nothing half-written ever sits at a final path: a download streams to ``<file>.part`` and is
renamed once whole and verified; an archive is extracted into a temporary sibling folder and
renamed. So an interrupted run leaves only things the next run resumes or ignores.

    python -m srcore.download benchmark --root data
    python -m srcore.download release edsr_x2       # official weights into $SRCORE_WEIGHTS
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

# The data root when $SRCORE_DATA is not set (srcore.data reads these too): the checkout's data/
# folder (where this module downloads to), else shared/datasets beside the checkout (as for the
# weights, srcore.weights.DEFAULT_USER_DIR). One rule for make, python -m, benchmarks and JupyterLab.
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1] / "data"
SIBLING_DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def default_data_root() -> Path:
    """``data/`` in the checkout if it exists, else ``../shared/datasets`` if that exists, else ``data/``."""
    if not DEFAULT_DATA_ROOT.is_dir() and SIBLING_DATA_ROOT.is_dir():
        return SIBLING_DATA_ROOT
    return DEFAULT_DATA_ROOT


class DownloadError(RuntimeError):
    """A download, checksum or extraction failed; the message names the file and what to do."""


class UnknownDatasetError(KeyError):
    """A name that is not in ``DATASETS``."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


@dataclass(frozen=True)
class Archive:
    """One file on a host, and where its folders go under the data root."""

    url: str
    md5: str | None  # None where no published checksum was found
    layout: dict[str, str]  # folder inside the archive -> folder under the data root
    sha256: str | None = None

    @property
    def file(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Dataset:
    description: str
    archives: tuple[Archive, ...]


_DIV2K_HOST = "http://data.vision.ee.ethz.ch/cvl/DIV2K/"
_EDSR_HOST = "https://cv.snu.ac.kr/research/EDSR/"

# Neither host publishes checksums. The MD5s are the ones torchSR pins for these URLs
# (Coloquinte/torchSR, torchsr/datasets/div2k.py and benchmarks.py), repeated by other loaders.
DATASETS: dict[str, Dataset] = {
    "div2k": Dataset(
        "DIV2K HR images (Agustsson & Timofte, NTIRE 2017): 800 for training, 100 for validation",
        (
            Archive(_DIV2K_HOST + "DIV2K_train_HR.zip", md5="bdc2d9338d4e574fe81bf7d158758658",
                    layout={"DIV2K_train_HR": "train/DIV2K"}),
            Archive(_DIV2K_HOST + "DIV2K_valid_HR.zip", md5="9fcdda83005c5e5997799b69f955ff88",
                    layout={"DIV2K_valid_HR": "valid/DIV2K"}),
        ),
    ),
    "benchmark": Dataset(
        "Set5, Set14, BSD100, Urban100: HR and MATLAB-bicubic LR x2/x3/x4, as packed by EDSR",
        (
            # One public project also reports sha256 80c21c33...45fd93e8 (250,112,000 bytes);
            # only the MD5 is pinned, as it is the one several loaders agree on.
            # The archive calls BSD100 "B100"; it has no Manga109 (distributed separately).
            Archive(_EDSR_HOST + "benchmark.tar", md5="4ace41d33c2384b97e6b320cd0afd6ba",
                    layout={"benchmark/Set5": "benchmark/Set5",
                            "benchmark/Set14": "benchmark/Set14",
                            "benchmark/B100": "benchmark/BSD100",
                            "benchmark/Urban100": "benchmark/Urban100"}),
        ),
    ),
}


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
    (or with no checksum to check) is returned without any request. On a checksum or size
    mismatch the part is deleted. Every failure raises ``DownloadError``.
    """
    dest = Path(dest)
    expected = {name: digest.lower() for name, digest in (("md5", md5), ("sha256", sha256))
                if digest}
    if dest.is_file() and (not expected or _digests(dest, expected) == expected):
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


def _check_member(name: str, archive: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DownloadError(
            f"{archive} holds an unsafe member {name!r} (absolute path or '..'): refusing to "
            f"extract it. It is not the archive expected; delete it and check where it came from")


def extract(archive: Path, dest_dir: Path) -> Path:
    """Unpack a zip or a tar (plain, .gz, .bz2, .xz) into ``dest_dir``.

    Extraction goes to a temporary sibling folder renamed to ``dest_dir`` when complete, so an
    existing ``dest_dir`` is a finished extraction and is returned untouched. Members with an
    absolute path or ``..`` (names or link targets) raise ``DownloadError`` before anything
    is written.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if dest_dir.exists():
        return dest_dir
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".tmp", dir=dest_dir.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    _check_member(name, archive)
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _check_member(member.name, archive)
                    if member.issym() or member.islnk():
                        _check_member(member.linkname, archive)
                # Python >= 3.10.12 / 3.11.4 filters members too; the check above covers older.
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tf.extractall(tmp, **safe)
        else:
            raise DownloadError(f"{archive} is neither a zip nor a tar archive: delete it and "
                                f"rerun to download it again")
        os.rename(tmp, dest_dir)
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as err:
        raise DownloadError(f"cannot extract {archive} into {dest_dir}: {err}. Delete the "
                            f"archive and rerun to download it again") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir


def arrange(extracted: Path, root: Path, layout: dict[str, str]) -> list[Path]:
    """Move folders of an extracted archive to their places under ``root``.

    ``layout`` maps a folder inside ``extracted`` to a folder under ``root`` (an
    ``Archive.layout``). A place already filled is left alone: it may be the user's own copy.
    Returns the places, in ``layout`` order.
    """
    placed = []
    for inside, target in layout.items():
        dst = Path(root) / target
        if not dst.exists():
            src = Path(extracted) / inside
            if not src.is_dir():
                raise DownloadError(f"the archive extracted to {extracted} has no folder "
                                    f"{inside!r}, so {dst} cannot be filled: it is not the "
                                    f"archive expected")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(src, dst)  # a rename: fetch extracts on the same file system
        placed.append(dst)
    return placed


def fetch(name: str, root: Path, *, base_url: str | None = None) -> Path:
    """Download, verify, extract and arrange the catalogue entry ``name`` under ``root``.

    ``base_url`` replaces the host (a mirror, or a test server): files are fetched from
    ``<base_url>/<file>``. An archive whose places are all filled is skipped without a request,
    so a second call does nothing. Archives are deleted once arranged (DIV2K's is 3.5 GB).
    Returns ``root``.
    """
    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    root = Path(root)
    downloads = root / "downloads"
    for archive in DATASETS[name].archives:
        missing = {inside: target for inside, target in archive.layout.items()
                   if not (root / target).exists()}
        if not missing:
            continue
        url = archive.url if base_url is None else f"{base_url.rstrip('/')}/{archive.file}"
        path = download(url, downloads / archive.file, md5=archive.md5, sha256=archive.sha256)
        extracted = extract(path, downloads / f"{archive.file}.contents")
        arrange(extracted, root, missing)
        shutil.rmtree(extracted)
        path.unlink()
    if downloads.is_dir() and not any(downloads.iterdir()):
        downloads.rmdir()
    return root


def fetch_release(name: str, dest_dir: Path | None = None, *, base_url: str | None = None,
                  timeout: float = 30, progress: bool = True) -> Path:
    """Download the official weights ``name`` of :data:`srcore.releases.RELEASES` into ``dest_dir``
    (default ``$SRCORE_WEIGHTS``, where :func:`srcore.releases.load_teacher` looks), resumably,
    checking its size and SHA-256 where the catalogue has them. ``base_url`` replaces the host
    (a mirror, or a test server): ``<base_url>/<file>``. A file already there is not fetched again.
    """
    from srcore.releases import RELEASES
    from srcore.weights import user_dir

    if name not in RELEASES:
        raise UnknownDatasetError(f"unknown release {name!r}; known: {', '.join(RELEASES)}")
    release = RELEASES[name]
    dest = Path(dest_dir if dest_dir is not None else user_dir()) / release.file
    url = release.url if base_url is None else f"{base_url.rstrip('/')}/{release.file}"
    path = download(url, dest, sha256=release.sha256, size=release.size, timeout=timeout, progress=progress)
    with open(path, "rb") as f:
        head = f.read(64).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):  # a host's "confirm download" page, not the weights
        path.unlink()
        raise DownloadError(f"{url} answered with a web page, not the weights file (Google Drive does so for "
                            f"large files). Download {release.file} in a browser and place it at {dest}")
    return path


def _release_main(argv: list[str]) -> int:
    from srcore.releases import RELEASES
    from srcore.weights import user_dir

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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["release"]:
        return _release_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m srcore.download",
        description="Download a data set and lay it out under the data root.",
        epilog="python -m srcore.download release <name>: official pretrained weights (srcore.releases)")
    parser.add_argument("name", choices=list(DATASETS),
                        help="; ".join(f"{k}: {d.description}" for k, d in DATASETS.items()))
    parser.add_argument("--root", type=Path,
                        default=Path(os.environ.get("SRCORE_DATA") or DEFAULT_DATA_ROOT),
                        help=f"data root (default: $SRCORE_DATA, else {DEFAULT_DATA_ROOT})")
    parser.add_argument("--base-url", help="download the files from this mirror instead")
    args = parser.parse_args(argv)
    try:
        root = fetch(args.name, args.root, base_url=args.base_url)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.name} is under {root.resolve()}:")
    for archive in DATASETS[args.name].archives:
        for target in archive.layout.values():
            print(f"  {root / target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Official pretrained networks the papers build on, and loading one as a paper's teacher.

Three papers distil from a teacher someone has already trained and published (moon2023_clsd:
EDSR; baek2024_esrgan_prune_kd: ESRGAN; lee2021_srgan_kd: an SRGAN with a 64-filter, 16-block
SRResNet). With the file in ``$SRCORE_WEIGHTS`` (:func:`srcore.pretrained.weights.user_dir`) a notebook
loads it instead of training the teacher::

    net, info = load_teacher("official", paper="moon2023_clsd", scale=2)   # edsr_x2-0edfb8a3.pt
    net, info = load_teacher("/data/my_esrgan.pth", paper="baek2024_esrgan_prune_kd", scale=4)
    info  # {"file": ..., "path": ..., "sha256": <of the file as read>, "release": "edsr_x2" or None}

    python -m srcore.download release edsr_x2      # fetch into $SRCORE_WEIGHTS (resumable)

No host of these files publishes a SHA-256: every ``sha256`` below is None and its
``sha256_note`` says what is known (the hex in EDSR's and BasicSR's file names is not the
file's hash prefix: BasicSR's publishing script hashes the file before it strips the
optimizer). A checksum read from a public source goes into ``sha256`` and is then verified
on every download and every load. Sizes are None for the same reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from srcore.pretrained.weights import WeightsUnavailable, file_sha256, user_dir

ROLES = ("teacher", "student-reference", "teacher-discriminator", "reference")


@dataclass(frozen=True)
class Release:
    """One published weights file: where it is, what it is, and which paper uses it for what."""

    name: str                # catalogue key, e.g. "edsr_x2"
    file: str                # file name exactly as published (looked for under $SRCORE_WEIGHTS)
    url: str                 # where to download it from
    size: int | None         # bytes; None where no public source states it
    sha256: str | None       # None where no public source gives it (see sha256_note)
    sha256_note: str
    licence: str
    source: str              # where the URL (and licence) were read
    paper: str
    role: str                # one of ROLES
    scale: int
    network: str             # what from_checkpoint builds from it


_EDSR_HOST = "https://cv.snu.ac.kr/research/EDSR/models/"
_EDSR_SRC = ("sanghyun-son/EDSR-PyTorch src/model/edsr.py `url` dict (the files its --pre_train download "
             "reads); licence: the repository's LICENSE (MIT)")
_EDSR_NOTE = ("not published; the 8 hex digits in the file name are not documented as a hash prefix, "
              "so they are not checked")
_LORNATANG_HOST = "https://huggingface.co/ChangyuLiu/SRGAN-PyTorch/resolve/main/"
_LORNATANG_SRC = ("Lornatang/SRGAN-PyTorch scripts/download_weights.sh and configs/test/SRGAN_x4-ImageNet-Set5.yaml "
                  "@8842030 (64 channels, 16 blocks); licence: the repository's LICENSE (Apache-2.0)")
_HF_NOTE = ("not published in the repository; Hugging Face shows the LFS SHA-256 on the file's page, which "
            "could not be read from here: add it once read")


def _edsr(name: str, file: str, role: str, scale: int, network: str) -> Release:
    return Release(name, file, _EDSR_HOST + file, None, None, _EDSR_NOTE, "MIT", _EDSR_SRC,
                   "moon2023_clsd", role, scale, network)


def _lornatang(name: str, file: str, role: str, network: str) -> Release:
    return Release(name, file, _LORNATANG_HOST + file, None, None, _HF_NOTE, "Apache-2.0", _LORNATANG_SRC,
                   "lee2021_srgan_kd", role, 4, network)


RELEASES: dict[str, Release] = {r.name: r for r in (
    # moon2023_clsd's teacher is EDSR itself (32 x 256, res_scale 0.1) and its student EDSR-baseline
    _edsr("edsr_x2", "edsr_x2-0edfb8a3.pt", "teacher", 2, "EDSR 32 blocks x 256, res_scale 0.1"),
    _edsr("edsr_x3", "edsr_x3-ea3ef2c6.pt", "teacher", 3, "EDSR 32 blocks x 256, res_scale 0.1"),
    _edsr("edsr_x4", "edsr_x4-4f62e9ef.pt", "teacher", 4, "EDSR 32 blocks x 256, res_scale 0.1"),
    _edsr("edsr_baseline_x2", "edsr_baseline_x2-1bc95232.pt", "student-reference", 2, "EDSR 16 blocks x 64 (baseline)"),
    _edsr("edsr_baseline_x3", "edsr_baseline_x3-abf2a44e.pt", "student-reference", 3, "EDSR 16 blocks x 64 (baseline)"),
    _edsr("edsr_baseline_x4", "edsr_baseline_x4-6b446fab.pt", "student-reference", 4, "EDSR 16 blocks x 64 (baseline)"),
    # baek2024_esrgan_prune_kd prunes the ESRGAN generator (the paper's final model, RRDB_ESRGAN_x4.pth)
    Release("esrgan_x4", "RRDB_ESRGAN_x4.pth",
            "https://drive.google.com/uc?export=download&id=1TPrz5QKd8DHHt1k8SRtm6tMiPjz_Qene",
            None, None, "not published (Google Drive shows none)", "Apache-2.0",
            "xinntao/ESRGAN README.md @73e9b63 links the Google Drive folder 17VYV_SoZZesU6mbxz2dMAIccSSlqLecY; "
            "the file id inside it is the one public download scripts use; licence: the repository's LICENSE. "
            "Google Drive may answer with a web page instead of the file: then download it in a browser",
            "baek2024_esrgan_prune_kd", "teacher", 4, "RRDBNet 64 / 23 RRDB / growth 32 (xinntao names)"),
    Release("esrgan_x4_basicsr", "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
            "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.1/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
            None, None, "not published; 'ff704c30' is the SHA-256 prefix of the file before BasicSR's "
            "publishing script rewrote it (scripts/publish_models.py hashes its input), not of this file",
            "Apache-2.0 (ESRGAN's weights); hosted by Real-ESRGAN (MIT)",
            "xinntao/Real-ESRGAN docs/Training.md ('pre-trained model ESRGAN', the start of Real-ESRNet's training): "
            "the official ESRGAN in BasicSR names, under params_ema",
            "baek2024_esrgan_prune_kd", "teacher", 4, "RRDBNet 64 / 23 RRDB / growth 32 (BasicSR names)"),
    # lee2021_srgan_kd's teacher: an SRGAN with SRResNet 64 filters / 16 blocks
    _lornatang("srgan_x4_lornatang", "SRGAN_x4-ImageNet.pth.tar", "teacher",
               "SRResNet 64 x 16 blocks, SRGAN-trained on ImageNet (ends with clamp(0, 1))"),
    _lornatang("srgan_discriminator_x4_lornatang", "DiscriminatorForVGG_x4-ImageNet.pth.tar", "teacher-discriminator",
               "SRGAN discriminator 64 filters, dense 1024, 96x96 inputs"),
    _lornatang("srresnet_x4_lornatang", "SRResNet_x4-ImageNet.pth.tar", "reference",
               "SRResNet 64 x 16 blocks, MSE-trained (the SRGAN generator's initialisation)"),
)}


def releases_for(paper: str, role: str, scale: int | None = None) -> list[Release]:
    """Catalogue entries of ``paper`` in ``role`` (at ``scale`` if given), in catalogue order."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    return [r for r in RELEASES.values() if r.paper == paper and r.role == role and scale in (None, r.scale)]


def reference_release(paper: str, scale: int) -> Release | None:
    """The official network a paper's own baseline can be shown beside (moon2023_clsd: EDSR-baseline), or None."""
    found = releases_for(paper, "student-reference", scale)
    return found[0] if found else None


def locate(release: Release) -> Path | None:
    """Path of ``release``'s file in $SRCORE_WEIGHTS, or None."""
    path = user_dir() / release.file
    return path if path.is_file() else None


class ChecksumMismatch(ValueError):
    """A release file whose SHA-256 differs from the catalogue's."""


def verify(path: Path, release: Release | None) -> str:
    """SHA-256 of ``path``; checked against ``release.sha256`` (and size) where the catalogue has them."""
    path = Path(path)
    if release is not None and release.size is not None and path.stat().st_size != release.size:
        raise ChecksumMismatch(f"{path} has {path.stat().st_size} bytes, the release {release.name} "
                               f"{release.size}: an incomplete or different file; download it again ({release.url})")
    digest = file_sha256(path)
    if release is not None and release.sha256 is not None and digest != release.sha256.lower():
        raise ChecksumMismatch(f"{path} has SHA-256 {digest}, the release {release.name} {release.sha256}: "
                               f"a different or damaged file; download it again ({release.url})")
    return digest


def _missing(what: str, files: list[str], folders: list[Path], urls: list[str]) -> WeightsUnavailable:
    return WeightsUnavailable(
        f"{what}: {' or '.join(files)} not found in {', '.join(str(f) for f in folders)}. "
        f"Put the file there (set $SRCORE_WEIGHTS to another folder if you keep it elsewhere; "
        f"`python -m srcore.download release <name>` fetches it); it is published at {' or '.join(urls)}")


def candidate_paths(spec: str) -> list[Path]:
    """Where a file given by path is looked for: the path as given (relative: to the working folder),
    and a bare file name also in $SRCORE_WEIGHTS."""
    given = Path(spec).expanduser()
    return [given] if given.is_absolute() or given.parent != Path(".") else [given, user_dir() / given]


def resolve(spec: str, *, paper: str, scale: int, role: str = "teacher") -> tuple[Path, Release | None]:
    """The file ``spec`` names, and its catalogue entry (None for a file the catalogue does not list).

    ``spec`` "official": the first of the paper's ``role`` releases at ``scale`` found in $SRCORE_WEIGHTS;
    otherwise a path (a bare file name is also looked for in $SRCORE_WEIGHTS). Raises
    :class:`WeightsUnavailable` naming the file(s) and the folder(s) looked in; reads nothing.
    """
    if spec == "official":
        candidates = releases_for(paper, role, scale)
        if not candidates:
            raise WeightsUnavailable(f"the catalogue has no official {role} release for {paper} at x{scale} "
                                     f"(known: {', '.join(RELEASES)}); pass a path instead")
        for release in candidates:
            if path := locate(release):
                return path, release
        raise _missing(f"official {role} of {paper} (x{scale})", [r.file for r in candidates], [user_dir()],
                       [r.url for r in candidates])
    if spec in ("", "train"):
        raise ValueError(f"{spec!r} names no file: 'train' means the notebook trains the teacher itself")
    tried = candidate_paths(spec)
    path = next((p for p in tried if p.is_file()), None)
    if path is None:
        raise _missing(f"teacher weights for {paper}", [tried[0].name], [p.parent.resolve() for p in tried], [spec])
    release = next((r for r in RELEASES.values() if r.file == path.name), None)
    return path, release


def load_release_file(path: Path, release: Release | None, **overrides):
    """(network in eval mode, info) for a located file; verifies its checksum where the catalogue has one."""
    from srcore.pretrained.checkpoints import (
        from_checkpoint,  # late: torch only when a network is loaded
    )

    digest = verify(path, release)
    net = from_checkpoint(path, **overrides)
    info = {"file": path.name, "path": str(path), "sha256": digest, "release": release.name if release else None}
    return net, info


def load_teacher(spec: str, *, paper: str, scale: int, **overrides):
    """A paper's teacher from a release: ``(net_in_eval_mode, info)``.

    ``spec``: "official" (the catalogue's teacher for ``paper`` at ``scale``, from $SRCORE_WEIGHTS)
    or a path. ``info = {"file", "path", "sha256", "release"}``, sha256 of the file as read.
    ``overrides`` go to :func:`srcore.pretrained.checkpoints.from_checkpoint` (e.g. EDSR's ``res_scale``).
    A missing file raises :class:`srcore.pretrained.weights.WeightsUnavailable` before anything is read; a
    network of another scale than ``scale`` raises ValueError.
    """
    path, release = resolve(spec, paper=paper, scale=scale)
    net, info = load_release_file(path, release, **overrides)
    got = getattr(getattr(net, "cfg", None), "scale", None)
    if got is not None and got != scale:
        raise ValueError(f"{path} holds a x{got} network, the run is x{scale}")
    return net, info


def load_reference(paper: str, scale: int, **overrides):
    """(net, info) of the paper's official reference network (:func:`reference_release`) when its file is
    in $SRCORE_WEIGHTS, else None (the reference row is optional)."""
    release = reference_release(paper, scale)
    path = locate(release) if release else None
    return load_release_file(path, release, **overrides) if path else None

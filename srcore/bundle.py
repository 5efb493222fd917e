"""One folder that runs one paper on a node without internet: code, wheels, data subset and ``run.sh``.

    python -m srcore.bundle --paper seo_squeezesr_kd --profile quick --scales 2 --out /tmp/seo_x2
    # copy /tmp/seo_x2 to the node, then there:
    /path/to/seo_x2/run.sh OUT [-p name=value ...]      # OUT receives at most 8 files of <= 16 MiB

The node is assumed to have Python and PyTorch (the packages of ``--target-packages``, by default
``srcore/targets/h200.txt``, our GPU image) and nothing else: the bundle carries wheels of every
other package a run imports (papermill, ipykernel and their dependencies, resolved with ``pip
download`` for ``--python-version`` into the checkout's ``.whl/`` cache), the project's tracked
code (no results/ or tests/), only the images the paper's notebook reads under the chosen
profile and scales (copied from the data root in srcore's layout), and the NIQE parameters where
the paper measures NIQE. ``run.sh`` installs the wheels offline (``pip --no-index --no-deps
--target``, so the image's torch is the one used), runs ``python -m srcore.reproduce`` and packs
what the run wrote into OUT, also when it is stopped from outside (TERM) or by ``RUN_LIMIT_S``.

The bundle is refused, naming its largest parts and what to drop, when it exceeds ``--max-mib``.
``--rehearse`` builds a bundle for this machine's Python and runs it in a virtual environment
that holds only the target's packages, torch, torchvision and triton at the image's versions
(``IMAGE_VERSIONS``, installed once into ``.whl/``): the whole offline path, on CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from srcore import config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WHEEL_CACHE = PROJECT_ROOT / ".whl"  # ignored by git; one folder per Python version
DEFAULT_TARGET = Path(__file__).with_name("targets") / "h200.txt"
# The GPU image's versions of what a run's numbers depend on (DEFAULT_TARGET lists the image's packages by name
# only). The CPU rehearsal installs IMAGE_INSTALLED at these versions for this machine's Python in place of the
# lock's copies (triton is the one the image pairs with torch 2.11). The others keep the lock's version: numpy 2.5
# needs Python >= 3.12, so on 3.11 the lock's 2.4.6 is the nearest; pandas, scikit-image and the rest have no
# version in the image's list.
IMAGE_VERSIONS = {"python": "3.12.3", "torch": "2.11.0", "torchvision": "0.26.0", "triton": "3.6.0", "numpy": "2.5.2"}
IMAGE_INSTALLED = ("torch", "torchvision", "triton")
IMAGE_PYTHON = ".".join(IMAGE_VERSIONS["python"].split(".")[:2])  # what the wheels are resolved for
RUN_TEMPLATE = Path(__file__).with_name("bundle_run.sh")
MIB = 2**20

# What `python -m srcore.reproduce` imports beyond the target image: the runner and its kernel.
RUN_REQUIREMENTS = ("papermill", "ipykernel")
# Dependencies pulled in by RUN_REQUIREMENTS that a headless run never imports (10 of ~15 MiB):
# ipykernel falls back to no debugger without debugpy, IPython to no tab completion without jedi.
OPTIONAL = {"debugpy": "ipykernel's debugger", "jedi": "IPython's completion", "parso": "jedi's parser"}
# Papers whose notebook measures NIQE (lee2021: Table 4's NIQE row; lee2022: niqe_sets). pyiqa's
# wheel is 7.8 MB of docs and test images around 1.2 MB of package, and its declared dependencies
# (transformers, bitsandbytes, datasets, ...) are hundreds of MB; NIQE imports only numpy, scipy,
# torch, cv2 and huggingface_hub, all in the image. So: the wheel trimmed to its package, no deps.
NIQE_PAPERS = {"lee2021_srgan_kd": "rating_images", "lee2022_mutual_srgan": "niqe_sets"}
PYIQA = "pyiqa==0.1.16"
NIQE_WEIGHTS = "niqe_modelparameters.mat"
# Tracked files a run does not need.
CODE_EXCLUDE = ("results/", "tests/", ".ci/", "environment.yml", "Makefile")
# Figure images named by a bare stem live in this set.
FIGURE_SET = {"seo_squeezesr_kd": "Urban100", "moon2023_clsd": "Urban100"}
FIGURE_KEYS = ("fig_image", "fig_images", "fig2_image", "fig3_image", "fig4_images")
FIXED_SCALE = {"baek2024_esrgan_prune_kd": 4}  # papers without a scale parameter


class BundleError(RuntimeError):
    """The bundle cannot be made (too large, a missing image, pip failed); the message says what to do."""


def normalize(name: str) -> str:
    """PEP 503 name: 'Typing_Extensions' -> 'typing-extensions'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_targets(path: str | os.PathLike) -> set[str]:
    """Normalized distribution names of a package list file (one a line, '#' comments)."""
    names = set()
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(normalize(re.split(r"[=<>!~\[ ;]", line, maxsplit=1)[0]))
    return names


# --- what a run reads ---------------------------------------------------------------------------
def run_overrides(paper: str, profile: str, scales: list[int] | None, overrides: dict) -> dict:
    """The parameters a bundle bakes into run.sh: ``overrides`` plus ``scales`` (and a figure scale among them)."""
    params = config.load(paper, profile, **overrides)
    out = dict(overrides)
    if scales:
        if "scales" not in params:
            raise BundleError(f"{paper} runs at one scale ({params.get('scale', FIXED_SCALE.get(paper))}); "
                              f"--scales applies to papers with a 'scales' parameter")
        out["scales"] = sorted(scales)
        for key in ("fig_scale", "fig4_scale"):  # a per-scale call draws its figure at a scale it trained
            if key in params and key not in overrides and params[key] not in scales:
                out[key] = max(scales)
    config.load(paper, profile, **out)  # a bad value fails here, before anything is copied
    return out


def run_scales(paper: str, params) -> list[int]:
    """Scales whose LR images a run may read: the trained ones and the figures'."""
    scales = set(params.get("scales") or [params.get("scale", FIXED_SCALE.get(paper, 4))])
    scales |= {params[k] for k in ("fig_scale", "fig4_scale") if k in params}
    return sorted(scales)


def _images(folder: Path) -> list[Path]:
    from srcore.data import list_images  # the notebooks' own listing: same order, same suffixes
    return list_images(folder) if folder.is_dir() else []


def data_files(paper: str, params, root: Path) -> dict[str, list[str]]:
    """Files under ``root`` that ``paper``'s notebook reads with ``params``: group -> relative paths.

    Groups are ``train/<folder>`` and ``benchmark/<set>``; a benchmark group holds the HR images
    (the first ``eval_limit`` of the set, the whole set for lee2021's rating pool, and every
    figure image) and their ``LR_bicubic/X<s>`` files where the data root has them. Sets absent
    from the data root are left out: the notebooks report them as n/a.
    """
    groups: dict[str, list[str]] = {}
    for folder in params["train_sets"]:
        paths = _images(root / "train" / folder)[:params["train_limit"]]
        if not paths:
            raise BundleError(f"{root / 'train' / folder} holds no images ({paper} trains on it)")
        groups[f"train/{folder}"] = [p.relative_to(root).as_posix() for p in paths]
    wanted: dict[str, set[str] | None] = {}  # set -> stems (None: every image)
    for s in params["eval_sets"]:
        limit = (params.get("eval_limit") or {}).get(s)
        wanted[s] = {p.stem for p in _images(root / "benchmark" / s / "HR")[:limit]}
    for s in params.get("rating_sets", []):  # lee2021 draws its rated images from the whole folder
        wanted[s] = None
    for key in FIGURE_KEYS:
        value = params.get(key)
        for item in ([value] if isinstance(value, str) else value or []):
            s, _, stem = item.rpartition("/")
            s = s or FIGURE_SET[paper]
            if wanted.get(s, set()) is not None:
                wanted[s] = wanted.get(s, set()) | {stem}
    for s, stems in wanted.items():
        hr_dir = root / "benchmark" / s / "HR"
        paths = [p for p in _images(hr_dir) if stems is None or p.stem in stems]
        if not paths:
            continue  # not on this data root: n/a in the notebook
        if stems is not None and len(paths) < len(stems):
            missing = sorted(stems - {p.stem for p in paths})
            raise BundleError(f"{hr_dir}: no image named {missing} ({paper} reads them)")
        files = []
        for p in paths:
            files.append(p.relative_to(root).as_posix())
            for x in run_scales(paper, params):
                lr = hr_dir.parent / "LR_bicubic" / f"X{x}" / f"{p.stem}x{x}{p.suffix}"
                if lr.is_file():
                    files.append(lr.relative_to(root).as_posix())
        groups[f"benchmark/{s}"] = files
    return groups


def code_files(root: Path = PROJECT_ROOT) -> list[str]:
    """Files a run needs: ``git ls-files`` (tracked, and untracked but not ignored: what a commit of the
    work tree would hold) minus results/, tests/ and the CI/Make/conda files."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise BundleError(f"{root} is not a git checkout (the bundle copies its tracked files): {e}") from e
    return [f for f in listed.decode().split("\0") if f and not f.startswith(CODE_EXCLUDE)
            and (root / f).is_file()]


# --- wheels ---------------------------------------------------------------------------------------
def _pip_download(requirements: list[str], dest: Path, python_version: str, no_deps: bool = False) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp",
           *[a for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
             for a in ("--platform", p)], "-d", str(dest), *(["--no-deps"] if no_deps else []), *requirements]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise BundleError(f"pip download failed for {' '.join(requirements)} (Python {python_version}):\n"
                          f"{done.stderr.strip()[-2000:]}")


def _wheel_name(path: Path) -> str:
    return normalize(path.name.split("-")[0])


def _trim_pyiqa(wheel: Path, dest: Path) -> Path:
    """pyiqa's wheel with only its package and metadata (its docs and test images are 6.5 MB)."""
    out = dest / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        keep = [i for i in src.infolist() if i.filename.startswith(("pyiqa/", "pyiqa-"))]
        record = next(i.filename for i in keep if i.filename.endswith(".dist-info/RECORD"))
        names = {i.filename for i in keep}
        for info in keep:
            data = src.read(info)
            if info.filename == record:  # pip checks RECORD against what it installs
                lines = [ln for ln in data.decode().splitlines() if ln.split(",")[0] in names]
                data = ("\n".join(lines) + "\n").encode()
            dst.writestr(info, data)
    return out


def resolve_wheels(python_version: str, targets: set[str], niqe: bool, cache: Path = WHEEL_CACHE,
                   log=print) -> list[Path]:
    """Wheels of what a run imports and ``targets`` lacks, for CPython ``python_version`` on manylinux x86-64.

    Downloaded once into ``cache/cp<ver>/`` (pip resolves the dependencies); a ``resolved.json``
    there records the answer, so a rebuild with the same requirements downloads nothing.
    """
    folder = cache / f"cp{python_version.replace('.', '')}"
    folder.mkdir(parents=True, exist_ok=True)
    key = json.dumps({"requirements": RUN_REQUIREMENTS, "pyiqa": PYIQA}, sort_keys=True)
    lock = folder / "resolved.json"
    state = json.loads(lock.read_text()) if lock.is_file() else {}
    if state.get("key") != key or not all((folder / f).is_file() for f in state.get("run", []) + state.get("pyiqa", [])):
        log(f"resolving {', '.join(RUN_REQUIREMENTS)} for Python {python_version} into {folder} ...")
        for sub in ("run", "pyiqa", "trimmed"):  # a fresh resolution: never two versions of one package
            shutil.rmtree(folder / sub, ignore_errors=True)
            (folder / sub).mkdir()
        _pip_download(list(RUN_REQUIREMENTS), folder / "run", python_version)
        _pip_download([PYIQA], folder / "pyiqa", python_version, no_deps=True)
        trimmed = _trim_pyiqa(next((folder / "pyiqa").glob("pyiqa-*.whl")), folder / "trimmed")
        state = {"key": key, "run": sorted(f"run/{w.name}" for w in (folder / "run").glob("*.whl")),
                 "pyiqa": [trimmed.relative_to(folder).as_posix()]}
        lock.write_text(json.dumps(state, indent=1) + "\n")
    chosen = [folder / f for f in state["run"]
              if _wheel_name(folder / f) not in targets and _wheel_name(folder / f) not in OPTIONAL]
    if niqe:
        chosen += [folder / f for f in state["pyiqa"]]
    names = [_wheel_name(p) for p in chosen]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # two versions of one package stop the whole install
        raise BundleError(f"{folder} holds two versions of {twice}: delete the folder and bundle again")
    return chosen


# --- the bundle -------------------------------------------------------------------------------------
@dataclass
class Part:
    name: str      # 'code', 'wheels', 'weights', 'data/train/T91', ...
    files: int
    bytes: int
    note: str = ""

    @property
    def mib(self) -> float:
        return self.bytes / MIB


@dataclass
class Plan:
    paper: str
    profile: str
    overrides: dict
    data_root: Path
    code: list[str]
    data: dict[str, list[str]]
    wheels: list[Path] = field(default_factory=list)
    weights: list[Path] = field(default_factory=list)

    def parts(self) -> list[Part]:
        size = lambda paths: sum(Path(p).stat().st_size for p in paths)  # noqa: E731
        parts = [Part("code", len(self.code), size(PROJECT_ROOT / f for f in self.code))]
        if self.wheels:
            parts.append(Part("wheels", len(self.wheels), size(self.wheels),
                              ", ".join(_wheel_name(w) for w in sorted(self.wheels, key=lambda w: -w.stat().st_size)[:4])))
        if self.weights:
            parts.append(Part("weights", len(self.weights), size(self.weights), ", ".join(w.name for w in self.weights)))
        for group, files in self.data.items():
            hr = [f for f in files if "/LR_bicubic/" not in f]
            total = len(_images(self.data_root / (group + ("/HR" if group.startswith("benchmark") else ""))))
            parts.append(Part(f"data/{group}", len(files), size(self.data_root / f for f in files),
                              f"{len(hr)} of {total} images" + (" (partial)" if len(hr) < total else "")))
        return parts


def describe(parts: list[Part]) -> str:
    total = sum(p.bytes for p in parts)
    lines = [f"  {p.name:<28} {p.files:>4} files {p.mib:7.2f} MiB  {p.note}" for p in parts]
    return "\n".join(lines + [f"  {'total':<28} {sum(p.files for p in parts):>4} files {total / MIB:7.2f} MiB"])


def too_large(plan: Plan, parts: list[Part], max_mib: float) -> str:
    """The refusal: what is largest and what to drop."""
    total = sum(p.bytes for p in parts) / MIB
    largest = sorted(parts, key=lambda p: -p.bytes)[:4]
    params = config.load(plan.paper, plan.profile, **plan.overrides)
    hints = []
    lr_bytes = sum((plan.data_root / f).stat().st_size for fs in plan.data.values() for f in fs if "/LR_bicubic/" in f)
    if len(run_scales(plan.paper, params)) > 1 and lr_bytes > 0.05 * total * MIB:  # LR files are per scale
        hints.append("one scale per call (--scales 2, then --scales 3, ...)")
    for p in largest:
        if not p.name.startswith("data/"):
            continue
        kind, name = p.name.split("/")[1:3]
        if kind == "benchmark":
            hints.append(f"fewer {name} images (-p eval_limit={{...{name}: N}}: the whole dict, or leave it out of eval_sets)")
        else:
            hints.append(f"fewer training images (-p train_limit=N; now {params['train_limit']})")
    lines = describe(largest).splitlines()[:-1]  # the parts, not their sum
    return (f"the bundle of {plan.paper} ({plan.profile}) would be {total:.1f} MiB, over --max-mib {max_mib:g}.\n"
            f"Largest parts:\n" + "\n".join(lines) +
            f"\nTo fit, try: {'; '.join(dict.fromkeys(hints)) or 'a larger --max-mib'}.")


def plan(paper: str, profile: str = "quick", scales: list[int] | None = None, overrides: dict | None = None,
         data_root: str | os.PathLike | None = None) -> Plan:
    """What the bundle of ``paper`` would hold (no wheels yet): checked parameters, code and data files."""
    from srcore.data import data_root as find_data_root

    overrides = run_overrides(paper, profile, scales, dict(overrides or {}))
    params = config.load(paper, profile, **overrides)
    root = find_data_root(data_root if data_root is not None else params["data_root"])
    return Plan(paper, profile, overrides, root, code_files(), data_files(paper, params, root))


def _yaml_flow(value) -> str:
    """A -p value as reproduce's parser reads it back ('[2]', '{Urban100: 4}', 'true', '3')."""
    return json.dumps(value) if not isinstance(value, str) else value


def build(paper: str, out: str | os.PathLike, profile: str = "quick", scales: list[int] | None = None,
          overrides: dict | None = None, *, target_packages: str | os.PathLike = DEFAULT_TARGET,
          max_mib: float = 64, python_version: str = IMAGE_PYTHON, data_root=None, log=print) -> list[Part]:
    """Write the bundle of ``paper`` into ``out`` (which must not exist or be empty); returns its parts.

    Raises BundleError, before writing anything, when it would exceed ``max_mib``.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BundleError(f"{out} exists and is not empty: give a new folder")
    p = plan(paper, profile, scales, overrides, data_root)
    parts = p.parts()
    if sum(x.bytes for x in parts) > max_mib * MIB:  # before any download
        raise BundleError(too_large(p, parts, max_mib))
    params = config.load(paper, profile, **p.overrides)
    niqe = paper in NIQE_PAPERS and bool(params.get(NIQE_PAPERS[paper]))
    p.wheels = resolve_wheels(python_version, read_targets(target_packages), niqe, log=log)
    if niqe:
        from srcore import weights
        found = Path(weights.user_dir()) / NIQE_WEIGHTS
        if found.is_file():
            p.weights = [found]
        else:
            log(f"note: {NIQE_WEIGHTS} not in {weights.user_dir()}: NIQE will be n/a (weights unavailable)")
    parts = p.parts()
    if sum(x.bytes for x in parts) > max_mib * MIB:
        raise BundleError(too_large(p, parts, max_mib))

    out.mkdir(parents=True, exist_ok=True)
    for f in p.code:
        _copy(PROJECT_ROOT / f, out / "code" / f)
    for w in p.wheels:
        _copy(w, out / "wheels" / w.name)
    for w in p.weights:
        _copy(w, out / "weights" / w.name)
    for files in p.data.values():
        for f in files:
            _copy(p.data_root / f, out / "data" / f)
    from srcore.report import git_commit  # late: it imports torch
    commit = git_commit()
    manifest = {
        "paper": paper, "profile": profile, "overrides": p.overrides, "commit": commit,
        "python": python_version, "target_packages": str(Path(target_packages).name),
        "wheels": sorted(w.name for w in p.wheels), "data_root": str(p.data_root),
        "data": {g: len(f) for g, f in p.data.items()},
        "parts": [{"name": x.name, "files": x.files, "mib": round(x.mib, 2), "note": x.note} for x in parts],
        "mib": round(sum(x.mib for x in parts), 2), "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / "bundle.json").write_text(json.dumps(manifest, indent=1) + "\n")
    baked = " ".join(f"-p '{k}={_yaml_flow(v)}'" for k, v in p.overrides.items())
    script = (RUN_TEMPLATE.read_text().replace("@PAPER@", paper).replace("@PROFILE@", profile)
              .replace("@PARAMS@", baked).replace("@COMMIT@", commit).replace("@PYTHON@", python_version))
    (out / "run.sh").write_text(script)
    (out / "run.sh").chmod(0o755)
    return parts


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


# --- what comes back ---------------------------------------------------------------------------------
MAX_FILE = 16 * MIB


def collect(work: str | os.PathLike, out: str | os.PathLike, paper: str, status: str = "",
            weight_archives: int = 3) -> list[Path]:
    """Pack a run's folder ``work/runs`` into ``out`` (called by run.sh, also after a kill): at most 7 files.

    ``<paper>_results.tar.gz`` (the results folder, the training logs log.csv/eval.csv of every
    run, the executed notebook and bundle.json), ``<paper>.ipynb``, up to ``weight_archives``
    ``<paper>_weights[_N].tar.gz`` of 16 MiB (the networks' final weights in float16: generators
    ("net", "G...") smallest first, then other modules), ``run.json`` (status, what was left behind)
    and the log, which run.sh writes there itself.
    """
    work, out = Path(work), Path(out)
    runs = work / "runs"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    executed = runs / "executed" / f"{paper}.ipynb"
    if executed.is_file():
        shutil.copy2(executed, out / executed.name)
        written.append(out / executed.name)
    results = out / f"{paper}_results.tar.gz"
    with tarfile.open(results, "w:gz") as tar:
        if (runs / paper).is_dir():
            tar.add(runs / paper, arcname=paper)
        ckpt = runs / "checkpoints" / paper
        for f in sorted(ckpt.rglob("*.csv")) if ckpt.is_dir() else []:
            tar.add(f, arcname=f"training/{f.relative_to(ckpt)}")
        if executed.is_file():
            tar.add(executed, arcname=f"executed/{executed.name}")
        if (work / "bundle.json").is_file():  # what the run was given: parameters, commit, data, wheels
            tar.add(work / "bundle.json", arcname="bundle.json")
    written.append(results)
    weights = _final_weights(runs / "checkpoints" / paper, work / "weights")
    # the networks the tables evaluate ("net", "G...") before adapters, heads and discriminators;
    # within each, smallest first, so the students come back before their teachers
    order = sorted(weights, key=lambda f: (not f.stem.startswith(("net", "G")), f.stat().st_size))
    budget = MAX_FILE - MIB  # compressed size <= raw size: stay under the cap by raw bytes
    bins: list[list[Path]] = []
    for f in order:
        size = f.stat().st_size
        room = [b for b in bins if sum(x.stat().st_size for x in b) + size <= budget]
        if room:
            room[0].append(f)
        elif size <= budget and len(bins) < weight_archives:
            bins.append([f])
    for i, files in enumerate(bins):
        archive = out / f"{paper}_weights{'' if i == 0 else f'_{i + 1}'}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for f in files:
                tar.add(f, arcname=f"weights/{f.relative_to(work / 'weights')}")
        written.append(archive)
    left = sorted(str(f.relative_to(work / "weights")) for f in set(weights) - {f for b in bins for f in b})
    summary = {"paper": paper, "status": status, "files": {f.name: f.stat().st_size for f in written},
               "weights_left_behind": left,
               "collected": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    big = [f.name for f in written if f.stat().st_size > MAX_FILE]
    if big:
        summary["over_16_mib"] = big
    (out / "run.json").write_text(json.dumps(summary, indent=1) + "\n")
    return written


def _final_weights(ckpt: Path, dest: Path) -> list[Path]:
    """The networks of every ``last.pt`` under ``ckpt``, float16, without optimizer state: ``dest/<run>/<net>.pt``."""
    if not ckpt.is_dir():
        return []
    try:
        import torch
    except ImportError:
        return []
    found = []
    for last in sorted(ckpt.rglob("last.pt")):
        if "probe" in last.relative_to(ckpt).parts:  # timing probes (moon2023's Table 6), not results
            continue
        try:
            state = torch.load(last, map_location="cpu", weights_only=False)
        except Exception as e:  # a checkpoint being written when the run was killed: skip it
            print(f"collect: skipping {last}: {e}", file=sys.stderr)
            continue
        run = last.parent.relative_to(ckpt)
        for net, sd in state.get("nets", {}).items():
            path = dest / run / f"{net}.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            half = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}  # half the bytes
            torch.save({"state_dict": half, "dtype": "float16", "step": state.get("step"), "run": str(run)}, path)
            found.append(path)
    return found


# --- rehearsal -------------------------------------------------------------------------------------------
# What the rehearsal reports and checks inside its venv: module -> distribution
PROBED = {"torch": "torch", "torchvision": "torchvision", "triton": "triton", "numpy": "numpy", "pandas": "pandas",
          "skimage": "scikit-image"}


def image_packages(cache: Path = WHEEL_CACHE, log=print) -> Path:
    """The image's IMAGE_INSTALLED (torch, torchvision, triton) installed for this Python: a folder to overlay.

    ``pip install --no-deps --target`` of PyPI's wheels (torch's is the CUDA build, ~530 MB; it runs on
    CPU) into ``cache/cp<ver>/image/torch-2.11.0_torchvision-0.26.0_triton-3.6.0/``, once: the folder is
    named by the versions and appears only when the install is complete. Their CUDA libraries are the
    lock's (same sonames, newer minor versions), which target_venv exposes beside them.
    """
    pins = [f"{n}=={IMAGE_VERSIONS[n]}" for n in IMAGE_INSTALLED]
    folder = (cache / f"cp{sys.version_info.major}{sys.version_info.minor}" / "image"
              / "_".join(p.replace("==", "-") for p in pins))
    if folder.is_dir():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log(f"installing the image's {', '.join(pins)} into {folder} (0.7 GB of wheels, 1.8 GB installed; once) ...")
    # --no-cache-dir: this folder is the cache; pip's own would hold a second copy of torch's wheel
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
           "--no-compile", "--no-cache-dir", "--only-binary=:all:", "--target", str(partial), *pins]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise BundleError(f"pip install failed for {' '.join(pins)}:\n{done.stderr.strip()[-2000:]}")
    partial.rename(folder)
    return folder


def target_venv(path: str | os.PathLike, targets: set[str], source_site: str | os.PathLike | None = None,
                overlay: str | os.PathLike | None = None) -> Path:
    """A virtual environment holding only the ``targets`` distributions of this interpreter's site-packages
    (and what they require), those found in ``overlay`` (a ``pip --target`` folder) taken from there instead.

    No system site-packages; the target's packages are symlinked from ``source_site`` (or ``overlay``)
    into one folder named by a .pth file, so anything else (papermill, ipykernel, IPython) is missing
    until run.sh installs it from the bundle. Returns the environment's python.
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    path = Path(path)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = Path(source_site or next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()))
    exposed = path / "target-site"
    exposed.mkdir()
    dists = {normalize(d.metadata["Name"]): d for d in metadata.distributions(path=[str(site)])}
    if overlay is not None:  # the image's torch in place of the lock's; its requirements are walked below
        dists.update({normalize(d.metadata["Name"]): d for d in metadata.distributions(path=[str(overlay)])})
    wanted, todo = set(), [t for t in targets if t in dists]
    while todo:  # an image that has a package has what it requires too (huggingface-hub needs its HTTP client)
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        for req in dists[name].requires or []:
            r = Requirement(req)
            if (r.marker is None or r.marker.evaluate({"extra": ""})) and normalize(r.name) in dists:
                todo.append(normalize(r.name))
    for name in wanted:
        dist = dists[name]
        home = Path(dist.locate_file(""))
        tops = {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops - {"bin"}:  # console scripts of a --target install: not on the image's path either
            if (home / top).exists() and not (exposed / top).exists():
                (exposed / top).symlink_to(home / top)
    py = path / "bin" / "python"
    pure = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(pure, "target.pth").write_text(str(exposed) + "\n")
    return py


def venv_versions(py: str | os.PathLike) -> dict[str, str]:
    """Versions that ``py`` imports: PROBED's modules' ``__version__`` (triton's from its metadata), torch's CUDA."""
    code = ("import importlib, importlib.metadata as m, json, torch\n"
            f"names = {sorted(PROBED)!r}\n"
            "v = {n: m.version('triton') if n == 'triton' else importlib.import_module(n).__version__ for n in names}\n"
            "v['cuda'] = str(torch.version.cuda)\n"
            "print(json.dumps(v))")
    done = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=False)
    if done.returncode:
        raise BundleError(f"{py} cannot import the image's packages:\n{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def expected_versions(image: bool = True) -> dict[str, str]:
    """What the rehearsal venv must import: the image's IMAGE_INSTALLED (with ``image``), the lock's for the rest."""
    from importlib import metadata

    want = {n: metadata.version(d) for n, d in PROBED.items()}
    if image:
        want.update({n: IMAGE_VERSIONS[n] for n in IMAGE_INSTALLED})
    return want


def rehearse(paper: str, work: str | os.PathLike, profile: str = "quick", scales=None, overrides=None,
             run_params: list[str] = (), max_mib: float = 64, image: bool = True, log=print) -> dict:
    """Build a bundle for this Python, run it in a target-only venv, check OUT; returns timings and OUT's files.

    With ``image`` (the default) the venv's torch, torchvision and triton are the GPU image's
    (image_packages); without, the lock's. ``versions`` in the answer is what the venv imported.
    """
    work = Path(work)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    tic = time.perf_counter()
    parts = build(paper, work / "bundle", profile, scales, overrides, max_mib=max_mib, python_version=version, log=log)
    log(describe(parts))
    built = time.perf_counter() - tic
    tic = time.perf_counter()
    overlay = image_packages(log=log) if image else None
    py = target_venv(work / "venv", read_targets(DEFAULT_TARGET), overlay=overlay)
    versions = venv_versions(py)
    venv_s = time.perf_counter() - tic
    want = expected_versions(image)
    wrong = {n: f"{versions[n]} (want {v})" for n, v in want.items() if versions[n].split("+")[0] != v}
    if wrong:
        raise BundleError(f"the rehearsal venv {py} imports {wrong}")
    log("rehearsal venv: " + ", ".join(f"{n} {v}" for n, v in versions.items()))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SRCORE_DATA", "SRCORE_WEIGHTS", "VIRTUAL_ENV")}
    env["PATH"] = f"{py.parent}{os.pathsep}{env.get('PATH', '')}"
    env["WORK"] = str(work / "scratch")
    out = work / "out" / "run1"  # two levels deep, as the GPU tool's $OUT/a/b allows
    tic = time.perf_counter()
    args = [str(work / "bundle" / "run.sh"), str(out)] + [a for p in run_params for a in ("-p", p)]
    done = subprocess.run(args, env=env, cwd=work, check=False)
    ran = time.perf_counter() - tic
    return {"returncode": done.returncode, "build_s": built, "venv_s": venv_s, "run_s": ran, "out": out,
            "versions": versions, "files": sorted(f.name for f in out.iterdir()) if out.is_dir() else [],
            "mib": sum(x.mib for x in parts)}


# --- command line -------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srcore.bundle", description=__doc__.split("\n\n")[0])
    ap.add_argument("--paper", required=False, help="the paper to bundle")
    ap.add_argument("--profile", default="quick", choices=config.PROFILES)
    ap.add_argument("--scales", type=int, nargs="+", help="train and evaluate only these scales (one call per scale)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override a profile parameter (baked into run.sh; sizes the data)")
    ap.add_argument("--target-packages", default=DEFAULT_TARGET, type=Path,
                    help="file listing the packages the node already has (default: our GPU image)")
    ap.add_argument("--python-version", default=IMAGE_PYTHON, help="the node's Python (wheels are resolved for it)")
    ap.add_argument("--max-mib", type=float, default=64, help="refuse a bundle larger than this (code included)")
    ap.add_argument("--data-root", help="where to copy images from (default: the profile's, else $SRCORE_DATA)")
    ap.add_argument("--out", type=Path, help="the bundle folder to write (new or empty)")
    ap.add_argument("--rehearse", action="store_true",
                    help="build for this Python and run it in a venv holding only the target's packages (CPU)")
    ap.add_argument("--run-param", action="append", default=[], metavar="NAME=VALUE",
                    help="with --rehearse: -p passed to run.sh (few steps, small patches)")
    ap.add_argument("--collect", nargs=2, metavar=("WORK", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--status", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.collect:
        files = collect(*args.collect, paper=args.paper, status=args.status,
                        weight_archives=int(os.environ.get("WEIGHT_ARCHIVES", 3)))
        print("collected: " + ", ".join(f"{f.name} ({f.stat().st_size / MIB:.2f} MiB)" for f in files))
        return 0
    if not args.paper or not (args.out or args.rehearse):
        ap.error("--paper and --out (or --rehearse) are required")
    from srcore.reproduce import parse_override
    try:
        overrides = dict(parse_override(p) for p in args.param)
        if args.rehearse:
            work = args.out or Path(f"/tmp/srcore_rehearsal_{args.paper}")
            if work.exists():
                shutil.rmtree(work)
            r = rehearse(args.paper, work, args.profile, args.scales, overrides, args.run_param, args.max_mib)
            print(f"rehearsal of {args.paper}: exit {r['returncode']}, bundle {r['mib']:.1f} MiB built in "
                  f"{r['build_s']:.0f} s, run.sh took {r['run_s']:.0f} s; {r['out']}: {', '.join(r['files'])}; "
                  + ", ".join(f"{n} {v}" for n, v in r["versions"].items()))
            return r["returncode"]
        parts = build(args.paper, args.out, args.profile, args.scales, overrides, target_packages=args.target_packages,
                      max_mib=args.max_mib, python_version=args.python_version, data_root=args.data_root)
    except (BundleError, config.ParameterError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"bundle of {args.paper} ({args.profile}) in {args.out}:\n{describe(parts)}")
    print(f"run it: {args.out}/run.sh OUT [-p name=value ...]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

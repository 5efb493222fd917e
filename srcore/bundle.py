"""One folder that runs one paper on a node without internet: code, wheels, data, weights and ``run.sh``.

    pip freeze > node.txt                                        # on the node: what it already has
    python -m srcore.bundle --paper PAPER --profile quick --target-packages node.txt --out bundle
    # copy bundle/ to the node, then there:
    bundle/run.sh OUT [-p name=value ...]                        # OUT receives the results, weights and log

What the bundle holds:

* **wheels** of every package a headless run imports (:data:`RUN_PACKAGES`, with their dependencies) that
  the node lacks, resolved for the node's Python (``--python-version``, default this interpreter's) on
  manylinux x86-64 and cached in the checkout's ``.whl/``. The node's packages come from a list the user
  makes on it (``--target-packages node.txt``, one name a line, ``pip freeze`` works); without a list the node
  is assumed to have only Python, and torch and the rest are bundled too. pyiqa (NIQE and the other
  perceptual metrics) is bundled without its declared dependencies, which a run does not import.
* the project's tracked **code** (no results/ or tests/);
* the **data** the run reads under the chosen profile (:func:`srcore.paper.inputs.sets_read`: the training folders
  and every set its parameters name, cut by ``train_limit`` / ``eval_limit``, figure images always), with the
  sets' MATLAB LR images where the data root has them;
* the pretrained **weights** of ``$SRCORE_WEIGHTS`` a run may read (the perceptual metrics' and losses',
  :data:`srcore.pretrained.weights.WEIGHTS`, and a released teacher named by ``teacher_weights``); ``--no-weights``
  leaves them out.

``run.sh`` installs the wheels offline (``pip --no-index --no-deps --target``, so the node's torch is the one
used), runs ``python -m srcore.reproduce`` and packs what the run wrote into OUT, also when it is stopped
from outside (TERM) or by ``RUN_LIMIT_S``. Nothing is capped or trimmed unless asked: ``--max-mib`` refuses
a larger bundle, ``--trim`` leaves out what a headless run never imports (pyiqa's docs and test images,
IPython's completion, ipykernel's debugger), ``--split-mib`` packs the weights that come back into archives
of at most that size. ``--rehearse`` runs the whole path on this machine, in a virtual environment that
holds only the listed packages.
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

from srcore.paper import config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WHEEL_CACHE = PROJECT_ROOT / ".whl"  # ignored by git; one folder per Python version
RUN_TEMPLATE = Path(__file__).with_name("bundle_run.sh")
MIB = 2**20
THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

# What `python -m srcore.reproduce` imports to run a notebook headless (pyproject's dependencies less the
# interactive ones: jupyterlab, nbval, ipywidgets, submitit).
RUN_PACKAGES = ("torch", "torchvision", "numpy", "pillow", "scikit-image", "pandas", "matplotlib", "pyyaml", "tqdm",
                "papermill", "ipykernel")
PYIQA = "pyiqa==0.1.16"  # its declared dependencies (transformers, ...) are hundreds of MB that NIQE never imports
# --trim: dependencies a headless run never imports (ipykernel falls back to no debugger, IPython to no completion)
NEVER_IMPORTED = {"debugpy": "ipykernel's debugger", "jedi": "IPython's completion", "parso": "jedi's parser"}
CODE_EXCLUDE = ("results/", "tests/", ".ci/", "environment.yml", "Makefile")


class BundleError(RuntimeError):
    """The bundle cannot be made (too large, a missing image, pip failed); the message says what to do."""


def normalize(name: str) -> str:
    """PEP 503 name: 'Typing_Extensions' -> 'typing-extensions'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_targets(path: str | os.PathLike | None) -> dict[str, str | None]:
    """The node's packages from a list file (``pip freeze`` output or one name a line; '#' comments):
    normalized name -> pinned version (None where the line pins none). No file: {} (the node has only Python)."""
    if path is None:
        return {}
    found = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):  # pip options (-e, --index-url) name no installed package
            name = re.split(r"[=<>!~\[ ;@]", line, maxsplit=1)[0]
            pinned = re.match(r"^[^=<>!~\[ ;@]+\s*==\s*([^\s;,]+)", line)
            found[normalize(name)] = pinned.group(1) if pinned else None
    return found


# --- what a run reads ---------------------------------------------------------------------------
def _images(folder: Path) -> list[Path]:
    from srcore.data import (
        list_images,  # the notebooks' own listing: same order, same suffixes
    )
    return list_images(folder) if folder.is_dir() else []


def data_files(paper: str, P, root: Path) -> dict[str, list[str]]:
    """Files under ``root`` that ``paper``'s notebook reads with ``P``: group -> paths relative to ``root``.

    Groups are ``train/<folder>`` (the first ``train_limit`` images) and ``benchmark/<set>``: the first
    ``eval_limit`` HR images of an evaluation set, every image of a set other parameters name (a pool of
    images to draw from), every ``<set>/<image>`` a figure shows, and the LR files of those images.
    """
    from srcore.paper.inputs import sets_read

    named = sets_read(paper, P)
    checks = config.checks(paper)
    # sets named by a `sets` parameter other than the evaluation sets are pools a run draws from: read whole
    pools = {param for rule, param, _ in checks if rule == "sets"} - {"eval_sets", "eval_limit"}
    groups: dict[str, list[str]] = {}
    wanted: dict[str, set[str] | None] = {}  # set -> stems (None: every image)
    for name, params in named.items():
        if "train_sets" in params:
            paths = _images(root / "train" / name)[:P.get("train_limit")]
            if not paths:
                raise BundleError(f"{root / 'train' / name} holds no images ({paper} trains on it)")
            groups[f"train/{name}"] = [p.relative_to(root).as_posix() for p in paths]
        elif any(p in pools for p in params):
            wanted[name] = None
        elif "eval_sets" in params:
            limit = (P.get("eval_limit") or {}).get(name)
            wanted[name] = {p.stem for p in _images(root / "benchmark" / name / "HR")[:limit]}
        else:
            wanted[name] = set()  # only the images a figure names (below)
    for rule, param, _ in checks:  # figure images, wherever eval_limit cuts their set
        value = P.get(param)
        for item in ([value] if isinstance(value, str) else value or []) if rule == "images" else []:
            s, _, stem = item.partition("/")
            if wanted.get(s) is not None:
                wanted[s] = wanted.get(s, set()) | {stem}
    for s, stems in wanted.items():
        hr_dir = root / "benchmark" / s / "HR"
        paths = [p for p in _images(hr_dir) if stems is None or p.stem in stems]
        if not paths or (stems is not None and len(paths) < len(stems)):
            absent = sorted(stems - {p.stem for p in paths}) if stems else "every image"
            raise BundleError(f"{hr_dir} lacks {absent} ({paper} reads them): fetch the set with "
                              f"`python -m srcore.download {s}`")
        lr_files = [lr for p in paths for lr in sorted(hr_dir.parent.glob(f"LR_bicubic/X*/{p.stem}x*{p.suffix}"))]
        groups[f"benchmark/{s}"] = [p.relative_to(root).as_posix() for p in [*paths, *lr_files]]
    return groups


def weight_files(paper: str, P) -> list[Path]:
    """The files of ``$SRCORE_WEIGHTS`` a run may read: every catalogued metric or loss weight found there, and the
    released teacher that ``teacher_weights`` names (where the paper has that parameter and it is not "train")."""
    from srcore.pretrained import weights

    found = [p for w in weights.WEIGHTS.values() for f in w.files if (p := weights.user_dir() / f.name).is_file()]
    spec = P.get("teacher_weights", "train")
    if spec != "train":
        from srcore.pretrained import releases
        for x in P.get("scales") or [P.get("scale", 4)]:
            found.append(releases.resolve(spec, paper=paper, scale=x)[0])
    return list(dict.fromkeys(found))


def code_files(root: Path = PROJECT_ROOT) -> list[str]:
    """Files a run needs: ``git ls-files`` (tracked, and untracked but not ignored: what a commit of the
    work tree would hold) minus results/, tests/ and the CI/Make/conda files."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                                capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise BundleError(f"{root} is not a git checkout (the bundle copies its tracked files): {e}") from e
    return [f for f in listed.decode().split("\0") if f and not f.startswith(CODE_EXCLUDE) and (root / f).is_file()]


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
    """pyiqa's wheel with only its package and metadata (its docs and test images are most of its bytes)."""
    out = dest / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        keep = [i for i in src.infolist() if i.filename.startswith(("pyiqa/", "pyiqa-"))]
        record = next(i.filename for i in keep if i.filename.endswith(".dist-info/RECORD"))
        names = {i.filename for i in keep}
        for info in keep:
            data = src.read(info)
            if info.filename == record:  # pip checks RECORD against what it installs
                data = ("\n".join(ln for ln in data.decode().splitlines() if ln.split(",")[0] in names) + "\n").encode()
            dst.writestr(info, data)
    return out


def resolve_wheels(python_version: str, targets: set[str], *, trim: bool = False, cache: Path = WHEEL_CACHE,
                   log=print) -> list[Path]:
    """Wheels of what a run imports and ``targets`` lacks, for CPython ``python_version`` on manylinux x86-64.

    Downloaded once per set of requirements into ``cache/cp<ver>/<key>/`` (pip resolves the dependencies),
    so a rebuild downloads nothing. ``trim``: without :data:`NEVER_IMPORTED` and with pyiqa's package only.
    """
    wanted = sorted(p for p in RUN_PACKAGES if normalize(p) not in targets)
    key = "-".join(wanted) if wanted else "none"
    folder = cache / f"cp{python_version.replace('.', '')}" / key
    if not (folder / "resolved").is_file():
        log(f"resolving {', '.join(wanted) or 'nothing'} and {PYIQA} for Python {python_version} into {folder} ...")
        shutil.rmtree(folder, ignore_errors=True)
        for sub in ("run", "pyiqa", "trimmed"):
            (folder / sub).mkdir(parents=True)
        if wanted:
            _pip_download(wanted, folder / "run", python_version)
        _pip_download([PYIQA], folder / "pyiqa", python_version, no_deps=True)
        _trim_pyiqa(next((folder / "pyiqa").glob("pyiqa-*.whl")), folder / "trimmed")
        (folder / "resolved").write_text("\n")
    chosen = [w for w in sorted((folder / "run").glob("*.whl"))
              if _wheel_name(w) not in targets and not (trim and _wheel_name(w) in NEVER_IMPORTED)]
    chosen += sorted((folder / ("trimmed" if trim else "pyiqa")).glob("*.whl"))
    names = [_wheel_name(p) for p in chosen]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # two versions of one package stop the whole install
        raise BundleError(f"{folder} holds two versions of {twice}: delete the folder and bundle again")
    return chosen


# --- the bundle -------------------------------------------------------------------------------------
@dataclass
class Part:
    name: str      # 'code', 'wheels', 'weights', 'data/train/T91', ...
    files: list[Path]

    @property
    def mib(self) -> float:
        return sum(Path(p).stat().st_size for p in self.files) / MIB


@dataclass
class Plan:
    """What the bundle of ``paper`` holds: its parameters and every file, by part."""
    paper: str
    profile: str
    overrides: dict
    data_root: Path
    parts: list[Part] = field(default_factory=list)

    @property
    def mib(self) -> float:
        return sum(p.mib for p in self.parts)

    def describe(self) -> str:
        lines = [f"  {p.name:<28} {len(p.files):>5} files {p.mib:9.2f} MiB" for p in self.parts]
        return "\n".join(lines + [f"  {'total':<28} {sum(len(p.files) for p in self.parts):>5} files {self.mib:9.2f} MiB"])


def plan(paper: str, profile: str = "quick", overrides: dict | None = None, *, target_packages=None,
         python_version: str = THIS_PYTHON, trim: bool = False, weights: bool = True, data_root=None,
         log=print) -> Plan:
    """Every file the bundle of ``paper`` would hold, parameters checked (wheels downloaded into the cache)."""
    from srcore.data import data_root as find_data_root

    overrides = dict(overrides or {})
    P = config.load(paper, profile, **overrides)
    root = find_data_root(data_root if data_root is not None else P["data_root"])
    p = Plan(paper, profile, overrides, root)
    p.parts.append(Part("code", [PROJECT_ROOT / f for f in code_files()]))
    p.parts += [Part(f"data/{group}", [root / f for f in files]) for group, files in data_files(paper, P, root).items()]
    if weights:
        p.parts.append(Part("weights", weight_files(paper, P)))
    p.parts.append(Part("wheels", resolve_wheels(python_version, set(read_targets(target_packages)), trim=trim,
                                                 log=log)))
    return p


def build(paper: str, out: str | os.PathLike, profile: str = "quick", overrides: dict | None = None, *,
          target_packages=None, python_version: str = THIS_PYTHON, max_mib: float | None = None, trim: bool = False,
          split_mib: float | None = None, weights: bool = True, data_root=None, log=print) -> Plan:
    """Write the bundle of ``paper`` into ``out`` (which must not exist or be empty); returns its plan.

    With ``max_mib``, a larger bundle is refused before anything is written, naming its largest parts.
    ``split_mib`` becomes run.sh's default for packing the weights that come back.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BundleError(f"{out} exists and is not empty: give a new folder")
    p = plan(paper, profile, overrides, target_packages=target_packages, python_version=python_version, trim=trim,
             weights=weights, data_root=data_root, log=log)
    if max_mib is not None and p.mib > max_mib:
        largest = sorted(p.parts, key=lambda x: -x.mib)[:4]
        raise BundleError(f"the bundle of {paper} ({profile}) would be {p.mib:.1f} MiB, over --max-mib {max_mib:g}. "
                          f"Largest parts:\n" + "\n".join(f"  {x.name}: {x.mib:.1f} MiB" for x in largest) +
                          "\nTo fit: -p train_limit=N or -p 'eval_limit={Set: N}' (pages say \"first n of N\"), "
                          "--trim, --no-weights, or a larger --max-mib")
    out.mkdir(parents=True, exist_ok=True)
    for part in p.parts:
        for f in part.files:
            f = Path(f)
            rel = (f.relative_to(PROJECT_ROOT) if part.name == "code" else f.relative_to(p.data_root)
                   if part.name.startswith("data/") else Path(f.name))
            dst = out / part.name.split("/")[0] / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst)
    from srcore.report import git_commit  # late: it imports torch
    commit = git_commit()
    manifest = {"paper": paper, "profile": profile, "overrides": p.overrides, "commit": commit,
                "python": python_version, "target_packages": str(target_packages) if target_packages else None,
                "trim": trim, "parts": {x.name: {"files": len(x.files), "mib": round(x.mib, 2)} for x in p.parts},
                "mib": round(p.mib, 2), "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (out / "bundle.json").write_text(json.dumps(manifest, indent=1) + "\n")
    baked = " ".join(f"-p '{k}={json.dumps(v) if not isinstance(v, str) else v}'" for k, v in p.overrides.items())
    script = (RUN_TEMPLATE.read_text().replace("@PAPER@", paper).replace("@PROFILE@", profile)
              .replace("@PARAMS@", baked).replace("@COMMIT@", commit).replace("@PYTHON@", python_version)
              .replace("@SPLIT_MIB@", f"{split_mib:g}" if split_mib else ""))
    (out / "run.sh").write_text(script)
    (out / "run.sh").chmod(0o755)
    return p


# --- what comes back ---------------------------------------------------------------------------------
def collect(work: str | os.PathLike, out: str | os.PathLike, paper: str, status: str = "",
            split_mib: float | None = None) -> list[Path]:
    """Pack a run's folder ``work/runs`` into ``out`` (called by run.sh, also after a kill).

    ``<paper>_results.tar.gz`` (the results folder, the training logs log.csv/eval.csv of every run, the
    executed notebook and bundle.json), ``<paper>.ipynb``, the networks' final weights in float16
    (``<paper>_weights.tar.gz``; with ``split_mib``, ``<paper>_weights[_N].tar.gz`` of at most that many MiB
    each, generators first, smallest first) and ``run.json`` (status, sizes).
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
    # the networks the tables evaluate ("net", "G...") before adapters, heads and discriminators; smallest first
    order = sorted(weights, key=lambda f: (not f.stem.startswith(("net", "G")), f.stat().st_size))
    bins: list[list[Path]] = []
    budget = (split_mib - 1) * MIB if split_mib else None  # compressed size <= raw size: stay under by raw bytes
    for f in order:
        room = [b for b in bins if budget is None or sum(x.stat().st_size for x in b) + f.stat().st_size <= budget]
        if room:
            room[0].append(f)
        else:
            bins.append([f])
    for i, files in enumerate(bins):
        archive = out / f"{paper}_weights{'' if i == 0 else f'_{i + 1}'}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for f in files:
                tar.add(f, arcname=f"weights/{f.relative_to(work / 'weights')}")
        written.append(archive)
    summary = {"paper": paper, "status": status, "files": {f.name: f.stat().st_size for f in written},
               "collected": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (out / "run.json").write_text(json.dumps(summary, indent=1) + "\n")
    return written


def _final_weights(ckpt: Path, dest: Path) -> list[Path]:
    """The networks of every ``last.pt`` under ``ckpt``, float16, without optimizer state: ``dest/<run>/<net>.pt``."""
    if not ckpt.is_dir():
        return []
    import torch
    found = []
    for last in sorted(ckpt.rglob("last.pt")):
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
def target_venv(path: str | os.PathLike, targets: set[str], source_site: str | os.PathLike | None = None) -> Path:
    """A virtual environment holding only the ``targets`` distributions of this interpreter's site-packages
    (and what they require): the node as its package list describes it.

    No system site-packages; the target's packages are symlinked from ``source_site`` into one folder named by
    a .pth file, so anything else (papermill, ipykernel, IPython) is missing until run.sh installs it from the
    bundle. Returns the environment's python.
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    path = Path(path)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = Path(source_site or next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()))
    exposed = path / "target-site"
    exposed.mkdir()
    dists = {normalize(d.metadata["Name"]): d for d in metadata.distributions(path=[str(site)])}
    wanted, todo = set(), [t for t in targets if t in dists]
    while todo:  # a node that has a package has what it requires too
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
        for top in {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")} - {"bin"}:
            if (home / top).exists() and not (exposed / top).exists():
                (exposed / top).symlink_to(home / top)
    py = path / "bin" / "python"
    pure = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(pure, "target.pth").write_text(str(exposed) + "\n")
    return py


def rehearse(paper: str, work: str | os.PathLike, profile: str = "smoke", overrides=None, run_params=(), *,
             target_packages, log=print) -> dict:
    """Build a bundle for this Python, run it in a venv holding only ``target_packages``, read OUT back.

    The venv's packages are this interpreter's copies; where the list pins another version of a package,
    ``differs`` in the answer names it (the node would run that version). Returns return code, timings,
    OUT and its files.
    """
    work = Path(work)
    tic = time.perf_counter()
    p = build(paper, work / "bundle", profile, overrides, target_packages=target_packages, log=log)
    log(p.describe())
    built = time.perf_counter() - tic
    from importlib import metadata
    listed = read_targets(target_packages)
    differs = {}
    for name, pinned in listed.items():
        try:
            here = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if pinned and pinned.split("+")[0] != here.split("+")[0]:
            differs[name] = f"{here} here, {pinned} on the node"
    py = target_venv(work / "venv", set(listed))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SRCORE_DATA", "SRCORE_WEIGHTS", "VIRTUAL_ENV")}
    env["PATH"] = f"{py.parent}{os.pathsep}{env.get('PATH', '')}"
    env["WORK"] = str(work / "scratch")
    out = work / "out"
    tic = time.perf_counter()
    done = subprocess.run([str(work / "bundle" / "run.sh"), str(out), *[a for x in run_params for a in ("-p", x)]],
                          env=env, cwd=work, check=False)
    return {"returncode": done.returncode, "build_s": built, "run_s": time.perf_counter() - tic, "out": out,
            "files": sorted(f.name for f in out.iterdir()) if out.is_dir() else [], "mib": p.mib, "differs": differs}


# --- command line -------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srcore.bundle", description=__doc__.split("\n\n")[0],
                                 epilog="Nothing is capped, trimmed or split unless an option asks for it.")
    ap.add_argument("--paper", help="the paper to bundle")
    ap.add_argument("--profile", default="quick", choices=config.PROFILES)
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override a profile parameter (baked into run.sh; sizes the data)")
    ap.add_argument("--target-packages", type=Path,
                    help="the node's packages, e.g. `pip freeze > node.txt` run on the node; without it the node is "
                         "assumed to have only Python, and torch and every other package are bundled")
    ap.add_argument("--python-version", default=THIS_PYTHON,
                    help=f"the node's Python, which the wheels are resolved for (default: this one, {THIS_PYTHON})")
    ap.add_argument("--max-mib", type=float, help="refuse a bundle larger than this many MiB (default: no limit)")
    ap.add_argument("--trim", action="store_true", help="leave out what a headless run never imports: pyiqa's docs "
                    "and test images, " + ", ".join(NEVER_IMPORTED.values()))
    ap.add_argument("--split-mib", type=float,
                    help="run.sh packs the final weights into archives of at most this many MiB (default: one archive)")
    ap.add_argument("--no-weights", action="store_true", help="leave the pretrained files of $SRCORE_WEIGHTS out")
    ap.add_argument("--data-root", help="where to copy images from (default: the profile's, else $SRCORE_DATA)")
    ap.add_argument("--out", type=Path, help="the bundle folder to write (new or empty)")
    ap.add_argument("--rehearse", action="store_true",
                    help="build for this Python and run run.sh here, in a venv holding only --target-packages")
    ap.add_argument("--run-param", action="append", default=[], metavar="NAME=VALUE",
                    help="with --rehearse: -p passed to run.sh")
    ap.add_argument("--collect", nargs=2, metavar=("WORK", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--status", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.collect:
        split = float(os.environ["SPLIT_MIB"]) if os.environ.get("SPLIT_MIB") else None
        files = collect(*args.collect, paper=args.paper, status=args.status, split_mib=split)
        print("collected: " + ", ".join(f"{f.name} ({f.stat().st_size / MIB:.2f} MiB)" for f in files))
        return 0
    if not args.paper or not args.out:
        ap.error("--paper and --out are required")
    try:
        overrides = dict(config.parse_override(p) for p in args.param)
        if args.rehearse:
            if not args.target_packages:
                ap.error("--rehearse needs --target-packages (the node's package list)")
            shutil.rmtree(args.out, ignore_errors=True)
            r = rehearse(args.paper, args.out, args.profile, overrides, args.run_param,
                         target_packages=args.target_packages)
            print(f"rehearsal of {args.paper}: exit {r['returncode']}, bundle {r['mib']:.1f} MiB built in "
                  f"{r['build_s']:.0f} s, run.sh took {r['run_s']:.0f} s; {r['out']}: {', '.join(r['files'])}"
                  + "".join(f"\nnote: {n} {v}" for n, v in r["differs"].items()))
            return r["returncode"]
        p = build(args.paper, args.out, args.profile, overrides, target_packages=args.target_packages,
                  python_version=args.python_version, max_mib=args.max_mib, trim=args.trim, split_mib=args.split_mib,
                  weights=not args.no_weights, data_root=args.data_root)
    except (BundleError, config.ParameterError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"bundle of {args.paper} ({args.profile}) in {args.out}:\n{p.describe()}")
    print(f"run it on the node: {args.out}/run.sh OUT [-p name=value ...]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

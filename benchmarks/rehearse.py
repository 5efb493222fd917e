"""CPU rehearsal of the GPU path for every paper: bundle, target-only venv, run.sh, OUT read back.

    python benchmarks/rehearse.py                          # every paper, one after the other
    python benchmarks/rehearse.py --paper moon2023_clsd    # one paper

Each paper runs its quick profile at the papers' real widths with a few steps, small patches and
a handful of images (the parameters below), through ``srcore.bundle.rehearse``: the bundle is
built for this machine's Python (wheels from PyPI, cached in .whl/), run.sh installs them with
``pip --no-index`` into a venv that holds only the GPU image's packages, torch, torchvision and
triton at the image's versions (``bundle.IMAGE_VERSIONS``, installed once into .whl/;
``--lock-versions``: the lock's), and OUT must then hold the results archive with values.csv
(every published row of the paper, trained rows filled for the trained scale), provenance, the
executed notebook and the log. Prints one line per paper with the times and the versions the
venv imported; tests/test_bundle.py runs the seo_squeezesr_kd case in CI.
"""
from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from srcore import bundle, report  # noqa: E402

ONE_IMAGE = {"train_limit": 2, "eval_sets": ["Set5"], "eval_limit": {"Set5": 1}}
CASES = {  # paper: (scales, bundle parameters (they size the data), run.sh parameters)
    "seo_squeezesr_kd": ([2], ONE_IMAGE,
                         ["teacher_steps=2", "student_steps=2", "lr_patch=16", "batch_size=2", "runtime_images=1"]),
    "moon2023_clsd": ([2], {**ONE_IMAGE, "fig4_images": ["img_062"]},
                      ["teacher_steps=2", "student_steps=2", "lr_patch=16", "batch_size=2", "fig3_blocks=[1]",
                       "fig3_steps=2", "probe_steps=2"]),
    "lee2021_srgan_kd": (None, {**ONE_IMAGE, "rating_sets": ["Set5"], "rating_images": 2},
                         ["teacher_steps=2", "student_steps=2", "hr_patch=32", "batch_size=2"]),
    "lee2022_mutual_srgan": ([2], {**ONE_IMAGE, "niqe_sets": ["Set5"], "niqe_models": [1]},
                             ["steps=2", "hr_patch=32", "batch_size=2"]),
    # baek's claims average over its Table 2 sets: all four are kept, one image each, cropped
    "baek2024_esrgan_prune_kd": (None, {"train_limit": 2, "eval_limit": {"BSD100": 1, "Set14": 1, "Urban100": 1, "Set5": 1},
                                        "fig_images": ["Set5/baby"], "eval_crop": 128},
                                 ["teacher_steps=2", "teacher_l1_steps=1", "distill_steps=2", "hr_patch=64",
                                  "batch_size=2"]),
}


def check(paper: str, out: Path, scales) -> str:
    """What came back, or raise: the archive's values.csv covers every published row, trained rows filled."""
    with tarfile.open(out / f"{paper}_results.tar.gz") as tar, tempfile.TemporaryDirectory() as tmp:
        tar.extractall(tmp, filter="data")
        back = Path(tmp)
        values = pd.read_csv(back / paper / "values.csv", dtype=str, keep_default_na=False)
        prov = json.loads((back / paper / "provenance.json").read_text())
        assert (back / "executed" / f"{paper}.ipynb").is_file() and (back / "bundle.json").is_file()
    published = report.published(paper)
    keys = ["table", "dataset", "scale", "method", "metric"]
    missing = published.merge(values, on=keys, how="left", indicator=True).query("_merge == 'left_only'")
    assert missing.empty, f"{paper}: published rows missing from values.csv: {missing[keys].head()}"
    filled = values[~values.status.str.startswith("n/a") & (values.steps != "")]
    assert len(filled), f"{paper}: no trained row filled"
    assert "srcore.reproduce exited with 0" in (out / "run.log").read_text()
    return (f"{len(values)} rows, {len(filled)} trained rows filled, "
            f"{(values.status.str.startswith('n/a')).sum()} n/a; commit {prov['commit']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paper", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "srcore_rehearsal")
    ap.add_argument("--lock-versions", action="store_true",
                    help="the lock's torch, torchvision and triton instead of the GPU image's")
    args = ap.parse_args(argv)
    failed = 0
    for paper in args.paper:
        scales, params, run_params = CASES[paper]
        work = args.work / paper
        if work.exists():
            import shutil
            shutil.rmtree(work)
        tic = time.perf_counter()
        r = bundle.rehearse(paper, work, "quick", scales, params, run_params, image=not args.lock_versions)
        total = time.perf_counter() - tic
        try:
            assert r["returncode"] == 0, f"run.sh exited with {r['returncode']}: see {r['out'] / 'run.log'}"
            what = check(paper, r["out"], scales)
        except AssertionError as e:
            failed += 1
            what = f"FAILED: {e}"
        versions = ", ".join(f"{n} {v}" for n, v in r["versions"].items())
        print(f"REHEARSAL {paper}: {total:.0f} s in all (bundle {r['mib']:.1f} MiB built in {r['build_s']:.0f} s, "
              f"venv {r['venv_s']:.0f} s, run.sh {r['run_s']:.0f} s); OUT: {', '.join(r['files'])}; {what}; "
              f"{versions}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""benchmarks/learning.py at a tiny size: the trainer's L1 falls, the files hold the columns it documents, a finished run is reused.

40 steps of both networks at batch 4, LR patch 8, on the first 2 images of T91 and BSD200, evaluated on
the first 2 images of Set5 and Set14 (~10 s on 2 CPU cores). The real check (2000 steps, >= 1 dB over
bicubic) is the benchmark itself: results/learning.md.
"""
import csv
import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmark and its sibling `common`, as `python benchmarks/x.py` sees them

import learning

STEPS, EVAL_EVERY = 40, 20
REQUIRED = ["network", "scale", "steps", "dataset", "psnr", "ssim", "bicubic_psnr"]  # learning.csv's columns, in order


def tiny_run(data_root, out: Path):
    """The benchmark at a tiny size, on 2 threads (as the benchmark; the thread count changes a float's last bits)."""
    recipe = learning.Recipe(steps=STEPS, batch=4, lr_patch=8, lr=1e-3, train_limit=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return learning.run(list(learning.NETWORKS), recipe, out=out / "results", run_root=out / "runs", root=data_root,
                            eval_every=EVAL_EVERY, eval_limit=2, log_every=1, ckpt_every=STEPS, quiet=True)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("learning")
    return tiny_run(data_root, out), out


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_training_loss_falls(tiny):
    result, _ = tiny
    for t in result["trained"]:
        l1 = [r["l1"] for r in t["log"]]
        assert [r["step"] for r in t["log"]] == list(range(1, STEPS + 1))
        first, last = sum(l1[:5]) / 5, sum(l1[-5:]) / 5
        assert last < 0.9 * first, f"{t['network']}: L1 {first:.4f} over the first 5 steps, {last:.4f} over the last 5"


def test_csv_has_exactly_the_required_columns_and_a_row_per_network_and_set(tiny):
    _, out = tiny
    columns, rows = read_csv(out / "results" / "learning.csv")
    assert columns == REQUIRED
    assert {(r["network"], int(r["scale"]), r["dataset"]) for r in rows} == {
        (n.name, n.scale, s) for n in learning.NETWORKS.values() for s in ("Set5", "Set14")}
    assert len(rows) == 2 * len(learning.NETWORKS)
    for r in rows:
        assert int(r["steps"]) == STEPS
        assert 10 < float(r["psnr"]) < 60 and 10 < float(r["bicubic_psnr"]) < 60
        assert 0 < float(r["ssim"]) <= 1


def test_curve_and_page(tiny):
    _, out = tiny
    columns, rows = read_csv(out / "results" / "learning_curve.csv")
    assert columns[:5] == ["network", "scale", "step", "dataset", "psnr"]
    for n in learning.NETWORKS.values():
        mine = [r for r in rows if r["network"] == n.name]
        assert [int(r["step"]) for r in mine] == list(range(EVAL_EVERY, STEPS + 1, EVAL_EVERY))
        assert all(r["dataset"] == "Set5" and math.isfinite(float(r["psnr"])) for r in mine)
    png = out / "results" / "learning_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "results" / "learning.md").read_text()
    assert "![PSNR vs step](learning_curve.png)" in md
    assert str(out) not in md and str(ROOT) not in md  # paths relative to the checkout (or $TMPDIR), none of this machine's
    for n in learning.NETWORKS.values():
        assert n.name in md


def test_a_finished_run_is_reused_not_trained_again(tiny, data_root):
    first, out = tiny
    again = tiny_run(data_root, out)  # same run folders: fit finds finished checkpoints
    assert [t["resumed_at"] for t in again["trained"]] == [STEPS] * len(learning.NETWORKS)
    assert [t["log"] for t in again["trained"]] == [t["log"] for t in first["trained"]]
    assert [r["psnr"] for r in again["final"]] == [r["psnr"] for r in first["final"]]  # the same final weights


def test_check_flags_a_network_below_one_db_over_bicubic():
    rows = [{"network": "A", "scale": 2, "dataset": "Set5", "psnr": 33.5, "bicubic_psnr": 33.0},
            {"network": "A", "scale": 2, "dataset": "Set14", "psnr": 31.0, "bicubic_psnr": 30.0}]
    failures = learning.check(rows)
    assert len(failures) == 1 and "Set5" in failures[0]

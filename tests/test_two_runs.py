"""Two runs at once never harm each other: real processes, locks named by their holder (srcore.folders).

Every wait is for a condition (a lock file appearing, a process exiting) with a generous limit, never for a
guessed time: the processes share busy cores.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from srcore import folders, report

ROOT = Path(__file__).resolve().parents[1]
PAPER = "seo_squeezesr_kd"
LIMIT = 600  # seconds any condition may take on a loaded machine


def start(*args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                            start_new_session=True)


def wait_for(condition, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + LIMIT
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {LIMIT} s"
        assert proc is None or proc.poll() is None, f"the process ended before {what}: {proc.stdout.read()}"
        time.sleep(0.05)


def smoke(out_root: Path, data_root: Path, *extra) -> subprocess.Popen:
    """``python -m srcore.reproduce`` of PAPER's smoke profile into ``out_root``, reading ``data_root``."""
    return start("-m", "srcore.reproduce", "--paper", PAPER, "--profile", "smoke", "--out-root", str(out_root), *extra,
                 env={"SRCORE_DATA": str(data_root)})


@pytest.mark.notebook
def test_a_second_run_of_the_same_paper_stops_naming_the_first_which_completes(tmp_path, data_root):
    first = smoke(tmp_path, data_root, "-p", "teacher_steps=200")
    out = tmp_path / PAPER
    wait_for(lambda: folders.is_locked(out) is not None, "lock of the first run", first)
    second = smoke(tmp_path, data_root)
    said = second.communicate(timeout=LIMIT)[0]
    assert second.returncode != 0
    assert f"is in use by pid {first.pid} on host" in said and f"({PAPER} smoke run)" in said, said
    assert "give --out-root" in said and "FileNotFoundError" not in said
    first_said = first.communicate(timeout=LIMIT)[0]
    assert first.returncode == 0, first_said
    values = pd.read_csv(out / "values.csv")
    assert len(values) == 72 and (values.status.str.match(r"^(reproduced|n/a: .+)$")).all()
    assert not folders.partial_dir(out).exists() and folders.is_locked(out) is None


TRAIN_ONE = textwrap.dedent('''
    import sys, torch
    from pathlib import Path
    from srcore import nets
    from srcore.paper import config
    from srcore.paper.experiment import Experiment
    from srcore.train import l1_step

    out, ckpt = Path(sys.argv[1]), Path(sys.argv[2])
    P = config.load("seo_squeezesr_kd", "smoke", scales=[2], lr_patch=8, batch_size=2, train_limit=1)
    P["out_dir"], P["ckpt_dir"] = out, ckpt
    exp = Experiment("seo_squeezesr_kd", P)
    exp.load_data()
    build = lambda: ({"net": nets.EDSRT(nets.EDSRTConfig(scale=2, n_feats=P.teacher_feats, n_modules=1))}, l1_step)
    run = exp.fit("teacher", build, 40, scale=2)
    print("TRAINED", run.trained_steps, float(sum(p.sum() for p in run.net.parameters())), flush=True)
''')


def test_two_runs_that_need_one_keyed_teacher_train_it_once_and_both_use_it(tmp_path, monkeypatch):
    script = tmp_path / "train_one.py"
    script.write_text(TRAIN_ONE)
    env = {"SRCORE_DATA": "none"}
    runs = [start(str(script), str(tmp_path / f"out{i}"), str(tmp_path / "checkpoints"), env=env) for i in range(2)]
    said = [p.communicate(timeout=LIMIT)[0] for p in runs]
    assert all(p.returncode == 0 for p in runs), said
    trained = [line.split() for text in said for line in text.splitlines() if line.startswith("TRAINED")]
    assert sorted(int(t[1]) for t in trained) == [0, 40]  # trained once; the other waited, then reused it
    assert trained[0][2] == trained[1][2]  # the same finished weights
    assert any("waiting for it" in text for text in said)  # the second said whom it waited for


def test_a_run_killed_while_holding_its_locks_never_blocks_the_next(tmp_path, data_root):
    first = smoke(tmp_path, data_root, "-p", "teacher_steps=100000")
    out = tmp_path / PAPER
    wait_for(lambda: folders.is_locked(out) is not None, "lock of the first run", first)
    os.killpg(first.pid, signal.SIGKILL)  # the runner and the notebook's kernel, with their locks
    first.wait(timeout=LIMIT)
    assert folders.lock_file(out).exists()  # left behind ...
    second = smoke(tmp_path, data_root, "-p", "teacher_steps=2")
    said = second.communicate(timeout=LIMIT)[0]
    assert second.returncode == 0, said  # ... and taken over: its holder is gone
    assert "took over the lock" in said and f"pid {first.pid}" in said
    assert (out / "values.csv").is_file() and not folders.lock_file(out).exists()


PROMOTE = textwrap.dedent('''
    import sys
    from srcore.runner import promote
    promote.promote(sys.argv[1], sys.argv[2], log=lambda m: print(m, flush=True))
''')


def test_two_promotions_at_once_leave_one_whole_result(tmp_path):
    """Each promotion judges what the other left: the run of more steps stands, whole, whichever came first."""
    runs = []
    for i, value in enumerate((30.0, 31.0)):
        res = report.Results(PAPER, "quick", tmp_path / f"run{i}")
        for x in (2, 3, 4):
            for s in ("Set5", "Set14", "Urban100"):
                res.record("Table 1", s, x, "SqueezeSR", "PSNR", value + x, steps=100 * (i + 1))
        runs.append(res.write())
    target = tmp_path / "results" / PAPER
    script = tmp_path / "promote.py"
    script.write_text(PROMOTE)
    procs = [start(str(script), str(run), str(target)) for run in runs for _ in range(2)]
    said = [p.communicate(timeout=LIMIT)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), said
    got = pd.read_csv(target / "values.csv")
    assert set(got[got.method == "SqueezeSR"].reproduced) == {33.0, 34.0, 35.0}  # the 200-step run's, whole
    assert set(got[got.method == "SqueezeSR"].steps) == {200}
    assert not folders.partial_dir(target).exists() and not folders.old_dir(target).exists()
    assert json.loads((target / "provenance.json").read_text())["profile"] == "quick"

"""No leftovers: a run killed (SIGKILL) while training, evaluating or writing leaves the previous
results whole, nothing half-written beside them once the next run starts, and a checkpoint that
the next run resumes from.

The run is a small script (srcore.train.Trainer and srcore.report.Results, as a notebook uses
them) in a subprocess that says where it is on stdout; the test kills it when it reaches the
point named, so the timing does not depend on the machine's speed.
"""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from srcore import folders, report

PAPER = "seo_squeezesr_kd"
ROOT = Path(__file__).resolve().parents[1]

RUN = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    import torch
    from srcore import folders, report, train

    out, ckpt, stall = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def pause(where):  # the test kills us here
        if stall == where:
            print("READY", flush=True)
            time.sleep(120)

    res = report.Results("seo_squeezesr_kd", "quick", out)
    first = []

    def step(t, batch):
        if not first:
            first.append(t.step)
            print(f"first step {t.step}", flush=True)
        loss = (t.nets["net"](batch) - batch).pow(2).mean()
        t.backward_step("net", loss)
        if t.step + 1 == 7:
            pause("train")
        return {"loss": loss.detach()}

    def batches():
        g = torch.Generator().manual_seed(0)
        while True:
            yield torch.rand(2, 3, 8, 8, generator=g)

    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    cfg = train.TrainConfig(steps=10, ckpt_every=3, progress=False)
    tr = train.Trainer(ckpt, {"net": net}, {"net": torch.optim.SGD(net.parameters(), lr=0.01)}, step, cfg,
                       device=torch.device("cpu"))
    tr.fit(batches())
    pause("evaluate")
    res.record("Table 1", "Set5", 2, "SqueezeSR", "PSNR", 30.0 + tr.step, steps=tr.step)

    write_text = report._write_text
    def slow_write(path, text):
        write_text(path, text)
        pause("write")  # the first file is staged in .partial, the rest not yet
    report._write_text = slow_write

    replace = os.replace
    def slow_replace(a, b):
        replace(a, b)
        if Path(b) == folders.old_dir(out):
            pause("swap")  # the old results renamed away, the new ones not yet in place
    folders.os.replace = slow_replace

    res.write()
    print("DONE", flush=True)
''')


def run_until(tmp_path, stall: str) -> list[str]:
    """Run the script; SIGKILL it when it reaches ``stall`` (never, for "none"). Its stdout lines."""
    script = tmp_path / "run.py"
    script.write_text(RUN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "results" / PAPER), str(tmp_path / "ckpt"),
                             stall], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == "READY":
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=120)
    finally:
        proc.kill()
    if stall == "none":
        assert proc.returncode == 0, proc.stderr.read()
    else:
        assert lines[-1:] == ["READY"] and proc.returncode == -signal.SIGKILL, proc.stderr.read()
    return lines


def checkpoint_step(tmp_path) -> int:
    return torch.load(tmp_path / "ckpt" / "last.pt", map_location="cpu", weights_only=False)["step"]


def beside(out: Path) -> list[str]:
    """What is in the results folder besides ``out``'s own files: a killed run's lock is left there, stale
    (its holder is gone: the next run takes it over), and nothing else."""
    lock = folders.lock_file(out)
    assert not lock.exists() or folders.is_locked(out) is None
    return sorted(n for n in os.listdir(out.parent) if n != lock.name)


def test_kill_during_training_evaluation_and_writing(tmp_path):
    out = tmp_path / "results" / PAPER
    previous = report.Results(PAPER, "quick", out)
    previous.record("Table 1", "Set5", 2, "SqueezeSR", "PSNR", 36.0, steps=4000)
    previous.write()
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def snapshot():
        return {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    # killed at step 7: checkpoints at 3 and 6, the last one whole
    assert run_until(tmp_path, "train")[0] == "first step 0"
    assert checkpoint_step(tmp_path) == 6
    assert snapshot() == before and beside(out) == [PAPER]
    # the rerun resumes at step 6, finishes training (checkpoint 10), and is killed while evaluating
    assert run_until(tmp_path, "evaluate")[0] == "first step 6"
    assert checkpoint_step(tmp_path) == 10
    assert snapshot() == before and beside(out) == [PAPER]
    # killed while writing: the new files are half-staged in .partial, the results untouched
    assert run_until(tmp_path, "write") == ["READY"]  # nothing left to train
    assert folders.partial_dir(out).is_dir() and not (folders.partial_dir(out) / "provenance.json").exists()
    assert snapshot() == before
    # the rerun drops that .partial, stages anew and is killed between the two renames:
    # only .old holds the previous results, whole
    assert run_until(tmp_path, "swap") == ["READY"]
    assert not out.exists() and (folders.old_dir(out) / "values.csv").read_bytes() == before[Path("values.csv")]
    assert (folders.partial_dir(out) / "provenance.json").is_file()
    # the next run settles it first (previous results back, .partial gone), then finishes
    folders.recover(out)
    assert snapshot() == before and beside(out) == [PAPER]
    os.replace(out, folders.old_dir(out))  # the kill's state again, for the run itself to settle
    assert run_until(tmp_path, "none") == ["DONE"]
    values = pd.read_csv(out / "values.csv")
    row = values[(values.dataset == "Set5") & (values.method == "SqueezeSR") & (values.scale == 2)].iloc[0]
    assert (row.reproduced, row.steps) == (40.0, 10) and sorted(os.listdir(out.parent)) == [PAPER]


def test_a_failed_notebook_leaves_no_partial_folder(tmp_path, monkeypatch):
    from srcore import reproduce

    monkeypatch.setattr(report, "PROJECT_ROOT", tmp_path)
    folder = report.output_dir(PAPER, "smoke")

    def fails(*args, **kwargs):  # a notebook that staged some files, then raised
        (folders.partial_dir(folder) / "tables").mkdir(parents=True)
        raise RuntimeError("cell 9 failed")

    import papermill
    monkeypatch.setattr(papermill, "execute_notebook", fails)
    with pytest.raises(RuntimeError, match="cell 9"):
        reproduce.run(PAPER, "smoke", {}, log=lambda m: None)
    assert not folders.partial_dir(folder).exists()


def test_a_run_that_lacks_a_set_stops_before_any_work_with_the_command_that_fetches_it(tmp_path, monkeypatch,
                                                                                        data_root, capsys):
    """lee2021's quick profile reads General100; a data root without it stops the runner before a kernel starts."""
    from srcore import download, reproduce
    root = tmp_path / "data"
    (root / "benchmark").mkdir(parents=True)
    for s in ("Set5", "Set14", "Urban100"):
        (root / "benchmark" / s).symlink_to(data_root / "benchmark" / s)
    (root / "train").symlink_to(data_root / "train")
    monkeypatch.setenv("SRCORE_DATA", str(root))
    ran = []
    monkeypatch.setattr(reproduce, "run", lambda *a, **k: ran.append(a) or tmp_path / "never")
    assert reproduce.main(["--paper", "lee2021_srgan_kd", "--profile", "quick", "--out-root", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "lacks benchmark/General100/HR: fetch it with `python -m srcore.download General100 --root " in err
    assert "python -m srcore.download --paper P --profile X" in err and not ran
    # --download fetches what is missing (here a stand-in for the catalogue's fetch), then runs
    fetched = []

    def fake_fetch(names, where, **kw):
        fetched.append((sorted(names), where))
        (where / "benchmark" / "General100" / "HR").mkdir(parents=True)
    monkeypatch.setattr(download, "fetch", fake_fetch)
    reproduce.main(["--paper", "lee2021_srgan_kd", "--profile", "quick", "--download", "--out-root", str(tmp_path / "o")])
    assert fetched == [(["BSD200", "General100", "Set14", "Set5", "T91", "Urban100"], root)] and len(ran) == 1

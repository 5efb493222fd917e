"""Scale-out: shards of one run, executors, torchrun, and merging run folders into one.

The end-to-end tests run the smoke profile: a run sharded by scale over 2 local processes gives
the unsharded run's values.csv (same rows, statuses and numbers; moon's Table 6 is wall-clock time,
different in every run), an identical rerun trains nothing, submitit's local executor runs the
SLURM path (a job stopped at its time limit is requeued and resumes), and a shard under torchrun
(gloo, 2 processes) trains once and writes once.
"""
import json
import os
import signal
import tarfile
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import provenance, read_values

from srcore import report, reproduce
from srcore.paper import config
from srcore.runner import merge, shards

KEYS = ["table", "dataset", "scale", "method", "metric"]
TINY = dict(teacher_steps=2, student_steps=2, runtime_images=1)


# --- plans -----------------------------------------------------------------------------------------------------

def test_a_shard_per_scale_differs_from_the_run_in_its_scales_alone(tmp_path):
    seo = shards.plan("seo_squeezesr_kd", "quick", {"lr": 2e-4}, tmp_path)
    assert [s.name for s in seo] == ["x2", "x3", "x4"]
    # one rule for every figure: the notebook draws it in the run (here the shard) that trains its scale
    assert [s.overrides for s in seo] == [{"lr": 2e-4, "scales": [x]} for x in (2, 3, 4)]
    assert {s.ckpt_dir for s in seo} == {str(tmp_path / "checkpoints" / "seo_squeezesr_kd")}  # an unsharded run's
    assert seo[0].folder == str(tmp_path / "seo_squeezesr_kd" / "shards" / "x2")
    moon = {s.name: s.overrides for s in shards.plan("moon2023_clsd", "quick", {}, tmp_path)}
    assert moon == {"x2": {"scales": [2]}, "x3": {"scales": [3]}, "x4": {"scales": [4]}}
    assert [s.name for s in shards.plan("lee2021_srgan_kd", "quick", {}, tmp_path)] == ["all"]  # one scale, one shard
    assert [s.name for s in shards.plan("seo_squeezesr_kd", "quick", {}, tmp_path, by=None)] == ["all"]


def test_a_shard_is_finished_only_with_its_parameters_and_every_run_trained_to_its_end(tmp_path):
    [shard] = shards.plan("seo_squeezesr_kd", "smoke", {"scales": [2], "fig_scale": 2}, tmp_path)
    folder = Path(shard.folder)
    folder.mkdir(parents=True)
    (folder / "values.csv").write_text("table\n")
    wanted = config.load(shard.paper, shard.profile, **shard.overrides).overrides

    def made(profile="smoke", overrides=wanted, stopped=False):
        runs = {"EDSR-T_x2-abc": {"name": "EDSR-T", "steps": 4 if stopped else 10, "stopped_early": stopped}}
        (folder / "provenance.json").write_text(json.dumps({"profile": profile, "overrides": overrides, "runs": runs}))
        return shards.finished(shard)

    assert made()
    assert not made(profile="quick") and not made(overrides={**wanted, "lr": 1e-3})
    assert not made(stopped=True)  # stopped by its job's time limit: the shard runs again and resumes


def test_gpus_are_handed_out_nproc_at_a_time():
    assert shards._gpu_groups([0, 1, 2, 3], 1) == [[0], [1], [2], [3]]
    assert shards._gpu_groups([0, 1, 2, 3, 4], 2) == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="cannot hold one shard of 4 processes"):
        shards._gpu_groups([0, 1], 4)


def test_the_slurm_job_script_asks_for_what_the_flags_say(tmp_path, monkeypatch):
    """submitit writes the job script and calls sbatch: a stand-in sbatch keeps the script and answers a job id."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/job.sh\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    plan = shards.plan("moon2023_clsd", "paper", {}, tmp_path)
    jobs = shards.submit(plan[:1], partition="gpu", time_min=90, gpus_per_job=2, cpus_per_job=16)
    assert jobs["x2"].job_id == "4242"
    script = (tmp_path / "job.sh").read_text()
    logs = tmp_path / "moon2023_clsd" / "shards" / "x2.slurm"
    for line in ["#SBATCH --partition=gpu", "#SBATCH --time=90", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --cpus-per-task=16", "#SBATCH --job-name=srcore-moon2023_clsd-x2", "#SBATCH --nodes=1",
                 f"#SBATCH --output={logs}/%j_0_log.out", f"#SBATCH --error={logs}/%j_0_log.err"]:
        assert line in script.splitlines(), line
    assert config.slurm_defaults() == {"partition": None, "time_min": 480, "gpus_per_job": 1, "cpus_per_job": 8}


# --- merge -----------------------------------------------------------------------------------------------------

def folder(tmp_path, name, rows, *, profile="quick", tables=None, figures=None, steps=""):
    """A run folder of seo_squeezesr_kd holding ``rows`` ({(dataset, scale, method): (value, note)})."""
    res = report.Results("seo_squeezesr_kd", profile, tmp_path / name, provenance={"device": f"dev-{name}"})
    for (dataset, scale, method), (value, note) in rows.items():
        if value is None:
            res.na("Table 1", dataset, scale, method, "PSNR", note)
        else:
            res.record("Table 1", dataset, scale, method, "PSNR", value, note=note, steps=steps if method != "Bicubic" else "")
    for t, df in (tables or {}).items():
        res.add_table(df, t, f"table {t}")
    for f, df in (figures or {}).items():
        import matplotlib.pyplot as plt
        fig, _ = plt.subplots()
        res.add_figure(fig, df, f)
        plt.close(fig)
    return res.write()


def test_merge_takes_each_value_from_the_folder_that_measured_it(tmp_path):
    committed = folder(tmp_path, "committed", {("Urban100", 4, "Bicubic"): (23.14, ""),
                                               ("Set5", 4, "EDSR-T"): (None, "not run: training needs a GPU; this run had none")},
                       tables={"claims": pd.DataFrame({"claim": ["a"], "our run": ["n/a"]})})
    gpu = folder(tmp_path, "gpu", {("Urban100", 4, "Bicubic"): (23.50, "first 12 of 100 images"),
                                   ("Set5", 4, "EDSR-T"): (31.2, "")}, steps=1000,
                 tables={"claims": pd.DataFrame({"claim": ["a"], "our run": ["+0.1 dB"]})},
                 figures={"fig2_img004": pd.DataFrame({"method": ["HR"], "crop_psnr": [1.0]})})
    out = merge.merge(tmp_path / "merged", [committed, gpu], log=lambda m: None)
    v = read_values(out).set_index(KEYS)
    assert v.loc[("Table 1", "Urban100", "4", "Bicubic", "PSNR")].reproduced == 23.14  # the whole set wins
    edsr = v.loc[("Table 1", "Set5", "4", "EDSR-T", "PSNR")]
    assert (edsr.reproduced, edsr.status, edsr.steps) == (31.2, "reproduced", 1000)  # a number beats an n/a
    assert len(v) == 36 and (out / "tables" / "table_1.md").is_file()
    claims = pd.read_csv(out / "tables" / "claims.csv")  # different in the two folders: both, named
    assert list(claims["from"]) == [report.portable(str(committed)), report.portable(str(gpu))]
    assert (out / "figures" / "fig2_img004.png").is_file()  # in one folder only: as it is
    prov = provenance(out)
    assert [m["device"] for m in prov["merged_from"]] == ["dev-committed", "dev-gpu"]
    assert [m["rows"] for m in prov["merged_from"]] == [1, 1]
    assert "merged from" in (out / "README.md").read_text()


def test_merge_refuses_one_value_measured_two_ways_naming_both(tmp_path):
    a = folder(tmp_path, "a", {("Set5", 2, "EDSR-T"): (37.1, "")}, steps=100)
    b = folder(tmp_path, "b", {("Set5", 2, "EDSR-T"): (36.4, "")}, steps=50)
    with pytest.raises(merge.MergeConflict) as e:
        merge.merge(tmp_path / "out", [a, b])
    assert "Table 1 Set5 x2 EDSR-T PSNR" in str(e.value) and "steps 100" in str(e.value) and "steps 50" in str(e.value)
    assert not (tmp_path / "out").exists()  # nothing written
    c = folder(tmp_path, "c", {("Set5", 2, "EDSR-T"): (37.1, "")}, steps=100, profile="paper")
    with pytest.raises(merge.MergeConflict, match="more than one profile"):
        merge.merge(tmp_path / "out", [a, c])
    assert merge.main([str(tmp_path / "out"), str(a), str(b)]) == 2


def test_merge_reads_a_bundles_results_archive_and_may_write_over_an_input(tmp_path):
    results = folder(tmp_path, "results", {("Set5", 2, "Bicubic"): (33.67, "")})
    back = folder(tmp_path / "work", "seo_squeezesr_kd", {("Set5", 3, "EDSR-T"): (33.9, "")}, steps=10)
    (tmp_path / "out").mkdir()
    with tarfile.open(tmp_path / "out" / "seo_squeezesr_kd_results.tar.gz", "w:gz") as tar:
        tar.add(back, arcname="seo_squeezesr_kd")
    assert merge.main([str(results), str(results), str(tmp_path / "out")]) == 0
    v = read_values(results).set_index(KEYS)
    assert v.loc[("Table 1", "Set5", "2", "Bicubic", "PSNR")].reproduced == 33.67
    assert v.loc[("Table 1", "Set5", "3", "EDSR-T", "PSNR")].reproduced == 33.9


# --- end to end (smoke) ----------------------------------------------------------------------------------------

def same_values(unsharded, sharded, skip_tables=()):
    a, b = (read_values(f) for f in (unsharded, sharded))
    a, b = (x[~x.table.isin(skip_tables)].set_index(KEYS).sort_index() for x in (a, b))
    assert list(a.index) == list(b.index)  # the same rows
    assert (a.status == b.status).all()
    pd.testing.assert_series_equal(a.reproduced, b.reproduced)  # the same numbers, exactly


@pytest.mark.notebook
@pytest.mark.parametrize("paper,timed", [("seo_squeezesr_kd", ()), ("moon2023_clsd", ("Table 6",))])
def test_a_run_sharded_by_scale_gives_the_unsharded_values(smoke_run, tmp_path, paper, timed):
    unsharded = smoke_run(paper)
    args = ["--paper", paper, "--profile", "smoke", "--shard", "scale", "--jobs", "2", "--out-root", str(tmp_path)]
    assert reproduce.main(args) == 0
    out = tmp_path / paper
    same_values(unsharded, out, skip_tables=timed)  # Table 6: wall-clock hours, different in every run
    prov = provenance(out)
    assert [m["folder"] for m in prov["merged_from"]] == ["x2", "x3", "x4"] and prov["trained_steps"] > 0
    assert all(m["commit"] and m["device"] for m in prov["merged_from"])
    assert (out / "shards" / "x2" / "values.csv").is_file() and (out / "README.md").is_file()

    assert reproduce.main(args) == 0  # an identical rerun: every shard finished, nothing trains
    again = provenance(out)
    assert again["trained_steps"] == 0 and all(m["finished_earlier"] for m in again["merged_from"])
    same_values(unsharded, out, skip_tables=timed)


@pytest.mark.notebook
def test_submitits_local_executor_runs_the_slurm_path(tmp_path, monkeypatch):
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)
    params = [a for k, v in {**TINY, "scales": "[2,3]", "fig_scale": 3}.items() for a in ("-p", f"{k}={v}")]
    assert reproduce.main(["--paper", "seo_squeezesr_kd", "--profile", "smoke", "--shard", "scale",
                           "--executor", "submitit-local", "--out-root", str(tmp_path), *params]) == 0
    out = tmp_path / "seo_squeezesr_kd"
    assert {m["folder"] for m in provenance(out)["merged_from"]} == {"x2", "x3"}
    logs = sorted((out / "shards").glob("x*.slurm/*_log.out"))
    assert len(logs) == 2  # one log per shard
    embedded = read_values(out)
    assert set(embedded[embedded.dataset == "embedded"].scale) == {"2", "3"}


@pytest.mark.notebook
def test_one_shard_on_two_processes_under_torchrun(tmp_path, monkeypatch):
    """gloo, 2 processes: both ranks execute the notebook and train (each half of the batch), rank 0 writes."""
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)
    params = [a for k, v in {**TINY, "scales": "[2]", "fig_scale": 2}.items() for a in ("-p", f"{k}={v}")]
    assert reproduce.main(["--paper", "seo_squeezesr_kd", "--profile", "smoke", "--nproc-per-shard", "2",
                           "--out-root", str(tmp_path), *params]) == 0
    out = tmp_path / "seo_squeezesr_kd"
    assert provenance(out / "shards" / "all")["world_size"] == 2 and provenance(out)["world_size"] == 2
    executed = sorted(p.name for p in (tmp_path / "executed").iterdir())
    assert executed == ["seo_squeezesr_kd.all.ipynb", "seo_squeezesr_kd.all.rank1.ipynb"]
    ckpt = next((tmp_path / "checkpoints" / "seo_squeezesr_kd").glob("EDSR-T_x2-*/last.pt"))
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] == 2 and len(state["ranks"]) == 2  # both ranks' random states, for an exact resume
    v = read_values(out)
    assert v[v.dataset == "embedded"].reproduced.notna().all()
    assert "trained by 2 processes" in (out / "README.md").read_text()
    assert json.loads((out / "shards" / "all" / "provenance.json").read_text())["trained_steps"] == 6  # EDSR-T, SqueezeSR, SqueezeSR-KD


def test_merge_pools_the_seeds_of_one_run_trained_in_separate_calls(tmp_path):
    def one_seed(name, seed, value):
        res = report.Results("seo_squeezesr_kd", "quick", tmp_path / name)
        res.record("Table 1", "Set5", 2, "EDSR-T", "PSNR", value, train_set="T91", steps=100, seed=seed)
        res.record("Table 1", "Set5", 2, "Bicubic", "PSNR", 33.67)
        return res.write()
    out = merge.merge(tmp_path / "pooled", [one_seed("s0", 0, 37.0), one_seed("s1", 1, 37.2), one_seed("s2", 2, 37.4)],
                      log=lambda m: None)
    row = read_values(out).set_index(KEYS).loc[("Table 1", "Set5", "2", "EDSR-T", "PSNR")]
    assert (row.reproduced, row.n_seeds, row.steps) == (pytest.approx(37.2), 3, 100)
    assert row.sd == pytest.approx(0.2) and row.delta == pytest.approx(37.2 - 37.89)
    assert sorted(pd.read_csv(out / "values_per_seed.csv").seed) == [0, 1, 2]
    with pytest.raises(merge.MergeConflict):  # the same seed twice is not a pool
        merge.merge(tmp_path / "no", [one_seed("t0", 0, 37.0), one_seed("t1", 0, 37.3)])


@pytest.mark.notebook
def test_a_failed_shard_is_named_the_others_kept_and_only_it_runs_again(tmp_path, monkeypatch):
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)
    overrides = {**TINY, "scales": [2, 3], "fig_scale": 3}
    planned = shards.plan("seo_squeezesr_kd", "smoke", overrides, tmp_path)
    broken = [s for s in planned]
    broken[1] = shards.Shard(**{**broken[1].__dict__, "overrides": {**broken[1].overrides,
                                                                      "data_root": str(tmp_path / "nowhere")}})
    monkeypatch.setattr(shards, "plan", lambda *a, **k: broken)
    with pytest.raises(RuntimeError, match=r"shard\(s\) x3 failed .*x3\.log.*runs only the unfinished shards"):
        shards.run("seo_squeezesr_kd", "smoke", overrides, tmp_path, jobs=2, log=lambda m: None)
    assert (tmp_path / "seo_squeezesr_kd" / "shards" / "x2" / "values.csv").is_file()  # the other shard's results stay
    assert "nowhere does not exist" in (tmp_path / "seo_squeezesr_kd" / "shards" / "x3.log").read_text()
    assert not (tmp_path / "seo_squeezesr_kd" / "values.csv").exists()  # nothing merged from a partial run

    monkeypatch.setattr(shards, "plan", lambda *a, **k: planned)  # fixed: the same command again
    said = []
    parts, done = shards.run("seo_squeezesr_kd", "smoke", overrides, tmp_path, jobs=2, log=said.append)
    out = merge.merge(tmp_path / "seo_squeezesr_kd", [s.folder for s in parts], reused={Path(s.folder).name for s in done})
    assert any("x2] finished earlier" in m for m in said) and any("x3] started" in m for m in said)
    assert not any("x2] started" in m for m in said)
    merged = {m["folder"]: m for m in provenance(out)["merged_from"]}
    assert merged["x2"]["finished_earlier"] and not merged["x3"]["finished_earlier"]


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.notebook
def test_a_job_stopped_by_its_time_limit_is_requeued_and_resumes(tmp_path, monkeypatch):
    """SLURM's warning before the time limit (here: submitit's local executor sends the same signal) requeues the
    shard's job; the requeued job resumes the run from its checkpoint and finishes the shard."""
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)
    overrides = {**TINY, "teacher_steps": 400, "ckpt_every": 10, "scales": [2], "fig_scale": 2}
    [shard] = shards.plan("seo_squeezesr_kd", "smoke", overrides, tmp_path)
    job = shards.submit([shard], cluster="local", time_min=10)["x2"]
    ckpts = tmp_path / "checkpoints" / "seo_squeezesr_kd"
    deadline = time.time() + 300
    while not list(ckpts.glob("EDSR-T_x2-*/last.pt")):  # the teacher has saved a checkpoint: stop the job now
        assert time.time() < deadline and not job.done(), job.stderr()
        time.sleep(0.2)
    worker, *kernel = shards.descendants(job._process.pid)  # the job's task under submitit's local controller; below it
    os.kill(worker, signal.SIGUSR2)  # what SLURM sends the job step before its time limit (submitit's --signal)
    while "Requeued job" not in job.stdout():
        assert time.time() < deadline, job.stdout()
        time.sleep(0.05)
    # its kernel was still training (390 steps to go): it is stopped before the job goes back in the queue
    assert kernel and not any(alive(pid) for pid in kernel)
    assert job.result() == shard.folder
    assert "this job is timed-out" in job.stdout()
    [teacher] = [r for r in provenance(Path(shard.folder))["runs"].values() if r["name"] == "EDSR-T"]
    assert teacher["steps"] == 400 and 0 < teacher["trained_steps"] < 400  # resumed from the checkpoint, not restarted
    assert (Path(shard.folder) / "values.csv").is_file()

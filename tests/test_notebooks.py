"""Every paper notebook through papermill with smoke parameters; its recorded values read back and checked.

nbval runs the same notebooks cell by cell (``pytest --nbval-lax notebooks``); nbval has
no float tolerance, so the numbers are checked here, as microsoft/recommenders does.
"""
import json
import re

import pandas as pd
import pytest

from srcore import config, report, reproduce
from srcore.execute import NOTEBOOKS
from conftest import execute, provenance, read_values

PAPERS = reproduce.papers()


@pytest.mark.notebook
@pytest.mark.parametrize("paper", PAPERS)
def test_values_cover_every_published_value(smoke_run, paper):
    out = smoke_run(paper)
    values = read_values(out)
    pub = report.published(paper)
    keys = ["table", "dataset", "scale", "method", "metric"]
    got = values[values.published.notna()].set_index(keys)
    assert set(map(tuple, pub[keys].values)) <= set(got.index)
    assert values.status.notna().all()
    assert values.status.str.match(r"^(reproduced|n/a: .+)$").all()
    assert set(values.profile) == {"smoke"}
    prov = json.loads((out / "provenance.json").read_text())
    assert {"profile", "device", "torch", "commit", "started", "finished", "data", "steps"} <= set(prov)


@pytest.mark.notebook
def test_seo_recorded_values(smoke_run):
    out = smoke_run("seo_squeezesr_kd")
    v = read_values(out)
    t1 = v[(v.table == "Table 1") & (v.metric == "PSNR") & v.published.notna()]
    assert len(t1) == 36 and (t1.status == "reproduced").all()
    # Set5 is evaluated whole even in smoke: the bicubic column is the published one, to 0.03 dB
    bic = t1[(t1.method == "Bicubic") & (t1.dataset == "Set5")]
    assert bic.delta.abs().max() == pytest.approx(0, abs=0.03)
    # Urban100 is cut to its first image in smoke, and the row says so
    assert t1[t1.dataset == "Urban100"].note.str.contains("first 1 of 100").all()
    # 20 steps of tiny networks are not the paper, but they give finite, bounded PSNRs and SSIMs
    nets = t1[t1.method != "Bicubic"]
    assert nets.reproduced.between(5, 45).all() and (nets.steps == 20).all()
    ssim = v[v.metric == "SSIM"]
    assert len(ssim) == 36 and ssim.reproduced.between(-1, 1).all()
    for f in ["tables/table_1.md", "tables/params_runtime.csv", "tables/claims.md",
              "figures/fig2_img004.png", "figures/fig2_img004.csv", "figures/training_loss.png"]:
        assert (out / f).is_file(), f
    runtime = pd.read_csv(out / "tables" / "params_runtime.csv")
    assert set(runtime.method) == {"Bicubic", "EDSR-T", "SqueezeSR", "SqueezeSR-KD"}
    assert (runtime[runtime.method == "Bicubic"].params == 0).all()


def test_kernels_import_this_checkout(monkeypatch, tmp_path):
    """A kernel started by the runner imports srcore from the runner's checkout, whatever pip installed last."""
    import papermill as pm
    monkeypatch.setenv("PYTHONPATH", "")
    calls = []
    monkeypatch.setattr(pm, "execute_notebook", lambda *a, **k: calls.append(__import__("os").environ["PYTHONPATH"]))
    reproduce.run("seo_squeezesr_kd", "smoke", {}, tmp_path, log=lambda *_: None)
    assert calls == [str(report.PROJECT_ROOT)]


def test_unknown_parameter_fails_before_running(capsys):
    assert reproduce.main(["--paper", "seo_squeezesr_kd", "--profile", "smoke", "-p", "stpes=3"]) == 2
    err = capsys.readouterr().err
    assert "'stpes'" in err and "student_steps" in err


def test_unknown_paper_and_malformed_parameter(capsys):
    assert reproduce.main(["--paper", "nobody2099"]) == 2
    assert "no notebook for ['nobody2099']" in capsys.readouterr().err
    with pytest.raises(config.ParameterError, match="name=value"):
        reproduce.parse_override("steps")
    assert reproduce.parse_override("steps=3") == ("steps", 3)
    assert reproduce.parse_override("eval_limit={Urban100: 4}") == ("eval_limit", {"Urban100": 4})
    assert reproduce.parse_override("methods=[SqueezeSR]") == ("methods", ["SqueezeSR"])
    assert reproduce.parse_override("run_note=the teacher: needs a GPU") == ("run_note", "the teacher: needs a GPU")


def test_notebook_refuses_an_unknown_parameter_given_to_papermill(tmp_path):
    """papermill itself only warns about unknown parameters: the notebook's first cell refuses them."""
    import papermill as pm
    with pytest.raises(pm.PapermillExecutionError, match="unknown parameter.*'stpes'"):
        pm.execute_notebook(str(NOTEBOOKS / "seo_squeezesr_kd.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"stpes": 3, "out_dir": str(tmp_path / "res")}, kernel_name="python3",
                            progress_bar=False)
    assert not (tmp_path / "res").exists()


def test_notebook_names_a_missing_data_root(tmp_path):
    import papermill as pm
    with pytest.raises(pm.PapermillExecutionError, match="nowhere does not exist"):
        pm.execute_notebook(str(NOTEBOOKS / "seo_squeezesr_kd.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"data_root": str(tmp_path / "nowhere"), "out_dir": str(tmp_path / "res")},
                            kernel_name="python3", progress_bar=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "out.ipynb"]  # nothing half-written


# Every paper's smoke path on scikit-image's photos, with few steps and one scale (SRCORE_DATA=none).
NO_DATA_RUNS = {
    "seo_squeezesr_kd": dict(scales=[4], teacher_steps=2, student_steps=2, runtime_images=1),
    "moon2023_clsd": dict(scales=[2], teacher_steps=2, student_steps=2, fig3_blocks=[1], fig3_steps=1, probe_steps=1),
    # lee2021_srgan_kd, lee2022_mutual_srgan, baek2024_esrgan_prune_kd join once on srcore.experiment
}


def seo_no_data(v):
    published_rows = v[v.published.notna()]
    assert len(published_rows) == 36
    assert published_rows.status.str.startswith("n/a: benchmark data not found").all()
    embedded = v[v.dataset == "embedded"]
    assert set(embedded.method) == {"Bicubic", "EDSR-T", "SqueezeSR", "SqueezeSR-KD"}


def moon_no_data(v):
    pub = v[v.published.notna()]
    psnr = pub[pub.table.isin(["Table 2", "Table 3", "Table 4", "Table 5"])]
    assert len(psnr) == 68 and psnr.status.str.startswith("n/a: benchmark data not found").all()
    assert (pub[pub.table.isin(["Table 1", "Table 6"])].status == "reproduced").all()  # counts and timings need no data
    assert set(v[v.dataset == "embedded"].method) == {"Bicubic", "Baseline", "FAKD", "LFD", "DS", "CLSD", "CLSD PH1"}


NO_DATA_CHECKS = {"seo_squeezesr_kd": seo_no_data, "moon2023_clsd": moon_no_data}


@pytest.mark.notebook
@pytest.mark.parametrize("paper", sorted(NO_DATA_RUNS))
def test_smoke_runs_with_no_data_at_all(tmp_path, monkeypatch, paper):
    """No SRCORE_DATA and no data/ folder: the smoke profile trains and evaluates on scikit-image's photos."""
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)  # as on a machine with no data anywhere
    out = execute(paper, tmp_path / "res", **NO_DATA_RUNS[paper])
    v = read_values(out)
    keys = ["table", "dataset", "scale", "method", "metric"]
    assert set(map(tuple, report.published(paper)[keys].values)) <= set(map(tuple, v[keys].values))
    assert v.status.str.match(r"^(reproduced|n/a: .+)$").all()
    embedded = v[v.dataset == "embedded"]
    assert len(embedded) and embedded.reproduced.notna().all()
    assert provenance(out)["data"]["train_set"].startswith("embedded")
    # honest text: what was not measured says so, never nan or a wrong reason
    claims = (out / "tables" / "claims.md").read_text()
    assert "not measured (no data)" in claims and not re.search(r"\bnan\b", claims) and "methods left out" not in claims
    assert "benchmark data not found" in (out / "README.md").read_text()
    NO_DATA_CHECKS[paper](v)

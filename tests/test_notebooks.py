"""Every paper notebook through papermill with smoke parameters; its recorded values read back and checked.

nbval runs the same notebooks cell by cell (``pytest --nbval-lax notebooks``); nbval has
no float tolerance, so the numbers are checked here, as microsoft/recommenders does.
"""
import json

import pandas as pd
import pytest
from conftest import read_values

from srcore import report, reproduce
from srcore.paper import config
from srcore.runner.execute import NOTEBOOKS

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
        config.parse_override("steps")
    assert config.parse_override("steps=3") == ("steps", 3)
    assert config.parse_override("eval_limit={Urban100: 4}") == ("eval_limit", {"Urban100": 4})
    assert config.parse_override("methods=[SqueezeSR]") == ("methods", ["SqueezeSR"])
    assert config.parse_override("run_note=the teacher: needs a GPU") == ("run_note", "the teacher: needs a GPU")


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

"""srcore.paper.experiment: one rule for reusing trained work, data only as the parameters need it, n/a rows, pages."""
import json
import time

import pandas as pd
import pytest
import torch

from srcore import data, nets, perceptual, report
from srcore.paper import config, experiment, runs
from srcore.paper.experiment import Experiment
from srcore.train import l1_step


def params(tmp_path, **overrides):
    small = dict(scales=[2], fig_scale=2, teacher_steps=2, student_steps=2, lr_patch=8, batch_size=2, train_limit=1)
    P = config.load("seo_squeezesr_kd", "smoke", **{**small, **overrides})
    P["out_dir"] = tmp_path / "res"
    return P


@pytest.fixture
def no_data(monkeypatch):
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)


def tiny():
    return {"net": nets.SqueezeSR(nets.SqueezeSRConfig(scale=2, n_feats=4, squeeze=2))}


def fit(exp, teacher=None, **kw):
    """A tiny run that reads student_feats and kd_weight while it is built (and uses ``teacher`` if given)."""
    def build():
        P = exp.P
        _ = (P.student_feats, P.kd_weight, teacher.net if teacher else None)
        return tiny(), l1_step
    return exp.fit("S", build, exp.P.student_steps, scale=2, **kw)


def test_same_settings_reuse_the_run_other_settings_train_again(tmp_path, no_data, capsys):
    exp = Experiment("seo_squeezesr_kd", params(tmp_path))
    exp.load_data()
    first = fit(exp)
    assert (first.trained_steps, first.reused, first.step) == (2, False, 2)
    settings = json.loads((first.folder / "settings.json").read_text())
    assert settings["key"] == first.key == runs.settings_key({k: v for k, v in settings.items() if k != "key"})
    assert settings["parameters"]["kd_weight"] == 1.0 and settings["parameters"]["lr"] == 1e-4  # read by build and by fit
    assert "teacher_feats" not in settings["parameters"]  # not read: not in the key

    rerun = Experiment("seo_squeezesr_kd", params(tmp_path))  # another session, same parameters
    rerun.load_data()
    again = fit(rerun)
    assert (again.trained_steps, again.reused, again.folder) == (0, True, first.folder)
    assert "reused finished run (same settings), 0 steps trained" in capsys.readouterr().out
    assert rerun.provenance["runs"][first.folder.name]["reused"] is True
    for a, b in zip(first.nets["net"].parameters(), again.nets["net"].parameters()):
        assert torch.equal(a, b)  # the finished weights, loaded

    other = Experiment("seo_squeezesr_kd", params(tmp_path, kd_weight=0.5))  # a parameter the build reads
    other.load_data()
    changed = fit(other)
    assert changed.folder != first.folder and changed.trained_steps == 2
    lr = Experiment("seo_squeezesr_kd", params(tmp_path, lr=2e-4))  # a shared training parameter
    lr.load_data()
    assert fit(lr).folder not in (first.folder, changed.folder)

    unread = Experiment("seo_squeezesr_kd", params(tmp_path, teacher_feats=7))  # a parameter no build reads
    unread.load_data()
    assert fit(unread).folder == first.folder

    # a run whose build uses another run's networks holds its key: another teacher, another student folder
    s1 = fit(exp, teacher=first)
    s2 = fit(exp, teacher=changed)
    assert len({s1.folder, s2.folder, first.folder}) == 3 and s1.settings["runs"] == {first.label: first.key}

    forced = Experiment("seo_squeezesr_kd", params(tmp_path, retrain=True))
    forced.load_data()
    assert fit(forced).trained_steps == 2


def test_initial_weights_do_not_depend_on_the_cache(tmp_path, no_data):
    exp = Experiment("seo_squeezesr_kd", params(tmp_path))
    exp.load_data()
    fit(exp)
    torch.rand(100)  # whatever ran before
    fresh = exp.fit("S2", lambda: (tiny(), l1_step), 0, scale=2)
    torch.manual_seed(exp.P.seed)
    expected = tiny()["net"]
    for a, b in zip(fresh.nets["net"].parameters(), expected.parameters()):
        assert torch.equal(a.cpu(), b)


def test_deadline_stops_and_every_dependent_row_says_so(tmp_path, no_data):
    exp = Experiment("seo_squeezesr_kd", params(tmp_path, student_steps=50))
    exp.load_data()
    exp.runs.deadline = time.time() - 1  # max_minutes already spent
    run = fit(exp)
    assert run.stopped_early and run.step < 50
    assert run.notes == [f"S: stopped early at step {run.step} of 50 (max_minutes=0)"]
    exp.record("Table 1", "Set5", 2, "SqueezeSR", "PSNR", 20.0, run=run, note="first 1 of 5 images")
    row = exp.results.values().query("method == 'SqueezeSR' and dataset == 'Set5' and scale == '2' and metric == 'PSNR'").iloc[0]
    assert row.note == f"first 1 of 5 images; S: stopped early at step {run.step} of 50 (max_minutes=0)"
    assert row.steps == run.step and exp.provenance["runs"][run.folder.name]["stopped_early"]


def test_a_parameter_read_in_the_first_step_but_not_in_the_key_stops_the_run(tmp_path, no_data):
    """Reading kd_weight only inside the step function would leave it out of the key (a stale run reused after a
    change of kd_weight): the first step stops with an error naming it; read while building, it keys the run."""
    exp = Experiment("seo_squeezesr_kd", params(tmp_path))
    exp.load_data()

    def late_step(t, batch):
        t.nets["net"](batch[0]).mean() * exp.P.kd_weight
        return l1_step(t, batch)
    with pytest.raises(config.UnkeyedRead, match="S x2 read parameter 'kd_weight' in its first training step"):
        exp.fit("S", lambda: (tiny(), late_step), 2, scale=2)

    def build():
        w = exp.P.kd_weight  # read while building: in the key, and the step may read it too
        return tiny(), late_step if w else l1_step
    run = exp.fit("S", build, 2, scale=2)
    assert run.trained_steps == 2 and "kd_weight" in run.settings["parameters"]


def test_only_the_data_the_parameters_need(tmp_path, monkeypatch):
    root = tmp_path / "data"
    for s in ("Set5",):
        (root / "benchmark" / s / "HR").mkdir(parents=True)
        data.save_image(data.embedded_set(2, limit=1)[0].hr, root / "benchmark" / s / "HR" / "baby.png")
    monkeypatch.setenv("SRCORE_DATA", str(root))
    P = params(tmp_path, eval_sets=["Set5"], eval_limit={})
    exp = Experiment("seo_squeezesr_kd", P)
    exp.load_data(train=False, figures={"fig_image": (4, [])})  # no figure, no training: no Urban100, no train/
    assert exp.has_data and exp.eval_sets["Set5"][2][0].name == "baby" and exp.note_for("Set5", 1) == "first 1 of 5 images"
    with pytest.raises(data.DataError, match="Urban100"):
        exp.load_data(train=False, figures={"fig_image": (4, ["Urban100/img_004"])})
    with pytest.raises(config.ParameterError, match=r"fig_image: Set5/img_999 is not an image of Set5"):
        exp.load_data(train=False, figures={"fig_image": (2, ["Set5/img_999"])})


def test_unmeasured_values_get_their_reason(tmp_path, no_data):
    exp = Experiment("seo_squeezesr_kd", params(tmp_path))
    exp.load_data(train=False)
    exp.mark_unmeasured()
    v = exp.results.values()
    assert (v.status == experiment.NO_DATA_STATUS).all() and exp.not_measured == "not measured (no data)"
    assert experiment.fmt(float("nan")) == "not measured (no data)" and experiment.fmt(0.5) == "+0.500"


def test_missing_metric_weights_become_the_na_reason(tmp_path, monkeypatch):
    seen = []

    def measure(metric, sr, hr, *, strict, crop_border):
        seen.append(strict)
        if strict:  # the paper profile: the plain WeightsUnavailable, so the run fails and writes no row
            raise perceptual.WeightsUnavailable("NRQM_model.mat is not in ~/.cache")
        raise perceptual.MetricUnavailable("n/a: weights unavailable (NRQM_model.mat)")
    monkeypatch.setattr(perceptual, "measure", measure)
    value, why = Experiment("seo_squeezesr_kd", params(tmp_path)).measure("pi", [], [])
    assert value != value and why == "n/a: weights unavailable (NRQM_model.mat)"  # nan, and the row's reason
    P = params(tmp_path)
    P["profile"] = "paper"
    with pytest.raises(perceptual.WeightsUnavailable):
        Experiment("seo_squeezesr_kd", P).measure("pi", [], [])
    assert seen == [False, True]


def test_results_page_and_summary(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = report.Results("seo_squeezesr_kd", "smoke", tmp_path / "results" / "seo_squeezesr_kd",
                         provenance={"device": "CPU", "data": {"train_set": "T91", "train_images": 4, "eval_images": {"Set5": 5}}})
    res.record("Table 1", "Set5", 2, "Bicubic", "PSNR", 33.6612)  # needs no training
    res.record("Table 1", "Set5", 2, "EDSR-T", "PSNR", 30.0, train_set="T91", steps=100)  # a trained network's
    res.na("Table 1", "Set14", 2, "EDSR-T", "PSNR", "weights unavailable")
    fig, ax = plt.subplots()
    assert res.add_figure(fig, pd.DataFrame({"x": [1]}), "curve") is not None
    res.add_table(pd.DataFrame({"claim": ["KD helps"], "our run": ["not measured (no data)"]}), "claims", "Claims")
    # nothing to show: no placeholder file, one line on the page saying what it needs
    assert res.add_figure(plt.figure(), pd.DataFrame(columns=["step", "l1"]), "training_loss") is None
    assert res.add_table(pd.DataFrame(columns=["image", "psnr"]), "per_image", needs="ratings") is None
    out = res.write()
    page = (out / "README.md").read_text()
    assert "profile **smoke** on CPU" in page and "T91 (4 images)" in page
    assert "| Set5 | x2 | PSNR | 33.66 | 33.66 | +0.00 | 37.89 | 30.00 | -7.89 |" in page
    assert "Published values: 36. Measured without training (parameter counts, bicubic, NIQE of HR images...): 1. " \
           "From networks trained in this run: 1. n/a: 34" in page
    assert "Trained in this run: EDSR-T (100 steps; ours minus published: mean -7.89, from -7.89 to -7.89 over 1 " \
           "values). Every other number here needs no training." in page
    assert "![curve](figures/curve.png)" in page and "## Claims check" in page and "KD helps" in page
    assert "* 33 x not run in this profile" in page and "* 1 x weights unavailable" in page
    assert not (out / "figures" / "training_loss.png").exists() and not (out / "tables" / "per_image.md").exists()
    assert "* `figures/training_loss`: needs trained networks, and this run has none" in page
    assert "* `tables/per_image`: needs ratings, and this run has none" in page
    summary = report.write_summary(tmp_path / "results").read_text()
    row = [l for l in summary.splitlines() if "seo_squeezesr_kd" in l][0]
    assert "[seo_squeezesr_kd](seo_squeezesr_kd/README.md) | 36 | 1 | 1 | 34 | mean -7.89, from -7.89 to -7.89 | " \
           "smoke, trained | CPU |" in row


def test_pages_are_rewritten_from_the_files_alone(tmp_path):
    """`python -m srcore.report` rewrites each page and the summary from values.csv, provenance and tables,
    the same as write() made them (for results written before pages existed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = report.Results("seo_squeezesr_kd", "quick", tmp_path / "seo_squeezesr_kd", provenance={"device": "CPU"})
    res.record("Table 1", "Set5", 2, "Bicubic", "PSNR", 33.6612)
    fig, _ = plt.subplots()
    res.add_figure(fig, pd.DataFrame({"x": [1]}), "fig2_img004")
    out = res.write()
    written = (out / "README.md").read_text()
    (out / "README.md").unlink()
    pages = report.rewrite_pages(tmp_path)
    assert pages == [out / "README.md", tmp_path / "README.md"]
    assert (out / "README.md").read_text() == written
    assert "[seo_squeezesr_kd](seo_squeezesr_kd/README.md) | 36 | 1 |" in (tmp_path / "README.md").read_text()

"""values.csv keeps every published value beside ours; outputs are written whole or not at all."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from srcore import report

PAPER = "seo_squeezesr_kd"


def make_results(tmp_path):
    res = report.Results(PAPER, "smoke", tmp_path / PAPER)
    res.record("Table 1", "Set5", 2, "Bicubic", "PSNR", 33.6612, note="")
    res.record("Table 1", "Set5", 2, "EDSR-T", "PSNR", 30.0, train_set="T91", steps=20)
    res.record("Table 1", "Set5", 2, "EDSR-T", "SSIM", 0.91, train_set="T91", steps=20)  # extra row
    res.na("Table 1", "Urban100", 4, "EDSR-T", "PSNR", "weights unavailable")
    res.record("Params", "-", "-", "EDSR-T", "params", 40_729_603)  # extra row: counts stay exact
    return res


def test_every_published_value_has_a_row_with_the_schema(tmp_path):
    values = make_results(tmp_path).values()
    assert list(values.columns) == ["paper", "table", "dataset", "scale", "method", "metric", "published", "reproduced",
                                    "sd", "n_seeds", "delta", "status", "profile", "train_set", "steps", "commit", "note"]
    pub = report.published(PAPER)
    assert len(pub) == 36
    assert len(values) == 38  # 36 published + the SSIM and params extra rows
    row = values[(values.dataset == "Set5") & (values.method == "Bicubic") & (values.scale == "2")].iloc[0]
    assert row.published == "33.66" and row.delta == pytest.approx(0.0012) and row.status == "reproduced"
    na = values[(values.dataset == "Urban100") & (values.scale == "4") & (values.method == "EDSR-T")].iloc[0]
    assert na.status == "n/a: weights unavailable" and pd.isna(na.reproduced)
    untouched = values[(values.dataset == "Set14") & (values.method == "SqueezeSR") & (values.scale == "3")].iloc[0]
    assert untouched.status.startswith("n/a") and untouched.published == "28.97"


def test_a_value_measured_per_seed_is_their_mean_with_sd_and_count(tmp_path):
    res = report.Results(PAPER, "smoke", tmp_path / PAPER)
    res.record("Table 1", "Set5", 2, "Bicubic", "PSNR", 33.6612)  # no seed shapes it
    res.record("Table 1", "Set5", 2, "EDSR-T", "PSNR", 30.0, train_set="T91", steps=20, note="a", seed=0)
    res.record("Table 1", "Set5", 2, "EDSR-T", "PSNR", 31.0, train_set="T91", steps=18, note="b", seed=1)
    res.record("Table 1", "Set5", 2, "EDSR-T", "PSNR", 32.5, train_set="T91", steps=20, note="a", seed=2)
    v = res.values().set_index(["dataset", "scale", "method", "metric"])
    row = v.loc[("Set5", "2", "EDSR-T", "PSNR")]
    assert row.reproduced == pytest.approx(31.1666667) and row.n_seeds == 3
    assert row.sd == pytest.approx(np.std([30.0, 31.0, 32.5], ddof=1))  # the sample standard deviation
    assert row.delta == pytest.approx(31.1666667 - 37.89) and row.steps == 18 and row.note == "a; b"
    bic = v.loc[("Set5", "2", "Bicubic", "PSNR")]
    assert pd.isna(bic.n_seeds) and pd.isna(bic.sd)
    seeds = res.per_seed()
    assert list(seeds.seed) == [0, 1, 2] and list(seeds.reproduced) == [30.0, 31.0, 32.5]
    cell = res.side_by_side("Table 1").iloc[0]
    assert cell["EDSR-T ours"] == "31.17 ± 1.26 (3)" and cell["Bicubic ours"] == "33.66"
    res.record("Table 1", "Set5", 2, "EDSR-T", "PSNR", 29.0, seed=1)  # the same seed again replaces its value
    assert res.values().set_index(["dataset", "scale", "method", "metric"]).loc[("Set5", "2", "EDSR-T", "PSNR")].n_seeds == 3
    one = report.Results(PAPER, "smoke", tmp_path / "one")
    one.record("Table 1", "Set5", 2, "EDSR-T", "PSNR", 30.0, seed=0)
    r = one.values().set_index(["dataset", "scale", "method", "metric"]).loc[("Set5", "2", "EDSR-T", "PSNR")]
    assert (r.reproduced, r.n_seeds) == (30.0, 1) and pd.isna(r.sd)  # one seed: no sd
    assert one.side_by_side("Table 1").iloc[0]["EDSR-T ours"] == "30.00"


def test_unfilled_lists_what_is_neither_recorded_nor_na(tmp_path):
    res = make_results(tmp_path)
    left = res.unfilled()
    assert len(left) == 36 - 3  # Set5 x2 Bicubic and EDSR-T PSNR recorded, Urban100 x4 EDSR-T n/a
    assert not ((left.dataset == "Set5") & (left.scale == "2") & (left.method == "Bicubic")).any()
    for r in left.itertuples():
        res.na(r.table, r.dataset, r.scale, r.method, r.metric, "private")
    assert res.unfilled().empty


def test_side_by_side_and_markdown(tmp_path):
    res = make_results(tmp_path)
    table = res.side_by_side("Table 1")
    assert len(table) == 9
    first = table.iloc[0]
    assert (first["Bicubic published"], first["Bicubic ours"], first["Bicubic delta"]) == ("33.66", "33.66", "+0.00")
    assert first["EDSR-T ours"] == "30.00" and first["EDSR-T delta"] == "-7.89"
    last = table.iloc[-1]  # Urban100 x4: EDSR-T marked n/a, SqueezeSR never filled
    assert last["EDSR-T ours"] == "n/a [2]" and last["SqueezeSR ours"] == "n/a [1]"
    assert table.attrs["notes"] == ["n/a: not run in this profile", "n/a: weights unavailable"]
    md_path = res.add_table(table, "t1")
    md = (res.stage / "tables" / "t1.md").read_text()
    assert md_path.name == "t1.md" and md.endswith("[1] n/a: not run in this profile\n[2] n/a: weights unavailable\n")
    assert report._fmt(32.0, "32") == "32" and report._fmt(0.81114, "0.8111") == "0.8111"
    md = report.markdown_table(pd.DataFrame({"a": [1, None], "b|c": ["x", "y"]}))
    assert md.splitlines()[0] == "| a | b\\|c |" and md.splitlines()[3] == "|  | y |"


def test_write_is_whole_and_replaces_the_old_results(tmp_path):
    res = make_results(tmp_path)
    out = res.write()
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "provenance.json", "tables", "values.csv"]
    prov = json.loads((out / "provenance.json").read_text())
    assert {"profile", "commit", "torch", "started", "finished"} <= set(prov)
    assert (out / "tables" / "table_1.md").read_text().startswith("# seo_squeezesr_kd, Table 1")
    assert "Params,-,-,EDSR-T,params,,40729603," in (out / "values.csv").read_text()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())

    # a run that fails before write() leaves the previous results as they were
    failed = report.Results(PAPER, "smoke", out)
    failed.record("Table 1", "Set5", 2, "Bicubic", "PSNR", 1.0)
    del failed
    assert pd.read_csv(out / "values.csv").reproduced.iloc[0] == pytest.approx(33.6612)


def test_commit_ignores_results_being_written(tmp_path, monkeypatch):
    import subprocess
    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (repo / "code.py").write_text("x = 1\n")
    run("add", "code.py")
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c")
    monkeypatch.setattr(report, "PROJECT_ROOT", repo)
    (repo / "results" / "values.csv").write_text("new\n")
    assert not report.git_commit().endswith("-dirty")
    (repo / "code.py").write_text("x = 2\n")
    assert report.git_commit().endswith("-dirty")


def test_figure_comes_with_its_csv(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    res = make_results(tmp_path)
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    res.add_figure(fig, pd.DataFrame({"x": [1, 2], "y": [3, 4]}), "line")
    out = res.write()
    assert (out / "figures" / "line.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(out / "figures" / "line.csv").y.tolist() == [3, 4]


def test_crop_row_titles_each_crop_with_its_psnr():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    hr = np.zeros((20, 20, 3), np.uint8)
    off = hr.copy()
    off[10:14, 10:14] = 1  # inside the crop: 16 of 64 crop pixels differ by 1 in each channel
    fig, axes = plt.subplots(1, 2)
    rows = report.crop_row(axes, {"HR": hr, "A": off}, top=8, left=8, side=8)
    assert [r["method"] for r in rows] == ["HR", "A"] and rows[0]["crop_psnr"] == float("inf")
    dy = (65.481 + 128.553 + 24.966) / 255  # Y of an RGB difference of 1 in every channel
    assert rows[1]["crop_psnr"] == pytest.approx(10 * np.log10(255 ** 2 / (dy ** 2 * 16 / 64)))
    assert axes[1].get_title() == f"A\n{rows[1]['crop_psnr']:.2f} dB"
    rows = report.crop_row(axes, {"HR": hr, "A": off}, top=30, left=-5, side=8, reference_title="img")
    assert (rows[0]["top"], rows[0]["left"]) == (12, 0) and axes[0].get_title() == "img"
    plt.close(fig)


# An absolute path: a slash-separated path starting at "/" (not "n/a", "x2/x3", "$SRCORE_DATA/..." or a URL),
# other than the system's own (/usr/bin/time, /dev/null) that documentation names.
ABSOLUTE = re.compile(r"(?<![\w.:/$~<>-])/(?!(?:usr|dev|proc|etc)/)(?:[A-Za-z0-9_.+-]+/)+[A-Za-z0-9_.+-]*")


def absolute_paths(folder):
    return {f"{p.relative_to(folder)}: {m}" for p in folder.rglob("*") if p.suffix in (".csv", ".md", ".json")
            for m in ABSOLUTE.findall(p.read_text())}


def test_portable_names_paths_the_way_a_reader_finds_them(tmp_path, monkeypatch):
    monkeypatch.setenv("SRCORE_DATA", str(tmp_path / "data"))
    assert report.portable(f"no ratings file at {report.PROJECT_ROOT}/results/ratings/x.csv") == \
        "no ratings file at results/ratings/x.csv"
    assert report.portable(f"no {tmp_path}/data/benchmark/General100/HR") == "no $SRCORE_DATA/benchmark/General100/HR"
    assert not report.portable(f"{report.PROJECT_ROOT}ly").startswith("ly")  # the checkout's name, not a longer one
    assert report.portable("n/a and x2/x3") == "n/a and x2/x3"
    assert ABSOLUTE.findall("n/a: x2/x3; $SRCORE_DATA/benchmark/Set5; https://a.b/c/d; 2>/dev/null; /usr/bin/time") == []
    assert ABSOLUTE.findall("at /home/me/data/x.png") == ["/home/me/data/x.png"]


def test_committed_results_name_no_path_of_the_machine_that_made_them():
    assert absolute_paths(report.PROJECT_ROOT / "results") == set()


@pytest.mark.notebook
def test_a_run_writes_no_absolute_path(smoke_run):
    """lee2021's run names a ratings file and the data root: both written portably."""
    out = smoke_run("lee2021_srgan_kd")
    assert absolute_paths(out) == set()
    text = (out / "values.csv").read_text() + (out / "provenance.json").read_text()
    assert "results/ratings/lee2021_srgan_kd.csv" in text and "$SRCORE_DATA" in text

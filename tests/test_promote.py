"""results/ changes only on purpose: a run is promoted only when it is at least as complete as results/.

The runs are small hand-made folders written by report.Results (values.csv, tables, provenance),
not notebook runs; one test goes through reproduce.main with a two-cell notebook.
"""
import json
import os

import pytest

from srcore import folders, report, reproduce
from srcore.runner import execute, promote

PAPER = "seo_squeezesr_kd"
FULL = {  # (dataset, scale, method) -> (PSNR, steps, note): a complete quick run
    ("Set5", 2, "Bicubic"): (33.67, "", ""),
    ("Set5", 2, "EDSR-T"): (37.10, 4000, ""),
    ("Set5", 2, "SqueezeSR"): (36.00, 4000, ""),
    ("Set14", 2, "SqueezeSR"): (31.50, 4000, ""),
    ("Urban100", 2, "SqueezeSR"): (29.00, 4000, "first 20 of 100 images"),
}


def make_run(folder, profile="quick", changes=None, figure=True):
    """A run folder like a notebook writes: FULL with ``changes`` (a key -> None marks it n/a)."""
    values = {**FULL, **(changes or {})}
    res = report.Results(PAPER, profile, folder)
    for (dataset, scale, method), v in values.items():
        if v is None:
            res.na("Table 1", dataset, scale, method, "PSNR", "not run in this profile")
        else:
            res.record("Table 1", dataset, scale, method, "PSNR", v[0], steps=v[1], note=v[2])
    if figure:
        (res.stage / "figures").mkdir(parents=True)
        (res.stage / "figures" / "fig3.png").write_bytes(b"png")
    return res.write()


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def committed(tmp_path):
    target = make_run(tmp_path / "results" / PAPER)
    return target, snapshot(target)


def test_short_quick_run_leaves_committed_quick_run_untouched_and_says_why(tmp_path, committed):
    target, before = committed
    run = make_run(tmp_path / "runs" / "quick" / PAPER, figure=False, changes={
        ("Set5", 2, "SqueezeSR"): (9.59, 3, ""),                          # 3 steps instead of 4000
        ("Set14", 2, "SqueezeSR"): (31.60, 4000, "first 1 of 14 images"),  # part of a set that was whole
        ("Urban100", 2, "SqueezeSR"): (29.10, 4000, "first 5 of 100 images"),  # fewer images than 20
        ("Set5", 2, "Bicubic"): None,                                      # a number turning n/a
    })
    said = []
    verdict = promote.promote(run, target, log=said.append)
    assert not verdict.promoted and snapshot(target) == before
    assert sorted(verdict.lost) == sorted([
        "Table 1 Set5 x2 SqueezeSR PSNR: 4000 training steps -> 3",
        "Table 1 Set14 x2 SqueezeSR PSNR: all images -> first 1 of 14 images",
        "Table 1 Urban100 x2 SqueezeSR PSNR: first 20 of 100 images -> first 5 of 100 images",
        "Table 1 Set5 x2 Bicubic PSNR: 33.67 -> n/a: not run in this profile",
        "file figures/fig3.png",
    ])
    assert len(said) == 1 and said[0].startswith(f"{target} left as it is (--promote-anyway replaces it")
    assert "5 published value(s) or file(s)" in said[0] and "3 training steps" not in said[0]  # "4000 ... -> 3"
    assert "Table 1 Set5 x2 SqueezeSR PSNR: 4000 training steps -> 3" in said[0]
    assert not any(p.name.startswith(".") for p in target.parent.iterdir())


def test_as_complete_or_more_replaces_the_committed_run(tmp_path, committed):
    target, before = committed
    changes = {
        ("Set5", 2, "SqueezeSR"): (36.20, 8000, ""),            # more steps
        ("Urban100", 2, "SqueezeSR"): (28.90, 4000, ""),        # the whole set, a lower value: still more complete
        ("Set5", 2, "SqueezeSR-KD"): (36.30, 4000, ""),         # a new number
    }
    more = make_run(tmp_path / "runs" / "quick" / PAPER, changes=changes)
    verdict = promote.promote(more, target, log=lambda m: None)
    assert verdict.promoted and verdict.lost == [] and snapshot(target) == snapshot(more)
    assert "36.2" in (target / "values.csv").read_text()
    # exactly as complete (the same run again) is promoted too, and so is paper over quick
    again = make_run(tmp_path / "again" / PAPER, changes=changes)
    assert promote.promote(again, target, log=lambda m: None).promoted
    paper = make_run(tmp_path / "runs" / "paper" / PAPER, profile="paper", changes=changes)
    assert promote.promote(paper, target, log=lambda m: None).promoted
    assert json.loads((target / "provenance.json").read_text())["profile"] == "paper"
    assert sorted(p.name for p in target.parent.iterdir()) == [PAPER]  # no .partial, no .old


def test_smaller_profile_is_refused_even_with_every_row_as_good(tmp_path):
    target = make_run(tmp_path / "results" / PAPER, profile="paper")
    before = snapshot(target)
    run = make_run(tmp_path / "runs" / "quick" / PAPER)
    verdict = promote.compare(run, target)
    assert verdict.refused == [f"the run's profile quick is smaller than the paper profile of {target}"]
    assert verdict.lost == [] and not promote.promote(run, target, log=lambda m: None).promoted
    assert snapshot(target) == before


def test_smoke_never_promotes_not_even_anyway_nor_into_an_empty_results(tmp_path):
    smoke = make_run(tmp_path / "runs" / "smoke" / PAPER, profile="smoke")
    empty = tmp_path / "results" / PAPER
    said = []
    for force in (False, True):
        verdict = promote.promote(smoke, empty, force=force, log=said.append)
        assert not verdict.promoted and not empty.exists()
    assert said[0] == f"{empty} left as it is: a smoke run is never promoted into results/ (only quick or paper runs are)"
    # a quick run into an empty results/ is
    quick = make_run(tmp_path / "runs" / "quick" / PAPER)
    assert promote.promote(quick, empty, log=said.append).promoted and (empty / "values.csv").is_file()


def test_promote_anyway_lists_what_is_lost_first(tmp_path, committed):
    target, _ = committed
    changes = {(k[0], k[1], k[2]): None for k in FULL}  # every number -> n/a
    run = make_run(tmp_path / "runs" / "quick" / PAPER, changes=changes)
    said = []
    verdict = promote.promote(run, target, force=True, log=said.append)
    assert verdict.promoted and snapshot(target) == snapshot(run)
    assert said[0].startswith(f"promoting {run} anyway: 5 published value(s) or file(s)")
    assert said[0].count("\n  ") == 5 and said[1] == f"promoted {run} -> {target}"
    # more than five losses: five are named, the rest counted
    verdict.lost += [f"row {i}" for i in range(3)]
    assert verdict.explain().endswith("  ... and 3 more") and verdict.explain().count("\n  ") == 6


def test_replace_folder_and_recover_after_a_kill_at_any_point(tmp_path):
    folder = tmp_path / "results" / PAPER
    folder.mkdir(parents=True)
    (folder / "values.csv").write_text("old")
    # killed between the two renames: only .old holds the results; recover renames it back
    os.replace(folder, folders.old_dir(folder))
    folders.partial_dir(folder).mkdir()
    (folders.partial_dir(folder) / "values.csv").write_text("new")
    folders.recover(folder)
    assert (folder / "values.csv").read_text() == "old" and sorted(os.listdir(folder.parent)) == [PAPER]
    # killed after the new one was in place: the .old goes
    folders.old_dir(folder).mkdir()
    folders.recover(folder)
    assert sorted(os.listdir(folder.parent)) == [PAPER]
    # replace_folder settles an interrupted replacement first, then swaps
    os.replace(folder, folders.old_dir(folder))
    new = tmp_path / "new"
    new.mkdir()
    (new / "values.csv").write_text("new")
    assert folders.replace_folder(new, folder) == folder and (folder / "values.csv").read_text() == "new"
    assert sorted(os.listdir(folder.parent)) == [PAPER] and not new.exists()


def test_every_profile_writes_under_runs_never_into_results(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "PROJECT_ROOT", tmp_path)
    (tmp_path / "results" / PAPER).mkdir(parents=True)
    (tmp_path / "results" / PAPER / "provenance.json").write_text('{"profile": "quick"}')
    for profile in ("smoke", "quick", "paper"):
        assert report.output_dir(PAPER, profile) == tmp_path / "runs" / profile / PAPER
    assert report.output_dir(PAPER, "smoke", tmp_path / "x") == tmp_path / "x"


# ---------------------------------------------------------------- through the runner


@pytest.fixture
def runner(tmp_path, monkeypatch):
    """reproduce.main with results/ and runs/ under tmp_path and a stand-in for the notebook run."""
    monkeypatch.setattr(reproduce, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(report, "PROJECT_ROOT", tmp_path)
    plans = {}

    def fake_run(paper, profile, overrides, out_root=None, log=print):
        if plans.get(paper) == "fail":
            raise RuntimeError("PapermillExecutionError: cell 7\nValueError: boom")
        return make_run(report.output_dir(paper, profile, out_root and out_root / paper), profile,
                        changes=plans.get(paper))

    monkeypatch.setattr(reproduce, "run", fake_run)
    return plans


def test_runner_promotes_or_says_why_and_sums_up(tmp_path, runner, committed, capsys):
    target, before = committed
    runner[PAPER] = {("Set5", 2, "SqueezeSR"): (9.59, 3, "")}
    runner["moon2023_clsd"] = "fail"
    assert reproduce.main(["--paper", PAPER, "moon2023_clsd", "--profile", "quick"]) == 1
    out = capsys.readouterr().out
    assert snapshot(target) == before
    assert "Table 1 Set5 x2 SqueezeSR PSNR: 4000 training steps -> 3" in out
    lines = out[out.index("summary (quick profile):"):].splitlines()
    assert lines[1].split() == [PAPER, str(tmp_path / "runs" / "quick" / PAPER / "README.md")]  # the run's page
    assert lines[2].split(maxsplit=1)[1] == "left as it is: 1 published value(s) or file(s) would be lost"
    assert lines[3].split(maxsplit=1) == ["moon2023_clsd", "FAILED: RuntimeError: ValueError: boom"]
    executed = tmp_path / "runs" / "quick" / "executed" / "moon2023_clsd.ipynb"
    assert lines[4].strip() == f"traceback in the executed notebook {executed}"
    assert lines[5] == reproduce.MEANING["quick"] + "."

    assert reproduce.main(["--paper", PAPER, "--profile", "quick", "--promote-anyway"]) == 0
    out = capsys.readouterr().out
    assert f"promoting {tmp_path / 'runs' / 'quick' / PAPER} anyway" in out and snapshot(target) != before
    assert f"promoted into {target}" in out and str(target / "README.md") in out
    summary_page = (tmp_path / "results" / "README.md").read_text()  # the summary of results/, rewritten
    assert f"| [{PAPER}]({PAPER}/README.md) |" in summary_page

    assert reproduce.main(["--paper", PAPER, "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "promot" not in out.split("summary")[0] and "11-20 dB" in out and "never promoted" in out
    assert json.loads((target / "provenance.json").read_text())["profile"] == "quick"


def test_runner_end_to_end_with_a_tiny_notebook(tmp_path, monkeypatch, capfd, data_root):
    """A real papermill run (kernel over ipc: no TCP warning), then promotion and the summary."""
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    params = nbformat.v4.new_code_cell('profile = "smoke"\nout_dir = None')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "from srcore import report\n"
        "from srcore.paper import config\n"
        f"P = config.from_notebook({PAPER!r}, globals())\n"
        "import os, pathlib\n"
        "report.PROJECT_ROOT = pathlib.Path(os.environ['SRCORE_TEST_ROOT'])  # runs/ under the test's tmp_path\n"
        f"res = report.Results({PAPER!r}, P.profile, report.output_dir({PAPER!r}, P.profile, P.out_dir))\n"
        "res.record('Table 1', 'Set5', 2, 'SqueezeSR', 'PSNR', 36.0 if P.teacher_steps > 10 else 9.6, "
        "steps=P.teacher_steps)\n"
        "res.write()\n")
    nb.cells = [params, body]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / f"{PAPER}.ipynb")
    monkeypatch.setattr(execute, "NOTEBOOKS", tmp_path / "notebooks")
    monkeypatch.setattr(reproduce, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(report, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("SRCORE_DATA", str(data_root))  # what the runner checks before any work (unread here)
    monkeypatch.setenv("SRCORE_TEST_ROOT", str(tmp_path))

    quick = ["--paper", PAPER, "--profile", "quick"]
    assert reproduce.main([*quick, "-p", "teacher_steps=400"]) == 0
    assert reproduce.main([*quick, "-p", "teacher_steps=3"]) == 0
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err and "TCP" not in out + err
    values = (tmp_path / "results" / PAPER / "values.csv").read_text()
    assert ",36,,,-0.62,reproduced,quick,,400," in values  # the 400-step run stayed; the 3-step one did not replace it
    assert "400 training steps -> 3" in out and out.rstrip().endswith(reproduce.MEANING["quick"] + ".")
    assert sorted(os.listdir(tmp_path / "runs" / "quick")) == ["executed", PAPER]

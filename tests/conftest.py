from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def find_data_root() -> Path | None:
    """The benchmark/training images: $SRCORE_DATA, else data/ in the checkout (as for any run)."""
    from srcore import data
    root = data.configured_root()
    return root if (root / "benchmark").is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = find_data_root()
    if root is None:
        pytest.skip("no dataset root: set SRCORE_DATA to a folder with benchmark/ and train/")
    return root


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, data_root):
    """smoke_run(paper) -> folder with that paper's smoke results; each notebook runs once per session."""
    from srcore import reproduce

    out_root = tmp_path_factory.mktemp("smoke")
    done = {}

    def run(paper: str) -> Path:
        if paper not in done:
            assert reproduce.main(["--paper", paper, "--profile", "smoke", "--out-root", str(out_root)]) == 0, \
                f"{paper}: smoke notebook failed, see {out_root}/executed/{paper}.ipynb"
            done[paper] = out_root / paper
        return done[paper]

    return run


def read_values(out: Path):
    """values.csv of a run as a DataFrame, with ``scale`` and ``published`` kept as the strings they are."""
    import pandas as pd
    return pd.read_csv(out / "values.csv", dtype={"scale": str, "published": str})


def execute(paper: str, out_dir: Path, **parameters) -> Path:
    """Run ``paper``'s notebook into ``out_dir`` (checkpoints beside it) as the runner does (srcore.runner.execute:
    this checkout's srcore, whatever ran before); returns ``out_dir``."""
    from srcore.runner import execute

    execute.execute(paper, {"out_dir": str(out_dir), **parameters}, out_dir.parent / f"{out_dir.name}.ipynb")
    return out_dir


def no_data_smoke(paper: str, tmp_path: Path, monkeypatch, **parameters):
    """The paper's smoke path with no data anywhere (scikit-image's photos), checked for what every paper owes; its
    values.csv. Each paper's test file adds what is its own."""
    import re

    from srcore import data, report
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)  # as on a machine with no data anywhere
    out = execute(paper, tmp_path / "res", **parameters)
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
    return v


def provenance(out: Path) -> dict:
    import json
    return json.loads((out / "provenance.json").read_text())


def run_paper_notebook(paper: str, out: Path, **parameters):
    """A paper's notebook into ``out`` (checkpoints beside it), as the runner runs it; its values.csv and provenance."""
    execute(paper, out, **parameters)
    return read_values(out), provenance(out)


def check_seeds(paper: str, tmp_path: Path, **parameters) -> tuple:
    """The seeds contract of a paper's notebook on small smoke parameters, asserted here once:

    ``seeds=[0, 1]`` gives every trained row (a row with steps) n_seeds 2 and sd > 0, and one
    values_per_seed.csv holding both seeds' values; an identical rerun trains 0 steps and writes the
    same values; ``seeds=[0]`` writes exactly seed 0's values of the two-seed run (a seed's numbers do
    not depend on the other seeds), n_seeds 1 and no sd. Returns (two-seed values, per-seed values).
    """
    import pandas as pd
    two = execute(paper, tmp_path / "two", seeds=[0, 1], **parameters)
    values, per_seed = read_values(two), pd.read_csv(two / "values_per_seed.csv", dtype={"scale": str})
    trained = values[values.steps.notna() & (values.status == "reproduced")]
    assert len(trained) and (trained.n_seeds == 2).all() and (trained.sd > 0).all(), trained[["method", "sd"]]
    assert set(per_seed.seed) == {0, 1} and len(per_seed) == 2 * len(trained)
    assert sorted(p.name for p in two.glob("values*.csv")) == ["values.csv", "values_per_seed.csv"]
    assert provenance(two)["trained_steps"] > 0

    again = execute(paper, tmp_path / "again", seeds=[0, 1], **parameters)
    assert provenance(again)["trained_steps"] == 0
    pd.testing.assert_frame_equal(read_values(again).drop(columns="commit"), values.drop(columns="commit"))

    one = read_values(execute(paper, tmp_path / "one", seeds=[0], **parameters))
    keys = ["table", "dataset", "scale", "method", "metric"]
    mine = one[one.steps.notna() & (one.status == "reproduced")].set_index(keys)
    seed0 = per_seed[per_seed.seed == 0].set_index(keys)
    assert len(mine) == len(trained) and (mine.n_seeds == 1).all() and mine.sd.isna().all()
    pd.testing.assert_series_equal(mine.reproduced.sort_index(), seed0.reproduced.sort_index(), check_names=False)
    return values, per_seed

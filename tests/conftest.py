import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_datasets() -> Path | None:
    """The benchmark/training images: $SRCORE_DATA, else ../shared/datasets beside the checkout."""
    for cand in (os.environ.get("SRCORE_DATA"), ROOT.parent / "shared" / "datasets"):
        if cand and (Path(cand) / "benchmark").is_dir():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_datasets()
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
    """Run ``paper``'s notebook with papermill into ``out_dir`` (checkpoints beside it); returns ``out_dir``."""
    import papermill as pm
    from srcore import execute

    pm.execute_notebook(str(execute.NOTEBOOKS / f"{paper}.ipynb"), str(out_dir.parent / f"{out_dir.name}.ipynb"),
                        parameters={"out_dir": str(out_dir), **parameters}, kernel_name="python3", progress_bar=False,
                        cwd=str(execute.NOTEBOOKS))
    return out_dir


def provenance(out: Path) -> dict:
    import json
    return json.loads((out / "provenance.json").read_text())


def run_paper_notebook(paper: str, out: Path, **parameters):
    """A paper's notebook through papermill into ``out`` (checkpoints beside it); its values.csv and provenance."""
    import json

    import papermill as pm

    from srcore import execute
    pm.execute_notebook(str(execute.NOTEBOOKS / f"{paper}.ipynb"), str(out.parent / f"{out.name}.ipynb"),
                        parameters={"out_dir": str(out), **parameters}, kernel_name="python3", progress_bar=False)
    return read_values(out), json.loads((out / "provenance.json").read_text())


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

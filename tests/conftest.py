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

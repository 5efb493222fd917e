"""bf16 rehearsal on the CPU: every paper's smoke profile with ``-p autocast=bf16``, as every GPU step runs.

Every logged loss is finite, every trained value finite and within these tolerances of the float32
smoke run (measured on 2026-12-05: PSNR at most 0.019 dB apart (baek; the others <= 0.0013),
SSIM 0.0018, crop PSNRs 0.0002 dB, NIQE 14%; smoke networks train 6-20 steps, so these bound bf16's
rounding, not a trained network's drift). NIQE, a natural-scene statistic of nearly untrained
outputs, swings with small pixel changes: it is held to finiteness and a loose bound only.
"""
import numpy as np
import pandas as pd
import pytest
from conftest import read_values

from srcore import reproduce

TOLERANCE = {"PSNR": 0.1, "SSIM": 0.01}  # absolute (dB, SSIM units); "PSNR crop ..." as PSNR
NIQE_RELATIVE = 0.5
KEYS = ["table", "dataset", "scale", "method", "metric"]


@pytest.fixture(scope="session")
def bf16_run(tmp_path_factory, data_root):
    out_root = tmp_path_factory.mktemp("bf16")
    done = {}

    def run(paper):
        if paper not in done:
            args = ["--paper", paper, "--profile", "smoke", "--out-root", str(out_root), "-p", "autocast=bf16"]
            assert reproduce.main(args) == 0, f"{paper}: bf16 smoke failed, see {out_root}/executed/{paper}.ipynb"
            done[paper] = out_root / paper
        return done[paper]

    return run


@pytest.mark.notebook
@pytest.mark.parametrize("paper", reproduce.papers())
def test_bf16_smoke_is_finite_and_close_to_float32(smoke_run, bf16_run, paper):
    bf16, fp32 = bf16_run(paper), smoke_run(paper)
    logs = sorted((bf16.parent / "checkpoints" / paper).glob("*/log.csv"))
    assert logs, "no training log"
    for log in logs:
        numbers = pd.read_csv(log).select_dtypes("number")
        assert np.isfinite(numbers.to_numpy()).all(), f"{log.parent.name}: a loss is not finite"
        assert '"autocast": "bf16"' in (log.parent / "settings.json").read_text()  # its own key: never the fp32 run's
    both = read_values(fp32).merge(read_values(bf16), on=KEYS, suffixes=("_fp32", "_bf16"))
    trained = both[both.steps_fp32.notna() & both.reproduced_fp32.notna()]
    assert len(trained) and np.isfinite(trained.reproduced_bf16).all()
    for r in trained.itertuples():
        gap = abs(r.reproduced_bf16 - r.reproduced_fp32)
        if r.metric == "NIQE":
            assert gap <= NIQE_RELATIVE * abs(r.reproduced_fp32), r
        else:
            assert gap <= TOLERANCE["PSNR" if r.metric.startswith("PSNR") else r.metric], r

"""srcore.stats: a value over seeds, and a gain judged against seed noise (hand-worked numbers)."""
import math

import pandas as pd
import pytest

from srcore import stats


def test_combine_is_the_mean_the_sample_sd_and_the_count():
    row = stats.combine({1: {"reproduced": 31.0, "steps": 90, "note": "b"},
                         0: {"reproduced": 30.0, "steps": 100, "note": "a"},
                         2: {"reproduced": 32.0, "steps": 100, "note": "a"}})
    assert row["reproduced"] == 31.0 and row["n_seeds"] == 3
    assert row["sd"] == pytest.approx(1.0)  # sqrt(((-1)^2 + 0 + 1^2) / (3 - 1))
    assert row["steps"] == 90 and row["note"] == "a; b"  # the fewest steps; distinct notes in seed order
    one = stats.combine({0: {"reproduced": 30.0, "steps": 5, "note": ""}})
    assert one["n_seeds"] == 1 and math.isnan(one["sd"])


def test_a_gain_is_resolved_beyond_two_standard_errors():
    # per-seed gains 0.10, 0.12, 0.08: mean 0.10, sd 0.02, SE 0.02 / sqrt(3) = 0.011547
    g = stats.Gain(pd.Series([0.10, 0.12, 0.08], index=[0, 1, 2]))
    assert (g.n, g.mean, g.sd) == (3, pytest.approx(0.10), pytest.approx(0.02))
    assert g.se == pytest.approx(0.02 / math.sqrt(3))
    assert g.resolved is True and g.verdict() == "resolved"
    assert g.would_resolve(0.05) is True and g.would_resolve(0.02) is False  # 2 SE = 0.0231
    assert g.text(0.02) == ("+0.100 dB ± 0.012 SE over 3 seeds: resolved; published +0.020 dB: "
                            "our seed noise would not resolve it")
    noisy = stats.Gain(pd.Series([0.05, -0.03, 0.01]))  # mean 0.01, sd 0.04, SE 0.0231 > mean / 2
    assert noisy.resolved is False and noisy.verdict() == "within seed noise"
    single = stats.Gain(pd.Series([0.07]))
    assert single.resolved is None and single.text(0.07) == "+0.070 dB: seed noise not measured (1 seed)"
    assert stats.Gain(pd.Series([], dtype=float)).text() == "not measured"


def test_gain_of_two_methods_is_taken_within_each_seed():
    per_cell = pd.DataFrame({"seed": [0, 0, 1, 1], "cell": ["a", "b", "a", "b"],
                             "KD": [30.2, 28.1, 30.4, 28.5], "plain": [30.0, 28.0, 30.1, 28.2]})
    g = stats.gain(per_cell.set_index(["seed", "cell"]), "KD", "plain")
    assert g.per_seed.to_dict() == {0: pytest.approx(0.15), 1: pytest.approx(0.30)}  # mean of the cells' gains per seed


def test_expand_repeats_what_no_seed_shapes_in_every_seed():
    means = pd.DataFrame({"method": ["Bicubic", "KD", "KD"], "seed": [None, 0, 1], "psnr": [28.0, 30.0, 31.0]},
                         dtype=object)
    out = stats.expand(means, [0, 1])
    assert sorted(zip(out.method, out.seed)) == [("Bicubic", 0), ("Bicubic", 1), ("KD", 0), ("KD", 1)]
    assert out.seed.dtype.kind == "i"

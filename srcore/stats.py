"""Seed noise: a value measured over several seeds, and whether a gain between two methods is larger than it.

The five papers report single runs, and several of their claims are gains of a few hundredths of
a dB. srcore repeats every trained run over the profile's ``seeds`` (a student trained with seed
``s`` distils from the teacher of seed ``s``) and judges each gain by its seed noise:

* a value's row holds the mean over seeds, the sample standard deviation (``sd``, ddof 1) and
  their number (``n_seeds``); every seed's value is kept in ``values_per_seed.csv``;
* a gain (method A minus method B, computed per seed on the same cells) is **resolved** when its
  mean is larger than two standard errors over seeds (``|mean| > 2 sd / sqrt(n)``), else it is
  **within seed noise**; a published gain is *resolvable by our noise* when it exceeds two of our
  standard errors. With one seed the noise is not measured, and the text says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


def combine(by_seed: dict[int, dict]) -> dict:
    """One values.csv row from every seed's row (``reproduced``, ``steps``, ``note``, ``train_set``, ``status``).

    ``reproduced``: the mean; ``sd``: the sample standard deviation (NaN for one seed); ``n_seeds``;
    ``steps``: the fewest steps any seed reached; ``note``: the seeds' distinct notes.
    """
    rows = [by_seed[s] for s in sorted(by_seed)]
    values = np.array([r["reproduced"] for r in rows], dtype=float)
    steps = [r["steps"] for r in rows if r.get("steps") not in ("", None)]
    notes = list(dict.fromkeys(r["note"] for r in rows if r.get("note")))
    return {"reproduced": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
            "n_seeds": len(values), "status": "reproduced", "train_set": rows[0].get("train_set", ""),
            "steps": min(steps) if steps else "", "note": "; ".join(notes)}


def expand(frame: pd.DataFrame, seeds: list[int]) -> pd.DataFrame:
    """``frame`` with a ``seed`` column on every row: rows that no seed shapes (seed None/NaN: bicubic, ...)
    repeated once per seed, so per-seed differences between methods can be taken within each seed."""
    seeded = frame["seed"].notna()
    shared = frame[~seeded]
    parts = [frame[seeded]] + [shared.assign(seed=s) for s in seeds]
    out = pd.concat(parts, ignore_index=True)
    out["seed"] = out["seed"].astype(int)
    return out


@dataclass
class Gain:
    """A difference between two methods, one number per seed (``per_seed``: seed -> gain)."""

    per_seed: pd.Series

    def __post_init__(self):
        self.per_seed = pd.Series(self.per_seed, dtype=float).dropna()

    @property
    def n(self) -> int:
        return len(self.per_seed)

    @property
    def mean(self) -> float:
        return float(self.per_seed.mean()) if self.n else float("nan")

    @property
    def sd(self) -> float:
        return float(self.per_seed.std(ddof=1)) if self.n > 1 else float("nan")

    @property
    def se(self) -> float:
        """Standard error of the mean gain over seeds (NaN for fewer than two seeds)."""
        return self.sd / math.sqrt(self.n) if self.n > 1 else float("nan")

    @property
    def resolved(self) -> bool | None:
        """True when |mean| > 2 SE; False when it is not; None when the noise is not measured (one seed)."""
        if self.n < 2:
            return None
        return abs(self.mean) > 2 * self.se

    def verdict(self) -> str:
        return {True: "resolved", False: "within seed noise", None: "seed noise not measured (1 seed)"}[self.resolved]

    def would_resolve(self, published_gain: float) -> bool | None:
        """Whether our seed noise resolves ``published_gain`` (|published| > 2 of our SE); None with one seed."""
        if self.n < 2 or not math.isfinite(published_gain):
            return None
        return abs(published_gain) > 2 * self.se

    def text(self, published: float | None = None, unit: str = "dB", spec: str = "+.3f") -> str:
        """"+0.071 dB ± 0.012 SE over 3 seeds: resolved; published +0.070 dB: our seed noise would resolve it (> 2 SE)"."""
        if not self.n:
            return "not measured"
        head = f"{self.mean:{spec}} {unit}".rstrip()
        if self.n > 1:
            head += f" ± {self.se:{spec.lstrip('+')}} SE over {self.n} seeds"
        out = f"{head}: {self.verdict()}"
        if published is not None and math.isfinite(published):
            would = self.would_resolve(published)
            if would is not None:
                out += (f"; published {published:{spec}} {unit}".rstrip() + ": "
                        + ("our seed noise would resolve it (> 2 SE)" if would else "our seed noise would not resolve it"))
        return out


def gain(per_cell: pd.DataFrame, a: str, b: str, *, seed: str = "seed") -> Gain:
    """The gain of method column ``a`` over ``b`` in a wide frame with a ``seed`` index level (or column):
    per seed, the mean over that seed's cells of ``a - b``."""
    frame = per_cell.reset_index() if seed in (per_cell.index.names or []) else per_cell
    diff = (frame[a] - frame[b]).groupby(frame[seed]).mean()
    return Gain(diff)


def per_seed(means: pd.DataFrame, seeds: list[int], index: list[str], value: str = "psnr") -> pd.DataFrame:
    """Our values as a wide table per seed, ``(seed, *index)`` x method, where what no seed shapes (bicubic, a
    release) is repeated in every seed (:func:`expand`): gains are then taken within a seed (:func:`gain`).
    Empty when nothing was measured."""
    if not len(means):
        return pd.DataFrame()
    return expand(means, seeds).pivot_table(index=["seed", *index], columns="method", values=value)

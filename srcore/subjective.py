"""Human ratings: DMOS from a ratings table, and a blind rating tool that writes the table.

DMOS follows Sheikh, Sabir & Bovik (2006) as lee2021_srgan_kd writes it (Eqs. 4-6): for rater i
and SR image j (one image super-resolved by one method), with scores 1..5,

    d_ij = r_i,ref(j) - r_ij                 (4)  difference to the rater's score of the reference
    z_ij = (d_ij - mean_i d) / std_i d       (5)  z-scored per rater
    DMOS_j = mean_i 100 (z_ij + 3) / 6       (6)  rescaled to ~0..100 and averaged over raters

so a *higher* DMOS means a *larger* loss against the reference: lower is better.

The tool shows, for each trial, the ground truth (labelled) beside one candidate that is either
an SR image or the ground truth itself (the hidden reference, which gives r_ref), in an order
shuffled per rater; the method is never shown. Each answer is appended to a CSV at once, so a
session can stop and resume.

    session = RatingSession(images, "ratings.csv", rater="r01")   # images[name][method] = uint8 (H,W,3)
    display(rating_widget(session))                               # needs ipywidgets
    table = dmos(reference_scores(pd.read_csv("ratings.csv")))
"""
from __future__ import annotations

import csv
import io
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE = "HR"  # the method name of the hidden reference in the tool's CSV
RAW_COLUMNS = ["rater", "image", "method", "score", "trial", "time"]
RATING_COLUMNS = ["rater", "image", "method", "score", "ref_score"]
SCORES = (1, 2, 3, 4, 5)


def _check_scores(values: pd.Series, what: str) -> None:
    bad = values[~values.isin(SCORES)]
    if len(bad):
        raise ValueError(f"{what} must be integers 1..5, got {sorted(set(bad.tolist()))[:5]}")


def reference_scores(raw: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """The tool's rows (rater, image, method, score; the hidden reference as method ``reference``)
    -> one row per (rater, image, SR method) with the rater's score of that image's reference."""
    missing = {"rater", "image", "method", "score"} - set(raw.columns)
    if missing:
        raise ValueError(f"ratings lack columns {sorted(missing)}; expected {RAW_COLUMNS}")
    refs = raw[raw.method == reference][["rater", "image", "score"]].rename(columns={"score": "ref_score"})
    if refs.duplicated(["rater", "image"]).any():
        raise ValueError("a rater scored the same reference twice")
    out = raw[raw.method != reference].merge(refs, on=["rater", "image"], how="left")
    lost = out[out.ref_score.isna()][["rater", "image"]].drop_duplicates()
    if len(lost):
        raise ValueError(f"no reference score for (rater, image) {list(map(tuple, lost.values))[:5]}: "
                         f"each rater must also score the hidden reference of every image")
    out["ref_score"] = out["ref_score"].astype(int)
    return out[RATING_COLUMNS].reset_index(drop=True)


def dmos(ratings: pd.DataFrame, *, by: tuple[str, ...] = ("rater",), ddof: int = 1) -> pd.DataFrame:
    """DMOS per image and method (Eqs. 4-6) from ``ratings`` with columns RATING_COLUMNS.

    ``by``: the groups z-scored in Eq. 5: ``("rater",)`` as the equation says; ``("rater",
    "method")`` normalises each method on its own, which makes every method's mean DMOS exactly
    50 (what lee2021_srgan_kd's Table 3 shows). ``ddof``: 1 = sample standard deviation (the
    paper does not say). Returns rows (image, method, dmos, raters); higher DMOS = worse.
    """
    missing = set(RATING_COLUMNS) - set(ratings.columns)
    if missing:
        raise ValueError(f"ratings lack columns {sorted(missing)}; expected {RATING_COLUMNS}")
    if ratings.empty:
        raise ValueError("no ratings")
    _check_scores(ratings.score, "scores")
    _check_scores(ratings.ref_score, "reference scores")
    dup = ratings.duplicated(["rater", "image", "method"])
    if dup.any():
        raise ValueError(f"duplicate ratings: {list(map(tuple, ratings[dup][['rater', 'image', 'method']].values))[:5]}")
    df = ratings.copy()
    df["d"] = df.ref_score - df.score                                   # Eq. 4
    groups = df.groupby(list(by))["d"]
    std = groups.transform(lambda d: d.std(ddof=ddof))
    flat = df[~(std > 0)]
    if len(flat):
        raise ValueError(f"z-score undefined (all differences equal, or a single rating) for "
                         f"{sorted(set(map(tuple, flat[list(by)].values)))[:5]}: drop these or rate more images")
    df["z"] = (df.d - groups.transform("mean")) / std                    # Eq. 5
    df["scaled"] = 100 * (df.z + 3) / 6                                 # Eq. 6, per rater
    out = df.groupby(["image", "method"], sort=False).agg(dmos=("scaled", "mean"), raters=("rater", "nunique"))
    return out.reset_index()


class RatingSession:
    """One rater's blind session over ``images`` (name -> {method -> uint8 (H,W,3)}; ``reference``
    is the ground truth). Every (image, candidate) pair is one trial, candidates being every SR
    method and the hidden reference, in an order fixed by (``seed``, ``rater``). Answers already
    in ``csv_path`` for this rater are skipped, so a session resumes where it stopped."""

    def __init__(self, images: dict[str, dict[str, np.ndarray]], csv_path, rater: str, *, seed: int = 0,
                 reference: str = REFERENCE):
        if not rater or not str(rater).strip():
            raise ValueError("a rater id is needed (any pseudonym; it groups the z-scores)")
        for name, by_method in images.items():
            if reference not in by_method:
                raise ValueError(f"image {name!r} has no {reference!r} (ground truth) entry")
        self.images, self.csv_path, self.rater, self.reference = images, Path(csv_path), str(rater), reference
        trials = [(name, m) for name, by_method in images.items() for m in by_method]
        rng = np.random.default_rng([seed, zlib.crc32(self.rater.encode())])
        self.trials = [trials[i] for i in rng.permutation(len(trials))]
        done = set()
        if self.csv_path.is_file():
            prior = pd.read_csv(self.csv_path, dtype={"rater": str, "image": str, "method": str})
            done = set(map(tuple, prior[prior.rater == self.rater][["image", "method"]].values))
        self._done = done

    @property
    def remaining(self) -> list[tuple[str, str]]:
        return [t for t in self.trials if t not in self._done]

    def current(self) -> tuple[str, str] | None:
        """(image, method) of the next trial to show, or None when the session is finished."""
        left = self.remaining
        return left[0] if left else None

    def pair(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(ground truth, candidate) images of the next trial; the method stays hidden."""
        trial = self.current()
        if trial is None:
            return None
        image, method = trial
        return self.images[image][self.reference], self.images[image][method]

    def rate(self, score: int) -> None:
        """Store the score (1..5) of the current trial in the CSV and move on."""
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        trial = self.current()
        if trial is None:
            raise RuntimeError("the session is finished")
        new = not self.csv_path.is_file()
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(RAW_COLUMNS)
            writer.writerow([self.rater, trial[0], trial[1], int(score), self.trials.index(trial),
                             datetime.now(timezone.utc).isoformat(timespec="seconds")])
        self._done.add(trial)


def widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


WIDGETS_MISSING = ("The blind rating tool needs ipywidgets, which is not installed here "
                   "(`pip install ipywidgets`, then restart the kernel). Without it, ratings can be "
                   "entered in a CSV by hand with columns " + ", ".join(RAW_COLUMNS[:4]) +
                   f" (method {REFERENCE!r} for the hidden reference); the notebook reads that file.")


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def rating_widget(session: RatingSession, width: int = 384):
    """An ipywidgets box: ground truth | candidate, five score buttons, progress.
    Raises RuntimeError with WIDGETS_MISSING when ipywidgets is not installed."""
    if not widgets_available():
        raise RuntimeError(WIDGETS_MISSING)
    import ipywidgets as w

    ref_img, cand_img = w.Image(format="png", width=width), w.Image(format="png", width=width)
    status = w.Label()
    buttons = [w.Button(description=f"{s}", layout=w.Layout(width="48px")) for s in SCORES]

    def show():
        pair = session.pair()
        left = len(session.remaining)
        if pair is None:
            status.value = f"finished: {len(session.trials)} ratings in {session.csv_path}"
            for b in buttons:
                b.disabled = True
            return
        ref_img.value, cand_img.value = _png(pair[0]), _png(pair[1])
        status.value = (f"rater {session.rater}: {len(session.trials) - left + 1} of {len(session.trials)} — "
                        f"score the right image against the ground truth (1 bad ... 5 excellent)")

    def click(button):
        session.rate(int(button.description))
        show()

    for b in buttons:
        b.on_click(click)
    show()
    labels = w.HBox([w.Label("ground truth", layout=w.Layout(width=f"{width}px")), w.Label("candidate")])
    return w.VBox([status, labels, w.HBox([ref_img, cand_img]), w.HBox(buttons)])

"""results/ changes only on purpose: promoting a finished run, and folders replaced whole.

Every run writes to ``runs/<profile>/<paper>/`` (:func:`srcore.report.output_dir`). The
runner (``python -m srcore.reproduce``) then calls :func:`promote`, which copies that run
into ``results/<paper>/`` only when it is at least as complete as what is there:

* the run's profile is quick or paper (a smoke run only checks the plumbing: never promoted),
  and not smaller than the committed one (smoke < quick < paper);
* no published value (a row of values.csv with a ``published`` number) that has a number in
  results/ goes to n/a, or to a value made from fewer training steps (``steps`` column) or
  fewer images (``note`` column: "first n of N images" when a set was evaluated in part);
* no figure or table file of results/ that shows numbers would disappear.

Otherwise results/ is left as it is and the reasons are printed (a few lost rows and how
many in all); ``force=True`` (``--promote-anyway``) promotes after printing the same list.

The folder is replaced whole (:func:`srcore.folders.replace_folder`) while the promotion holds it
(:func:`srcore.folders.hold`): a kill leaves the previous results or the new ones, never a mix.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from srcore.folders import hold, partial_dir, recover, replace_folder
from srcore.paper.config import PROFILES
from srcore.report import KEYS

PROMOTED_PROFILES = ("quick", "paper")  # smoke numbers (around 11 dB) only check the plumbing
_PART = re.compile(r"first (\d+) of (\d+) images")


# --------------------------------------------------------------------------- what a promotion would lose


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _images(note: str) -> float:
    """Images a value was computed on relative to the whole set: n/N, or 1 (the whole set)."""
    m = _PART.search(note or "")
    return int(m.group(1)) / int(m.group(2)) if m else 1.0


def _read_values(folder: Path) -> dict[tuple, dict]:
    with open(folder / "values.csv", newline="") as f:
        return {tuple(row[k] for k in KEYS): row for row in csv.DictReader(f)}


def _profile(folder: Path) -> str | None:
    try:
        return json.loads((folder / "provenance.json").read_text()).get("profile")
    except (OSError, ValueError):
        return None


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _holds_numbers(folder: Path, name: str) -> bool:
    """Whether a table or figure file of ``folder`` shows any numbers: the CSV behind it has a row (a table or
    figure with none was a placeholder, and losing it loses nothing)."""
    data = (folder / name).with_suffix(".csv")
    if not data.is_file():
        return True
    with open(data) as f:
        return sum(1 for line in f if line.strip()) > 1


def _label(key: tuple) -> str:
    _, table, dataset, scale, method, metric = key
    scale = f" x{scale}" if scale.isdigit() else ""
    return f"{table} {dataset}{scale} {method} {metric}"


@dataclass
class Verdict:
    """Whether a run may replace results/<paper>, and what it would lose."""

    run: Path
    target: Path
    refused: list[str] = field(default_factory=list)  # reasons that hold whatever the rows say (profile)
    lost: list[str] = field(default_factory=list)     # published values or files that would be lost
    promoted: bool = False                            # set by promote()

    @property
    def ok(self) -> bool:
        return not self.refused and not self.lost

    def headline(self) -> str:
        """One line: the first reason against promoting, or the count of what is lost."""
        if self.refused:
            return self.refused[0]
        return f"{len(self.lost)} published value(s) or file(s) would be lost" if self.lost else "nothing is lost"

    def explain(self, limit: int = 5) -> str:
        lines = list(self.refused)
        if self.lost:
            lines.append(f"{len(self.lost)} published value(s) or file(s) of {self.target} would be lost:")
            lines += [f"  {x}" for x in self.lost[:limit]]
            if len(self.lost) > limit:
                lines.append(f"  ... and {len(self.lost) - limit} more")
        return "\n".join(lines)


def compare(run: str | os.PathLike, target: str | os.PathLike) -> Verdict:
    """What replacing ``target`` (results/<paper>) by ``run`` (runs/<profile>/<paper>) would lose."""
    run, target = Path(run), Path(target)
    verdict = Verdict(run, target)
    new_profile = _profile(run)
    if new_profile not in PROMOTED_PROFILES:
        verdict.refused.append(f"a {new_profile} run is never promoted into results/ "
                               f"(only {' or '.join(PROMOTED_PROFILES)} runs are)")
    if not (target / "values.csv").is_file():
        return verdict  # nothing there yet: anything finished is more complete
    old_profile = _profile(target)
    if old_profile in PROFILES and new_profile in PROFILES and PROFILES.index(new_profile) < PROFILES.index(old_profile):
        verdict.refused.append(f"the run's profile {new_profile} is smaller than the {old_profile} profile of {target}")
    new = _read_values(run)
    for key, old in _read_values(target).items():
        was = _number(old.get("reproduced"))
        if not old.get("published") or was is None:
            continue  # only published values that results/ has a number for can be lost
        row = new.get(key)
        now = _number(row.get("reproduced")) if row else None
        label = _label(key)
        if now is None:
            status = row.get("status") if row else "no row"
            verdict.lost.append(f"{label}: {old['reproduced']} -> {status or 'n/a'}")
            continue
        old_steps, new_steps = _number(old.get("steps")), _number(row.get("steps"))
        if old_steps is not None and (new_steps is None or new_steps < old_steps):
            verdict.lost.append(f"{label}: {old['steps']} training steps -> {row.get('steps') or '?'}")
        if _images(row.get("note", "")) < _images(old.get("note", "")):
            before = _PART.search(old.get("note", ""))
            verdict.lost.append(f"{label}: {before.group(0) if before else 'all images'} -> "
                                f"{_PART.search(row['note']).group(0)}")
    gone = sorted(f for f in _files(target) - _files(run) if f.startswith(("figures/", "tables/")) and _holds_numbers(target, f))
    verdict.lost += [f"file {f}" for f in gone]
    return verdict


def promote(run: str | os.PathLike, target: str | os.PathLike, *, force: bool = False, log=print) -> Verdict:
    """Copy the finished run folder ``run`` over ``target`` if :func:`compare` allows it (or ``force``).

    Returns the :class:`Verdict`, ``promoted`` True when ``target`` was replaced. Says why not
    otherwise; with ``force`` it first lists what is lost. A smoke run is never promoted, not
    even with ``force``.
    """
    run, target = Path(run), Path(target)
    # one promotion at a time: another waits, then judges against what the first left
    with hold(target, f"promoting {run}", wait=True):
        verdict = compare(run, target)
        if not verdict.ok:
            smoke = _profile(run) not in PROMOTED_PROFILES
            if not force or smoke:
                hint = "" if smoke else " (--promote-anyway replaces it all the same)"
                log(f"{target} left as it is{hint}: " + verdict.explain())
                return verdict
            log(f"promoting {run} anyway: " + verdict.explain())
        recover(target)
        stage = partial_dir(target)
        # a sharded run's shard folders stay in runs/: results/ holds the merged run
        shutil.copytree(run, stage, ignore=lambda folder, names: ["shards"] if Path(folder) == run else [])
        replace_folder(stage, target)
    log(f"promoted {run} -> {target}")
    verdict.promoted = True
    return verdict

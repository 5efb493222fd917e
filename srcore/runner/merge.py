"""Merge run folders into one: the shards of a run, runs of one paper made apart (per scale, per seed) and results/.

    python -m srcore.runner.merge OUT_RUN DIR [DIR ...]
    python -m srcore.runner.merge results/PAPER results/PAPER back_x2/ back_x3/ back_x4/

Each DIR is a run folder (values.csv, provenance.json, tables/, figures/), a bundle's OUT folder
holding ``<paper>_results.tar.gz``, or that archive itself. OUT_RUN may be one of them (the inputs
are read before anything is written); it is replaced whole, as every run folder is. The rules:

* **values**: for each published value (and each extra row) the row of the folder that measured
  it; a number beats an n/a. A value measured per seed in several folders on different seeds, under
  the same profile, steps and data (the seeds of one run trained apart), is pooled: mean,
  sd and count over all the seeds. Two folders with the same number agree. Rows no training shapes
  (bicubic, counts; no ``steps``) computed on a whole set win over the same row computed on part of
  it ("first n of N images"). Any other pair of different numbers for one value is an error naming
  both folders and their settings (steps, seeds, note): nothing is written. Every seed's value
  (values_per_seed.csv) comes from the folder whose row was taken.
* **tables and figures** of the notebooks (the published tables are written again from the merged
  values): one folder's, or identical copies, are taken as they are; a table that differs between
  folders is concatenated with a ``from`` column naming each folder; of a figure that differs, the
  copies with numbers behind them are kept, each under ``<name>.<folder>`` when there are several.
* **provenance**: every folder's profile, device, commit, dates and overrides under
  ``merged_from``; the runs, steps and reused runs of all of them.

The page (README.md) is written by :func:`srcore.report.write_run`, and ``results/README.md`` by
:func:`srcore.report.write_summary` when OUT_RUN is a paper's folder under results/.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from srcore import folders, report, stats
from srcore.runner import promote
from srcore.runner.shards import SHARDS


class MergeConflict(ValueError):
    """Two folders measured one value differently (or hold different papers or profiles); the message names both."""


@dataclass
class Source:
    folder: Path       # the run folder
    label: str         # how the merged folder names it (its shard name or its path)
    values: pd.DataFrame
    per_seed: pd.DataFrame
    provenance: dict


def _label(path: Path, given: Path) -> str:
    """A short name for a folder: a shard's name (x2), else its path as given (relative where it can be)."""
    if path.parent.name == SHARDS:
        return path.name
    return report.portable(str(given))


def open_source(path: str | os.PathLike, scratch: Path) -> Source:
    """The run folder at ``path``; a bundle's results archive (or a folder holding one) is unpacked into ``scratch``."""
    given = Path(path)
    folder = given
    archives = sorted(given.glob("*_results.tar.gz")) if given.is_dir() and not (given / "values.csv").is_file() else []
    if given.is_file() and given.name.endswith(".tar.gz"):
        archives = [given]
    if archives:
        if len(archives) > 1:
            raise MergeConflict(f"{given} holds {len(archives)} results archives: give one of them")
        target = scratch / f"{len(list(scratch.iterdir()))}"
        with tarfile.open(archives[0]) as tar:
            tar.extractall(target, filter="data")
        paper = archives[0].name.removesuffix("_results.tar.gz")
        folder = target / paper
    if not (folder / "values.csv").is_file() or not (folder / "provenance.json").is_file():
        raise FileNotFoundError(f"{given}: no values.csv and provenance.json (a run folder, a bundle's OUT or its "
                                f"<paper>_results.tar.gz)")
    per_seed = folder / "values_per_seed.csv"
    return Source(folder, _label(folder if not archives else given, given), report.read_values(folder / "values.csv"),
                  pd.read_csv(per_seed, dtype={"scale": str}, keep_default_na=False) if per_seed.is_file()
                  else pd.DataFrame(columns=report.SEED_COLUMNS),
                  json.loads((folder / "provenance.json").read_text()))


# --- values ------------------------------------------------------------------------------------------------

def _measured(row) -> bool:
    return isinstance(row["reproduced"], float) and not math.isnan(row["reproduced"])


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _settings(src: Source, row) -> str:
    n = row.get("n_seeds")
    seeds = f", {int(n)} seeds" if isinstance(n, float) and n == n else ""
    steps = row["steps"] if str(row["steps"]) not in ("", "nan") else "none"
    return (f"{src.label}: {row['reproduced']:.6g} (profile {row['profile']}, steps {steps}{seeds}"
            f"{', ' + row['note'] if row['note'] else ''})")


def choose(key: tuple, candidates: list[tuple[Source, pd.Series]]) -> tuple[Source, pd.Series]:
    """The row of one value among the folders' rows (see the module's rules); MergeConflict when they disagree."""
    measured = [(s, r) for s, r in candidates if _measured(r)]
    if not measured:
        return candidates[0]
    best = measured[0]
    for src, row in measured[1:]:
        if _same(row["reproduced"], best[1]["reproduced"]):
            continue
        untrained = str(row["steps"]) in ("", "nan") and str(best[1]["steps"]) in ("", "nan")
        if untrained:
            mine, theirs = promote._images(row["note"]), promote._images(best[1]["note"])
            if mine != theirs:
                best = (src, row) if mine > theirs else best
                continue
        _, table, dataset, scale, method, metric = key
        raise MergeConflict(f"{table} {dataset} x{scale} {method} {metric} was measured differently in two folders: "
                            f"{_settings(*best)}; {_settings(src, row)}. Merge one of them (or run them again "
                            f"under the same settings)")
    return best


def _seed_rows(src: Source, key: tuple) -> pd.DataFrame:
    mine = src.per_seed
    if not len(mine):
        return mine
    return mine[(mine[report.KEYS].astype(str) == pd.Series(key, index=report.KEYS)).all(axis=1)]


def pool_seeds(cands: list[tuple[Source, pd.Series]], per_seed: list[pd.DataFrame]) -> pd.Series | None:
    """One row over the seeds of every folder, when each measured the value on other seeds under the same
    profile, steps and training data (the seeds of one run, trained apart); else None."""
    seeds = [set(p["seed"]) for p in per_seed]
    rows = [r for _, r in cands]
    same = {(r["profile"], str(r["steps"]), r["train_set"]) for r in rows}
    if len(cands) < 2 or not all(seeds) or len(same) > 1 or sum(map(len, seeds)) != len(set().union(*seeds)):
        return None
    by_seed = {int(r.seed): {"reproduced": float(r.reproduced), "steps": r.steps, "note": r.note,
                             "train_set": rows[0]["train_set"]} for p in per_seed for r in p.itertuples()}
    row = rows[0].copy()
    row.update(pd.Series(stats.combine(by_seed)))
    row["delta"] = row["reproduced"] - float(row["published"]) if str(row["published"]) not in ("", "nan") else float("nan")
    return row


def merge_values(sources: list[Source]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """The merged values.csv and values_per_seed.csv, and how many rows each folder gave.

    A value measured per seed in several folders on different seeds (a run's seeds trained
    apart) is pooled: its row is the mean, sd and count over all of them.
    """
    candidates: dict[tuple, list] = {}
    for src in sources:
        for _, row in src.values.iterrows():
            candidates.setdefault(tuple(str(row[k]) for k in report.KEYS), []).append((src, row))
    rows, seeds, taken = [], [], {s.label: 0 for s in sources}
    for key, cands in candidates.items():
        measured = [(s, r) for s, r in cands if _measured(r)]
        pooled = pool_seeds(measured, per := [_seed_rows(s, key) for s, _ in measured])
        if pooled is not None:
            rows.append(pooled)
            seeds += per
            for s, _ in measured:
                taken[s.label] += 1
            continue
        src, row = choose(key, cands)
        rows.append(row)
        if _measured(row):
            taken[src.label] += 1
        seeds.append(_seed_rows(src, key))
    values = pd.DataFrame(rows, columns=report.COLUMNS).reset_index(drop=True)
    published = values["published"].fillna("") != ""
    ordered = pd.concat([_in_published_order(values[published], sources[0].provenance.get("paper")),
                         values[~published]], ignore_index=True)
    seeds = [p for p in seeds if len(p)]
    per_seed = (pd.concat(seeds, ignore_index=True) if seeds else pd.DataFrame(columns=report.SEED_COLUMNS))
    return ordered, per_seed[report.SEED_COLUMNS], taken


def _in_published_order(values: pd.DataFrame, paper: str | None) -> pd.DataFrame:
    if not paper:
        return values
    pub = report.published(paper)
    order = {tuple(r): i for i, r in enumerate(pub[report.KEYS].itertuples(index=False))}
    return values.iloc[sorted(range(len(values)), key=lambda i: order.get(tuple(values.iloc[i][report.KEYS]), 1e9))]


# --- tables, figures, provenance ---------------------------------------------------------------------------

def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_") or "folder"


def merge_files(sources: list[Source], stage: Path, paper: str) -> list[str]:
    """The notebooks' own tables and figures into ``stage``; returns the figure names for the page."""
    published = {report.table_slug(t) for t in report.published(paper)["table"]}
    figures: list[str] = []
    for kind in ("tables", "figures"):
        names = dict.fromkeys(p.stem for s in sources for p in sorted((s.folder / kind).glob("*.csv")))
        for name in names:
            if kind == "tables" and name in published:
                continue  # written again from the merged values
            have = [s for s in sources if (s.folder / kind / f"{name}.csv").is_file()]
            texts = [(s.folder / kind / f"{name}.csv").read_text() for s in have]
            if len(set(texts)) == 1:
                _copy_pair(have[0].folder / kind, stage / kind, name, name, kind)
                figures += [name] if kind == "figures" else []
            elif kind == "tables":
                frames = [pd.read_csv(s.folder / kind / f"{name}.csv").assign(**{"from": s.label}) for s in have]
                title = _title(have[0].folder / kind / f"{name}.md")
                report.write_table(stage, pd.concat(frames, ignore_index=True), name, title)
            else:
                full = [s for s, t in zip(have, texts) if len(t.strip().splitlines()) > 1] or have
                for s in full:
                    out = name if len(full) == 1 else f"{name}.{_slug(s.label)}"
                    _copy_pair(s.folder / kind, stage / kind, name, out, kind)
                    figures.append(out)
    return figures


def _title(md: Path) -> str:
    first = md.read_text().splitlines()[0] if md.is_file() else ""
    return first[2:] + " (merged)" if first.startswith("# ") else ""


def _copy_pair(src: Path, dst: Path, name: str, out: str, kind: str) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for ext in (".csv", ".png" if kind == "figures" else ".md"):
        if (src / f"{name}{ext}").is_file():
            shutil.copy2(src / f"{name}{ext}", dst / f"{out}{ext}")


def merge_provenance(sources: list[Source], taken: dict[str, int], reused=()) -> dict:
    """One provenance for the merged folder; ``reused``: labels of folders finished earlier (nothing trained now)."""
    first = sources[0].provenance
    joined = lambda key: "; ".join(dict.fromkeys(str(s.provenance.get(key, "")) for s in sources))  # noqa: E731
    runs, steps = {}, {}
    for s in sources:
        runs.update(s.provenance.get("runs", {}))
        steps.update(s.provenance.get("steps", {}))
    return {
        **{k: first[k] for k in ("paper", "profile", "parameters", "data", "lock_sha256", "torch", "python", "packages",
                                  "run_note") if k in first},
        "device": joined("device"), "commit": joined("commit"),
        "world_size": max(s.provenance.get("world_size", 1) for s in sources),
        "started": min(str(s.provenance.get("started", "")) for s in sources),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "merged_from": [{"folder": s.label, "profile": s.provenance.get("profile"), "device": s.provenance.get("device"),
                         "commit": s.provenance.get("commit"), "started": s.provenance.get("started"),
                         "finished": s.provenance.get("finished"), "overrides": s.provenance.get("overrides", {}),
                         "world_size": s.provenance.get("world_size", 1), "data": s.provenance.get("data", {}),
                         "trained_steps": 0 if s.label in reused else s.provenance.get("trained_steps", 0),
                         "finished_earlier": s.label in reused, "rows": taken[s.label]}
                        for s in sources],
        "runs": runs, "steps": steps,
        "reused_runs": sorted({r for s in sources for r in s.provenance.get("reused_runs", [])}),
        "trained_steps": sum(s.provenance.get("trained_steps", 0) for s in sources if s.label not in reused),
    }


# --- the command ---------------------------------------------------------------------------------------------

def merge(out_run: str | os.PathLike, inputs: list, *, reused=(), log=print) -> Path:
    """Merge ``inputs`` (run folders, bundle OUT folders or results archives) into ``out_run``; returns it.

    ``reused``: labels of inputs that a sharded run found finished (they trained nothing in this run).

    Raises :class:`MergeConflict` (nothing written) when two folders disagree on a value, a paper or a profile.
    """
    out_run = Path(out_run)
    with folders.hold(out_run, "merging run folders into it", wait=True), \
            tempfile.TemporaryDirectory(prefix="srcore-merge-") as scratch:
        sources = [open_source(p, Path(scratch)) for p in inputs]
        for key in ("paper", "profile"):
            found = {s.provenance.get(key) for s in sources}
            if len(found) > 1:
                raise MergeConflict(f"the folders hold more than one {key}: "
                                    + "; ".join(f"{s.label}: {s.provenance.get(key)}" for s in sources))
        paper, profile = sources[0].provenance["paper"], sources[0].provenance["profile"]
        values, per_seed, taken = merge_values(sources)
        provenance = merge_provenance(sources, taken, set(reused))
        folders.recover(out_run)
        stage = folders.partial_dir(out_run)
        stage.mkdir(parents=True)
        figures = merge_files(sources, stage, paper)
        report.write_run(stage, paper, profile, values, per_seed, provenance, figures)
        if (out_run / SHARDS).is_dir():  # a sharded run keeps its shards (hard links: nothing is copied)
            shutil.copytree(out_run / SHARDS, stage / SHARDS, copy_function=os.link)
        folders.replace_folder(stage, out_run)
    log(f"merged {len(sources)} folders into {out_run}: " + ", ".join(f"{k} {v} rows" for k, v in taken.items()))
    if out_run.parent.resolve() == (report.PROJECT_ROOT / "results").resolve():
        report.write_summary(out_run.parent)
    return out_run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srcore.runner.merge", description=__doc__.split("\n\n")[0])
    ap.add_argument("out_run", type=Path, help="the run folder to write (replaced whole; may be one of the inputs)")
    ap.add_argument("inputs", nargs="+", help="run folders, bundle OUT folders or <paper>_results.tar.gz archives")
    args = ap.parse_args(argv)
    try:
        merge(args.out_run, args.inputs)
    except (MergeConflict, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reproduced values side by side with the published ones, with provenance.

A run collects its numbers in a :class:`Results`; ``write()`` then produces, in the run's
output folder: ``values.csv`` (one row per published value, same keys as published.csv,
plus our extra rows), one Markdown file per published table, ``provenance.json``,
whatever tables and figures (PNG + the CSV behind it) the notebook added, and ``README.md``,
the paper's results page (:func:`results_page`). :func:`write_summary` writes the page of all
papers, ``results/README.md``. Everything is
staged in a hidden sibling folder that replaces the output folder only when ``write()``
finishes, so a failed run leaves the previous results untouched and nothing half-written.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from srcore import folders, stats

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KEYS = ["paper", "table", "dataset", "scale", "method", "metric"]
# values.csv: reproduced is the mean over seeds where a value was measured per seed (sd: their sample standard
# deviation, empty for one seed; n_seeds: how many, empty for values that no seed shapes: counts, bicubic, ...)
COLUMNS = [*KEYS, "published", "reproduced", "sd", "n_seeds", "delta", "status", "profile", "train_set", "steps",
           "commit", "note"]
SEED_COLUMNS = [*KEYS, "seed", "reproduced", "steps", "note"]  # values_per_seed.csv: every seed's value


def published(paper: str | None = None) -> pd.DataFrame:
    """Every published number (srcore/published.csv), ``value`` kept as printed (a string)."""
    text = resources.files("srcore").joinpath("published.csv").read_text()
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)  # scale is "-" where none applies
    if paper is not None:
        df = df[df["paper"] == paper].reset_index(drop=True)
        if df.empty:
            raise KeyError(f"no published values for paper {paper!r}")
    return df


def published_wide(paper: str, index: list[str], *, tables=None, sort: bool = True) -> pd.DataFrame:
    """``paper``'s published values as numbers (what a claims check recomputes from), one column per method,
    indexed by ``index`` (e.g. ``["dataset", "scale"]``; ``scale`` as a number), of ``tables`` (default all)."""
    pub = published(paper)
    if tables is not None:
        pub = pub[pub.table.isin(list(tables))]
    pub = pub.assign(v=pd.to_numeric(pub.value, errors="coerce"))
    if "scale" in index:
        pub = pub.assign(scale=pd.to_numeric(pub.scale, errors="coerce").astype("Int64"))
    return pub.pivot_table(index=list(index), columns="method", values="v", sort=sort)


def output_dir(paper: str, profile: str, out_dir: str | os.PathLike | None = None) -> Path:
    """Where a run writes: ``out_dir`` if given, else ``runs/<profile>/<paper>``.

    No run writes into results/ itself: ``python -m srcore.reproduce`` promotes a finished run
    there only when it is at least as complete as what results/ holds (:mod:`srcore.runner.promote`).
    """
    if out_dir is not None:
        return Path(out_dir)
    return PROJECT_ROOT / "runs" / profile / paper


def git_commit() -> str:
    """HEAD of the project, with '-dirty' when the work tree has uncommitted changes; 'unknown' outside git.

    $SRCORE_COMMIT, when set, is the answer: a bundle's copy of the code (srcore.bundle) has no .git.
    """
    if os.environ.get("SRCORE_COMMIT"):
        return os.environ["SRCORE_COMMIT"]
    def git(*args):
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    try:
        head = git("rev-parse", "--short=12", "HEAD")
        if head.returncode:
            return "unknown"
        # results/ is what runs write: a first run's untracked results must not mark the code dirty
        dirty = git("status", "--porcelain", "--", ".", ":(exclude)results").stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lock_sha256() -> str:
    """SHA-256 of requirements/lock.txt, the exact package versions this checkout was tested with."""
    import hashlib
    lock = PROJECT_ROOT / "requirements" / "lock.txt"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else "unknown"


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a run's numbers depend on."""
    from importlib import metadata
    names = ("torch", "torchvision", "numpy", "scikit-image", "pillow", "pandas", "pyiqa", "papermill")
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def device_description(device: torch.device | None = None) -> str:
    if device is not None and device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    n = torch.get_num_threads()
    return f"CPU: {cpu}, {n} thread{'' if n == 1 else 's'}"


def _roots() -> list[tuple[str, str]]:
    """This machine's folders a written file may mention, each with how a reader names it, longest first."""
    import tempfile

    from srcore import data
    from srcore.pretrained import weights
    env = os.environ.get("SRCORE_DATA", "")
    named = [(PROJECT_ROOT, "."), (Path(tempfile.gettempdir()), "$TMPDIR"), (Path.home(), "~"),
             (weights.user_dir(), "$SRCORE_WEIGHTS"), (data.DEFAULT_DATA_ROOT, "$SRCORE_DATA")]
    if env and env.lower() != data.NO_DATA:
        named.append((Path(env), "$SRCORE_DATA"))
    if data.cache_dir() is not None:
        named.append((data.cache_dir(), "$SRCORE_CACHE"))
    roots = {}
    for path, name in named:
        for p in {str(path), str(Path(path).resolve())}:
            if p not in ("", "/"):
                roots[p.rstrip("/")] = name
    return sorted(roots.items(), key=lambda kv: -len(kv[0]))


def portable(text: str) -> str:
    """``text`` with this machine's absolute paths written the way any reader can follow them: relative to
    the checkout (``results/ratings/x.csv``), or under ``$SRCORE_DATA``, ``$SRCORE_WEIGHTS``,
    ``$SRCORE_CACHE``, ``$TMPDIR`` or ``~``. What every written results file goes through."""
    for root, name in _roots():
        text = re.sub(re.escape(root) + r"(?=/|\b|$)(/)?", lambda m: ("" if name == "." and m.group(1) else
                                                                         name + (m.group(1) or "")), text)
    return text


def _write_text(path: Path, text: str) -> None:
    folders.write_atomic(path, lambda tmp: tmp.write_text(text))


def markdown_table(df: pd.DataFrame) -> str:
    """A plain GitHub Markdown table (no extra dependency); NaN shows as an empty cell."""
    def cell(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        return str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _decimals(published: str) -> int:
    """Decimals the paper printed: "30.00" -> 2, "32" -> 0."""
    return len(published.split(".")[1]) if "." in published else 0


def _fmt(value, like: str | None = None) -> str:
    """A reproduced number printed with the published value's decimals (4 when there is none)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{_decimals(like) if like else 4}f}"


def crop_row(axes, panels: dict, top: int, left: int, side: int, *, reference: str = "HR",
             reference_title: str | None = None, fontsize: int = 9) -> list[dict]:
    """Draw the same square crop of every image of ``panels`` (name -> uint8 (H,W,3)) on ``axes``.

    The crop (``top``, ``left``, ``side`` in HR pixels) is moved inside the image if it sticks
    out. Every panel but ``reference`` is titled with the PSNR on Y of its crop against the
    reference's crop. Returns one row per panel: method, top, left, side, crop_psnr (inf for
    the reference), the CSV behind the figure.
    """
    from srcore.metrics import psnr

    ref = panels[reference]
    top, left = max(0, min(top, ref.shape[0] - side)), max(0, min(left, ref.shape[1] - side))
    ref_crop = ref[top:top + side, left:left + side]
    rows = []
    for ax, (name, img) in zip(np.atleast_1d(axes), panels.items()):
        crop = img[top:top + side, left:left + side]
        value = math.inf if name == reference else psnr(crop, ref_crop, crop_border=0)
        ax.imshow(crop)
        title = (reference_title or name) if name == reference else f"{name}\n{value:.2f} dB"
        ax.set_title(title, fontsize=fontsize)
        ax.axis("off")
        rows.append({"method": name, "top": top, "left": left, "side": side, "crop_psnr": value})
    return rows


@dataclass
class Results:
    """The numbers, tables and figures of one run of one paper's notebook.

    Under torchrun only rank 0 writes (the other ranks keep their numbers in memory and write nothing).
    """

    paper: str
    profile: str
    out_dir: Path
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        from srcore.distributed import is_main_process
        self.out_dir = Path(self.out_dir)
        self.stage = folders.partial_dir(self.out_dir)
        self.writes = is_main_process()
        self._held = contextlib.ExitStack()  # the output folder, held from here until write() has replaced it
        if self.writes:
            self._held.enter_context(folders.hold(self.out_dir, f"{self.paper} {self.profile} run",
                                                  way_out="wait for it to finish, or write elsewhere (out_dir)"))
            folders.recover(self.out_dir)  # a killed run's leftovers: its .partial goes, an interrupted swap is settled
        self._rows: dict[tuple, dict] = {}
        self._seeded: dict[tuple, dict] = {}  # key -> {seed: {"reproduced", "steps", "note", "train_set"}}
        self.figures: list[str] = []  # names of add_figure's figures, shown on the results page
        # tables and figures with nothing to show in this run (name -> what they need), said once on the page
        self.left_out: dict[str, str] = self.provenance.setdefault("left_out", {})
        self.provenance.setdefault("paper", self.paper)
        self.provenance.setdefault("profile", self.profile)
        self.provenance.setdefault("started", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self.provenance.setdefault("commit", git_commit())
        self.provenance.setdefault("torch", torch.__version__)
        self.provenance.setdefault("python", sys.version.split()[0])
        self.provenance.setdefault("packages", package_versions())
        self.provenance.setdefault("lock_sha256", lock_sha256())  # requirements/lock.txt: the versions CI tested

    def _key(self, table, dataset, scale, method, metric) -> tuple:
        return (self.paper, table, dataset, str(scale), method, metric)

    def record(self, table, dataset, scale, method, metric, value: float, *, train_set="", steps="", note="",
               seed: int | None = None) -> None:
        """A number we produced. Keys equal to a published row's fill that row; others become extra rows.

        ``seed``: the value of the networks trained with that seed; one per seed, and the row holds their mean.
        """
        key = self._key(table, dataset, scale, method, metric)
        row = {"reproduced": float(value), "status": "reproduced", "train_set": train_set, "steps": steps, "note": note}
        if seed is None:
            self._seeded.pop(key, None)
            self._rows[key] = row
            return
        self._seeded.setdefault(key, {})[int(seed)] = row
        self._rows[key] = stats.combine(self._seeded[key])

    def status(self, table, dataset, scale, method, metric) -> str | None:
        """The status recorded for a key so far ("reproduced", "n/a: ..."), None if nothing was recorded."""
        row = self._rows.get(self._key(table, dataset, scale, method, metric))
        return row["status"] if row else None

    def na(self, table, dataset, scale, method, metric, reason: str) -> None:
        """A number we could not produce, and why (dataset private, weights unavailable, human study...)."""
        key = self._key(table, dataset, scale, method, metric)
        reason = reason if reason.startswith("n/a") else f"n/a: {reason}"
        self._seeded.pop(key, None)
        self._rows[key] = {"reproduced": float("nan"), "status": reason, "train_set": "", "steps": "", "note": ""}

    def unfilled(self) -> pd.DataFrame:
        """Published rows neither recorded nor marked n/a yet (KEYS + ``published``), e.g. to mark them n/a."""
        pub = published(self.paper)
        mask = [(p.paper, p.table, p.dataset, p.scale, p.method, p.metric) not in self._rows for p in pub.itertuples()]
        return pub[mask].rename(columns={"value": "published"}).reset_index(drop=True)

    def values(self) -> pd.DataFrame:
        """Published rows (all of them, in published order) then extra rows; the COLUMNS schema."""
        return assemble_values(self.paper, self.profile, self.provenance["commit"], self._rows)

    def per_seed(self) -> pd.DataFrame:
        """Every seed's value of the rows measured per seed (SEED_COLUMNS)."""
        rows = [{**dict(zip(KEYS, key)), "seed": s, "reproduced": r["reproduced"], "steps": r["steps"], "note": r["note"]}
                for key, by_seed in self._seeded.items() for s, r in sorted(by_seed.items())]
        return pd.DataFrame(rows, columns=SEED_COLUMNS)

    def side_by_side(self, table: str) -> pd.DataFrame:
        """One published table as (dataset, scale, metric) rows and, per method, published | ours | delta (:func:`side_by_side`)."""
        return side_by_side(self.values(), table)

    def add_table(self, df: pd.DataFrame, name: str, title: str = "", needs: str = "trained networks") -> Path | None:
        """An extra table as CSV + Markdown under tables/; a table with no rows is not written, and the page
        says once that it needs ``needs``. Returns its path, or None when it was left out."""
        if df.empty:
            self.left_out[f"tables/{name}"] = needs
            return None
        if self.writes:
            write_table(self.stage, df, name, title)
        return self.out_dir / "tables" / f"{name}.md"

    def add_figure(self, fig, data: pd.DataFrame, name: str, needs: str = "trained networks") -> Path | None:
        """A figure as PNG, with the CSV of the numbers it shows beside it. A figure with no numbers behind it
        is not drawn (no placeholder): the page says once that it needs ``needs``. Returns its path, or None."""
        import matplotlib.pyplot as plt
        if data.empty:
            plt.close(fig)
            self.left_out[f"figures/{name}"] = needs
            return None
        self.figures.append(name)
        if self.writes:
            path = self.stage / "figures" / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=120, bbox_inches="tight")
            _write_text(path.with_suffix(".csv"), portable(data.to_csv(index=False)))
        return self.out_dir / "figures" / f"{name}.png"

    def write(self) -> Path:
        """values.csv (and values_per_seed.csv), one table per published table, provenance.json and the page,
        staged beside the output folder, which they then replace whole; returns the output folder."""
        self.provenance["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if not self.writes:
            return self.out_dir
        with self._held:
            write_run(self.stage, self.paper, self.profile, self.values(), self.per_seed(), self.provenance,
                      self.figures)
            return folders.replace_folder(self.stage, self.out_dir)


def assemble_values(paper: str, profile: str, commit: str, rows: dict[tuple, dict]) -> pd.DataFrame:
    """values.csv's rows: every published value of ``paper`` in published order, ours beside it (n/a where
    ``rows`` has none), then our extra rows. ``rows``: KEYS tuple -> reproduced, status, train_set, steps,
    note (and sd, n_seeds for values measured per seed)."""
    pub = published(paper)
    out, seen = [], set()
    missing = {"reproduced": float("nan"), "status": "n/a: not run in this profile", "train_set": "", "steps": "", "note": ""}
    for p in pub.itertuples(index=False):
        key = (p.paper, p.table, p.dataset, p.scale, p.method, p.metric)
        seen.add(key)
        ours = rows.get(key, missing)
        out.append({**dict(zip(KEYS, key)), "published": p.value, **ours, "delta": ours["reproduced"] - float(p.value),
                    "profile": profile, "commit": commit})
    for key, ours in rows.items():
        if key not in seen:
            out.append({**dict(zip(KEYS, key)), "published": "", **ours, "delta": float("nan"),
                        "profile": profile, "commit": commit})
    return pd.DataFrame(out, columns=COLUMNS)


def _published_tables(paper: str) -> list[str]:
    return list(dict.fromkeys(published(paper)["table"]))


def table_slug(table: str) -> str:
    """A published table's file name under tables/: "Table 1" -> "table_1"."""
    return table.lower().replace(" ", "_")


def write_table(folder: Path, df: pd.DataFrame, name: str, title: str = "") -> None:
    """``folder``/tables/<name>.csv and .md (a "# title" line, the table, its numbered notes)."""
    _write_text(folder / "tables" / f"{name}.csv", portable(df.to_csv(index=False)))
    md = (f"# {title}\n\n" if title else "") + markdown_table(df)
    if df.attrs.get("notes"):
        md += "\n" + "".join(f"[{k}] {note}\n" for k, note in enumerate(df.attrs["notes"], 1))
    _write_text(folder / "tables" / f"{name}.md", portable(md))


def write_run(folder: Path, paper: str, profile: str, values: pd.DataFrame, per_seed: pd.DataFrame, provenance: dict,
              figures=()) -> None:
    """What every run folder holds beside its own tables and figures: values.csv, values_per_seed.csv (when
    something was measured per seed), the published tables side by side, provenance.json and README.md."""
    values = values.copy()
    for col in ("status", "note"):
        values[col] = values[col].map(lambda v: portable(v) if isinstance(v, str) else v)
    _write_csv(folder / "values.csv", values)
    if len(per_seed):
        _write_csv(folder / "values_per_seed.csv", per_seed)
    for table in _published_tables(paper):
        title = f"{paper}, {table}: published | ours ({profile} profile) | delta"
        write_table(folder, side_by_side(values, table), table_slug(table), title)
    _write_text(folder / "provenance.json", portable(json.dumps(provenance, indent=2, default=str)) + "\n")
    _write_text(folder / "README.md", results_page(folder, figures))


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL, float_format="%.10g")  # exact parameter counts too
    _write_text(path, buf.getvalue())


def _ours(r) -> str:
    """Our value as the table shows it: the published value's decimals; ``mean ± sd (n)`` over several seeds."""
    text = _fmt(r["reproduced"], r["published"])
    n = r.get("n_seeds")
    if text and isinstance(n, (int, float)) and n == n and n > 1:
        text += f" ± {_fmt(r['sd'], r['published'])} ({int(n)})"
    return text


def side_by_side(values: pd.DataFrame, table: str) -> pd.DataFrame:
    """One published table of ``values`` as (dataset, scale, metric) rows and, per method, published | ours | delta.

    Ours is ``mean ± sd (n)`` where a value was measured over n > 1 seeds. A value we could not
    produce shows as ``n/a [k]``; the reasons are in ``df.attrs["notes"]`` (k = 1, 2, ...), which
    :func:`write_table` writes under the Markdown table.
    """
    df = values[(values["table"] == table) & (values["published"].fillna("") != "")]
    methods = list(dict.fromkeys(df["method"]))
    notes: list[str] = []
    out = []
    for (dataset, scale, metric), group in df.groupby(["dataset", "scale", "metric"], sort=False):
        row = {"dataset": dataset, "scale": f"x{scale}" if scale.isdigit() else scale, "metric": metric}
        for m in methods:
            hit = group[group["method"] == m]
            if hit.empty:
                continue
            r = hit.iloc[0]
            row[f"{m} published"] = r["published"]
            ours = _ours(r)
            if not ours:
                if r["status"] not in notes:
                    notes.append(r["status"])
                ours = f"n/a [{notes.index(r['status']) + 1}]"
            row[f"{m} ours"] = ours
            row[f"{m} delta"] = "" if math.isnan(r["delta"]) else f"{r['delta']:+.{max(2, _decimals(r['published']))}f}"
        out.append(row)
    result = pd.DataFrame(out)
    result.attrs["notes"] = notes
    return result


# --- results pages: written from values.csv and provenance.json, never by hand -------------------------------

def read_values(path: Path) -> pd.DataFrame:
    """A values.csv with ``scale`` and ``published`` as the strings they are, empty numbers as NaN, every
    COLUMNS column present (files written before ``sd`` and ``n_seeds`` existed get them empty)."""
    df = pd.read_csv(path, dtype={"scale": str, "published": str}, keep_default_na=False,
                     na_values={c: [""] for c in ("reproduced", "delta", "sd", "n_seeds")})
    for col in ("sd", "n_seeds"):
        if col not in df:
            df[col] = float("nan")
    return df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]


def _body(md: Path) -> str:
    """A table's Markdown without its "# title" line (the page gives its own heading)."""
    text = md.read_text()
    return (text.split("\n", 2)[2] if text.startswith("# ") else text).strip()


def _results_root(results_root) -> Path:
    return Path(results_root) if results_root is not None else PROJECT_ROOT / "results"


def _na_reasons(values: pd.DataFrame) -> pd.Series:
    """Count of published values per n/a reason (status text without the "n/a: " prefix)."""
    na = values[(values["published"].astype(str) != "") & values["published"].notna() & (values["status"] != "reproduced")]
    return na["status"].str.replace(r"^n/a:\s*", "", regex=True).value_counts()


def value_kinds(values: pd.DataFrame) -> dict[str, int]:
    """Published values by kind: "untrained" (measured without training: counts, bicubic...), "trained" (from a
    trained network: its ``steps`` are recorded) and "n/a"."""
    pub = values[values["published"].fillna("").astype(str) != ""]
    measured = pub["status"] == "reproduced"
    trained = measured & (pd.to_numeric(pub["steps"], errors="coerce").fillna(0) > 0)
    return {"untrained": int((measured & ~trained).sum()), "trained": int(trained.sum()), "n/a": int((~measured).sum())}


def _trained_line(rows: pd.DataFrame) -> list[str]:
    """One line under a published table naming its trained values: per method, the steps and the gap to the
    published values (ours minus published: mean, range, cells); none when nothing was trained."""
    steps = pd.to_numeric(rows["steps"], errors="coerce")
    trained = rows[(rows["status"] == "reproduced") & (steps > 0)]
    if trained.empty:
        return []
    what = []
    for m, g in trained.groupby("method", sort=False):
        delta = pd.to_numeric(g["delta"], errors="coerce").dropna()
        gap = (f"; ours minus published: mean {delta.mean():+.2f}, from {delta.min():+.2f} to {delta.max():+.2f} over "
               f"{len(delta)} values" if len(delta) else "")
        what.append(f"{m} ({', '.join(sorted({str(int(float(v))) for v in g['steps']}))} steps{gap})")
    return [f"Trained in this run: {'; '.join(what)}. Every other number here needs no training."]


def results_page(folder: Path, figures=()) -> str:
    """A paper's README.md from the files of its results folder: what was run, each published table
    (published | ours | delta), the figures inline, the claims check, the reasons for n/a."""
    folder = Path(folder)
    prov = json.loads((folder / "provenance.json").read_text())
    values = read_values(folder / "values.csv")
    paper = prov.get("paper", folder.name)
    data = prov.get("data", {})
    runs = prov.get("runs", {})
    lines = [f"# {paper}: published and reproduced", "",
             "Written by `srcore.report` from `values.csv` and `provenance.json` (do not edit by hand).", "",
             "## What was run", "",
             f"* profile **{prov.get('profile')}** on {prov.get('device', 'unknown device')}, commit `{prov.get('commit')}`, "
             f"{prov.get('started', '')} to {prov.get('finished', '')}",
             "* training data: " + (f"{data['train_set']} ({data['train_images']} images)" if data.get("train_images")
                                     else "none (this run trained nothing)") + "; "
             f"evaluation images: {', '.join(f'{k} {v}' for k, v in data.get('eval_images', {}).items()) or 'none'}"]
    seeds = (prov.get("parameters") or {}).get("seeds")
    if seeds and len(seeds) > 1:
        lines.append(f"* every trained run repeated over seeds {seeds}: ours is `mean ± sd (n)` over seeds "
                     f"(values_per_seed.csv holds each seed's value)")
    if (prov.get("world_size") or 1) > 1:
        lines.append(f"* trained by {prov['world_size']} processes (torchrun), the global batch the recipe's")
    if prov.get("run_note"):
        lines.append(f"* note: {prov['run_note']}")
    for part in prov.get("merged_from", []):
        lines.append(f"* merged from `{part.get('folder')}`: profile {part.get('profile')} on {part.get('device')}, "
                     f"commit `{part.get('commit')}`, {part.get('rows', 0)} rows taken")
    if runs:
        lines += ["", "| run | seed | steps | trained by this run | reused |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {'' if r.get('seed') is None else r['seed']} | {r.get('steps', 0)} of "
                  f"{r.get('planned_steps', r.get('steps', 0))}{' (stopped early)' if r.get('stopped_early') else ''} | "
                  f"{r.get('trained_steps', 0)} | {'yes' if r.get('reused') else 'no'}"
                  f"{' (release ' + r['release'].get('file', '') + ')' if r.get('release') else ''} |"
                  for k, r in runs.items()]
    pub = values[values["published"] != ""]
    kinds = value_kinds(values)
    lines += ["", f"Published values: {len(pub)}. Measured without training (parameter counts, bicubic, NIQE of HR "
              f"images...): {kinds['untrained']}. From networks trained in this run: {kinds['trained']}. n/a: "
              f"{kinds['n/a']} (reasons at the end). Extra values of ours: {len(values) - len(pub)}.", ""]
    for table in dict.fromkeys(pub["table"]):
        md = folder / "tables" / f"{table_slug(table)}.md"
        if md.is_file():
            lines += [f"## {table}", "", _body(md), "", *_trained_line(pub[pub["table"] == table]), ""]
    for name in figures:
        lines += [f"## Figure: {name}", "", f"![{name}](figures/{name}.png)", "",
                  f"The numbers behind it: [figures/{name}.csv](figures/{name}.csv).", ""]
    left_out = prov.get("left_out") or {}
    if left_out:
        by_need: dict[str, list[str]] = {}
        for name, needs in left_out.items():
            by_need.setdefault(needs, []).append(f"`{name}`")
        lines += ["## Not drawn in this run", "",
                  *[f"* {', '.join(names)}: {'needs' if len(names) == 1 else 'need'} {needs}, and this run has none"
                    for needs, names in by_need.items()], ""]
    claims = folder / "tables" / "claims.md"
    if claims.is_file():
        lines += ["## Claims check", "", _body(claims), ""]
    reasons = _na_reasons(values)
    lines += ["## Why values are n/a", ""]
    lines += [f"* {n} x {why}" for why, n in reasons.items()] or ["* none: every published value was reproduced"]
    others = sorted(p.name for p in (folder / "tables").glob("*.md")) if (folder / "tables").is_dir() else []
    lines += ["", "Other tables: " + ", ".join(f"[{n}](tables/{n})" for n in others), ""]
    return "\n".join(lines)


def write_summary(results_root: str | os.PathLike | None = None) -> Path:
    """``results/README.md``: one row per paper, from each ``<paper>/values.csv`` and ``provenance.json``: its
    published values, how many of them were measured without training and how many come from trained networks
    (:func:`value_kinds`), how many are n/a (the reasons are on its page), the gap to the published values of the
    trained ones, and what ran (profile, device, date)."""
    root = _results_root(results_root)
    rows = []
    for values_csv in sorted(root.glob("*/values.csv")):
        folder = values_csv.parent
        values = read_values(values_csv)
        prov_path = folder / "provenance.json"
        prov = json.loads(prov_path.read_text()) if prov_path.is_file() else {}
        pub = values[values["published"] != ""]
        kinds = value_kinds(values)
        trained = pub[(pub["status"] == "reproduced") & (pd.to_numeric(pub["steps"], errors="coerce") > 0)]
        delta = pd.to_numeric(trained["delta"], errors="coerce")
        gap = f"mean {delta.mean():+.2f}, from {delta.min():+.2f} to {delta.max():+.2f}" if delta.notna().any() else ""
        ran = f"{prov.get('profile', '')}, {'trained nothing' if not kinds['trained'] else 'trained'}"
        rows.append({"paper": f"[{folder.name}]({folder.name}/README.md)", "published values": len(pub),
                     "measured without training": kinds["untrained"], "trained": kinds["trained"], "n/a": kinds["n/a"],
                     "trained minus published": gap, "run": ran, "device": prov.get("device", ""),
                     "date": str(prov.get("finished", ""))[:10]})
    text = ("# Results\n\nOne row per paper, written by `python -m srcore.report results` from each paper's "
            "`values.csv` (do not edit by hand). *Measured without training*: parameter counts, bicubic, NIQE of "
            "HR images and the like, which need no trained network; *trained*: values of networks trained by the "
            "run (their steps are in `values.csv`); *n/a*: not produced, each with its reason on the paper's page. "
            "Each paper's page holds its tables, figures and claims.\n\n")
    text += markdown_table(pd.DataFrame(rows, columns=["paper", "published values", "measured without training",
                                                       "trained", "n/a", "trained minus published", "run", "device",
                                                       "date"]))
    _write_text(root / "README.md", portable(text))
    return root / "README.md"


def rewrite_run(folder: str | os.PathLike) -> Path:
    """A run folder written again from its own files, whole (staged, then swapped in): values.csv in today's
    schema, the published tables and page from it, every text through :func:`portable`. The numbers are kept."""
    folder = Path(folder)
    prov = json.loads((folder / "provenance.json").read_text())
    seeds_csv = folder / "values_per_seed.csv"
    per_seed = pd.read_csv(seeds_csv, dtype={"scale": str}, keep_default_na=False) if seeds_csv.is_file() \
        else pd.DataFrame(columns=SEED_COLUMNS)
    stage = folders.partial_dir(folder)
    with folders.hold(folder, "rewriting its pages", wait=True):
        folders.recover(folder)
        shutil.copytree(folder, stage)
        for f in [*stage.glob("tables/*"), *stage.glob("figures/*.csv")]:
            if f.suffix in (".csv", ".md"):
                f.write_text(portable(f.read_text()))
        figures = sorted(p.stem for p in (stage / "figures").glob("*.png"))
        write_run(stage, prov.get("paper", folder.name), prov.get("profile", ""), read_values(folder / "values.csv"),
                  per_seed, prov, figures)
        return folders.replace_folder(stage, folder)


def rewrite_pages(results_root: str | os.PathLike | None = None) -> list[Path]:
    """Write every ``<paper>/`` under ``results_root`` (default results/) again from its own files
    (:func:`rewrite_run`), then ``results/README.md``; returns the pages.

    For results written before today's page layout or values.csv schema:
    ``python -m srcore.report``. The numbers are not touched.
    """
    root = _results_root(results_root)
    pages = [rewrite_run(values_csv.parent) / "README.md" for values_csv in sorted(root.glob("*/values.csv"))]
    pages.append(write_summary(root))
    return pages


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m srcore.report", description=(
        "Write results pages again from their own files (values.csv, provenance.json, tables, figures): each "
        "paper's README.md and published tables in today's form, and the folder's README.md (one row per paper). "
        "The numbers are not touched. Nothing is written unless a folder is named."))
    ap.add_argument("folder", type=Path, help="a results folder holding <paper>/values.csv folders (e.g. results), "
                                               "or one run folder (e.g. runs/quick/PAPER)")
    args = ap.parse_args(argv)
    if (args.folder / "values.csv").is_file():
        print(rewrite_run(args.folder) / "README.md")
        return 0
    if not any(args.folder.glob("*/values.csv")):
        ap.error(f"{args.folder} holds neither values.csv nor <paper>/values.csv")
    for page in rewrite_pages(args.folder):
        print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What one notebook run reads: the data root, the training images, the evaluation sets and the figures' images.

Only what the parameters need is required: the training folders when something is trained, the
evaluation sets, and the sets of the figures (each image name checked to exist, before any
training). With no data anywhere (smoke), scikit-image's photos stand in, as the set "embedded".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from srcore import data
from srcore.paper import config


def note_for(dataset: str, n: int) -> str:
    """"first n of N images" when ``n`` images of a benchmark set of N were used; "" for the whole set."""
    full = data.BENCHMARKS.get(dataset, n)
    return f"first {n} of {full} images" if n < full else ""


@dataclass
class Inputs:
    """The data of one run. ``root`` None: no data found, scikit-image's photos instead (``has_data`` False)."""

    root: Path | None
    train_images: dict
    train_label: str
    eval_sets: dict            # {set: {scale: [Pair]}}
    figure_pairs: dict         # {parameter: [Pair]}
    provenance: dict           # what provenance.json says of the data
    hr_patch: int | None = None
    lr_patch: int | None = None
    small_images: str = "skip"
    _train_sets: dict = field(default_factory=dict)

    @property
    def has_data(self) -> bool:
        return self.root is not None

    def train_set(self, scale: int) -> data.TrainSet:
        """The training patches at ``scale`` (LR made once, on first use: a run that trains nothing makes none)."""
        if scale not in self._train_sets:
            hr_patch = self.hr_patch or self.lr_patch * scale
            ts = data.TrainSet(self.train_images, scale, hr_patch=hr_patch, small_images=self.small_images)
            self._train_sets[scale] = ts
            self.provenance.setdefault("train_patches", {})[scale] = {
                "images": len(ts), "megapixels": round(ts.megapixels, 2), "skipped_smaller_than_patch": len(ts.skipped)}
        return self._train_sets[scale]


def load(P, *, train: bool = True, eval_sets=None, scales=None, figures: dict | None = None,
         embedded_limit: int | None = None) -> Inputs:
    """The data of a run with parameters ``P``: ``eval_sets`` (default ``P.eval_sets``) at ``scales`` (default
    ``P.scales``), the training images when ``train``, and ``figures`` (``{parameter: (scale, ["<set>/<image>",
    ...])}``, the images a figure shows; an unknown image is a :class:`~srcore.paper.config.ParameterError` naming the
    parameter). No data: the embedded photos (``embedded_limit`` of them)."""
    eval_sets = list(P.eval_sets if eval_sets is None else eval_sets)
    scales = list(P.scales if scales is None else scales)
    figures = {k: (x, [tuple(item.split("/", 1)) for item in items]) for k, (x, items) in (figures or {}).items() if items}
    fig_sets = list(dict.fromkeys(s for _, items in figures.values() for s, _ in items if s not in eval_sets))
    root = data.find_root(P.get("data_root"), benchmarks=eval_sets + fig_sets,
                          train_sets=P.train_sets if train else (), allow_embedded=P.get("allow_embedded", False))
    paths = []
    if root is not None:
        for param, (_, items) in figures.items():
            for set_name, name in items:
                hr_dir = root / "benchmark" / set_name / "HR"
                have = {p.stem for p in data.list_images(hr_dir)}
                if name not in have:
                    raise config.ParameterError(f"{param}: {set_name}/{name} is not an image of {set_name} ({hr_dir}); "
                                                f"images there look like {sorted(have)[:3]}")
        train_images = data.load_folders([root / "train" / f for f in P.train_sets], P.get("train_limit")) if train else {}
        label = "+".join(P.train_sets) + ("" if list(P.train_sets) == ["DIV2K"] else " (stand-in for DIV2K)")
        limits = P.get("eval_limit") or {}
        sets = {s: {x: data.benchmark_set(s, x, root, limit=limits.get(s)) for x in scales} for s in eval_sets}
        figure_pairs = {k: [data.benchmark_set(s, x, root, names=[n])[0] for s, n in items]
                        for k, (x, items) in figures.items()}
        if train:
            paths += [p for f in P.train_sets for p in data.list_images(root / "train" / f)[:P.get("train_limit")]]
        paths += [p for s in eval_sets for p in data.list_images(root / "benchmark" / s / "HR")[:limits.get(s)]]
        paths += [root / "benchmark" / s / "HR" / f"{n}.png" for _, items in figures.values() for s, n in items]
    else:
        train_images = data.embedded_images() if train else {}
        label = "embedded scikit-image photos (no data found)"
        sets = {"embedded": {x: data.embedded_set(x, limit=embedded_limit) for x in scales}}
        figure_pairs = {k: data.embedded_set(x, limit=len(items)) for k, (x, items) in figures.items()}
    provenance = {"root": str(root), "train_set": label, "train_images": len(train_images),
                  "input_mib": round(sum(p.stat().st_size for p in set(paths) if p.is_file()) / 2**20, 1),
                  "eval_images": {s: len(v[scales[0]]) for s, v in sets.items()} if scales else {}}
    return Inputs(root, train_images, label, sets, figure_pairs, provenance, hr_patch=P.get("hr_patch"),
                  lr_patch=P.get("lr_patch"), small_images=P.get("small_images", "skip"))



def sets_read(paper: str, P) -> dict[str, list[str]]:
    """The data sets a run of ``paper`` with parameters ``P`` reads, each with the parameters naming it: its
    ``train_sets`` folders, and every set named by a parameter that the paper's ``checks:`` rules ``sets`` (set
    names) or ``images`` (``<set>/<image>``) cover (eval_sets, niqe_sets, figure images...), read from the
    profiles rather than listed here. What ``python -m srcore.download --paper P --profile X`` fetches and what
    ``python -m srcore.reproduce`` checks before any work."""
    named: dict[str, list[str]] = {}
    for folder in P.get("train_sets") or []:
        named.setdefault(folder, []).append("train_sets")
    for rule, parameter, _ in config.checks(paper):
        value = P.get(parameter)
        items = list(value) if isinstance(value, (list, dict)) else [] if value is None else [value]
        if rule not in ("sets", "images"):
            continue
        for name in (items if rule == "sets" else [item.split("/")[0] for item in items]):
            if parameter not in named.setdefault(name, []):
                named[name].append(parameter)
    return named

"""What every paper notebook does around its method: set-up, data, cached training, evaluation, writing.

A notebook keeps what belongs to its paper (parameters, networks, step functions, tables,
figures, the claims check) and hands the rest to one :class:`Experiment`, made in the cell
after the parameters::

    P = config.from_notebook("seo_squeezesr_kd", globals())
    exp = Experiment("seo_squeezesr_kd", P)           # seed, device, output folder, provenance
    exp.load_data(figures={"fig_image": ("Urban100", P.fig_scale, [P.fig_image])})
    teacher = exp.fit("EDSR-T", lambda: ({"net": edsrt(2)}, l1_step), P.teacher_steps, scale=2)
    student = exp.fit("SqueezeSR-KD", lambda: ({"net": squeezesr(2)}, kd_step(teacher.net, P.kd_weight)),
                      P.student_steps, scale=2)   # its key holds the parameters read here and the teacher's key
    per_image, means = exp.evaluate({"Bicubic": exp.bicubic, "SqueezeSR-KD": lambda x: exp.upscaler(student)})
    exp.record("Table 1", "Set5", 2, "SqueezeSR-KD", "PSNR", 30.1, run=student, note="first 1 of 5 images")
    exp.mark_unmeasured()
    exp.write()

Trained runs are reused only under the same settings (:mod:`srcore.paper.runs`: a run is keyed by what its build
reads, one folder per key, ``retrain``). With several ``seeds``, a notebook trains each run once per seed (``exp.fit(...,
seed=s)``), evaluates every seed's networks and records each value per seed: ``values.csv`` holds
their mean, sample standard deviation and count, ``values_per_seed.csv`` the values themselves
(:mod:`srcore.stats`).

Under torchrun (``python -m srcore.reproduce --nproc-per-shard N``) every rank executes the
notebook and trains; only rank 0 evaluates (the others receive its numbers) and writes.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd
import torch

from srcore import data, distributed, report, train
from srcore import evaluate as _evaluate
from srcore.paper import config, inputs
from srcore.paper import runs as _runs
from srcore.paper.runs import Run

NO_DATA = "not measured (no data)"  # what tables and claims say when no benchmark data was found
NO_DATA_STATUS = "n/a: benchmark data not found (smoke run on embedded images)"  # its values.csv status


class Experiment:
    """One run of one paper's notebook: parameters ``P`` in, ``values.csv`` and its pages out.

    Attributes a notebook reads: ``P``, ``device``, ``out`` (results folder), ``ckpt_root``,
    ``results`` (:class:`srcore.report.Results`), ``provenance``, and after :meth:`load_data`:
    ``root`` (None: embedded photos), ``has_data``, ``train_label``, ``eval_sets``
    ({set: {scale: [Pair]}}), ``figure_pairs`` ({parameter name: [Pair]}).
    """

    def __init__(self, paper: str, P: config.Params):
        """``P`` from :func:`srcore.paper.config.from_notebook` (already validated: methods, scales, ranges...)."""
        self.paper, self.P = paper, P
        distributed.init_distributed()  # under torchrun: joined before anything waits for rank 0
        self.device = train.default_device()
        train.seed_everything(P.seed)  # what is not repeated over seeds; each trained run seeds itself (srcore.paper.runs)
        if self.device.type == "cpu" and P.get("cpu_threads"):
            torch.set_num_threads(P.cpu_threads)
        self.started = time.time()
        minutes = P.get("max_minutes") or 0
        deadline = self.started + 60 * minutes if minutes > 0 else None
        self.out = report.output_dir(paper, P.profile, P.out_dir)
        base = Path(P.out_dir).parent if P.out_dir else report.PROJECT_ROOT / "runs" / P.profile
        self.ckpt_root = Path(P.ckpt_dir) if P.get("ckpt_dir") else base / "checkpoints" / paper
        self.results = report.Results(paper, P.profile, self.out, provenance={
            "device": report.device_description(self.device), "world_size": distributed.world_size(),
            "parameters": {k: v for k, v in P.items() if k not in ("out_dir", "ckpt_dir")},
            "overrides": P.overrides, "run_note": P.get("run_note", "")})
        self.provenance = self.results.provenance
        self.runs = _runs.Runs(paper, P, self.ckpt_root, self.device, deadline=deadline, train_set=self.train_set,
                              data_label=lambda: getattr(self, "train_label", None))
        self.provenance["runs"] = self.runs.entries
        self.root, self.has_data, self.inputs = None, False, None
        if distributed.is_main_process():
            print(f"profile {P.profile} on {self.provenance['device']}"
                  f"{f' x {distributed.world_size()} processes' if distributed.world_size() > 1 else ''}; "
                  f"results -> {self.out}")

    @property
    def seeds(self) -> list[int]:
        """The seeds every trained run is repeated over (``P.seeds``)."""
        return list(self.P.get("seeds") or [self.P.seed])

    @property
    def parameters(self) -> pd.DataFrame:
        """This run's parameters as a one-column table (for the notebook to show)."""
        return pd.Series(dict(self.P), name="value").to_frame()

    # what a notebook records and adds goes straight to :attr:`results` (srcore.report.Results)
    def __getattr__(self, name):
        if name in ("na", "add_table", "add_figure", "side_by_side"):
            return getattr(self.results, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    # --- data ---------------------------------------------------------------------------
    def load_data(self, **kw) -> None:
        """Find and load what the run reads (:func:`srcore.paper.inputs.load`, ``kw`` its options: ``train``, ``eval_sets``,
        ``scales``, ``figures``, ``embedded_limit``); sets ``root``, ``has_data``, ``train_images``,
        ``train_label``, ``eval_sets`` and ``figure_pairs``, and the data's provenance."""
        found = self.inputs = inputs.load(self.P, **kw)
        self.root, self.has_data, self.train_images = found.root, found.has_data, found.train_images
        self.train_label, self.eval_sets, self.figure_pairs = found.train_label, found.eval_sets, found.figure_pairs
        self.provenance["data"] = found.provenance

    def train_set(self, scale: int) -> data.TrainSet:
        """The training patches at ``scale`` (made on first use)."""
        return self.inputs.train_set(scale)

    note_for = staticmethod(inputs.note_for)

    # --- training -----------------------------------------------------------------------
    def fit(self, name: str, build, steps: int, **kw) -> Run:
        """Train the run ``build()`` makes (``(nets, step_fn)``) in its keyed folder, or reuse it finished:
        :meth:`srcore.paper.runs.Runs.fit` (``seed=s`` per seed, ``optimizers=exp.adams``, ``settings=``)."""
        return self.runs.fit(name, build, steps, **kw)

    def derive(self, name: str, parent: Run, nets: dict, **kw) -> Run:
        """A run made from ``parent`` without training (:meth:`srcore.paper.runs.Runs.derive`)."""
        return self.runs.derive(name, parent, nets, **kw)

    def content_loss(self, kind: str, *, symbol: str = "l_c", **kw):
        """SRGAN's content loss (:func:`srcore.losses.content_loss`) on this device, and its note for every trained row.

        "vgg" without the VGG19 weights raises here, before any work; another kind is a declared
        substitute, said so in the note and in ``provenance["content_loss"]``.
        """
        from srcore import losses
        loss = losses.content_loss(kind, **kw).to(self.device)
        substitute = kind != "vgg"
        self.provenance["content_loss"] = {"kind": kind, "what": losses.CONTENT_LOSSES.get(kind), "substitute": substitute}
        note = f"{symbol} = {kind}" + (" (declared substitute: VGG19 ImageNet weights unavailable)" if substitute else "")
        print(note)
        return loss, note

    def adams(self, nets: dict, **groups) -> dict:
        """One Adam per network at ``P.lr`` (``P.betas`` where the paper has them), named like the networks;
        ``groups`` put several networks under one optimiser (``G=["G", "kd"]``). Pass it as ``fit``'s optimizers."""
        kw = {"lr": self.P.lr, **({"betas": tuple(self.P.betas)} if "betas" in self.P else {})}
        grouped = {n for names in groups.values() for n in names}
        members = {**{k: [k] for k in nets if k not in grouped}, **groups}
        return {k: torch.optim.Adam([p for n in names for p in nets[n].parameters()], **kw) for k, names in members.items()}

    def pretrained(self, name: str, *, scale: int, **overrides) -> Run | None:
        """``P.teacher_weights``: None for "train"; else the released network (``srcore.pretrained.releases.load_teacher``).

        ``overrides`` are what the file cannot tell (e.g. EDSR's ``res_scale``), passed to ``from_checkpoint``.
        """
        spec = self.P.get("teacher_weights", "train")
        if spec == "train":
            return None
        from srcore.pretrained import releases
        net, info = releases.load_teacher(spec, paper=self.paper, scale=scale, **overrides)
        self.provenance.setdefault("teacher_weights", {})[f"x{scale}"] = info
        return self.runs.released(name, net.to(self.device).eval(), info, scale=scale)

    # --- evaluation ---------------------------------------------------------------------
    def upscaler(self, run_or_net, key: str = "net"):
        """lr -> sr with a run's network (``run.nets[key]``) or a network, on this device."""
        net = run_or_net.nets[key] if isinstance(run_or_net, Run) else run_or_net
        net.eval()
        return lambda lr: _evaluate.super_resolve(net, lr, self.device)

    @staticmethod
    def bicubic(scale: int):
        return lambda lr: _evaluate.bicubic_upscale(lr, scale)

    def seeded(self, run_of, key: str = "net") -> dict | None:
        """{seed: lr -> sr} with the network of ``run_of(seed)`` for every seed that has a run; None if none has.

        What a method's factory returns for :meth:`evaluate` when its networks were trained per seed:
        ``lambda x: exp.seeded(lambda s: runs.get((m, x, s)))``.
        """
        ups = {s: self.upscaler(r, key) for s in self.seeds if (r := run_of(s)) is not None}
        return ups or None

    def shown(self, up):
        """The upscaler an image shows: ``up`` itself, or the first seed's of a ``{seed: lr -> sr}`` (None stays None)."""
        return next(iter(up.values())) if isinstance(up, dict) else up

    def evaluate(self, methods: dict, *, sets=None, with_ssim: bool = True, metrics=("psnr", "ssim")):
        """Evaluate ``methods`` ({name: scale -> up}); ``up`` is ``lr -> sr``, ``{seed: lr -> sr}`` for networks
        trained per seed (:meth:`seeded`), or None to skip that scale.

        Returns (per_image, means): means has one row per dataset, scale, method and seed (``seed``
        None for what no seed shapes, e.g. bicubic) with the mean of ``metrics`` and ``ms``, ``n``
        images and ``note`` ("first n of N images" or ""). Under torchrun rank 0 evaluates and every
        rank returns its numbers.
        """
        cols = [c for c in metrics if with_ssim or c != "ssim"]
        result = None
        if distributed.is_main_process():
            result = self._evaluate(methods, self.eval_sets if sets is None else sets, with_ssim, cols)
        return distributed.broadcast_object(result)

    def _evaluate(self, methods, sets, with_ssim, cols):
        per_image, rows = [], []
        for set_name, by_scale in sets.items():
            for x, pairs in by_scale.items():
                for m, make in methods.items():
                    up = make(x)
                    for seed, fn in (up.items() if isinstance(up, dict) else [(None, up)] if up is not None else []):
                        df, _ = _evaluate.evaluate(fn, pairs, x, dataset=set_name, with_ssim=with_ssim, progress=False,
                                                   warmup=False)
                        per_image.append(df.assign(method=m, seed=seed))
                        rows.append({"dataset": set_name, "scale": x, "method": m, "seed": seed,
                                     **df[[*cols, "ms"]].mean().to_dict(), "n": len(df),
                                     "note": self.note_for(set_name, len(df))})
        means = pd.DataFrame(rows, columns=["dataset", "scale", "method", "seed", *cols, "ms", "n", "note"])
        if not per_image:
            return pd.DataFrame(columns=["dataset", "scale", "image", "method", "seed", *cols, "ms"]), means
        per_image = pd.concat(per_image, ignore_index=True)
        means["seed"] = means["seed"].astype(object).where(means["seed"].notna(), None)
        return per_image, means

    # --- values -------------------------------------------------------------------------
    def record(self, table, dataset, scale, method, metric, value, *, run=None, note: str = "") -> None:
        """One measured value; a trained ``run`` adds train_set, steps, its notes (stopped early, release file)
        and its seed (a value per seed: the row holds their mean, sd and count)."""
        if run is None:
            self.results.record(table, dataset, scale, method, metric, value, note=note)
            return
        notes = "; ".join(filter(None, [note, *run.notes]))
        self.results.record(table, dataset, scale, method, metric, value, train_set=self.train_label,
                            steps=run.step, note=notes, seed=run.seed)

    @property
    def not_measured(self) -> str:
        """The text for a claim or cell this run did not measure: no data, or the methods left out."""
        if not self.has_data:
            return NO_DATA
        return f"not run ({self.P.get('run_note') or 'methods left out'})"

    def ours(self, measured: bool, text) -> str:
        """Our side of a claim: ``text()`` when what it needs was ``measured``, else :attr:`not_measured`."""
        return text() if measured else self.not_measured

    def measure(self, metric: str, sr_images, hr_images=None, *, crop_border: int = 0) -> tuple[float, str]:
        """:func:`srcore.perceptual.measure` in this profile: ``(value, "")``, or ``(nan, reason)`` when the
        metric's weights are missing outside the paper profile (the reason is the n/a text of its rows)."""
        from srcore import perceptual
        try:
            strict = self.P.profile == "paper"  # a number the paper reports never goes missing quietly there
            return perceptual.measure(metric, sr_images, hr_images, strict=strict, crop_border=crop_border), ""
        except perceptual.MetricUnavailable as e:
            return float("nan"), e.reason

    def mark_unmeasured(self, tables=None, reason=None) -> None:
        """Every published value (of ``tables``; default all) not recorded yet gets its n/a row.

        No data: "benchmark data not found"; else ``reason(row)`` where it gives one (a published row with table,
        dataset, scale, method, metric); else, for a method left out by ``P.methods``, "not run: <run_note>";
        else "not run in this profile".
        """
        P = self.P
        for p in self.results.unfilled().itertuples():
            if tables is not None and p.table not in tables:
                continue
            why = NO_DATA_STATUS if not self.has_data else reason(p) if reason else None
            if not why and "methods" in P and p.method not in P.methods:
                why = f"not run: {P.get('run_note') or 'left out by the methods parameter'}"
            self.results.na(p.table, p.dataset, p.scale, p.method, p.metric, why or "not run in this profile")

    def training_summary(self, runs: dict, loss: str = "l1", label: str = "method"):
        """The runs' seeds, steps, seconds and final ``loss`` as a table (also in provenance), and the loss curves
        as figure training_loss (:func:`srcore.paper.runs.summary`); ``runs``: {(method, scale[, seed]): run}."""
        table, fig, curves = _runs.summary(runs, loss, label, self.seeds,
                                           list(self.P.get("scales", [self.P.get("scale")])))
        self.provenance["training"] = table.to_dict("records")
        self.results.add_figure(fig, curves, "training_loss")
        return table

    def claims(self, rows: list[dict], title: str = ""):
        """The claims check (claim | published tables say | our run) as tables/claims and on the results page."""
        table = pd.DataFrame(rows)
        self.results.add_table(table, "claims", title or f"Claims of {self.paper}: published, recomputed, ours")
        from IPython.display import display
        with pd.option_context("display.max_colwidth", None):
            display(table)
        return table

    def write(self, show: str | None = None):
        """Write values.csv, the tables, figures, provenance and the results page; display table ``show``."""
        runs = self.provenance["runs"]
        several = len(self.seeds) > 1
        self.provenance["steps"] = {f"{r['name']}{'' if r.get('scale') is None else ' x' + str(r['scale'])}"
                                    f"{' seed ' + str(r.get('seed')) if several and r.get('seed') is not None else ''}":
                                    r.get("steps", 0) for r in runs.values()}
        self.provenance["reused_runs"] = sorted(k for k, r in runs.items() if r.get("reused"))
        self.provenance["trained_steps"] = sum(r.get("trained_steps", 0) for r in runs.values())
        written = self.results.write()
        distributed.barrier()  # rank 0 has written; every rank reads the same files
        values = pd.read_csv(written / "values.csv")
        if distributed.is_main_process():
            print(f"wrote {written}: {len(values)} rows, {int((values.status == 'reproduced').sum())} reproduced; "
                  f"page {written / 'README.md'}")
        if show:
            from IPython.display import Markdown, display
            display(Markdown((written / "tables" / f"{show}.md").read_text()))
        return written


def fmt(value, spec: str = "+.3f", missing: str = NO_DATA) -> str:
    """``value`` formatted, or ``missing`` for None/NaN (claims never print "nan")."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    return format(value, spec)

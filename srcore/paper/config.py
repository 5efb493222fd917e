"""Profiles and notebook parameters: the only knobs.

One YAML file per paper, ``srcore/profiles/<paper>.yaml``, holds its parameters: the base is the
published settings (the ``paper`` profile), each parameter commented once with the paper's words
or the spec's decision where the paper is silent; its ``quick:`` (one GPU, minutes, real numbers)
and ``smoke:`` (CPU, minutes, CI) sections state only what those profiles change.
``srcore/profiles/common.yaml`` states once the parameters every paper has. A paper's parameters
under a profile, later wins: common base, paper base, common ``<profile>:``, paper ``<profile>:``.
A notebook's papermill parameters are ``profile``, ``out_dir`` and any of its paper's parameters;
anything else fails with the list of valid names.

Values are checked before any work (:func:`check`): the ``checks:`` sections of common.yaml and of
the paper's file declare ranges, allowed values and values that depend on each other (``fig_scale``
among ``scales``, taps within the depth); a bad value raises :class:`ParameterError` naming the
parameter, the value and what is allowed. What depends on the data on disk is checked when loading it.
"""
from __future__ import annotations

import contextlib
import copy
import fnmatch
import functools
import re
import types
from importlib import resources
from pathlib import Path

import yaml

PROFILES = ("smoke", "quick", "paper")
NOTEBOOK_PARAMETERS = ("profile", "out_dir", "ckpt_dir")  # valid in every notebook besides the paper's own
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


class ParameterError(ValueError):
    """An unknown parameter, profile or paper, or a value of the wrong type or outside its allowed values."""


class UnkeyedRead(RuntimeError):
    """A trained run read a parameter (or used a run) in its first training step that its key does not hold."""


class Reads:
    """What code reads while :func:`reading` is active: parameters (name -> value) and runs (name -> key).

    A trained run is keyed by what its build reads (:mod:`srcore.paper.runs`); during its first training step the
    same reads are ``frozen``: a read of anything else raises :class:`UnkeyedRead`, naming it.
    """

    def __init__(self, what: str = "", frozen: "Reads | None" = None):
        self.what, self.frozen = what, frozen
        self.parameters: dict[str, object] = {}
        self.runs: dict[str, str] = {}

    def parameter(self, name: str, value) -> None:
        if self.frozen is not None and name not in self.frozen.parameters:
            raise UnkeyedRead(f"{self.what} read parameter {name!r} in its first training step, but its key does not "
                              f"hold it: read it while building the run (in the function given to exp.fit), so that "
                              f"a change of {name} trains the run again")
        self.parameters[name] = copy.deepcopy(value)

    def run(self, name: str, key: str) -> None:
        if self.frozen is not None and self.frozen.runs.get(name) != key:
            raise UnkeyedRead(f"{self.what} used run {name!r} in its first training step, but its key does not hold "
                              f"it: use the run while building it (in the function given to exp.fit)")
        self.runs[name] = key


_READING: list[Reads] = []  # the active recorders, innermost last


@contextlib.contextmanager
def reading(what: str = "", frozen: Reads | None = None):
    """Record (or, with ``frozen``, check) every parameter and run read in the block; yields the :class:`Reads`."""
    reads = Reads(what, frozen)
    _READING.append(reads)
    try:
        yield reads
    finally:
        _READING.remove(reads)


class Params(dict):
    """A paper's parameters for one run: a dict with attribute access (``p.steps``); every read is seen by the
    active :func:`reading` recorders (``dict(P)``, ``in`` and iteration are not reads)."""

    def __getitem__(self, name):
        value = dict.__getitem__(self, name)
        for reads in _READING:
            reads.parameter(name, value)
        return value

    def get(self, name, default=None):
        return self[name] if name in self else default

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}; parameters: {', '.join(sorted(self))}") from None


COMMON = "common"
SECTIONS = (*PROFILES, "checks", "slurm")  # not parameters: override, check and cluster sections


class _Loader(yaml.SafeLoader):
    """PyYAML's safe YAML 1.1, plus YAML 1.2's floats: ``2e-4``, ``1E5``, ``2.e-4`` are numbers (in 1.1 a float
    needs a dot and a signed exponent, so they were strings), as Python, papermill and every SR code base read them."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
                              list("-+.0123456789"))


def parse_value(text: str):
    """A parameter value as a user types it, after ``-p name=`` or in a profile file: YAML flow style, the one
    parser of both. ``3`` -> 3, ``2e-4`` -> 0.0002, ``[2, 4]`` -> list, ``{Urban100: 12}`` -> dict, ``true`` ->
    True, ``~``/``null`` -> None, anything else the text itself (``a note: with a colon`` stays a string)."""
    try:
        value = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text
    if isinstance(value, (dict, list)) and not text.strip().startswith(("{", "[")):
        return text  # only flow-style collections count
    return "" if value is None and not text.strip() else value


def parse_override(text: str) -> tuple[str, object]:
    """'name=value', the value read by :func:`parse_value` (as in the profile files):
    '3' -> 3, '2e-4' -> 0.0002, '[2, 4]' -> list, '{Urban100: 12}' -> dict, 'true' -> True."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise ParameterError(f"-p expects name=value, got {text!r}")
    return name.strip(), parse_value(raw)


@functools.lru_cache(maxsize=None)
def _parse(name: str) -> dict:  # once per process: a kernel sees an edited profile file after a restart
    return yaml.load(resources.files("srcore").joinpath("profiles", f"{name}.yaml").read_text(), Loader=_Loader) or {}


def _read(name: str) -> dict:
    """profiles/<name>.yaml as a dict (a copy: a run may change its lists without changing the next run's)."""
    return copy.deepcopy(_parse(name))


def slurm_defaults() -> dict:
    """common.yaml's ``slurm:`` section: what ``--executor slurm`` asks of each job unless a flag says otherwise."""
    return {"partition": None, "time_min": 480, "gpus_per_job": 1, "cpus_per_job": 8, **(_read(COMMON).get("slurm") or {})}


def papers() -> list[str]:
    """The papers with a profile file, sorted."""
    return sorted(f.name[:-5] for f in resources.files("srcore").joinpath("profiles").iterdir()
                  if f.name.endswith(".yaml") and f.name != f"{COMMON}.yaml")


def _compose(paper: str, profile: str) -> dict:
    common, own = _read(COMMON), _read(paper)
    params = {}
    for layer in (common, own):
        params.update({k: v for k, v in layer.items() if k not in SECTIONS})
    for where, layer in ((COMMON, common.get(profile) or {}), (paper, own.get(profile) or {})):
        unknown = sorted(set(layer) - set(params))
        if unknown:  # an override must change a parameter of the base, not add one
            raise ParameterError(f"profiles/{where}.yaml: {profile}: sets {unknown}, not parameters of {paper}")
        params.update(layer)
    return params


def profile_table(profile: str) -> dict:
    """``{paper: parameters}`` of every paper under ``profile``."""
    if profile not in PROFILES:
        raise ParameterError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    return {paper: _compose(paper, profile) for paper in papers()}


def _check_type(paper: str, name: str, value, default):
    """``value`` as the type of the parameter's published ``default``, or ParameterError naming both.

    Text where a number, list, dict or boolean is expected is read by :func:`parse_value` (a papermill
    ``-r`` parameter, say). An int parameter takes a float only when it is integral (``1e4`` -> 10000;
    ``1.5`` is refused); a float parameter takes an int.
    """
    if default is None or value is None:
        return value
    if isinstance(value, str) and not isinstance(default, str):
        value = parse_value(value)
    expected = type(default).__name__
    if isinstance(default, bool) != isinstance(value, bool):
        raise ParameterError(f"{paper}: parameter {name!r} expects {expected}, got {value!r}")
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    if isinstance(default, int) and isinstance(value, float):
        if not value.is_integer():
            raise ParameterError(f"{paper}: parameter {name!r} expects int, got {value!r} (not a whole number)")
        return int(value)
    if isinstance(default, (int, float, str, list, dict)) and not isinstance(value, type(default)):
        raise ParameterError(f"{paper}: parameter {name!r} expects {expected}, got {value!r}")
    kinds = {type(v) for v in default} if isinstance(default, list) else set()
    if len(kinds) == 1:  # a list of one kind (scales, betas, methods...) takes only that kind
        return [_check_type(paper, name, v, default[0]) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Checks: the rules of the profile files' `checks:` sections, applied by load() before any work.
# List rules name parameters (or fnmatch patterns); mapping rules give each parameter an argument.

def _show(value) -> str:
    """A value as the user writes it after -p (YAML flow style): [2, 3], {Urban100: 16}, skip, null."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).removesuffix("\n...\n").strip()


def _numbers(value) -> list:
    return list(value.values()) if isinstance(value, dict) else list(value) if isinstance(value, list) else [value]


def _names(value) -> list:
    return list(value) if isinstance(value, (dict, list)) else [value]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _bound(text: str, params: dict):
    """A range bound: a number, inf, or the name of another parameter (then its value)."""
    text = text.strip()
    if text in params:
        return params[text], f"{text}={_show(params[text])}"
    return float(text), text


def _in_range(name, value, interval, params):
    """``interval``: "[lo, hi]", "(lo, hi)" or mixed; lo and hi are numbers, inf or parameter names."""
    (lo, lo_text), (hi, hi_text) = (_bound(s, params) for s in interval[1:-1].split(","))
    closed_lo, closed_hi = interval[0] == "[", interval[-1] == "]"
    items = _numbers(value)
    if not all(_is_number(v) for v in items):
        return f"{name}={_show(value)} is not a number" + ("" if items == [value] else " in every item")
    bad = [v for v in items if not ((lo <= v if closed_lo else lo < v) and (v <= hi if closed_hi else v < hi))]
    if bad:
        allowed = (f"{'>=' if closed_lo else '>'} {lo_text}" if hi == float("inf")
                   else f"{interval[0]}{lo_text}, {hi_text}{interval[-1]}")
        head = f"{name}={_show(value)}" + (" is" if items == [value] else f": {_show(bad)}")
        return f"{head} out of range; allowed: {allowed}"


def _one_of(name, value, allowed, params, among=None):
    """Each name (a scalar, list items, dict keys) among ``allowed`` or the parameter it names."""
    if isinstance(allowed, str):
        among, allowed = f"{allowed}={_show(params[allowed])}", params[allowed]
    bad = [v for v in _names(value) if v not in allowed]
    if bad:
        head = f"{name}={_show(value)}" + (" is" if _names(value) == [value] else f": {_show(bad)}")
        return f"{head} not {'among ' + among if among else 'allowed'}; allowed: {_show(list(allowed))}"


def _one_of_or_file(name, value, allowed, params):
    """One of ``allowed`` or an existing file, found as srcore.pretrained.releases.resolve finds it: the path as
    given (relative: to the working folder), and a bare file name also in $SRCORE_WEIGHTS."""
    from srcore.pretrained.releases import candidate_paths
    if value in allowed:
        return None
    tried = candidate_paths(value) if isinstance(value, str) and value else []
    if not any(p.is_file() for p in tried):
        return (f"{name}={_show(value)} is neither one of {_show(allowed)} nor an existing file "
                f"(looked for {', '.join(map(str, tried)) or 'nothing'}); allowed: {_show(allowed)} or a file's path")


def _benchmarks() -> list[str]:
    from srcore.data import (
        BENCHMARKS,  # imports torch: only once parameters are checked
    )
    return list(BENCHMARKS)


def _sets(name, value, _, params):
    return _one_of(name, value, _benchmarks(), params, among="srcore.data.BENCHMARKS")


def _images(name, value, _, params):
    sets = _benchmarks()
    bad = [v for v in _names(value) if not isinstance(v, str) or v.count("/") != 1 or v.split("/")[0] not in sets]
    if bad:
        head = f"{name}={_show(value)}" + (" is" if _names(value) == [value] else f": {_show(bad)}")
        return f"{head} not <set>/<image> with <set> among srcore.data.BENCHMARKS; allowed sets: {_show(sets)}"


def _keys(name, value, keys, params):
    if not isinstance(value, dict) or sorted(value) != sorted(keys):
        return f"{name}={_show(value)} does not map exactly {_show(keys)}; allowed keys: {_show(keys)}"


def _multiple_of(name, value, n, params):
    if not _is_number(value) or value % n:
        return f"{name}={_show(value)} is not a multiple of {n}; allowed: {n}, {2 * n}, {3 * n}, ..."


RULES = {  # rule name in a checks: section -> (kind, check(name, value, argument, params) -> problem or None)
    "positive": ("list", lambda name, value, _, params: _in_range(name, value, "(0, inf)", params)),
    "nonnegative": ("list", lambda name, value, _, params: _in_range(name, value, "[0, inf)", params)),
    "nonempty": ("list", lambda name, value, _, params: None if value else f"{name}={_show(value)} is empty; allowed: a non-empty list"),
    "distinct": ("list", lambda name, value, _, params: None if len(set(_names(value))) == len(_names(value)) else
                 f"{name}={_show(value)} repeats a value; allowed: distinct values"),
    "sets": ("list", _sets),
    "images": ("list", _images),
    "range": ("map", lambda name, value, interval, params: _in_range(name, value, interval, params)),
    "one_of": ("map", _one_of),
    "one_of_or_file": ("map", _one_of_or_file),
    "keys": ("map", _keys),
    "multiple_of": ("map", _multiple_of),
}


def checks(paper: str) -> list[tuple[str, str, object]]:
    """The rules for ``paper``'s parameters: ``(rule, parameter, argument)`` from common.yaml's and
    the paper's ``checks:`` sections, for the parameters the paper has (patterns expanded)."""
    names = list(_compose(paper, "paper"))
    out = []
    for source in (COMMON, paper):
        for rule, entries in (_read(source).get("checks") or {}).items():
            if rule not in RULES:
                raise ParameterError(f"profiles/{source}.yaml: unknown check {rule!r}; checks: {', '.join(RULES)}")
            items = [(e, None) for e in entries] if RULES[rule][0] == "list" else list(entries.items())
            for pattern, arg in items:
                matched = [(rule, n, arg) for n in names if fnmatch.fnmatchcase(n, pattern)]
                if not matched and source == paper:  # common.yaml's rules name what some papers have
                    raise ParameterError(f"profiles/{paper}.yaml: {rule}: {pattern!r} is not a parameter of {paper}")
                out += matched
    return out


def check(paper: str, params: dict) -> None:
    """Refuse bad values before any work: ranges, allowed values, values that depend on each other.

    Raises :class:`ParameterError` naming every bad parameter, the value given and what is
    allowed (e.g. ``seo_squeezesr_kd: fig_scale=4 is not among scales=[2]; allowed: [2]``).
    What depends on the data on disk (an image in a set) is checked when the data is loaded.
    """
    base = _compose(paper, "paper")
    problems = [f"{name}=null; allowed: {type(base[name]).__name__} (null only where the published setting is null)"
                for name in params if params[name] is None and base.get(name) is not None]
    for rule, name, arg in checks(paper):
        if params.get(name) is not None:
            problems.append(RULES[rule][1](name, params[name], arg, params))
    problems = list(dict.fromkeys(p for p in problems if p))
    if problems:
        raise ParameterError(f"{paper}: " + problems[0] if len(problems) == 1 else
                             f"{paper}: {len(problems)} bad parameters:\n  " + "\n  ".join(problems))


def load(paper: str, profile: str = "smoke", **overrides) -> Params:
    """The parameters of ``paper`` under ``profile``, with ``overrides`` checked against them."""
    if profile not in PROFILES:
        raise ParameterError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    if paper not in papers():
        raise ParameterError(f"unknown paper {paper!r}; papers: {', '.join(papers())}")
    params = Params(_compose(paper, profile))
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {', '.join(map(repr, unknown))} for {paper}; "
                             f"valid: {', '.join(sorted([*NOTEBOOK_PARAMETERS, *params]))}")
    for name, value in overrides.items():
        params[name] = _check_type(paper, name, value, params[name])
    if "seed" in overrides and "seeds" not in overrides and "seeds" in params:  # seed no longer seeds training
        raise ParameterError(f"{paper}: seed={params['seed']} seeds only what is not repeated over seeds; the trained "
                             f"runs follow seeds={_show(params['seeds'])}: give seeds=[{params['seed']}] (with seed "
                             f"as well to change both)")
    check(paper, params)
    params["profile"] = profile
    params.overrides = {k: params[k] for k in overrides}  # what differs from the profile, for provenance
    return params


def from_notebook(paper: str, namespace: dict) -> Params:
    """Parameters of a notebook run from its global names (the parameters cell plus papermill's injection).

    Call it in the first cell after the parameters cell, before defining other globals:
    every public, non-module, non-callable global is taken as a parameter.
    """
    given = {k: v for k, v in namespace.items()
             if not k.startswith("_") and k not in _IPYTHON_NAMES
             and not isinstance(v, types.ModuleType) and not callable(v)}
    profile = given.pop("profile", "smoke")
    folders = {k: given.pop(k, None) for k in ("out_dir", "ckpt_dir")}
    params = load(paper, profile, **given)
    for k, v in folders.items():  # where this run writes (None: runs/<profile>/...): not a parameter of the paper
        params[k] = Path(v) if v else None
    return params

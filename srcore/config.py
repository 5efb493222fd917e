"""Profiles and notebook parameters: the only knobs.

One YAML file per paper, ``srcore/profiles/<paper>.yaml``, holds its parameters: the base is the
published settings (the ``paper`` profile), each parameter commented once with the paper's words
or the spec's decision where the paper is silent; its ``quick:`` (one GPU, minutes, real numbers)
and ``smoke:`` (CPU, minutes, CI) sections state only what those profiles change.
``srcore/profiles/common.yaml`` states once the parameters every paper has. A paper's parameters
under a profile, later wins: common base, paper base, common ``<profile>:``, paper ``<profile>:``.
A notebook's papermill parameters are ``profile``, ``out_dir`` and any of its paper's parameters;
anything else fails with the list of valid names.
"""
from __future__ import annotations

import types
from importlib import resources
from pathlib import Path

import yaml

PROFILES = ("smoke", "quick", "paper")
NOTEBOOK_PARAMETERS = ("profile", "out_dir")  # valid in every notebook besides the paper's own
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


class ParameterError(ValueError):
    """An unknown parameter, profile or paper, or a value of the wrong type."""


class Params(dict):
    """A paper's parameters for one run: a dict with attribute access (``p.steps``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}; parameters: {', '.join(sorted(self))}") from None


COMMON = "common"
SECTIONS = ("quick", "smoke", "checks")  # not parameters: a profile file's override and check sections


def _read(name: str) -> dict:
    return yaml.safe_load(resources.files("srcore").joinpath("profiles", f"{name}.yaml").read_text()) or {}


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
    if default is None or value is None:
        return value
    if isinstance(default, bool) != isinstance(value, bool):
        raise ParameterError(f"{paper}: parameter {name!r} expects {type(default).__name__}, got {value!r}")
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    if isinstance(default, (int, float, str, list, dict)) and not isinstance(value, type(default)):
        raise ParameterError(f"{paper}: parameter {name!r} expects {type(default).__name__}, got {value!r}")
    return value


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
    out_dir = given.pop("out_dir", None)
    params = load(paper, profile, **given)
    params["out_dir"] = Path(out_dir) if out_dir else None
    return params

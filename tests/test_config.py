import re
import types
from pathlib import Path

import pytest
import yaml

from srcore import config


def test_every_profile_defines_the_same_parameters():
    tables = {p: config.profile_table(p) for p in config.PROFILES}
    papers = set(tables["smoke"])
    for profile, table in tables.items():
        assert set(table) == papers, profile
        for paper in papers:
            assert set(table[paper]) == set(tables["smoke"][paper]), (profile, paper)


def test_unknown_parameter_is_named_with_the_valid_ones():
    with pytest.raises(config.ParameterError, match=r"'stpes'.*valid: .*student_steps"):
        config.load("seo_squeezesr_kd", "smoke", stpes=3)


def test_override_and_type_check():
    p = config.load("seo_squeezesr_kd", "quick", teacher_steps=7, lr=1)
    assert p.teacher_steps == 7 and p.lr == 1.0 and isinstance(p.lr, float) and p.profile == "quick"
    with pytest.raises(config.ParameterError, match="teacher_steps.*expects int"):
        config.load("seo_squeezesr_kd", "smoke", teacher_steps="many")
    with pytest.raises(AttributeError, match="no parameter 'nope'"):
        p.nope


def test_unknown_profile_and_paper():
    with pytest.raises(config.ParameterError, match="profiles: smoke, quick, paper"):
        config.load("seo_squeezesr_kd", "fast")
    with pytest.raises(config.ParameterError, match="unknown paper"):
        config.load("nobody2099", "smoke")


def test_from_notebook_takes_only_parameters():
    ns = {"profile": "smoke", "out_dir": None, "student_steps": 3, "In": [], "_": 1,
          "np": types.ModuleType("numpy"), "helper": lambda: 0}
    p = config.from_notebook("seo_squeezesr_kd", ns)
    assert p.student_steps == 3 and p.out_dir is None
    ns["stpes"] = 3
    with pytest.raises(config.ParameterError, match="stpes"):
        config.from_notebook("seo_squeezesr_kd", ns)


PROFILE_DIR = Path(config.__file__).parent / "profiles"
KEY_LINE = re.compile(r"^( *)([A-Za-z_][\w]*):(.*)$")


def test_one_profile_file_per_paper_within_400_lines():
    files = sorted(PROFILE_DIR.glob("*.yaml"))
    assert [f.stem for f in files if f.stem != config.COMMON] == config.papers()
    assert len(config.papers()) == 5
    assert sum(len(f.read_text().splitlines()) for f in files) <= 400


@pytest.mark.parametrize("name", ["common", *config.papers()])
def test_each_parameter_commented_once_and_overrides_bare(name):
    """A base parameter line carries its comment; quick:/smoke: lines restate only values; no key twice."""
    seen, section = set(), None
    for line in (PROFILE_DIR / f"{name}.yaml").read_text().splitlines():
        m = KEY_LINE.match(line)
        if not m:
            assert not line.strip() or line.lstrip().startswith("#") or line.startswith("    "), line
            continue
        indent, key, rest = m.groups()
        if not indent:
            section = key if key in config.SECTIONS else None
            if section is None:
                assert "  # " in rest, f"{name}.yaml: {key} has no comment"
        elif section in config.PROFILES:
            assert "#" not in rest, f"{name}.yaml: {section}: {key} is commented again"
        where = (section if indent else None, key)
        assert where not in seen, f"{name}.yaml: {key} twice"
        seen.add(where)


def test_every_paper_and_profile_loads_with_the_shared_keys():
    common = yaml.safe_load((PROFILE_DIR / "common.yaml").read_text())
    for paper in config.papers():
        for profile in config.PROFILES:
            p = config.load(paper, profile)
            assert set(common) - set(config.SECTIONS) <= set(p), (paper, profile)
            assert p.max_minutes == 0 and p.channels_last is False and p.compile is False
            assert p.profile == profile
    teachers = [paper for paper in config.papers() if "teacher_weights" in config.load(paper, "paper")]
    assert sorted(teachers) == ["baek2024_esrgan_prune_kd", "lee2021_srgan_kd", "moon2023_clsd"]
    assert {config.load(t, "quick").teacher_weights for t in teachers} == {"train"}


def test_profiles_override_only_what_differs():
    """quick and smoke are the published settings with a few values changed, never a copy of them."""
    p, q, s = (config.load("seo_squeezesr_kd", x) for x in ("paper", "quick", "smoke"))
    assert p.teacher_steps == 300000 and q.teacher_steps == 4000 and s.teacher_steps == 20
    assert p.lr_milestones == [200000] and q.lr_milestones == s.lr_milestones == []  # common quick:/smoke:
    assert p.train_sets == ["DIV2K"] and q.train_sets == ["T91", "BSD200"]
    assert config.load("baek2024_esrgan_prune_kd", "smoke").train_sets == ["BSD200"]  # a paper's smoke: wins over common's
    assert config.load("lee2022_mutual_srgan", "paper").allow_embedded is True  # a paper's base wins over common's
    assert config.load("baek2024_esrgan_prune_kd", "smoke").student_feats == {16: 2, 32: 4, 48: 6}

import types

import pytest

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

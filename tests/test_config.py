import fnmatch
import json
import re
import types
from pathlib import Path

import pytest
import yaml

import srcore
from srcore.paper import config
from srcore.runner import execute


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


PROFILE_DIR = Path(srcore.__file__).parent / "profiles"
KEY_LINE = re.compile(r"^( *)([A-Za-z_][\w]*):(.*)$")


def test_one_profile_file_per_paper_notebook():
    files = sorted(PROFILE_DIR.glob("*.yaml"))
    assert [f.stem for f in files if f.stem != config.COMMON] == config.papers() == execute.papers()


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
                assert re.search(r"\s#\s*\S", rest), f"{name}.yaml: {key} has no comment"
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
    assert p.teacher_steps == 300000 and q.teacher_steps == 10000 and s.teacher_steps == 20
    assert p.lr_milestones == [200000] and s.lr_milestones == []  # common smoke:
    assert (q.lr, q.lr_milestones) == (2e-3, [5000, 7500])  # the paper's quick: wins over common's
    assert p.train_sets == ["DIV2K"] and q.train_sets == ["T91", "BSD200"]
    assert config.load("baek2024_esrgan_prune_kd", "smoke").train_sets == ["BSD200"]  # a paper's smoke: wins over common's
    assert config.load("lee2022_mutual_srgan", "paper").allow_embedded is True  # a paper's base wins over common's
    assert config.load("baek2024_esrgan_prune_kd", "smoke").student_feats == {16: 2, 32: 4, 48: 6}


def refused(paper, profile="quick", **overrides) -> str:
    with pytest.raises(config.ParameterError) as e:
        config.load(paper, profile, **overrides)
    return str(e.value)


def test_a_figure_scale_outside_scales_is_allowed_and_a_scale_the_paper_lacks_is_not():
    """-p scales=[2] once trained for 12 minutes, then failed with KeyError ('EDSR-T', 4). Now one rule holds for
    every figure: the run that trains its scale draws it, and a run of other scales leaves it out (its page says so)."""
    assert config.load("seo_squeezesr_kd", "quick", scales=[2]).fig_scale == 4
    assert refused("seo_squeezesr_kd", scales=[2], fig_scale=5) == \
        "seo_squeezesr_kd: fig_scale=5 is not allowed; allowed: [2, 3, 4]"


def test_the_runner_refuses_bad_values_before_running_anything(monkeypatch, capsys):
    import papermill as pm

    from srcore import reproduce
    calls = []
    monkeypatch.setattr(pm, "execute_notebook", lambda *a, **k: calls.append(a))
    assert reproduce.main(["--paper", "seo_squeezesr_kd", "--profile", "quick", "-p", "teacher_steps=-5"]) == 2
    assert calls == [] and "teacher_steps=-5 is out of range; allowed: >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("paper, overrides, message", [
    # ranges: steps >= 0, sizes and rates > 0, weights >= 0, fractions in [0, 1]
    ("seo_squeezesr_kd", {"teacher_steps": -5}, r"teacher_steps=-5 is out of range; allowed: >= 0"),
    ("lee2022_mutual_srgan", {"steps": -1}, r"steps=-1 is out of range; allowed: >= 0"),
    ("seo_squeezesr_kd", {"lr": 0}, r"lr=0.0 is out of range; allowed: > 0"),
    ("moon2023_clsd", {"student_feats": 0}, r"student_feats=0 is out of range; allowed: > 0"),
    ("lee2021_srgan_kd", {"hr_patch": -16}, r"hr_patch=-16 is out of range; allowed: > 0"),
    ("seo_squeezesr_kd", {"eval_limit": {"Urban100": 0}}, r"eval_limit=\{Urban100: 0\}: \[0\] out of range; allowed: > 0"),
    ("seo_squeezesr_kd", {"max_minutes": -1}, r"max_minutes=-1.0 is out of range; allowed: >= 0"),
    ("lee2021_srgan_kd", {"kd_weight": -0.5}, r"kd_weight=-0.5 is out of range; allowed: >= 0"),
    ("baek2024_esrgan_prune_kd", {"w_gan": -1.0}, r"w_gan=-1.0 is out of range; allowed: >= 0"),
    ("lee2021_srgan_kd", {"kd_fraction": 1.5}, r"kd_fraction=1.5 is out of range; allowed: \[0, 1\]"),
    ("baek2024_esrgan_prune_kd", {"betas": [0.9, 1]}, r"betas=\[0.9, 1.0\]: \[1.0\] out of range; allowed: \[0, 1\)"),
    ("baek2024_esrgan_prune_kd", {"student_feats": {16: 16, 32: -1, 48: 48}}, r"student_feats=.*\[-1\] out of range"),
    ("baek2024_esrgan_prune_kd", {"teacher_steps": 100},  # quick's 300 L1-only steps would be the whole schedule
     r"teacher_l1_steps=550 is out of range; allowed: \[0, teacher_steps=100\]"),
    # taps within the network's depth
    ("moon2023_clsd", {"head_taps": [4, 8, 20]}, r"head_taps=\[4, 8, 20\]: \[20\] out of range; allowed: \[1, student_blocks=16\]"),
    ("moon2023_clsd", {"head_taps": [0, 8]}, r"head_taps=\[0, 8\]: \[0\] out of range"),
    ("baek2024_esrgan_prune_kd", {"distill_taps": [6, 24]}, r"distill_taps=\[6, 24\]: \[24\] out of range; allowed: \[1, teacher_blocks=23\]"),
    # membership: the paper's scales and methods, fixed choices, sets, parameters naming others
    ("seo_squeezesr_kd", {"scales": [2, 5], "fig_scale": 2}, r"scales=\[2, 5\]: \[5\] not allowed; allowed: \[2, 3, 4\]"),
    ("seo_squeezesr_kd", {"scales": []}, r"scales=\[\] is empty; allowed: a non-empty list"),
    ("lee2022_mutual_srgan", {"scales": [3]}, r"scales=\[3\]: \[3\] not allowed; allowed: \[2, 4\]"),
    ("lee2021_srgan_kd", {"scale": 2}, r"scale=2 is not allowed; allowed: \[4\]"),
    ("moon2023_clsd", {"methods": ["CLSD", "KD"]}, r"methods=\[CLSD, KD\]: \[KD\] not allowed; allowed: \[Baseline, FAKD"),
    ("baek2024_esrgan_prune_kd", {"methods": ["Student_64_ESRGAN"]}, r"\[Student_64_ESRGAN\] not allowed"),
    ("baek2024_esrgan_prune_kd", {"student_feats": {16: 16}}, r"student_feats=\{16: 16\} does not map exactly \[16, 32, 48\]"),
    ("moon2023_clsd", {"clsd_form": "eq7"}, r"clsd_form=eq7 is not allowed; allowed: \[table5, eq6\]"),
    ("seo_squeezesr_kd", {"small_images": "skp"}, r"small_images=skp is not allowed; allowed: \[skip, error\]"),
    ("lee2022_mutual_srgan", {"content_loss": "l1"}, r"content_loss=l1 is not allowed; allowed: \[vgg, mse\]"),
    ("baek2024_esrgan_prune_kd", {"distill_norm": "l2"}, r"distill_norm=l2 is not allowed; allowed: \[rms, norm, mse\]"),
    ("lee2021_srgan_kd", {"dmos_by": ["rater", "image"]}, r"dmos_by=\[rater, image\]: \[image\] not allowed"),
    ("seo_squeezesr_kd", {"eval_sets": ["Set5", "Set6"], "eval_limit": {}},
     r"eval_sets=\[Set5, Set6\]: \[Set6\] not among srcore.data.BENCHMARKS; allowed: \[Set5, Set14, BSD100, Urban100"),
    ("seo_squeezesr_kd", {"eval_limit": {"General100": 3}},
     r"eval_limit=\{General100: 3\}: \[General100\] not among eval_sets=\[Set5, Set14, Urban100\]"),
    ("lee2022_mutual_srgan", {"niqe_sets": ["General100"]}, r"niqe_sets=\[General100\]: \[General100\] not among eval_sets="),
    ("lee2021_srgan_kd", {"rating_sets": ["Set5", "set14"]}, r"rating_sets=\[Set5, set14\]: \[set14\] not among srcore.data.BENCHMARKS"),
    ("lee2021_srgan_kd", {"fig_image": "butterfly"}, r"fig_image=butterfly is not <set>/<image> with <set> among srcore.data.BENCHMARKS"),
    ("baek2024_esrgan_prune_kd", {"fig_images": ["Set14/comic", "Set99/x"]}, r"fig_images=.*: \[Set99/x\] not <set>/<image>"),
    ("lee2021_srgan_kd", {"hr_patch": 100}, r"hr_patch=100 is not a multiple of 16; allowed: 16, 32, 48"),
    ("baek2024_esrgan_prune_kd", {"hr_patch": 80}, r"hr_patch=80 is not a multiple of 32"),
    ("moon2023_clsd", {"teacher_weights": "nowhere/edsr.pt"},
     r"teacher_weights=nowhere/edsr.pt is neither one of \[train, official\] nor an existing file"),
    # types: null only where the published setting is null; list items of the list's kind
    ("seo_squeezesr_kd", {"teacher_steps": None}, r"teacher_steps=null; allowed: int"),
    ("seo_squeezesr_kd", {"scales": [2.5]}, r"'scales' expects int, got 2.5 \(not a whole number\)"),
    ("moon2023_clsd", {"methods": ["CLSD", 3]}, r"'methods' expects str, got 3"),
])
def test_a_bad_value_is_refused_naming_the_parameter(paper, overrides, message):
    assert re.search(message, refused(paper, **overrides)), refused(paper, **overrides)


def test_every_bad_value_is_listed_at_once():
    text = refused("lee2022_mutual_srgan", "smoke", steps=-1, scales=[3], niqe_models=[3])
    assert text.startswith("lee2022_mutual_srgan: 3 bad parameters:")
    assert all(f"\n  {name}=" in text for name in ("steps", "scales", "niqe_models"))


def test_good_values_pass():
    assert config.load("moon2023_clsd", "quick", scales=[2]).scales == [2]  # Fig. 4 and Table 6 show what ran at x2
    assert config.load("moon2023_clsd", "smoke", teacher_weights="official").teacher_weights == "official"
    assert config.load("moon2023_clsd", "smoke", teacher_weights=__file__).teacher_weights == __file__
    assert config.load("baek2024_esrgan_prune_kd", "paper", betas=[0, 0.9]).betas == [0.0, 0.9]
    assert config.load("seo_squeezesr_kd", "paper", train_limit=None, max_minutes=7.5).max_minutes == 7.5
    assert config.load("baek2024_esrgan_prune_kd", "smoke", eval_crop=None).eval_crop is None


def test_the_profile_choices_are_the_codes_choices():
    from srcore import losses
    choices = {(paper, rule, name): arg for paper in config.papers() for rule, name, arg in config.checks(paper)}
    assert choices["moon2023_clsd", "one_of", "clsd_form"] == list(losses.CLSD_FORMS)
    assert choices["baek2024_esrgan_prune_kd", "one_of", "distill_norm"] == list(losses.DISTILL_NORMS)
    assert choices["baek2024_esrgan_prune_kd", "one_of", "student_gan"] == list(losses.GAN_LOSSES)
    assert choices["baek2024_esrgan_prune_kd", "one_of", "perceptual"] == [*losses.PERCEPTUAL_LOSSES, "auto"]
    assert choices["lee2021_srgan_kd", "one_of", "content_loss"] == list(losses.CONTENT_LOSSES)


def test_every_check_names_parameters(monkeypatch):
    """A misspelt name in a checks: list would silently check nothing: common.yaml's must match some paper's."""
    common = yaml.safe_load((PROFILE_DIR / "common.yaml").read_text())["checks"]
    names = {n for paper in config.papers() for n in config.load(paper, "paper")}
    for rule, entries in common.items():
        for pattern in entries:
            assert any(fnmatch.fnmatchcase(n, pattern) for n in names), (rule, pattern)
    read = config._read
    monkeypatch.setattr(config, "_read", lambda name: (
        {**read(name), "checks": {"positive": ["teacher_stpes"]}} if name == "seo_squeezesr_kd" else read(name)))
    with pytest.raises(config.ParameterError, match=r"seo_squeezesr_kd.yaml: positive: 'teacher_stpes' is not a parameter"):
        config.load("seo_squeezesr_kd", "smoke")


def test_teacher_weights_file_is_found_where_releases_looks(monkeypatch, tmp_path):
    """As srcore.pretrained.releases.resolve: the path as given, and a bare file name also in $SRCORE_WEIGHTS."""
    (tmp_path / "edsr.pt").write_bytes(b"")
    monkeypatch.setenv("SRCORE_WEIGHTS", str(tmp_path))
    assert config.load("moon2023_clsd", "smoke", teacher_weights="edsr.pt").teacher_weights == "edsr.pt"
    assert config.load("moon2023_clsd", "smoke", teacher_weights=str(tmp_path / "edsr.pt")).teacher_weights.endswith("edsr.pt")
    assert re.search(r"teacher_weights=sub/edsr.pt is neither .* \(looked for sub/edsr.pt\)",
                     refused("moon2023_clsd", teacher_weights="sub/edsr.pt"))


# -p takes numbers as a user types them; the profile files are read by the same parser
OVERRIDES = [  # (name=text, the value the paper's notebook receives, or the error the command prints)
    ("lr=2e-4", 2e-4), ("lr=1e-3", 1e-3), ("lr=5E-5", 5e-5), ("lr=2.0e-4", 2e-4), ("lr=2.e-4", 2e-4),
    ("lr=0.0002", 2e-4), ("lr=1", 1.0), ("teacher_steps=1e5", 100000), ("student_steps=2.5e3", 2500),
    ("scales=[2,4]", [2, 4]), ("eval_limit={Urban100: 12}", {"Urban100": 12}), ("retrain=true", True),
    ("run_note=a note: with a colon", "a note: with a colon"), ("lr_milestones=[1e4, 2e4]", [10000, 20000]),
    ("lr=abc", "error: seo_squeezesr_kd: parameter 'lr' expects float, got 'abc'"),
    ("seed=1.5", "error: seo_squeezesr_kd: parameter 'seed' expects int, got 1.5 (not a whole number)"),
    ("teacher_steps=1e-3", "error: seo_squeezesr_kd: parameter 'teacher_steps' expects int, got 0.001 (not a whole number)"),
    ("retrain=1", "error: seo_squeezesr_kd: parameter 'retrain' expects bool, got 1"),
    ("seed=5", "error: seo_squeezesr_kd: seed=5 seeds only what is not repeated over seeds; the trained runs follow "
               "seeds=[0]: give seeds=[5] (with seed as well to change both)"),
    ("seeds=[3, 4]", [3, 4]),
]


@pytest.mark.parametrize("text,expected", OVERRIDES)
def test_overrides_read_as_the_user_typed_them(text, expected, capsys):
    from srcore import reproduce
    code = reproduce.main(["--paper", "seo_squeezesr_kd", "--profile", "quick", "-p", text, "--dry-run"])
    out, err = capsys.readouterr()
    if isinstance(expected, str) and expected.startswith("error: "):
        assert code == 2 and err.strip() == expected
        return
    assert code == 0, err
    got = json.loads(out.split(": ", 1)[1])[text.split("=")[0]]
    assert got == expected and type(got) is type(expected)


def test_profile_files_read_scientific_notation_as_numbers(tmp_path, monkeypatch):
    """The profile files go through the same parser: `lr: 2e-4` there is a float, not a string."""
    text = "lr: 2e-4\nsteps: 1e5\nname: a note\n"
    assert yaml.load(text, Loader=config._Loader) == {"lr": 2e-4, "steps": 1e5, "name": "a note"}
    assert yaml.safe_load(text)["lr"] == "2e-4"  # what plain YAML 1.1 makes of it
    original = config._parse
    monkeypatch.setattr(config, "_parse", lambda name: {**original(name), "lr": yaml.load("2e-4", Loader=config._Loader)}
                        if name == "seo_squeezesr_kd" else original(name))
    assert config.load("seo_squeezesr_kd", "paper").lr == 2e-4


def test_seed_with_seeds_is_taken_as_given():
    P = config.load("seo_squeezesr_kd", "quick", seed=5, seeds=[0, 1])
    assert (P.seed, P.seeds) == (5, [0, 1])
    with pytest.raises(config.ParameterError, match="repeats a value"):
        config.load("seo_squeezesr_kd", "quick", seeds=[1, 1])

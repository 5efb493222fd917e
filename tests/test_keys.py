"""A run's key holds exactly what its code reads: every paper's smoke runs, every parameter changed in turn.

Each smoke run writes ``settings.json`` beside its checkpoint: the parameters its build read (with their values),
the runs it used, and the key made of them. For every paper and every one of its parameters, a changed value gives
a new key to exactly the runs that read it; the reads themselves are checked against what each paper's text says
its runs depend on. tests/test_<paper>.py run a notebook again with one changed parameter and check which runs
train again.
"""
import json

import pytest

from srcore.paper import config, runs

# what every trained run reads to draw its patches and set its schedule (srcore.paper.runs.Runs.fit)
TRAINING = {"autocast", "batch_size", "lr", "lr_gamma", "lr_milestones", "train_limit", "train_sets"}


def other(value):
    """Another value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return [*value, *(value[:1] or [1])]
    if isinstance(value, dict):
        return {**value, "x": 1}
    return "x"


def smoke_settings(smoke_run, paper) -> dict[str, dict]:
    out = smoke_run(paper)
    return {f.parent.name: json.loads(f.read_text()) for f in (out.parent / "checkpoints" / paper).glob("*/settings.json")}


@pytest.mark.notebook
@pytest.mark.parametrize("paper", config.papers())
def test_a_changed_parameter_gives_new_keys_to_exactly_the_runs_that_read_it(smoke_run, paper):
    found = smoke_settings(smoke_run, paper)
    assert found, f"{paper}: no trained run in its smoke profile"
    P = config.load(paper, "smoke")
    for folder, s in found.items():
        shape = {k: v for k, v in s.items() if k != "key"}
        assert runs.settings_key(shape) == s["key"] and folder.endswith(s["key"])
        assert TRAINING <= set(shape["parameters"]), (folder, TRAINING - set(shape["parameters"]))
        for name in dict(P):
            value = json.loads(json.dumps(dict.get(P, name)))  # as settings.json holds it
            read = name in shape["parameters"]
            if read:  # the value the run read is the profile's
                assert shape["parameters"][name] == value, (folder, name)
            changed = {**shape, "parameters": {**shape["parameters"], **({name: other(value)} if read else {})}}
            assert (runs.settings_key(changed) != s["key"]) == read, (folder, name)


def reads(found: dict, name: str) -> set[str]:
    """The parameters that the run called ``name`` read (the first scale's, seed 0), training ones aside."""
    s = next(s for s in found.values() if s["name"] == name)
    return set(s["parameters"]) - TRAINING


@pytest.mark.notebook
def test_each_run_reads_what_its_paper_says_shapes_it(smoke_run):
    seo = smoke_settings(smoke_run, "seo_squeezesr_kd")
    assert reads(seo, "EDSR-T") == {"lr_patch", "small_images", "teacher_feats", "teacher_modules"}
    assert reads(seo, "SqueezeSR") == {"lr_patch", "small_images", "student_feats", "student_squeeze", "student_upsampler"}
    # + the loss weights, the adapters' width, and the teacher of its scale
    assert reads(seo, "SqueezeSR-KD") == reads(seo, "SqueezeSR") | {"sr_weight", "kd_weight", "teacher_feats"}
    for kd in (s for s in seo.values() if s["name"] == "SqueezeSR-KD"):
        assert [k.rsplit("-", 1)[0] for k in kd["runs"]] == [f"EDSR-T_x{kd['scale']}"]

    moon = smoke_settings(smoke_run, "moon2023_clsd")
    assert {"fakd_alpha", "fakd_weight"} <= reads(moon, "FAKD") and not {"lfd_weight", "clsd_beta"} & reads(moon, "FAKD")
    assert {"clsd_beta", "clsd_form", "head_taps"} <= reads(moon, "CLSD") and "fakd_weight" not in reads(moon, "CLSD")
    assert "ds_alpha" not in reads(moon, "L_SR+L_ASR")  # Table 5's ablation is DS with alpha 0

    lee2022 = smoke_settings(smoke_run, "lee2022_mutual_srgan")
    assert not {"md_weight", "temperature"} & reads(lee2022, "Independent")
    assert "md_weight" in reads(lee2022, "ML") and "temperature" not in reads(lee2022, "ML")
    assert {"md_weight", "temperature"} <= reads(lee2022, "ML*")

    lee2021 = smoke_settings(smoke_run, "lee2021_srgan_kd")
    assert "kd_weight" in reads(lee2021, "GAN2G") and "adv_weight" not in reads(lee2021, "GAN2G")  # no D in GAN2G
    assert "kd_weight" not in reads(lee2021, "Student") and "adv_weight" in reads(lee2021, "Student")

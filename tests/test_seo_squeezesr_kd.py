"""seo_squeezesr_kd's notebook reuses trained work by its settings (smoke profile, embedded photos, 2 steps)."""
import pytest
from conftest import check_seeds, execute, no_data_smoke, provenance, read_values

TINY = dict(scales=[2], fig_scale=2, methods=["EDSR-T", "SqueezeSR-KD"], teacher_steps=2, student_steps=2, runtime_images=1)


def psnr(out, method):
    v = read_values(out)
    return v[(v.dataset == "embedded") & (v.method == method) & (v.metric == "PSNR")].reproduced.tolist()


@pytest.mark.notebook
def test_another_loss_weight_trains_again_an_identical_rerun_trains_nothing(tmp_path, monkeypatch):
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)
    first = execute("seo_squeezesr_kd", tmp_path / "first", **TINY)
    assert provenance(first)["trained_steps"] == 4  # EDSR-T and SqueezeSR-KD, 2 steps each

    again = execute("seo_squeezesr_kd", tmp_path / "again", **TINY)  # same checkpoint folder, same settings
    prov = provenance(again)
    assert prov["trained_steps"] == 0 and len(prov["reused_runs"]) == 2
    assert psnr(again, "SqueezeSR-KD") == psnr(first, "SqueezeSR-KD")

    other = execute("seo_squeezesr_kd", tmp_path / "other", **TINY, kd_weight=0.25)
    prov = provenance(other)
    assert prov["trained_steps"] == 2  # the student only: the teacher's settings did not change
    assert [r["name"] for r in prov["runs"].values() if r["reused"]] == ["EDSR-T"]
    assert psnr(other, "EDSR-T") == psnr(first, "EDSR-T")
    assert psnr(other, "SqueezeSR-KD") != psnr(first, "SqueezeSR-KD")


@pytest.mark.notebook
def test_seeds_repeat_every_trained_run_and_report_mean_and_sd(tmp_path, monkeypatch):
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)
    values, _ = check_seeds("seo_squeezesr_kd", tmp_path, **TINY)
    assert set(values[values.n_seeds == 2].method) == {"EDSR-T", "SqueezeSR-KD"}  # bicubic: no seed shapes it


@pytest.mark.notebook
def test_smoke_runs_with_no_data_at_all(tmp_path, monkeypatch):
    """No SRCORE_DATA and no data/ folder: the smoke profile trains and evaluates on scikit-image's photos."""
    v = no_data_smoke("seo_squeezesr_kd", tmp_path, monkeypatch, scales=[4], teacher_steps=2, student_steps=2,
                      runtime_images=1)
    published_rows = v[v.published.notna()]
    assert len(published_rows) == 36
    assert published_rows.status.str.startswith("n/a: benchmark data not found").all()
    assert set(v[v.dataset == "embedded"].method) == {"Bicubic", "EDSR-T", "SqueezeSR", "SqueezeSR-KD"}

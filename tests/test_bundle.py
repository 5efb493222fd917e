"""srcore.bundle: what a bundle holds, its size limit, packing a run's output, and a rehearsal of the GPU path.

The rehearsal (test_rehearsal_seo_x2) builds a real bundle for this machine's Python (papermill and
ipykernel as wheels from PyPI, cached in the checkout's .whl/), runs its run.sh in a virtual
environment holding only the GPU image's packages, with the image's torch, torchvision and triton
(installed once from PyPI into .whl/), and reads back what came out.
"""
import json
import os
import subprocess
import tarfile

import numpy as np
import pandas as pd
import pytest
import torch

from srcore import bundle, config


def test_read_targets_normalizes_names(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("# the image\nTyping_Extensions\nscikit-image==0.25  # pinned\n\nruamel.yaml\n")
    assert bundle.read_targets(f) == {"typing-extensions", "scikit-image", "ruamel-yaml"}


def test_default_target_lacks_the_runner_but_has_torch():
    targets = bundle.read_targets(bundle.DEFAULT_TARGET)
    assert {"torch", "torchvision", "numpy", "pandas", "scikit-image", "matplotlib", "pyyaml"} <= targets
    assert not {"papermill", "nbclient", "ipykernel", "ipython", "pyiqa"} & targets


def test_seo_x2_reads_only_its_images(data_root):
    p = bundle.plan("seo_squeezesr_kd", "quick", [2], data_root=data_root)
    assert p.overrides == {"scales": [2], "fig_scale": 2}  # Fig. 2 drawn at the scale this call trains
    q = config.load("seo_squeezesr_kd", "quick")
    assert len(p.data["train/T91"]) == min(q.train_limit, 91)
    assert len(p.data["train/BSD200"]) == q.train_limit
    urban = p.data["benchmark/Urban100"]
    assert len(urban) == q.eval_limit["Urban100"] and "benchmark/Urban100/HR/img_004.png" in urban
    set5 = p.data["benchmark/Set5"]  # HR plus the x2 LR files only: x3 and x4 are not read by this call
    assert len(set5) == 10 and all("/X3/" not in f and "/X4/" not in f for f in set5)
    assert "benchmark/Set5/LR_bicubic/X2/babyx2.png" in set5


def test_figure_images_beyond_the_eval_limit_are_carried(data_root):
    p = bundle.plan("moon2023_clsd", "quick", [2], {"eval_limit": {"Urban100": 2, "BSD100": 1}}, data_root=data_root)
    stems = sorted(f.rsplit("/", 1)[1] for f in p.data["benchmark/Urban100"])
    assert stems == ["img_001.png", "img_002.png", "img_062.png", "img_066.png", "img_092.png"]
    # lee2021 draws its rated images from the whole of Set5 and Set14, whatever eval_limit says
    p = bundle.plan("lee2021_srgan_kd", "quick", None, {"eval_limit": {"Set5": 1, "Set14": 1, "Urban100": 1}},
                    data_root=data_root)
    assert len([f for f in p.data["benchmark/Set14"] if "/HR/" in f]) == 14


def test_scales_refused_for_a_single_scale_paper(data_root):
    with pytest.raises(bundle.BundleError, match="one scale"):
        bundle.plan("baek2024_esrgan_prune_kd", "quick", [2], data_root=data_root)


def test_too_large_is_refused_before_anything_is_written(tmp_path, data_root):
    out = tmp_path / "b"
    with pytest.raises(bundle.BundleError) as e:
        bundle.build("seo_squeezesr_kd", out, "quick", max_mib=20, data_root=data_root)
    msg = str(e.value)
    assert "over --max-mib 20" in msg and "data/train/BSD200" in msg and "data/benchmark/Urban100" in msg
    assert "train_limit=N; now 91" in msg and "fewer Urban100 images" in msg
    assert "--scales" not in msg  # LR files per scale are 1% of seo's data: one scale per call would not help
    assert not out.exists()


def _fake_dist(site, name, version, requires=()):
    """A distribution with one module ``<name>/__init__.py`` that records where it came from."""
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text(f"__version__ = {version!r}\n")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                   + "".join(f"Requires-Dist: {r}\n" for r in requires))
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


def test_target_venv_takes_the_overlay_in_place_of_the_lock(tmp_path):
    """The rehearsal's image torch: overlaid names come from the overlay; what they require, from the site."""
    site, overlay = tmp_path / "site", tmp_path / "overlay"
    _fake_dist(site, "fakevision", "9.0", ["faketorch==9.0"])
    _fake_dist(site, "faketorch", "9.0", ["fakecudnn==9.24"])
    _fake_dist(site, "fakecudnn", "9.24")
    _fake_dist(site, "fakenumpy", "2.4")
    _fake_dist(site, "fakeextra", "1.0")  # neither a target nor required: missing from the venv
    _fake_dist(overlay, "fakevision", "7.0", ["faketorch==7.0"])
    _fake_dist(overlay, "faketorch", "7.0", ["fakecudnn==9.19"])  # the lock's 9.24 stands in
    py = bundle.target_venv(tmp_path / "venv", {"fakevision", "fakenumpy"}, source_site=site, overlay=overlay)
    code = "import fakevision, faketorch, fakecudnn, fakenumpy; print(fakevision.__version__, faketorch.__version__, " \
           "fakecudnn.__version__, fakenumpy.__version__)"
    assert subprocess.run([py, "-c", code], capture_output=True, text=True, check=True).stdout.split() == \
        ["7.0", "7.0", "9.24", "2.4"]
    assert subprocess.run([py, "-c", "import fakeextra"], capture_output=True, check=False).returncode != 0


def _fake_run(work, paper="seo_squeezesr_kd"):
    runs = work / "runs"
    (runs / paper / "tables").mkdir(parents=True)
    (runs / paper / "values.csv").write_text("paper,metric\nseo_squeezesr_kd,PSNR\n")
    (runs / "executed").mkdir()
    (runs / "executed" / f"{paper}.ipynb").write_text("{}")
    run = runs / "checkpoints" / paper / "SqueezeSR_x2-abc"
    run.mkdir(parents=True)
    net = torch.nn.Conv2d(3, 3, 3)
    opt = torch.optim.Adam(net.parameters())
    torch.save({"step": 7, "nets": {"net": net.state_dict()}, "optimizers": {"net": opt.state_dict()}}, run / "last.pt")
    (run / "log.csv").write_text("step,l1\n7,0.1\n")
    return net


def test_collect_packs_results_logs_and_final_weights(tmp_path):
    net = _fake_run(tmp_path / "work")
    out = tmp_path / "out" / "a"
    files = bundle.collect(tmp_path / "work", out, "seo_squeezesr_kd", status="stopped (TERM)")
    assert sorted(f.name for f in files) == ["seo_squeezesr_kd.ipynb", "seo_squeezesr_kd_results.tar.gz",
                                             "seo_squeezesr_kd_weights.tar.gz"]
    with tarfile.open(out / "seo_squeezesr_kd_results.tar.gz") as tar:
        names = tar.getnames()
    assert "seo_squeezesr_kd/values.csv" in names and "training/SqueezeSR_x2-abc/log.csv" in names
    assert not any(n.endswith(".pt") for n in names)  # checkpoints (with optimizer state) stay behind
    with tarfile.open(out / "seo_squeezesr_kd_weights.tar.gz") as tar:
        tar.extractall(tmp_path / "w", filter="data")
    saved = torch.load(tmp_path / "w" / "weights" / "SqueezeSR_x2-abc" / "net.pt")
    assert saved["step"] == 7 and set(saved) == {"state_dict", "dtype", "step", "run"}
    assert torch.equal(saved["state_dict"]["weight"], net.weight.detach().half())
    assert json.loads((out / "run.json").read_text())["status"] == "stopped (TERM)"


@pytest.mark.notebook
def test_rehearsal_seo_x2(tmp_path, data_root, monkeypatch):
    """The whole GPU path on CPU: bundle (this Python's wheels), target-only venv, run.sh, OUT read back."""
    monkeypatch.setenv("SRCORE_DATA", str(data_root))
    small = {"train_limit": 2, "eval_sets": ["Set5"], "eval_limit": {"Set5": 1}}
    steps = ["teacher_steps=2", "student_steps=2", "lr_patch=16", "batch_size=2", "runtime_images=1"]
    r = bundle.rehearse("seo_squeezesr_kd", tmp_path, "quick", [2], small, steps)
    log = (r["out"] / "run.log").read_text()
    assert r["returncode"] == 0, log[-3000:]
    venv_py = tmp_path / "venv" / "bin" / "python"
    # papermill & co came from the bundle's wheels: the environment itself has none of them
    assert os.system(f"{venv_py} -c 'import papermill' 2>/dev/null") != 0
    # the image's torch, torchvision and triton; this interpreter's (the lock's) numpy, pandas and scikit-image
    v = r["versions"]
    assert v["torch"].startswith(bundle.IMAGE_VERSIONS["torch"] + "+cu") and v["torch"] != torch.__version__
    assert v["torchvision"].split("+")[0] == bundle.IMAGE_VERSIONS["torchvision"]
    assert (v["numpy"], v["pandas"]) == (np.__version__, pd.__version__)
    assert {n: x.split("+")[0] for n, x in v.items() if n != "cuda"} == bundle.expected_versions()
    assert f"torch {v['torch']}" in log  # what run.sh itself imported
    assert set(r["files"]) <= {"run.log", "run.json", "seo_squeezesr_kd.ipynb", "seo_squeezesr_kd_results.tar.gz",
                               "seo_squeezesr_kd_weights.tar.gz"}
    assert all((r["out"] / f).stat().st_size <= 16 * 2**20 for f in r["files"])
    assert "srcore.reproduce exited with 0" in log
    with tarfile.open(r["out"] / "seo_squeezesr_kd_results.tar.gz") as tar:
        tar.extractall(tmp_path / "back", filter="data")
    back = tmp_path / "back"
    values = pd.read_csv(back / "seo_squeezesr_kd" / "values.csv", dtype={"scale": str, "published": str})
    x2 = values[(values.scale == "2") & (values.dataset == "Set5") & (values.method != "Bicubic")]
    assert len(x2) == 6 and (x2.status == "reproduced").all() and (x2.steps == 2).all()  # 3 methods x PSNR/SSIM
    assert values[values.scale != "2"].status.str.startswith("n/a").all()
    prov = json.loads((back / "seo_squeezesr_kd" / "provenance.json").read_text())
    built = json.loads((back / "bundle.json").read_text())
    assert prov["commit"] == built["commit"] and prov["overrides"]["scales"] == [2]
    assert (back / "executed" / "seo_squeezesr_kd.ipynb").is_file()
    assert (back / "training").is_dir() and any(n.startswith("EDSR-T_x2") for n in os.listdir(back / "training"))

    # stopped from outside: still a log, a status and whatever was written
    out = tmp_path / "out" / "stopped"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SRCORE_DATA")}
    env.update(PATH=f"{venv_py.parent}:{env['PATH']}", RUN_LIMIT_S="12", GRACE_S="20",
               WORK=str(tmp_path / "scratch2"))
    rc = os.spawnvpe(os.P_WAIT, str(tmp_path / "bundle" / "run.sh"),
                     [str(tmp_path / "bundle" / "run.sh"), str(out), "-p", "teacher_steps=100000"], env)
    assert rc == 143
    assert "stopping the run" in (out / "run.log").read_text()
    assert json.loads((out / "run.json").read_text())["status"] == "stopped (TERM)"
    assert (out / "seo_squeezesr_kd_results.tar.gz").is_file()


def test_weights_spread_over_archives_of_16_mib(tmp_path):
    """Four 6 MB generators: two per archive; with one archive allowed the rest is listed as left behind."""
    work = tmp_path / "work"
    _fake_run(work)
    for i in range(4):
        run = work / "runs" / "checkpoints" / "seo_squeezesr_kd" / f"S{i}"
        run.mkdir()
        torch.save({"step": 1, "nets": {"G": {"w": torch.rand(3_000_000)}}}, run / "last.pt")  # 6 MB in float16
    files = bundle.collect(work, tmp_path / "out3", "seo_squeezesr_kd")
    archives = sorted(f.name for f in files if "_weights" in f.name)
    assert archives == ["seo_squeezesr_kd_weights.tar.gz", "seo_squeezesr_kd_weights_2.tar.gz"]
    assert all(f.stat().st_size <= 16 * 2**20 for f in files)
    bundle.collect(work, tmp_path / "out1", "seo_squeezesr_kd", weight_archives=1)
    summary = json.loads((tmp_path / "out1" / "run.json").read_text())
    assert len(summary["weights_left_behind"]) == 2 and all(n.endswith("G.pt") for n in summary["weights_left_behind"])

"""srcore.bundle: what a bundle holds, its optional size limit, packing a run's output, and a rehearsal of the
offline path (test_rehearsal_seo_smoke): a real bundle for this machine's Python (papermill and ipykernel as
wheels from PyPI, cached in the checkout's .whl/), run by its run.sh in a virtual environment that holds only an
example node's packages, and what came out read back.
"""
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from srcore import bundle
from srcore.paper import config

EXAMPLE_NODE = Path(bundle.PROJECT_ROOT) / "docs" / "examples" / "node-packages-pytorch-2.11-cuda.txt"


def test_read_targets_takes_names_and_pinned_versions(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("# the node\nTyping_Extensions\nscikit-image==0.25  # pinned\ntorch==2.11.0+cu130\n-e git+https://x\n"
                 "\nruamel.yaml\n")
    assert bundle.read_targets(f) == {"typing-extensions": None, "scikit-image": "0.25", "torch": "2.11.0+cu130",
                                      "ruamel-yaml": None}
    assert bundle.read_targets(None) == {}  # no list: the node has only Python


def test_the_example_node_has_torch_and_lacks_the_runner():
    targets = bundle.read_targets(EXAMPLE_NODE)
    assert {"torch", "torchvision", "numpy", "pandas", "scikit-image", "matplotlib", "pyyaml"} <= set(targets)
    assert not {"papermill", "nbclient", "ipykernel", "ipython", "pyiqa"} & set(targets)


def test_a_run_reads_whole_sets_and_a_cut_is_an_override(data_root):
    P = config.load("seo_squeezesr_kd", "quick")
    files = bundle.data_files("seo_squeezesr_kd", P, data_root)
    assert len(files["train/T91"]) == 91 and len(files["train/BSD200"]) == 200  # whole training sets
    assert len([f for f in files["benchmark/Urban100"] if "/HR/" in f]) == 100
    set5 = files["benchmark/Set5"]  # HR plus the LR files the data root has (x2, x3, x4)
    assert len(set5) == 20 and "benchmark/Set5/LR_bicubic/X2/babyx2.png" in set5
    P = config.load("seo_squeezesr_kd", "quick", eval_limit={"Urban100": 2}, train_limit=3)
    files = bundle.data_files("seo_squeezesr_kd", P, data_root)
    assert len(files["train/BSD200"]) == 3
    stems = sorted(f.rsplit("/", 1)[1] for f in files["benchmark/Urban100"])  # Fig. 2's image rides along
    assert stems == ["img_001.png", "img_002.png", "img_004.png"]


def test_figure_images_beyond_the_eval_limit_and_pools_are_carried(data_root):
    P = config.load("moon2023_clsd", "quick", eval_limit={"Urban100": 2, "BSD100": 1})
    stems = sorted(f.rsplit("/", 1)[1] for f in bundle.data_files("moon2023_clsd", P, data_root)["benchmark/Urban100"])
    assert stems == ["img_001.png", "img_002.png", "img_062.png", "img_066.png", "img_092.png"]
    # lee2021 draws its rated images from the whole of Set5 and Set14, whatever eval_limit says
    P = config.load("lee2021_srgan_kd", "smoke", eval_limit={"Set5": 1, "Set14": 1, "Urban100": 1})
    files = bundle.data_files("lee2021_srgan_kd", P, data_root)
    assert len([f for f in files["benchmark/Set14"] if "/HR/" in f]) == 14


def test_no_size_limit_unless_asked_and_a_limit_refuses_before_writing(tmp_path, data_root, monkeypatch):
    monkeypatch.setattr(bundle, "resolve_wheels", lambda *a, **k: [])  # wheels need PyPI: not what this checks
    out = tmp_path / "b"
    with pytest.raises(bundle.BundleError) as e:
        bundle.build("seo_squeezesr_kd", out, "quick", max_mib=20, data_root=data_root)
    msg = str(e.value)
    assert "over --max-mib 20" in msg and "data/train/BSD200" in msg and "-p train_limit=N" in msg
    assert not out.exists()
    p = bundle.build("seo_squeezesr_kd", out, "quick", {"eval_limit": {"Urban100": 1}}, data_root=data_root)
    assert p.mib > 20 and (out / "run.sh").is_file() and (out / "data" / "train" / "BSD200").is_dir()
    manifest = json.loads((out / "bundle.json").read_text())
    assert manifest["overrides"] == {"eval_limit": {"Urban100": 1}} and manifest["target_packages"] is None
    assert "-p 'eval_limit={\"Urban100\": 1}'" in (out / "run.sh").read_text()


def test_help_states_no_default_limit(capsys):
    with pytest.raises(SystemExit):
        bundle.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "refuse a bundle larger than this many MiB (default: no limit)" in text
    assert "pip freeze > node.txt" in text and "Nothing is capped, trimmed or split unless an option asks for it" in text


def _fake_dist(site, name, version, requires=()):
    """A distribution with one module ``<name>/__init__.py`` that records where it came from."""
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text(f"__version__ = {version!r}\n")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                   + "".join(f"Requires-Dist: {r}\n" for r in requires))
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


def test_target_venv_holds_only_the_nodes_packages_and_what_they_require(tmp_path):
    site = tmp_path / "site"
    _fake_dist(site, "fakevision", "9.0", ["faketorch==9.0"])
    _fake_dist(site, "faketorch", "9.0", ["fakecudnn==9.24"])
    _fake_dist(site, "fakecudnn", "9.24")
    _fake_dist(site, "fakeextra", "1.0")  # neither listed nor required: missing from the venv
    py = bundle.target_venv(tmp_path / "venv", {"fakevision"}, source_site=site)
    code = "import fakevision, faketorch, fakecudnn; print(fakevision.__version__, fakecudnn.__version__)"
    assert subprocess.run([py, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["9.0", "9.24"]
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


def test_weights_in_one_archive_unless_split(tmp_path):
    """Four 6 MB generators: one archive by default; with split_mib=16, two per archive."""
    work = tmp_path / "work"
    _fake_run(work)
    for i in range(4):
        run = work / "runs" / "checkpoints" / "seo_squeezesr_kd" / f"S{i}"
        run.mkdir()
        torch.save({"step": 1, "nets": {"G": {"w": torch.rand(3_000_000)}}}, run / "last.pt")  # 6 MB in float16
    files = bundle.collect(work, tmp_path / "one", "seo_squeezesr_kd")
    assert [f.name for f in files if "_weights" in f.name] == ["seo_squeezesr_kd_weights.tar.gz"]
    files = bundle.collect(work, tmp_path / "split", "seo_squeezesr_kd", split_mib=16)
    archives = sorted(f.name for f in files if "_weights" in f.name)
    assert archives == ["seo_squeezesr_kd_weights.tar.gz", "seo_squeezesr_kd_weights_2.tar.gz"]
    assert all(f.stat().st_size <= 16 * 2**20 for f in files)


@pytest.mark.notebook
def test_rehearsal_seo_smoke(tmp_path, data_root, monkeypatch):
    """The whole offline path on this machine: bundle (this Python's wheels), a venv holding only the example node's
    packages, run.sh, OUT read back; then run.sh stopped by RUN_LIMIT_S still packs what was written."""
    monkeypatch.setenv("SRCORE_DATA", str(data_root))
    r = bundle.rehearse("seo_squeezesr_kd", tmp_path, "smoke", {"scales": [2], "fig_scale": 2},
                        target_packages=EXAMPLE_NODE)
    log = (r["out"] / "run.log").read_text()
    assert r["returncode"] == 0, log[-3000:]
    venv_py = tmp_path / "venv" / "bin" / "python"
    # papermill & co came from the bundle's wheels: the environment itself has none of them
    assert subprocess.run([venv_py, "-c", "import papermill"], capture_output=True).returncode != 0
    assert f"torch {torch.__version__}" in log  # the node's torch (here: this interpreter's), not a bundled one
    assert set(r["files"]) == {"run.log", "run.json", "seo_squeezesr_kd.ipynb", "seo_squeezesr_kd_results.tar.gz",
                               "seo_squeezesr_kd_weights.tar.gz"}
    assert "srcore.reproduce exited with 0" in log
    with tarfile.open(r["out"] / "seo_squeezesr_kd_results.tar.gz") as tar:
        tar.extractall(tmp_path / "back", filter="data")
    back = tmp_path / "back"
    values = pd.read_csv(back / "seo_squeezesr_kd" / "values.csv", dtype={"scale": str, "published": str})
    x2 = values[(values.scale == "2") & (values.dataset == "Set5") & (values.method != "Bicubic")]
    assert len(x2) == 6 and (x2.status == "reproduced").all()  # 3 methods x PSNR/SSIM
    assert values[values.scale != "2"].status.str.startswith("n/a").all()
    prov = json.loads((back / "seo_squeezesr_kd" / "provenance.json").read_text())
    built = json.loads((back / "bundle.json").read_text())
    assert prov["commit"] == built["commit"] and prov["overrides"]["scales"] == [2]
    assert (back / "training").is_dir() and any(n.startswith("EDSR-T_x2") for n in os.listdir(back / "training"))

    # stopped from outside: still a log, a status and whatever was written
    out = tmp_path / "stopped"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SRCORE_DATA")}
    env.update(PATH=f"{venv_py.parent}:{env['PATH']}", RUN_LIMIT_S="12", GRACE_S="20", WORK=str(tmp_path / "scratch2"))
    rc = subprocess.run([tmp_path / "bundle" / "run.sh", out, "-p", "teacher_steps=100000"], env=env).returncode
    assert rc == 143
    assert "stopping the run" in (out / "run.log").read_text()
    assert json.loads((out / "run.json").read_text())["status"] == "stopped (TERM)"
    assert (out / "seo_squeezesr_kd_results.tar.gz").is_file()

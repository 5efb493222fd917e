"""srcore.pretrained.releases and srcore.download.fetch_release: the catalogue, load_teacher, and fetching on loopback.

The release files stand in as small files: the official-weights fixture's EDSR x2 (an
EDSR-PyTorch state_dict) under the name of the real edsr_x2 release. Nothing leaves 127.0.0.1.
"""
import dataclasses
import hashlib
import re

import pytest
import torch
from conftest import ROOT
from test_download import TIMEOUT, _serving

from srcore import download
from srcore.download import DownloadError, fetch_release
from srcore.pretrained import releases
from srcore.pretrained.releases import (
    RELEASES,
    ChecksumMismatch,
    load_reference,
    load_teacher,
)
from srcore.pretrained.weights import WeightsUnavailable

EDSR_FIXTURE = ROOT.parent / "shared" / "fixtures" / "official_weights" / "edsr_x2_r4f16_rs1.pt"
needs_fixture = pytest.mark.skipif(not EDSR_FIXTURE.is_file(), reason=f"no official-weights fixture {EDSR_FIXTURE}")
PAPERS = {"moon2023_clsd", "baek2024_esrgan_prune_kd", "lee2021_srgan_kd"}


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("SRCORE_WEIGHTS", str(folder))
    return folder


def put_release(folder, name: str) -> bytes:
    """The fixture's EDSR x2 state_dict (EDSR-PyTorch layout, bare as the release) saved as release ``name``."""
    sd = torch.load(EDSR_FIXTURE, weights_only=True)["state_dict"]
    torch.save(sd, folder / RELEASES[name].file)
    return (folder / RELEASES[name].file).read_bytes()


def test_catalogue_entries_are_complete_and_honest():
    for name, r in RELEASES.items():
        assert r.name == name and r.paper in PAPERS and r.role in releases.ROLES and r.scale in (2, 3, 4)
        assert r.url.startswith("https://") and r.licence and r.source and r.network
        assert r.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", r.sha256)
        assert r.sha256 is not None or r.sha256_note  # an unknown checksum says why
    teachers = {(r.paper, r.scale) for r in RELEASES.values() if r.role == "teacher"}
    assert {("moon2023_clsd", s) for s in (2, 3, 4)} | {("baek2024_esrgan_prune_kd", 4), ("lee2021_srgan_kd", 4)} <= teachers


def test_reference_release_is_moon2023s_official_edsr_baseline():
    assert releases.reference_release("moon2023_clsd", 3).file == "edsr_baseline_x3-abf2a44e.pt"
    assert releases.reference_release("lee2021_srgan_kd", 4) is None


def test_missing_official_teacher_names_file_and_folder_before_any_work(weights_dir, monkeypatch):
    monkeypatch.setattr(releases, "load_release_file", lambda *a, **k: pytest.fail("read something"))
    with pytest.raises(WeightsUnavailable) as err:
        load_teacher("official", paper="baek2024_esrgan_prune_kd", scale=4)
    msg = str(err.value)
    assert "RRDB_ESRGAN_x4.pth or ESRGAN_SRx4_DF2KOST_official-ff704c30.pth" in msg and str(weights_dir) in msg
    with pytest.raises(WeightsUnavailable, match="no official teacher release for lee2021_srgan_kd at x2"):
        load_teacher("official", paper="lee2021_srgan_kd", scale=2)


def test_missing_path_names_the_folders_looked_in(weights_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsUnavailable) as err:
        load_teacher("my_teacher.pth", paper="moon2023_clsd", scale=2)
    assert "my_teacher.pth not found in" in str(err.value)
    assert str(tmp_path) in str(err.value) and str(weights_dir) in str(err.value)
    with pytest.raises(ValueError, match="'train' means"):
        load_teacher("train", paper="moon2023_clsd", scale=2)


@needs_fixture
def test_official_teacher_from_the_weights_folder(weights_dir):
    data = put_release(weights_dir, "edsr_x2")
    net, info = load_teacher("official", paper="moon2023_clsd", scale=2)
    assert not net.training and net.cfg.n_feats == 16  # the stand-in's size, read off its tensors
    assert info == {"file": "edsr_x2-0edfb8a3.pt", "path": str(weights_dir / "edsr_x2-0edfb8a3.pt"),
                    "sha256": hashlib.sha256(data).hexdigest(), "release": "edsr_x2"}
    with pytest.raises(ValueError, match="x2 network, the run is x4"):
        load_teacher(str(weights_dir / "edsr_x2-0edfb8a3.pt"), paper="moon2023_clsd", scale=4)


@needs_fixture
def test_a_path_is_loaded_and_a_bare_name_found_in_the_weights_folder(weights_dir, tmp_path):
    put_release(weights_dir, "edsr_x2")
    (tmp_path / "mine.pt").write_bytes((weights_dir / "edsr_x2-0edfb8a3.pt").read_bytes())
    _, info = load_teacher(str(tmp_path / "mine.pt"), paper="moon2023_clsd", scale=2)
    assert info["release"] is None and info["file"] == "mine.pt"
    _, info = load_teacher("edsr_x2-0edfb8a3.pt", paper="moon2023_clsd", scale=2)
    assert info["release"] == "edsr_x2" and info["path"] == str(weights_dir / "edsr_x2-0edfb8a3.pt")


@needs_fixture
def test_checksum_is_verified_when_the_catalogue_has_one(weights_dir, monkeypatch):
    data = put_release(weights_dir, "edsr_x2")
    good = dataclasses.replace(RELEASES["edsr_x2"], sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    monkeypatch.setitem(RELEASES, "edsr_x2", good)
    assert load_teacher("official", paper="moon2023_clsd", scale=2)[1]["sha256"] == good.sha256
    monkeypatch.setitem(RELEASES, "edsr_x2", dataclasses.replace(good, sha256="0" * 64))
    with pytest.raises(ChecksumMismatch, match="a different or damaged file"):
        load_teacher("official", paper="moon2023_clsd", scale=2)
    monkeypatch.setitem(RELEASES, "edsr_x2", dataclasses.replace(good, size=len(data) + 1))
    with pytest.raises(ChecksumMismatch, match=f"has {len(data)} bytes"):
        load_teacher("official", paper="moon2023_clsd", scale=2)


@needs_fixture
def test_reference_row_only_when_its_file_is_there(weights_dir, monkeypatch):
    assert load_reference("moon2023_clsd", 2) is None
    put_release(weights_dir, "edsr_baseline_x2")
    net, info = load_reference("moon2023_clsd", 2)
    assert info["release"] == "edsr_baseline_x2" and not net.training


# --- fetching a release, on loopback ------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 32  # 8 KiB stand-in for a weights file


@pytest.fixture
def server():
    with _serving(honour_range=True) as s:
        yield s


@pytest.fixture
def release(monkeypatch):
    """edsr_x2 with the stand-in's size and SHA-256, as a catalogue entry with published values would be."""
    r = dataclasses.replace(RELEASES["edsr_x2"], size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setitem(RELEASES, "edsr_x2", r)
    return r


def test_fetch_release_resumes_and_verifies(server, release, weights_dir):
    server.files["/" + release.file] = PAYLOAD
    (weights_dir / (release.file + ".part")).write_bytes(PAYLOAD[:3000])  # an interrupted earlier run
    path = fetch_release("edsr_x2", base_url=server.base_url, timeout=TIMEOUT, progress=False)
    assert path == weights_dir / release.file and path.read_bytes() == PAYLOAD
    assert server.requests == [("/" + release.file, "bytes=3000-")]
    fetch_release("edsr_x2", base_url=server.base_url, timeout=TIMEOUT, progress=False)
    assert len(server.requests) == 1  # already there and verified: no request


def test_fetch_release_refuses_a_wrong_file(server, release, weights_dir, monkeypatch):
    server.files["/" + release.file] = PAYLOAD[:-1] + b"x"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch_release("edsr_x2", base_url=server.base_url, timeout=TIMEOUT, progress=False)
    server.files["/" + release.file] = PAYLOAD + b"more"
    with pytest.raises(DownloadError, match=f"gave {len(PAYLOAD) + 4} bytes, expected {len(PAYLOAD)}"):
        fetch_release("edsr_x2", base_url=server.base_url, timeout=TIMEOUT, progress=False)
    assert list(weights_dir.iterdir()) == []  # nothing half-written or wrong is left


def test_fetch_release_refuses_a_web_page(server, weights_dir, monkeypatch):
    page = b"<!DOCTYPE html><html><body>Google Drive can't scan this file for viruses</body></html>"
    monkeypatch.setitem(RELEASES, "esrgan_x4", dataclasses.replace(RELEASES["esrgan_x4"], size=None, sha256=None))
    server.files["/RRDB_ESRGAN_x4.pth"] = page
    with pytest.raises(DownloadError, match="web page, not the weights file"):
        fetch_release("esrgan_x4", base_url=server.base_url, timeout=TIMEOUT, progress=False)
    assert not (weights_dir / "RRDB_ESRGAN_x4.pth").exists()


def test_release_cli(server, release, tmp_path, capsys):
    server.files["/" + release.file] = PAYLOAD
    assert download.main(["release", "edsr_x2", "--dir", str(tmp_path), "--base-url", server.base_url]) == 0
    assert (tmp_path / release.file).read_bytes() == PAYLOAD
    assert "edsr_x2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        download.main(["release", "edsr_x9"])

"""python -m srcore.evaluate CHECKPOINT --scale S and python -m srcore.upscale CHECKPOINT INPUT OUTPUT.

Checkpoints are the official-layout fixtures (../shared/fixtures/official_weights, see its README.md):
small random-weight networks in each release's key layout and wrapper, with the official code's output
for a fixed input. Random weights score ~10 dB: only agreement with the official outputs, the tables,
the files written and the refusals are checked here, never quality. Set5 is the only set scored.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image

from srcore import data, evaluate, nets, upscale
from srcore.pretrained import checkpoints, releases, weights
from srcore.resize import imresize

FIXTURES = ROOT.parent / "shared" / "fixtures" / "official_weights"
EDSR = "edsr_x2_r4f16_rs1.pt"  # EDSR-PyTorch layout, x2, 4 blocks x 16: released as a bare state_dict

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"no official-weights fixtures at {FIXTURES}")


def fixture(name: str) -> dict:
    return torch.load(FIXTURES / name, weights_only=True)


def as_released(path, sd: dict, wrapper: str | None):
    """The state_dict saved as its release ships it: bare, or under ``wrapper``."""
    torch.save({wrapper: sd} if wrapper else sd, path)
    return path


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the networks here are tiny, and torch's threads crawl on a busy CPU (20x on two shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def edsr_file(tmp_path):
    d = fixture(EDSR)
    return as_released(tmp_path / "edsr_x2_fixture.pt", d["state_dict"], d["checkpoint_wrapper"])


@pytest.fixture
def env(monkeypatch, data_root, tmp_path):
    """Set5 from the shared data; $SRCORE_WEIGHTS an empty folder (no release files, no NIQE weights)."""
    monkeypatch.setenv("SRCORE_DATA", str(data_root))
    monkeypatch.setenv("SRCORE_WEIGHTS", str(tmp_path / "weights"))
    (tmp_path / "weights").mkdir()
    return tmp_path


def save_png(img: np.ndarray, path) -> str:
    Image.fromarray(img).save(path)
    return str(path)


def lr_image(size=(40, 52), seed=0) -> np.ndarray:
    """A smooth-ish uint8 RGB image: a Set5-like gradient plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size[0], :size[1]]
    base = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1) % 256
    return np.clip(base + rng.integers(-20, 21, (*size, 3)), 0, 255).astype(np.uint8)


def refused(main, argv, capsys) -> str:
    """stderr of a command (its main) that refused its input: a non-zero exit, nothing on stdout, no traceback."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code != 0 and captured.out == "" and "Traceback" not in captured.err
    return captured.err


def table_of(stdout: str) -> str:
    """The Markdown table of a command's stdout."""
    return "".join(line + "\n" for line in stdout.splitlines() if line.startswith("|"))


# --- the official outputs, through the commands' own loading, SR and PNG paths ---------------------------------

# (fixture, state_dict entry, wrapper entry, output entry, output range)
OFFICIAL = {
    "edsr-pytorch": (EDSR, "state_dict", "checkpoint_wrapper", "output", 255),
    "basicsr-edsr": (EDSR, "state_dict_basicsr", "checkpoint_wrapper_basicsr", "output_basicsr", 1),
    "basicsr-rrdbnet": ("rrdbnet_x4_nf16_nb2_gc8.pt", "state_dict", "checkpoint_wrapper", "output", 1),
    "esrgan-rrdbnet": ("rrdbnet_x4_nf16_nb2_gc8.pt", "state_dict_esrgan", None, "output", 1),
    "lornatang-srresnet": ("srresnet_x4_c16_n2_lornatang.pt", "state_dict", "checkpoint_wrapper", "output", 1),
}


@pytest.mark.parametrize("layout", list(OFFICIAL))
def test_upscale_and_evaluate_reproduce_the_official_output(layout, tmp_path, capsys):
    # Tolerance after uint8 quantisation: at most 1 level, and 99% of the values exact. EDSR's input is
    # 8-bit (exact as a PNG); the RRDBNet and SRResNet inputs are not, so the PNG rounds them first.
    file, sd_key, wrapper_key, out_key, out_range = OFFICIAL[layout]
    d = fixture(file)
    ckpt = as_released(tmp_path / "ckpt.pth", d[sd_key], d.get(wrapper_key) if wrapper_key else None)
    lr = data.tensor_to_image(d["input"] / d["rgb_range"])  # (h,w,3) uint8
    expected = data.tensor_to_image(d[out_key] / out_range)  # the official output, quantised as srcore saves it
    assert upscale.main([str(ckpt), save_png(lr, tmp_path / "in.png"), str(tmp_path / "out.png")]) == 0
    got = np.asarray(Image.open(tmp_path / "out.png"))
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert got.shape == expected.shape and diff.max() <= 1 and (diff == 0).mean() >= 0.99, (diff.max(), (diff == 0).mean())
    assert "ckpt.pth" in capsys.readouterr().out

    # evaluate: the official output as HR scores (nearly) identical on Y, through srcore.evaluate.evaluate
    net = evaluate.open_checkpoint(ckpt).net
    scale = expected.shape[0] // lr.shape[0]
    df, _ = evaluate.evaluate(net, [data.Pair("fixture", expected, lr)], scale, progress=False, warmup=False)
    assert df.psnr[0] > 50 and df.ssim[0] > 0.999


# --- the acceptance, and the command's table against the Python function -----------------------------

def test_acceptance_score_upscale_and_wrong_scale(env, edsr_file, data_root, capsys):
    """EDSR x2 saved bare: Set5 scores with bicubic 33.67 dB beside it (MATLAB LR files); upscale doubles an image;
    --scale 3 exits non-zero naming scale 2. The command's table and CSV equal score() called directly."""
    csv = env / "set5.csv"
    command = subprocess.Popen([sys.executable, "-m", "srcore.evaluate", str(edsr_file), "--scale", "2", "--sets", "Set5",
                                "--csv", str(csv)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})  # one thread, as here: the same sums
    df = evaluate.score(edsr_file, 2, ["Set5"], progress=False)  # meanwhile, the same from Python
    stdout, stderr = command.communicate(timeout=300)
    assert command.returncode == 0, stderr
    assert table_of(stdout) == evaluate.score_table(df)
    assert csv.read_text() == df.to_csv(index=False)
    row = df.iloc[0]
    assert row["set"] == "Set5" and row.images == 5 and row.LR == "MATLAB LR files (LR_bicubic/X2)"
    assert round(row["bicubic PSNR"], 2) == 33.67 and "| 33.67 |" in stdout
    assert "eval Set5 x2" in stderr and "Traceback" not in stderr  # the progress bar over images

    lr = data.benchmark_set("Set5", 2, root=data_root, names=["bird"])[0].lr
    out = env / "out"
    assert upscale.main([str(edsr_file), save_png(lr, env / "bird.png"), f"{out}/"]) == 0
    assert Image.open(out / "bird.png").size == (2 * lr.shape[1], 2 * lr.shape[0])
    assert "(288x288 RGB)" in capsys.readouterr().out

    err = refused(evaluate.main, [edsr_file, "--scale", 3, "--sets", "Set5"], capsys)
    assert "built for scale 2" in err and "--scale 2" in err


def test_release_scores_per_image_with_published_values_and_niqe_na(env, capsys, monkeypatch):
    """A release a paper uses (the SRResNet fixture saved as srgan_x4_lornatang's file): lee2021_srgan_kd's
    published Teacher values beside the measured ones; NIQE n/a with the reason (no weights); per-image rows."""
    monkeypatch.setattr(weights, "available", lambda name: False)  # NIQE's file absent, wherever a cache holds it
    d = fixture("srresnet_x4_c16_n2_lornatang.pt")
    release = releases.RELEASES["srgan_x4_lornatang"]
    as_released(env / "weights" / release.file, d["state_dict"], d["checkpoint_wrapper"])
    csv = env / "t.csv"
    code = evaluate.main(["srgan_x4_lornatang", "--scale", "4", "--sets", "Set5", "--per-image", "--niqe", "--csv", str(csv)])
    out = capsys.readouterr().out
    assert code == 0
    df = evaluate.score("srgan_x4_lornatang", 4, ["Set5"], niqe=True, per_image=True, progress=False)
    assert table_of(out) == evaluate.score_table(df) and csv.read_text() == df.to_csv(index=False)
    assert list(df.image) == ["baby", "bird", "butterfly", "head", "woman", "mean"]
    mean = df.iloc[-1]
    assert (mean["published PSNR"], mean["published SSIM"]) == ("29.0393", "0.7354")  # Table 2, Teacher, Set5 x4
    assert mean["published in"] == "lee2021_srgan_kd Table 2, Teacher"
    assert mean.PSNR == pytest.approx(df.PSNR[:5].mean())
    assert mean.NIQE.startswith("n/a: weights unavailable") and "niqe" in mean.NIQE and (df.NIQE[:5] == "n/a").all()
    assert "used by lee2021_srgan_kd as its teacher" in out


def test_a_run_folder_is_a_checkpoint(tmp_path):
    run_dir = tmp_path / "Baseline_x2-0123456789"
    run_dir.mkdir()
    net = nets.EDSR(nets.EDSRConfig(scale=2, n_feats=8, n_blocks=1))
    torch.save({"step": 3, "nets": {"net": net.state_dict()}, "rng": {"numpy": np.random.get_state()}},
               run_dir / "last.pt")  # the Trainer's checkpoint holds more than tensors
    (run_dir / "settings.json").write_text('{"paper": "moon2023_clsd", "name": "Baseline", "scale": 2}')
    ckpt = evaluate.open_checkpoint(run_dir, 2)
    assert (ckpt.name, ckpt.scale, ckpt.path.name) == ("moon2023_clsd/Baseline", 2, "last.pt")
    assert "srcore run" in ckpt.describe()


# --- bad input: named before any work, non-zero exit, no traceback -------------------------------------------

def test_bad_checkpoints_are_named(env, edsr_file, capsys, data_root):
    score = evaluate.main
    png = data_root / "benchmark" / "Set5" / "HR" / "baby.png"
    assert f"{png} is not a checkpoint" in refused(score, [png, "--scale", 2, "--sets", "Set5"], capsys)

    unknown = env / "other.pt"
    torch.save({"encoder.weight": torch.zeros(4, 3, 3, 3)}, unknown)
    err = refused(score, [unknown, "--scale", 2, "--sets", "Set5"], capsys)
    assert str(unknown) in err and "unrecognised checkpoint layout" in err
    assert all(name in err for name in checkpoints.LAYOUTS)  # the recognised layouts, listed

    err = refused(score, ["edsr_x9", "--scale", 2, "--sets", "Set5"], capsys)
    assert "edsr_x9" in err and all(name in err for name in releases.RELEASES)
    err = refused(score, ["edsr_x2", "--scale", 2, "--sets", "Set5"], capsys)  # known, but not downloaded
    assert "python -m srcore.download release edsr_x2" in err

    d = fixture("srgan_discriminator_c4_dense32_lornatang.pt")
    disc = as_released(env / "d.pth.tar", d["state_dict"], d["checkpoint_wrapper"])
    assert "not a super-resolution network" in refused(upscale.main, [disc, png, env / "o"], capsys)
    assert "built for scale 2" in refused(upscale.main, [edsr_file, png, env / "o", "--scale", 4], capsys)
    assert "not a srcore run folder" in refused(upscale.main, [env, png, env / "o"], capsys)
    assert not (env / "o").exists()


def test_missing_set_and_unreadable_set_image_are_named(env, edsr_file, capsys):
    root = env / "data"
    (root / "benchmark" / "Set14" / "HR").mkdir(parents=True)
    err = refused(evaluate.main, [edsr_file, "--scale", 2, "--sets", "Set5", "--data-root", root], capsys)
    assert "Set5" in err and "python -m srcore.download Set5" in err

    bad = root / "benchmark" / "Set5" / "HR" / "broken.png"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a png")
    assert str(bad) in refused(evaluate.main, [edsr_file, "--scale", 2, "--sets", "Set5", "--data-root", root], capsys)
    assert "--device cuda:7" in refused(evaluate.main, [edsr_file, "--scale", 2, "--device", "cuda:7"], capsys)


def test_unreadable_and_16_bit_images_are_refused_and_nothing_is_written(env, edsr_file, capsys):
    folder = env / "in"
    folder.mkdir()
    save_png(lr_image(), folder / "a.png")
    (folder / "b.png").write_bytes(b"\x89PNG truncated")
    Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(folder / "c16.png")  # 16-bit grayscale
    rgb48 = folder / "d48.png"
    _write_png_48bit(rgb48, np.full((8, 8, 3), 50000, np.uint16))
    out = env / "out"
    err = refused(upscale.main, [edsr_file, folder, out], capsys)
    assert "3 of 4 input images" in err and str(folder / "b.png") in err
    assert f"{folder / 'c16.png'}: 16-bit image" in err and f"{rgb48}: 16-bit image" in err
    assert not out.exists()  # a.png is fine, but nothing is written before every input is checked

    (folder / "b.png").unlink()
    save_png(lr_image(), folder / "a.jpg")  # a.jpg and a.png would both become a.png
    assert "would both be written" in refused(upscale.main, [edsr_file, folder, out], capsys)
    assert not out.exists()


def _write_png_48bit(path, rgb: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG written by hand (PIL cannot write one; it reads one as 8-bit RGB)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# --- upscale: sizes, alpha, grayscale, tiles ---------------------------------------------------------------

def test_upscale_folder_rgba_and_grayscale(env, edsr_file, capsys):
    net = evaluate.open_checkpoint(edsr_file).net
    rgb = lr_image()
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    gray = rgb[..., 1].copy()
    folder = env / "in"
    folder.mkdir()
    save_png(np.dstack([rgb, alpha]), folder / "rgba.png")
    save_png(gray, folder / "gray.png")
    save_png(np.dstack([gray, alpha]), folder / "gray_alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: shown rotated by 90 degrees, as a phone saves a portrait photo
    Image.fromarray(rgb).save(folder / "portrait.png", exif=exif)
    assert upscale.main([str(edsr_file), str(folder), str(env / "out")]) == 0
    printed = capsys.readouterr().out
    assert "repeated to RGB for the network" in printed and "RGBA)" in printed

    out = {p.stem: Image.open(p) for p in (env / "out").glob("*.png")}
    assert sorted(out) == ["gray", "gray_alpha", "portrait", "rgba"] and not list((env / "out").glob(".*"))  # no tmp
    assert (out["rgba"].mode, out["gray"].mode, out["gray_alpha"].mode) == ("RGBA", "RGB", "RGBA")
    size = (2 * rgb.shape[1], 2 * rgb.shape[0])  # (width, height) twice the input's
    assert [im.size for im in out.values()].count(size) == 3 and out["portrait"].size == size[::-1]
    rgba = np.asarray(out["rgba"])
    assert np.array_equal(rgba[..., 3], imresize(alpha, 2))  # alpha by the MATLAB bicubic
    assert np.array_equal(rgba[..., :3], evaluate.super_resolve(net, rgb, tile=None))  # colour by the network
    assert np.array_equal(np.asarray(out["gray"]), evaluate.super_resolve(net, data.to_rgb(gray), tile=None))
    assert np.array_equal(np.asarray(out["gray_alpha"])[..., 3], imresize(alpha, 2))


def test_tiled_upscale_equals_whole_image(env, edsr_file):
    # EDSR 4 blocks: a receptive-field radius of ~12 LR pixels, inside TILE_OVERLAP (32) -> the same image,
    # up to float summation order (at most 1 level on a handful of values). 110x140 in tiles of 32: the
    # inner tiles' context windows (96x96) lie inside the image, so the overlap is what makes them agree.
    net = evaluate.open_checkpoint(edsr_file).net
    rgb = lr_image((110, 140), seed=1)
    whole = evaluate.super_resolve(net, rgb, tile=None)
    assert upscale.main([str(edsr_file), save_png(rgb, env / "x.png"), str(env / "tiled.png"), "--tile", "32"]) == 0
    tiled = np.asarray(Image.open(env / "tiled.png"))
    diff = np.abs(tiled.astype(int) - whole.astype(int))
    assert tiled.shape == whole.shape and diff.max() <= 1 and (diff == 0).mean() > 0.999
    big = upscale.Picture(np.zeros((upscale.CPU_TILE + 1, 8), np.uint8), None)
    assert upscale.tile_for(big, None, torch.device("cpu")) == upscale.CPU_TILE  # large images are tiled on a CPU
    assert upscale.tile_for(big, None, torch.device("cuda")) == "auto"
    assert upscale.tile_for(big, 64, torch.device("cpu")) == 64

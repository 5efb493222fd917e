"""Apply any SR checkpoint srcore reads to your own images, writing PNGs.

    python -m srcore.upscale CHECKPOINT INPUT OUTPUT [--scale S] [--tile N] [--device D]

CHECKPOINT is what ``python -m srcore.evaluate`` takes (a file in any layout of
:data:`srcore.pretrained.checkpoints.LAYOUTS`, a release name, a srcore run folder). INPUT is an image or a
folder of images; OUTPUT a folder (``<stem>.png`` per input) or, for one image, a ``.png`` path.

* Large images are super-resolved in tiles (:func:`srcore.evaluate.super_resolve`), each with
  :data:`srcore.evaluate.TILE_OVERLAP` LR pixels of context, so the result equals whole-image SR
  wherever that covers the network's receptive field.
* Grayscale is repeated to RGB for the network, as :mod:`srcore.data` does; the output is the
  network's RGB. An alpha channel (RGBA, LA, palette transparency) is upscaled by the MATLAB
  bicubic (:func:`srcore.resize.imresize`) and kept: the output is RGBA.
* 16-bit images are refused: the networks take 8-bit images, and reducing depth is the user's choice.
* Everything is checked before anything is written (the checkpoint and its scale, every image), and
  each PNG is written to a temporary file and renamed: a failure leaves no partial file in OUTPUT.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn
from tqdm.auto import tqdm

from srcore import data
from srcore.evaluate import (
    TILE_OVERLAP,
    BadInput,
    open_checkpoint,
    pick_device,
    super_resolve,
)
from srcore.folders import write_atomic
from srcore.resize import imresize

# LR tile side on a CPU for images larger than it: running out of host memory cannot be caught and
# retried (super_resolve's "auto" does that for CUDA); 512 keeps EDSR's 256-channel maps near 300 MB
CPU_TILE = 512


@dataclass
class Picture:
    """A decoded input image: what the network gets, and the alpha channel kept aside."""

    pixels: np.ndarray          # uint8 (H,W,3) RGB or (H,W) grayscale
    alpha: np.ndarray | None    # uint8 (H,W), or None

    def kind(self) -> str:
        colour = "grayscale" if self.pixels.ndim == 2 else "RGB"
        return colour + ("+alpha" if self.alpha is not None else "")


def _bits(path: Path, im: Image.Image) -> int:
    """Bits per sample as stored in the file (PIL reads 16-bit RGB PNGs as 8-bit RGB without saying so)."""
    if im.format == "PNG":
        with open(path, "rb") as f:
            return f.read(25)[24]  # IHDR's bit depth: 8-byte signature, 4 length, 4 "IHDR", 4 width, 4 height
    if im.format == "TIFF":
        bits = im.tag_v2.get(258, 8)  # BitsPerSample, one per channel
        return max(bits) if isinstance(bits, tuple) else int(bits)
    return 16 if im.mode.startswith("I;16") else 32 if im.mode in ("I", "F") else 8


def read_image(path: str | os.PathLike) -> Picture:
    """Decode an image file for upscaling: 8-bit grayscale, RGB, either with alpha, and palette images.

    As :func:`srcore.data.load_image` (palette expanded, 1-bit as grayscale), except that alpha is
    returned instead of refused. 16-bit and other modes raise :class:`BadInput` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"no image file {path}")
    try:
        with Image.open(path) as im:
            bits, mode = _bits(path, im), im.mode  # from the header: refused before the pixels are decoded
            if bits > 8:
                raise BadInput(f"{path}: {bits}-bit image: srcore.upscale takes 8-bit images (the networks are "
                               f"trained on them) and writes 8-bit PNGs; convert it to 8 bits per channel first, "
                               f"e.g. with ImageMagick: convert {path.name} -depth 8 {path.stem}_8bit.png")
            ImageOps.exif_transpose(im, in_place=True)  # a photo as it is shown: the PNG has no orientation tag
            if mode == "P":  # palette: its transparency (if any) becomes alpha
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode == "PA":
                im = im.convert("RGBA")
            if im.mode in ("1", "L"):
                return Picture(np.asarray(im.convert("L")), None)
            if im.mode in ("RGB", "YCbCr"):
                return Picture(np.asarray(im.convert("RGB")), None)
            if im.mode in ("LA", "RGBA"):
                arr = np.asarray(im)
                pixels = arr[..., 0] if im.mode == "LA" else arr[..., :3]
                return Picture(np.ascontiguousarray(pixels), np.ascontiguousarray(arr[..., -1]))
            raise BadInput(f"{path}: image mode {mode} is not supported (8-bit grayscale, RGB, either with alpha, and "
                           f"palette images are); convert it to an 8-bit RGB or RGBA PNG")
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise BadInput(f"{path}: cannot read it as an image ({e})") from None


def upscale_picture(net: nn.Module, picture: Picture, scale: int, *, tile: int | str | None = "auto") -> np.ndarray:
    """uint8 (sH,sW,3) RGB SR of ``picture`` by ``net`` (on its device), or (sH,sW,4) RGBA with the alpha
    upscaled by the MATLAB bicubic. ``tile``: as :func:`srcore.evaluate.super_resolve` (overlap TILE_OVERLAP)."""
    sr = super_resolve(net, picture.pixels, tile=tile, overlap=TILE_OVERLAP)
    if picture.alpha is None:
        return sr
    return np.dstack([sr, imresize(picture.alpha, scale)])


def tile_for(picture: Picture, tile: int | None, device: torch.device) -> int | str | None:
    """The ``tile`` argument of :func:`upscale_picture`: the user's, else "auto" on CUDA (whole image, tiles
    when memory runs out), else whole images up to CPU_TILE LR pixels a side and tiles of CPU_TILE beyond."""
    if tile is not None:
        return tile
    if device.type == "cuda":
        return "auto"
    return None if max(picture.pixels.shape[:2]) <= CPU_TILE else CPU_TILE


def plan(source: str | os.PathLike, output: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(input image, output PNG) pairs: INPUT an image or a folder of images; OUTPUT a folder, or a .png for one image."""
    source, output = Path(source), Path(output)
    if source.is_dir():
        images = data.list_images(source)
        if not images:
            raise BadInput(f"{source} holds no images ({' '.join(data.IMAGE_SUFFIXES)})")
        if output.suffix.lower() == ".png" or (output.exists() and not output.is_dir()):
            raise BadInput(f"OUTPUT {output} must be a folder when INPUT {source} is a folder")
        jobs = [(p, output / f"{p.stem}.png") for p in images]
    elif source.is_file():
        if output.suffix.lower() == ".png":
            jobs = [(source, output)]
        elif output.suffix.lower() in data.IMAGE_SUFFIXES or (output.exists() and not output.is_dir()):
            raise BadInput(f"OUTPUT {output}: srcore.upscale writes PNG; give a folder or a .png path")
        else:
            jobs = [(source, output / f"{source.stem}.png")]
    else:
        raise BadInput(f"INPUT {source}: no such image or folder")
    seen: dict[Path, Path] = {}
    for src, dst in jobs:  # a.jpg and a.png would both become a.png; an output must not replace its input
        if dst in seen:
            raise BadInput(f"{seen[dst].name} and {src.name} would both be written to {dst}: rename one of them")
        if dst.exists() and dst.resolve() == src.resolve():
            raise BadInput(f"{dst} would overwrite its input {src}: choose another OUTPUT")
        seen[dst] = src
    return jobs


def check_images(paths: list[Path]) -> None:
    """Decode every image once before anything is written; one BadInput naming every unusable file."""
    problems = []
    for path in paths:
        try:
            read_image(path)
        except BadInput as e:
            problems.append(str(e))
    if problems:
        raise BadInput(f"{len(problems)} of {len(paths)} input images cannot be used, nothing was written:\n  "
                       + "\n  ".join(problems))


def write_png(img: np.ndarray, path: Path) -> None:
    """Write a uint8 (H,W,3|4) image as PNG atomically: a temporary file beside it, renamed; removed on failure."""
    write_atomic(path, lambda tmp: Image.fromarray(img).save(tmp, format="PNG"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m srcore.upscale",
        description="Upscale an image, or a folder of images, with a super-resolution checkpoint; writes PNGs.",
        epilog="Grayscale images are repeated to RGB for the network and written as RGB (the network's output). "
               "RGBA (and grayscale+alpha, palette transparency): the colour goes through the network, the alpha "
               "is upscaled by srcore's MATLAB-exact bicubic, and the PNG keeps it (RGBA). 16-bit images are "
               "refused: convert them to 8 bits per channel first. Every image and the checkpoint are checked "
               "before anything is written, and each PNG appears whole or not at all.")
    ap.add_argument("checkpoint", metavar="CHECKPOINT",
                    help="a checkpoint file (any layout srcore.pretrained.checkpoints recognises), a release name, or a "
                         "srcore run folder (holding last.pt), as for python -m srcore.evaluate")
    ap.add_argument("input", metavar="INPUT", type=Path, help="an image, or a folder of images (not recursive)")
    ap.add_argument("output", metavar="OUTPUT", type=Path,
                    help="a folder (created; <name>.png per input), or for a single image also a .png path")
    ap.add_argument("--scale", type=int, metavar="S",
                    help="refuse to run unless the network upscales by S (default: the network's own scale)")
    ap.add_argument("--tile", type=int, metavar="N",
                    help=f"super-resolve N x N LR tiles, each with {TILE_OVERLAP} LR pixels of context: the same "
                         f"result as the whole image where that covers the network's receptive field (default: "
                         f"whole images, tiles when the GPU runs out of memory; on a CPU tiles of {CPU_TILE} "
                         f"for larger images)")
    ap.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)")
    args = ap.parse_args(argv)
    # the user's own images, of any size: PIL's decompression-bomb guard is meant for untrusted uploads
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        return _run(args)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _run(args: argparse.Namespace) -> int:
    try:
        device = pick_device(args.device)
        if args.tile is not None and args.tile < 1:
            raise BadInput(f"--tile {args.tile}: a tile is at least 1 LR pixel a side")
        jobs = plan(args.input, args.output)
        ckpt = open_checkpoint(args.checkpoint, args.scale)
        check_images([src for src, _ in jobs])
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(ckpt.describe())
    net = ckpt.net.to(device)
    for src, dst in tqdm(jobs, desc=f"upscale x{ckpt.scale}", unit="image", file=sys.stderr):
        picture = read_image(src)
        sr = upscale_picture(net, picture, ckpt.scale, tile=tile_for(picture, args.tile, device))
        write_png(sr, dst)
        h, w = picture.pixels.shape[:2]
        out = "RGBA" if sr.shape[2] == 4 else "RGB"
        note = ", repeated to RGB for the network" if picture.pixels.ndim == 2 else ""
        tqdm.write(f"{src} ({w}x{h} {picture.kind()}{note}) -> {dst} ({sr.shape[1]}x{sr.shape[0]} {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

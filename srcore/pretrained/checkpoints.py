"""Official checkpoints into srcore's networks: recognise the layout, build, convert, load strictly.

As chaiNNer's spandrel does, the user hands over a file, not a configuration: the layout is
recognised from key names and tensor shapes, widths/depths/scale are read off the tensors,
and the values are converted to srcore's convention (``(B,3,h,w)`` in ``[0,1]``)::

    net = srcore.pretrained.checkpoints.from_checkpoint("edsr_x2-0edfb8a3.pt")      # EDSR 32x256, res_scale 0.1
    net = srcore.pretrained.checkpoints.from_checkpoint("RRDB_ESRGAN_x4.pth")       # RRDBNet 64/23/32
    net = srcore.pretrained.checkpoints.from_checkpoint(torch.load(p), res_scale=1) # what the weights cannot tell

Layouts (``LAYOUTS``, one entry each: a detector and a converter):

* EDSR-PyTorch (``edsr_baseline_x2/3/4``, ``edsr_x2/3/4``): a bare state_dict on 0..255 whose
  mean shift is two frozen 1x1 convs. The first conv's weight is multiplied by 255 and the last
  conv's weight and bias divided by 255, so srcore's 0..1 network computes ``official(255 x)/255``
  exactly; the mean is read from the convs' biases into srcore's MeanShift buffers.
* BasicSR EDSR (``conv_first``, ``body.N.conv1/2``, ``conv_after_body``, ``upsample.K``):
  ``img_range`` (255 in every BasicSR EDSR option file) is applied the same way.
* RRDBNet (ESRGAN's generator) in BasicSR/Real-ESRGAN names, xinntao/ESRGAN's ``RRDB_trunk``
  names and the older ``model.N`` names: a renaming only (all work on 0..1).
* SRResNet and DiscriminatorForVGG of Lornatang/SRGAN-PyTorch: renaming; its convs before a
  BatchNorm have no bias, so srcore's get zeros. Its SRResNet ends with ``clamp(0, 1)``, srcore's
  does not: outputs agree before the clamp (and everywhere after ``.clamp(0, 1)``, which srcore's
  evaluation applies).
* BasicSR's VGGStyleDiscriminator (ESRGAN's discriminator, 128x128 inputs).
* srcore's own networks: a bare state_dict, or a Trainer checkpoint (``last.pt``) holding ``nets``.

What the tensors cannot tell is an override with a default: EDSR's ``res_scale`` (0.1 for 256
channels, else 1, as the releases), BasicSR EDSR's ``img_range`` (255), and which of a Trainer
checkpoint's networks to take (``net``: the only one, else "G", else "net").
"""
from __future__ import annotations

import math
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from srcore import nets

WRAPPERS = ("params_ema", "params", "state_dict", "model")  # BasicSR/Real-ESRGAN, Lornatang, others
PREFIXES = ("module.", "_orig_mod.")                          # DataParallel/DDP, torch.compile


class UnsupportedCheckpoint(ValueError):
    """A checkpoint no layout of ``LAYOUTS`` recognises, or one it recognises and cannot convert."""


# --- reading ---------------------------------------------------------------------------------

def read(checkpoint, *, net: str | None = None) -> dict[str, torch.Tensor]:
    """The bare state_dict inside ``checkpoint`` (a path or a loaded object), prefixes stripped.

    Unwraps ``params_ema`` / ``params`` / ``state_dict`` / ``model`` (first present, as BasicSR
    prefers the EMA weights) and srcore Trainer checkpoints (``nets[net]``), then strips
    ``module.`` and ``_orig_mod.`` from every key.
    """
    obj = _load(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    while isinstance(obj, dict) and not _is_state_dict(obj):
        if isinstance(obj.get("nets"), dict):  # srcore.train.Trainer.save
            obj = obj["nets"][_pick_net(obj["nets"], net)]
            continue
        wrapper = next((w for w in WRAPPERS if isinstance(obj.get(w), (dict, nn.Module))), None)
        if wrapper is None:
            break
        obj = obj[wrapper].state_dict() if isinstance(obj[wrapper], nn.Module) else obj[wrapper]
    if not isinstance(obj, dict) or not _is_state_dict(obj):
        found = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise UnsupportedCheckpoint(f"no state_dict found in the checkpoint: top-level entries {found}; "
                                    f"expected tensors, or a dict wrapping them under one of {', '.join(WRAPPERS)} "
                                    f"or srcore's 'nets'")
    return {_strip(k): v for k, v in obj.items()}


def _load(path) -> object:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # Files holding more than tensors (srcore's last.pt keeps NumPy's random state) need the
        # full unpickler, which can run code from the file: load only files you trust.
        return torch.load(path, map_location="cpu", weights_only=False)


def _is_state_dict(obj: dict) -> bool:
    return bool(obj) and all(torch.is_tensor(v) for v in obj.values())


def _pick_net(named: dict, net: str | None) -> str:
    if net is None:
        net = next(iter(named)) if len(named) == 1 else next((n for n in ("G", "net") if n in named), None)
    if net not in named:
        raise UnsupportedCheckpoint(f"the Trainer checkpoint holds networks {sorted(named)}: pass net=<one of them>")
    return net


def _strip(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for p in PREFIXES:
            if key.startswith(p):
                key, stripped = key[len(p):], True
    return key


# --- layouts ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    description: str                                  # where such files come from
    detect: Callable[[dict], bool]                    # keys and shapes say it is this layout
    build: Callable[..., nn.Module]                   # (state_dict, **overrides) -> loaded srcore network


def _rename(sd: dict, rules) -> dict:
    """Rename every key by the first (regex, replacement) of ``rules`` it fully matches; the replacement is
    a ``re.sub`` template or a function of the match. A key no rule matches is an error."""
    out = {}
    for k, v in sd.items():
        for pattern, repl in rules:
            if re.fullmatch(pattern, k):
                out[re.sub(pattern, repl, k)] = v
                break
        else:
            raise UnsupportedCheckpoint(f"unexpected key {k} {tuple(v.shape)} for this layout")
    return out


def _load_strict(net: nn.Module, sd: dict) -> nn.Module:
    net.load_state_dict(sd, strict=True)
    return net.eval()


def _zero_biases(net: nn.Module, sd: dict) -> dict:
    """Zero biases for srcore convs whose official layer has none (a conv before BatchNorm): same function."""
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d) and module.bias is not None and f"{name}.bias" not in sd \
                and f"{name}.weight" in sd:
            sd[f"{name}.bias"] = torch.zeros_like(module.bias)
    return sd


def _blocks(sd: dict, prefix: str) -> int:
    """Number of distinct integer indices i in keys ``<prefix><i>.``."""
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    return len({m.group(1) for k in sd if (m := pat.match(k))})


def _upsampler_scale(sd: dict, conv_keys: list[str], n_feats: int) -> int:
    """Scale of a chain of PixelShuffle stages from its convs' output widths: r^2 C each, r in {2, 3}."""
    ratios = [sd[k].shape[0] // n_feats for k in conv_keys]
    if ratios == [9]:
        return 3
    if ratios and all(r == 4 for r in ratios):
        return 2 ** len(ratios)
    raise UnsupportedCheckpoint(f"upsampler convs with output widths {[sd[k].shape[0] for k in conv_keys]} "
                                f"for {n_feats} channels: not x2, x3 or x4")


def _has(sd: dict, *keys: str) -> bool:
    return all(k in sd for k in keys)


# EDSR ----------------------------------------------------------------------------------------

def edsr_res_scale(n_feats: int) -> float:
    """EDSR's residual scaling as the releases use it: 0.1 for the 256-channel model, 1 otherwise."""
    return 0.1 if n_feats == 256 else 1.0


def _edsr(sd: dict, res_scale: float | None) -> nets.EDSR:
    """An srcore EDSR sized from srcore-named tensors ``head``, ``body.<i>``, ``tail.0.<k>``."""
    n_feats = sd["head.weight"].shape[0]
    n_blocks = _blocks(sd, "body.") - 1  # the closing conv is body.<n>
    ups = sorted((k for k in sd if re.fullmatch(r"tail\.0\.\d+\.weight", k)), key=lambda k: int(k.split(".")[2]))
    scale = _upsampler_scale(sd, ups, n_feats)
    rs = edsr_res_scale(n_feats) if res_scale is None else res_scale
    return nets.EDSR(nets.EDSRConfig(scale=scale, n_feats=n_feats, n_blocks=n_blocks, res_scale=rs))


def _rescale_ends(sd: dict, img_range: float) -> dict:
    """Network on 0..img_range -> the same network on 0..1: first conv x range, last conv / range."""
    sd["head.weight"] = sd["head.weight"] * img_range
    sd["tail.1.weight"] = sd["tail.1.weight"] / img_range
    sd["tail.1.bias"] = sd["tail.1.bias"] / img_range
    return sd


def _mean_from_convs(sd: dict, rgb_range: float = 255.0) -> torch.Tensor:
    """EDSR-PyTorch's MeanShift convs (weight I/std, bias -/+ range*mean/std) -> the RGB mean on 0..1."""
    found = {}
    for name, sign in (("sub_mean", -1), ("add_mean", +1)):
        w, b = sd[f"{name}.weight"].reshape(3, 3).double(), sd[f"{name}.bias"].double()
        std = 1 / torch.diagonal(w)
        if not torch.allclose(w, torch.diag(torch.diagonal(w))) or not torch.allclose(std, torch.ones(3, dtype=torch.float64), atol=1e-6):
            raise UnsupportedCheckpoint(
                f"EDSR-PyTorch mean shift {name}.weight is {w.reshape(-1).tolist()}: rgb_std "
                f"{[round(float(s), 4) for s in std]}, not 1. srcore's MeanShift subtracts a mean and does not "
                f"divide by a std (every EDSR release uses std 1); such a network is not supported")
        found[name] = sign * b * std / rgb_range
    if not torch.allclose(found["sub_mean"], found["add_mean"], atol=1e-6):
        raise UnsupportedCheckpoint(f"EDSR-PyTorch sub_mean and add_mean disagree "
                                    f"({found['sub_mean'].tolist()} vs {found['add_mean'].tolist()})")
    return found["add_mean"].float()


def build_edsr_pytorch(sd: dict, *, res_scale: float | None = None) -> nets.EDSR:
    mean = _mean_from_convs(sd).view(1, 3, 1, 1)
    out = {("head." + k[len("head.0."):] if k.startswith("head.0.") else k): v
           for k, v in sd.items() if not k.startswith(("sub_mean.", "add_mean."))}
    out["sub_mean.mean"], out["add_mean.mean"] = -mean, mean.clone()
    net = _edsr(out, res_scale)
    return _load_strict(net, _rescale_ends(out, 255.0))


_BASICSR_EDSR = [
    (r"conv_first\.(weight|bias)", r"head.\1"),
    (r"body\.(\d+)\.conv1\.(weight|bias)", r"body.\1.body.0.\2"),
    (r"body\.(\d+)\.conv2\.(weight|bias)", r"body.\1.body.2.\2"),
    (r"upsample\.(\d+)\.(weight|bias)", r"tail.0.\1.\2"),
    (r"conv_last\.(weight|bias)", r"tail.1.\1"),
]


def build_basicsr_edsr(sd: dict, *, res_scale: float | None = None, img_range: float = 255.0) -> nets.EDSR:
    n_blocks = _blocks(sd, "body.")
    closing = [(r"conv_after_body\.(weight|bias)", rf"body.{n_blocks}.\1")]
    out = _rename(sd, _BASICSR_EDSR + closing)
    net = _edsr(out, res_scale)
    # BasicSR keeps its mean (DIV2K's, as srcore's default) out of the state_dict
    out["sub_mean.mean"], out["add_mean.mean"] = net.sub_mean.mean.clone(), net.add_mean.mean.clone()
    return _load_strict(net, _rescale_ends(out, img_range))


def build_srcore_edsr(sd: dict, *, res_scale: float | None = None) -> nets.EDSR:
    return _load_strict(_edsr(sd, res_scale), dict(sd))


# seo_squeezesr_kd's networks: srcore's own, so a run folder of that paper can be scored and applied too

def _tail_scale(sd: dict, n_feats: int) -> int:
    """Scale of srcore's tails: one sub-pixel conv (``tail.0``: 3 r^2 outputs) or EDSR's (``tail.0.<k>``)."""
    if "tail.0.weight" in sd:
        return math.isqrt(sd["tail.0.weight"].shape[0] // 3)
    ups = sorted((k for k in sd if re.fullmatch(r"tail\.0\.\d+\.weight", k)), key=lambda k: int(k.split(".")[2]))
    return _upsampler_scale(sd, ups, n_feats)


def build_srcore_squeezesr(sd: dict) -> nets.SqueezeSR:
    n_feats = sd["head.weight"].shape[0]
    cfg = nets.SqueezeSRConfig(scale=_tail_scale(sd, n_feats), n_feats=n_feats,
                               squeeze=sd["blocks.0.fire.squeeze.0.weight"].shape[0], n_blocks=_blocks(sd, "blocks."),
                               upsampler="subpixel" if "tail.0.weight" in sd else "edsr")
    return _load_strict(nets.SqueezeSR(cfg), dict(sd))


def build_srcore_edsrt(sd: dict, *, res_scale: float = 0.1) -> nets.EDSRT:
    n_feats = sd["head.weight"].shape[0]
    cfg = nets.EDSRTConfig(scale=_tail_scale(sd, n_feats), n_feats=n_feats, n_blocks=_blocks(sd, "blocks."),
                           n_modules=_blocks(sd, "blocks.0.body.") - 1, res_scale=res_scale)
    return _load_strict(nets.EDSRT(cfg), dict(sd))


# RRDBNet -------------------------------------------------------------------------------------

def make_rrdbnet(n_feats: int, n_blocks: int, growth: int) -> nets.RRDBNet:
    """srcore's RRDBNet (x4) of the given width, depth and growth (ESRGAN's nf, nb, gc)."""
    return nets.RRDBNet(nets.RRDBNetConfig(n_feats=n_feats, n_blocks=n_blocks, growth=growth, scale=4))


def _rdb(k: str, j: str, w: str) -> str:  # official RDB k (1..3), conv j (1..5) -> srcore names
    return f"rdbs.{int(k) - 1}." + ("conv5" if j == "5" else f"convs.{int(j) - 1}") + f".{w}"


_RRDB_RULES = {  # layout -> [(regex, function of the match -> srcore key)]
    "basicsr": [
        (r"conv_first\.(weight|bias)", lambda m: f"conv_first.{m[1]}"),
        (r"body\.(\d+)\.rdb([123])\.conv([1-5])\.(weight|bias)", lambda m: f"body.{m[1]}." + _rdb(m[2], m[3], m[4])),
        (r"(conv_body|conv_up\d|conv_hr|conv_last)\.(weight|bias)", lambda m: f"{m[1]}.{m[2]}"),  # conv_up3: x8, refused below
    ],
    "esrgan": [
        (r"conv_first\.(weight|bias)", lambda m: f"conv_first.{m[1]}"),
        (r"RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(weight|bias)", lambda m: f"body.{m[1]}." + _rdb(m[2], m[3], m[4])),
        (r"trunk_conv\.(weight|bias)", lambda m: f"conv_body.{m[1]}"),
        (r"upconv([12])\.(weight|bias)", lambda m: f"conv_up{m[1]}.{m[2]}"),
        (r"HRconv\.(weight|bias)", lambda m: f"conv_hr.{m[1]}"),
        (r"conv_last\.(weight|bias)", lambda m: f"conv_last.{m[1]}"),
    ],
    "esrgan_old": [  # x4: model.0 conv, .1 shortcut(sub: RRDBs + conv), .2 up, .3 conv, .5 up, .6 conv, .8 HR conv, .10 last
        (r"model\.0\.(weight|bias)", lambda m: f"conv_first.{m[1]}"),
        (r"model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)", lambda m: f"body.{m[1]}." + _rdb(m[2], m[3], m[4])),
        (r"model\.1\.sub\.(\d+)\.(weight|bias)", lambda m: f"conv_body.{m[2]}"),
        (r"model\.(3|6|8|10)\.(weight|bias)",
         lambda m: {"3": "conv_up1", "6": "conv_up2", "8": "conv_hr", "10": "conv_last"}[m[1]] + f".{m[2]}"),
    ],
}


def _rrdbnet_from_srcore_names(sd: dict) -> nets.RRDBNet:
    first = sd["conv_first.weight"]
    if first.shape[1] in (12, 48):
        raise UnsupportedCheckpoint(
            f"conv_first.weight {tuple(first.shape)} takes {first.shape[1]} input channels: a Real-ESRGAN "
            f"x{4 // int(math.sqrt(first.shape[1] // 3))} model that pixel-unshuffles its input "
            f"(RealESRGAN_x2plus and the like), a different network; only x4 RRDBNets (3 input channels) are supported")
    if "conv_up1.weight" not in sd or "conv_up2.weight" not in sd or any(k.startswith("conv_up3") for k in sd):
        raise UnsupportedCheckpoint("this RRDBNet does not upsample x4 (two nearest x2 steps); only x4 is supported")
    net = make_rrdbnet(first.shape[0], _blocks(sd, "body."), sd["body.0.rdbs.0.convs.0.weight"].shape[0])
    return _load_strict(net, sd)


def _rrdbnet_builder(layout: str):
    def build(sd: dict) -> nets.RRDBNet:
        return _rrdbnet_from_srcore_names(_rename(sd, _RRDB_RULES[layout]) if layout != "srcore" else dict(sd))
    return build


# SRResNet / SRGAN ------------------------------------------------------------------------------

def build_lornatang_srresnet(sd: dict) -> nets.SRResNet:
    n_stages = _blocks(sd, "upsampling.")
    out = _rename(sd, [
        (r"conv1\.([01])\.(.+)", r"head.\1.\2"),
        (r"trunk\.(\d+)\.rcb\.([0-4])\.(.+)", r"blocks.\1.body.\2.\3"),
        (r"conv2\.([01])\.(.+)", r"body_end.\1.\2"),
        # stage k, [conv, PixelShuffle, PReLU] in both: upsample_block.{0,2} -> upsampler.{3k, 3k+2}
        (r"upsampling\.(\d+)\.upsample_block\.([02])\.(.+)", lambda m: f"upsampler.{3 * int(m[1]) + int(m[2])}.{m[3]}"),
        (r"conv3\.(weight|bias)", r"tail.\1"),
    ])
    c = out["head.0.weight"].shape[0]
    scale = _upsampler_scale(out, [f"upsampler.{3 * k}.weight" for k in range(n_stages)], c)
    net = nets.SRResNet(nets.SRResNetConfig(scale=scale, n_feats=c, n_blocks=_blocks(out, "blocks.")))
    return _load_strict(net, _zero_biases(net, out))


def build_srcore_srresnet(sd: dict) -> nets.SRResNet:
    c = sd["head.0.weight"].shape[0]
    ups = sorted((k for k in sd if re.fullmatch(r"upsampler\.\d+\.weight", k) and sd[k].dim() == 4),
                 key=lambda k: int(k.split(".")[1]))
    net = nets.SRResNet(nets.SRResNetConfig(scale=_upsampler_scale(sd, ups, c), n_feats=c,
                                            n_blocks=_blocks(sd, "blocks.")))
    return _load_strict(net, dict(sd))


def _srgan_discriminator(sd: dict, dense_key: str) -> nets.SRGANDiscriminator:
    c, dense = sd["features.0.weight"].shape[0], sd[dense_key]
    side = math.isqrt(dense.shape[1] // (8 * c))
    return nets.SRGANDiscriminator(nets.SRGANDiscriminatorConfig(input_size=16 * side, n_feats=c, dense=dense.shape[0]))


def build_lornatang_discriminator(sd: dict) -> nets.SRGANDiscriminator:
    out = _rename(sd, [(r"(features\.\d+\..+)", r"\1"), (r"classifier\.0\.(weight|bias)", r"classifier.1.\1"),
                       (r"classifier\.2\.(weight|bias)", r"classifier.3.\1")])
    net = _srgan_discriminator(out, "classifier.1.weight")
    return _load_strict(net, _zero_biases(net, out))


def build_srcore_srgan_discriminator(sd: dict) -> nets.SRGANDiscriminator:
    return _load_strict(_srgan_discriminator(sd, "classifier.1.weight"), dict(sd))


# VGG-style discriminator (ESRGAN) ----------------------------------------------------------------

def _basicsr_vgg_key(m) -> str:
    """BasicSR's convI_J / bnI_J -> srcore features.<n>: stage 0 is [conv, lrelu, conv, bn, lrelu], then 6 per stage."""
    kind, i, j, w = m[1], int(m[2]), int(m[3]), m[4]
    if i == 0:
        n = {(0, "conv"): 0, (1, "conv"): 2, (1, "bn"): 3}[(j, kind)]
    else:
        n = 5 + 6 * (i - 1) + 3 * j + (kind == "bn")
    return f"features.{n}.{w}"


def build_basicsr_vgg_discriminator(sd: dict) -> nets.VGGStyleDiscriminator:
    if any(k.startswith(("conv5_", "bn5_")) for k in sd):
        raise UnsupportedCheckpoint("BasicSR VGGStyleDiscriminator for 256x256 inputs (a sixth stage conv5_*): "
                                    "srcore's VGGStyleDiscriminator has five stages; only the 128x128 one is supported")
    out = _rename(sd, [(r"(conv|bn)(\d)_([01])\.(.+)", _basicsr_vgg_key),
                       (r"linear1\.(weight|bias)", r"classifier.0.\1"),
                       (r"linear2\.(weight|bias)", r"classifier.2.\1")])
    return build_srcore_vgg_discriminator(out)


def build_srcore_vgg_discriminator(sd: dict) -> nets.VGGStyleDiscriminator:
    nf = sd["features.0.weight"].shape[0]
    side = math.isqrt(sd["classifier.0.weight"].shape[1] // (8 * nf))
    return _load_strict(nets.VGGStyleDiscriminator(n_feats=nf, input_size=32 * side), dict(sd))


# The catalogue of layouts: first match wins, so the more specific detectors come first ---------

def _shape(sd, key) -> tuple:
    return tuple(sd[key].shape) if key in sd else ()


LAYOUTS: dict[str, Layout] = {
    "edsr-pytorch": Layout(
        "EDSR-PyTorch (sanghyun-son): edsr_baseline_x2/3/4, edsr_x2/3/4 (sub_mean/add_mean convs, head.0, body, tail)",
        lambda sd: _has(sd, "sub_mean.weight", "add_mean.bias", "head.0.weight", "tail.1.weight"),
        build_edsr_pytorch),
    "basicsr-edsr": Layout(
        "BasicSR EDSR (conv_first, body.N.conv1/2, conv_after_body, upsample.K, conv_last)",
        lambda sd: _has(sd, "conv_first.weight", "body.0.conv1.weight", "conv_after_body.weight", "upsample.0.weight"),
        build_basicsr_edsr),
    "basicsr-rrdbnet": Layout(
        "RRDBNet, BasicSR / Real-ESRGAN names (conv_first, body.N.rdbK.convJ, conv_body, conv_up1/2, conv_hr)",
        lambda sd: _has(sd, "conv_first.weight", "body.0.rdb1.conv1.weight"),
        _rrdbnet_builder("basicsr")),
    "esrgan-rrdbnet": Layout(
        "RRDBNet, xinntao/ESRGAN names (RRDB_trunk.N.RDBK.convJ, trunk_conv, upconv1/2, HRconv): RRDB_ESRGAN_x4.pth",
        lambda sd: _has(sd, "conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight", "trunk_conv.weight"),
        _rrdbnet_builder("esrgan")),
    "esrgan-old-rrdbnet": Layout(
        "RRDBNet, older xinntao/ESRGAN names (model.0, model.1.sub.N.RDBK.convJ.0, model.3/6/8/10)",
        lambda sd: _has(sd, "model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight"),
        _rrdbnet_builder("esrgan_old")),
    "lornatang-srresnet": Layout(
        "SRResNet of Lornatang/SRGAN-PyTorch (conv1, trunk.i.rcb, conv2, upsampling.k.upsample_block, conv3)",
        lambda sd: _has(sd, "conv1.0.weight", "trunk.0.rcb.0.weight", "conv2.0.weight", "conv3.weight"),
        build_lornatang_srresnet),
    "lornatang-discriminator": Layout(
        "DiscriminatorForVGG of Lornatang/SRGAN-PyTorch (features.*, classifier.0/2; 3x3 stride-2 convs)",
        lambda sd: _shape(sd, "features.2.weight")[2:] == (3, 3) and _has(sd, "classifier.0.weight", "classifier.2.weight")
        and "features.2.bias" not in sd,
        build_lornatang_discriminator),
    "basicsr-vgg-discriminator": Layout(
        "VGGStyleDiscriminator of BasicSR / ESRGAN (conv0_0, conv0_1, bn0_1, ..., linear1, linear2)",
        lambda sd: _has(sd, "conv0_0.weight", "conv0_1.weight", "bn0_1.weight", "linear1.weight", "linear2.weight"),
        build_basicsr_vgg_discriminator),
    "srcore-edsr": Layout(
        "srcore EDSR (sub_mean.mean, head, body.N.body.0/2, tail)",
        lambda sd: _has(sd, "sub_mean.mean", "head.weight", "body.0.body.0.weight", "tail.1.weight"),
        build_srcore_edsr),
    "srcore-squeezesr": Layout(
        "srcore SqueezeSR (head, blocks.N.fire.squeeze/expand1x1/expand3x3, tail): seo_squeezesr_kd's student",
        lambda sd: _has(sd, "head.weight", "blocks.0.fire.squeeze.0.weight", "blocks.0.fire.expand3x3.weight"),
        build_srcore_squeezesr),
    "srcore-edsrt": Layout(
        "srcore EDSR-T (head, blocks.N.body.M.body.0/2 in residual modules, tail): seo_squeezesr_kd's teacher",
        lambda sd: _has(sd, "head.weight", "blocks.0.body.0.body.0.weight", "blocks.0.body.1.body.0.weight"),
        build_srcore_edsrt),
    "srcore-rrdbnet": Layout(
        "srcore RRDBNet (conv_first, body.N.rdbs.K.convs.J, conv_body, conv_up1/2, conv_hr, conv_last)",
        lambda sd: _has(sd, "conv_first.weight", "body.0.rdbs.0.convs.0.weight"),
        _rrdbnet_builder("srcore")),
    "srcore-srresnet": Layout(
        "srcore SRResNet (head.0 9x9, blocks.N.body, body_end, upsampler, tail)",
        lambda sd: _has(sd, "head.0.weight", "blocks.0.body.0.weight", "body_end.0.weight", "tail.weight"),
        build_srcore_srresnet),
    "srcore-srgan-discriminator": Layout(
        "srcore SRGANDiscriminator (features.*, classifier.1/3)",
        lambda sd: _has(sd, "features.0.weight", "classifier.1.weight", "classifier.3.weight"),
        build_srcore_srgan_discriminator),
    "srcore-vgg-discriminator": Layout(
        "srcore VGGStyleDiscriminator (features.*, 4x4 stride-2 convs, classifier.0/2)",
        lambda sd: _shape(sd, "features.2.weight")[2:] == (4, 4) and _has(sd, "classifier.0.weight", "classifier.2.weight"),
        build_srcore_vgg_discriminator),
}


def detect(sd: dict) -> str:
    """Name of the first layout in ``LAYOUTS`` whose keys and shapes ``sd`` has; raises UnsupportedCheckpoint."""
    for name, layout in LAYOUTS.items():
        if layout.detect(sd):
            return name
    found = ", ".join(f"{k} {tuple(v.shape)}" for k, v in list(sd.items())[:6])
    supported = "\n  ".join(f"{n}: {lay.description}" for n, lay in LAYOUTS.items())
    raise UnsupportedCheckpoint(f"unrecognised checkpoint layout ({len(sd)} tensors; first: {found}). "
                                f"Supported layouts:\n  {supported}")


def from_checkpoint(checkpoint, *, net: str | None = None, **overrides) -> nn.Module:
    """The srcore network that ``checkpoint`` holds, converted to ``[0,1]`` inputs/outputs, in eval mode.

    ``checkpoint``: a path, a loaded checkpoint (bare state_dict, or wrapped under ``params_ema`` /
    ``params`` / ``state_dict`` / ``model``; ``module.`` / ``_orig_mod.`` prefixes are stripped) or
    srcore's Trainer ``last.pt`` (``net`` picks one of its networks). ``overrides`` are what the
    tensors cannot tell (EDSR layouts: ``res_scale``; BasicSR EDSR: also ``img_range``); one the
    recognised layout does not take is an error. Loading is strict.
    """
    sd = read(checkpoint, net=net)
    name = detect(sd)
    try:
        return LAYOUTS[name].build(sd, **overrides)
    except TypeError as err:
        if overrides and "unexpected keyword" in str(err):
            raise TypeError(f"{name} checkpoints take no override {sorted(overrides)}: {err}") from None
        raise
    except UnsupportedCheckpoint as err:
        raise UnsupportedCheckpoint(f"{name}: {err}") from None

"""Networks of the five papers, readable top to bottom.

Every network takes a float tensor ``(B,3,h,w)`` in ``[0,1]`` and returns ``(B,3,s*h,s*w)``.
Mean shift is a buffer, not a parameter, so parameter counts exclude it (the papers'
convention). Intermediate features are read with :class:`FeatureTaps` (forward hooks),
so no network is rewritten for a distillation method; every generator names the layers a
distillation method reads the same way, ``net.feature_layers(...) -> list[str]`` (module names
for :class:`FeatureTaps`). Every discriminator returns one raw logit per image, ``(B, 1)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)  # EDSR's MeanShift constants


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class MeanShift(nn.Module):
    """Subtract (sign=-1) or add (sign=+1) the DIV2K RGB mean; no trainable parameters."""

    def __init__(self, sign: int, mean=DIV2K_RGB_MEAN):
        super().__init__()
        self.register_buffer("mean", sign * torch.tensor(mean).view(1, 3, 1, 1))

    def forward(self, x):
        return x + self.mean


def pixel_shuffle_stages(scale: int, n_feats: int, act=None) -> list[nn.Module]:
    """log2(s) x [conv C->4C, PixelShuffle(2)(, act())] for s in {2,4}; [conv C->9C, PixelShuffle(3)(, act())] for 3."""
    if scale not in (2, 3, 4):
        raise ValueError(f"scale must be 2, 3 or 4, got {scale!r}")
    r, n = (3, 1) if scale == 3 else (2, int(math.log2(scale)))
    layers = []
    for _ in range(n):
        layers += [conv3x3(n_feats, r * r * n_feats), nn.PixelShuffle(r)] + ([act()] if act else [])
    return layers


class EDSRUpsampler(nn.Sequential):
    """EDSR's tail: the PixelShuffle stages of :func:`pixel_shuffle_stages`, no activation."""

    def __init__(self, scale: int, n_feats: int):
        super().__init__(*pixel_shuffle_stages(scale, n_feats))


class SubPixelUpsampler(nn.Sequential):
    """ESPCN's light tail: one conv C -> 3 s^2 and PixelShuffle(s); replaces EDSR's tail *and* last conv."""

    def __init__(self, scale: int, n_feats: int):
        if scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4, got {scale!r}")
        super().__init__(conv3x3(n_feats, 3 * scale * scale), nn.PixelShuffle(scale))


def make_tail(kind: str, scale: int, n_feats: int) -> nn.Module:
    """Upsampling tail ending in 3 channels: 'edsr' (EDSRUpsampler + conv) or 'subpixel'."""
    tails = {
        "edsr": lambda: nn.Sequential(EDSRUpsampler(scale, n_feats), conv3x3(n_feats, 3)),
        "subpixel": lambda: SubPixelUpsampler(scale, n_feats),
    }
    if kind not in tails:
        raise ValueError(f"unknown upsampler {kind!r}; known: {sorted(tails)}")
    return tails[kind]()


class ResidualModule(nn.Module):
    """EDSR ResBlock: x + res_scale * conv(relu(conv(x)))."""

    def __init__(self, n_feats: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(conv3x3(n_feats, n_feats), nn.ReLU(inplace=True), conv3x3(n_feats, n_feats))
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.res_scale * self.body(x)


class ResidualBlock(nn.Module):
    """seo_squeezesr_kd's Residual Block: n ResidualModules and a conv, with its own skip."""

    def __init__(self, n_feats: int, n_modules: int, res_scale: float):
        super().__init__()
        self.body = nn.Sequential(*[ResidualModule(n_feats, res_scale) for _ in range(n_modules)], conv3x3(n_feats, n_feats))

    def forward(self, x):
        return x + self.body(x)


@dataclass
class EDSRTConfig:
    scale: int = 2
    n_feats: int = 64  # not given by the paper; 64 matches EDSR-baseline's PSNR level
    n_blocks: int = 3
    n_modules: int = 9
    res_scale: float = 0.1


class EDSRT(nn.Module):
    """EDSR-T, the teacher of seo_squeezesr_kd (Seo & Kang, Fig. 1).

    conv -> 3 Residual Blocks (9 Residual Modules each, x0.1 scaling) -> global skip ->
    EDSR upsampler -> conv. Changed from the paper (silent there): channel width 64,
    a conv closing each Residual Block (as EDSR's body and RCAN's groups) so that the
    block's skip adds a learnt term, EDSR's global skip and MeanShift.
    The block outputs ``blocks.0/1/2`` are the features T1, T2, T3.
    """

    def __init__(self, cfg: EDSRTConfig = EDSRTConfig()):
        super().__init__()
        self.cfg = cfg
        self.sub_mean, self.add_mean = MeanShift(-1), MeanShift(+1)
        self.head = conv3x3(3, cfg.n_feats)
        self.blocks = nn.Sequential(*[ResidualBlock(cfg.n_feats, cfg.n_modules, cfg.res_scale) for _ in range(cfg.n_blocks)])
        self.tail = make_tail("edsr", cfg.scale, cfg.n_feats)

    def feature_layers(self) -> list[str]:
        """The Residual/Squeeze Block outputs ``blocks.0 .. blocks.{n-1}`` (T1..T3 / S1..S3 in the paper)."""
        return [f"blocks.{i}" for i in range(len(self.blocks))]

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        x = x + self.blocks(x)
        return self.add_mean(self.tail(x))


class FireModule(nn.Module):
    """SqueezeNet's Fire module (Iandola et al. 2016): 1x1 squeeze, then 1x1 and 3x3 expand, concatenated."""

    def __init__(self, cin: int, squeeze: int, expand1x1: int, expand3x3: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU(inplace=True))
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)

    def forward(self, x):
        s = self.squeeze(x)
        return torch.cat([self.expand1x1(s), self.expand3x3(s)], dim=1)


class SqueezeBlock(nn.Module):
    """seo_squeezesr_kd's Squeeze Block: one Fire module (two 1x1 filters and one 3x3) with a skip, no downsampling."""

    def __init__(self, n_feats: int, squeeze: int):
        super().__init__()
        self.fire = FireModule(n_feats, squeeze, n_feats // 2, n_feats - n_feats // 2)

    def forward(self, x):
        return x + self.fire(x)


@dataclass
class SqueezeSRConfig:
    scale: int = 2
    n_feats: int = 64
    squeeze: int = 16  # SqueezeNet's squeeze ratio 1/4 of the expand width
    n_blocks: int = 3
    upsampler: str = "subpixel"


class SqueezeSR(nn.Module):
    """SqueezeSR, the student of seo_squeezesr_kd (Seo & Kang, Fig. 1).

    conv -> 3 Squeeze Blocks (Fire modules with skips, no downsampling) -> global skip ->
    upsampler. Silent in the paper, chosen here: width 64 (so S_i and T_i pair without an
    adapter), squeeze 16, no ReLU after the expand (the block is a residual branch), and a
    single sub-pixel conv as upsampler (EDSR's would hold ~90% of the weights at x2).
    The block outputs ``blocks.0/1/2`` are the features S1, S2, S3.
    """

    def __init__(self, cfg: SqueezeSRConfig = SqueezeSRConfig()):
        super().__init__()
        self.cfg = cfg
        self.sub_mean, self.add_mean = MeanShift(-1), MeanShift(+1)
        self.head = conv3x3(3, cfg.n_feats)
        self.blocks = nn.Sequential(*[SqueezeBlock(cfg.n_feats, cfg.squeeze) for _ in range(cfg.n_blocks)])
        self.tail = make_tail(cfg.upsampler, cfg.scale, cfg.n_feats)

    def feature_layers(self) -> list[str]:
        """The Residual/Squeeze Block outputs ``blocks.0 .. blocks.{n-1}`` (T1..T3 / S1..S3 in the paper)."""
        return [f"blocks.{i}" for i in range(len(self.blocks))]

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        x = x + self.blocks(x)
        return self.add_mean(self.tail(x))


def count_parameters(net: nn.Module, *, nonzero: bool = False) -> int:
    """Trainable parameters (buffers such as MeanShift excluded); ``nonzero`` counts only non-zero weights."""
    params = [p for p in net.parameters() if p.requires_grad]
    if nonzero:
        return int(sum(int(torch.count_nonzero(p)) for p in params))
    return int(sum(p.numel() for p in params))


class FeatureTaps:
    """Record the outputs of named submodules during a forward pass, without touching the network.

    >>> with FeatureTaps(net, ["blocks.0", "blocks.2"]) as taps:
    ...     sr = net(lr)
    >>> f0, f2 = taps.features  # in the order the names were given
    """

    def __init__(self, net: nn.Module, layers):
        modules = dict(net.named_modules())
        missing = [name for name in layers if name not in modules]
        if missing:
            raise KeyError(f"no layer {missing} in {type(net).__name__}; layers look like {list(modules)[1:6]}...")
        self.layers = list(layers)
        self._modules = [modules[name] for name in self.layers]
        self._outputs: dict[str, torch.Tensor] = {}
        self._handles = []

    def __enter__(self):
        for name, module in zip(self.layers, self._modules):
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name):
        def record(_module, _inputs, output):
            self._outputs[name] = output
        return record

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def features(self) -> list[torch.Tensor]:
        return [self._outputs[name] for name in self.layers]


def forward_with_features(net: nn.Module, x: torch.Tensor, layers=None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``net(x)`` and the outputs of ``layers`` (default ``net.feature_layers()``), in that order.

    Gradients flow as the caller's context says: wrap a frozen teacher's call in ``torch.no_grad()``.
    """
    with FeatureTaps(net, net.feature_layers() if layers is None else layers) as taps:
        out = net(x)
    return out, taps.features


# --- moon2023_clsd: EDSR (Lim et al. 2017) teacher/student and deep-supervision heads ----------------------


@dataclass
class EDSRConfig:
    """EDSR (Lim et al. 2017, as in EDSR-PyTorch): width, depth, residual scaling, scale."""
    scale: int = 2
    n_feats: int = 64
    n_blocks: int = 16
    res_scale: float = 1.0


EDSR_TEACHER = dict(n_blocks=32, n_feats=256, res_scale=0.1)  # Table 1 of moon2023_clsd (EDSR's full model)
EDSR_STUDENT = dict(n_blocks=16, n_feats=64, res_scale=1.0)   # Table 1 of moon2023_clsd (EDSR-baseline)


class EDSR(nn.Module):
    """EDSR: MeanShift -> conv -> n ResBlocks + conv (global skip) -> EDSR upsampler -> conv -> MeanShift.

    Layer names follow EDSR-PyTorch: ``head``, ``body.0..n-1`` (ResBlocks), ``body.n`` (the
    body's closing conv), ``tail``. ``block_layer(k)`` names the output of the k-th ResBlock
    (1-based); ``feature_layers()`` the three body stages of FAKD (He et al. 2020's split of the
    body into thirds: after n//3 and 2n//3 blocks and after the closing conv).
    Input/output ``(B,3,h,w)`` / ``(B,3,s*h,s*w)`` in ``[0,1]``.
    """

    def __init__(self, cfg: EDSRConfig = EDSRConfig()):
        super().__init__()
        self.cfg = cfg
        self.sub_mean, self.add_mean = MeanShift(-1), MeanShift(+1)
        self.head = conv3x3(3, cfg.n_feats)
        self.body = nn.Sequential(*[ResidualModule(cfg.n_feats, cfg.res_scale) for _ in range(cfg.n_blocks)],
                                  conv3x3(cfg.n_feats, cfg.n_feats))
        self.tail = make_tail("edsr", cfg.scale, cfg.n_feats)

    def block_layer(self, k: int) -> str:
        if not 1 <= k <= self.cfg.n_blocks:
            raise ValueError(f"block {k} out of 1..{self.cfg.n_blocks}")
        return f"body.{k - 1}"

    def feature_layers(self) -> list[str]:
        n = self.cfg.n_blocks
        return [self.block_layer(n // 3), self.block_layer(2 * n // 3), f"body.{n}"]

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        x = x + self.body(x)
        return self.add_mean(self.tail(x))


class AuxiliaryHead(nn.Module):
    """moon2023_clsd's projection head (PH): n EDSR ResBlocks + EDSR's upsampling tail + MeanShift.

    Maps an intermediate student feature ``(B,C,h,w)`` to an image ``(B,3,s*h,s*w)``. The paper
    gives only "n ResBlocks, 64 channels"; the tail (EDSR's, as the student's) and the added mean
    are our reading. No skip around the head's blocks (not stated).
    """

    def __init__(self, n_feats: int, scale: int, n_blocks: int = 5, res_scale: float = 1.0):
        super().__init__()
        self.blocks = nn.Sequential(*[ResidualModule(n_feats, res_scale) for _ in range(n_blocks)])
        self.tail = make_tail("edsr", scale, n_feats)
        self.add_mean = MeanShift(+1)

    def forward(self, feat):
        return self.add_mean(self.tail(self.blocks(feat)))


class DeepSupervisionHeads(nn.Module):
    """T auxiliary heads fed from a student EDSR's ResBlock outputs (default after blocks 4, 8, 12).

    Kept apart from the student (the paper drops the heads at inference), so the exported
    student is exactly the baseline network. ``layers`` are the student's tapped layer names,
    read with :class:`FeatureTaps`.
    """

    def __init__(self, student: EDSR, taps=(4, 8, 12), n_blocks: int = 5):
        super().__init__()
        self.taps = tuple(taps)
        self.layers = [student.block_layer(k) for k in self.taps]
        self.heads = nn.ModuleList(AuxiliaryHead(student.cfg.n_feats, student.cfg.scale, n_blocks, student.cfg.res_scale)
                                   for _ in self.taps)

    def forward(self, feats) -> list[torch.Tensor]:
        if len(feats) != len(self.heads):
            raise ValueError(f"{len(feats)} features for {len(self.heads)} heads")
        return [head(f) for head, f in zip(self.heads, feats)]


def student_with_heads(student: EDSR, heads: DeepSupervisionHeads, lr: torch.Tensor):
    """One forward pass of student and heads: returns (SR, [SR^1..SR^T])."""
    with FeatureTaps(student, heads.layers) as taps:
        sr = student(lr)
    return sr, heads(taps.features)


# ---------------------------------------------------------------------------------------------
# baek2024_esrgan_prune_kd: ESRGAN's RRDBNet and VGG-style discriminator, and magnitude pruning
# (pruning lives here, beside count_parameters: it is an operation on a network's weights that
# the notebook applies once between two trainings, not part of any training step.)
# ---------------------------------------------------------------------------------------------

class ResidualDenseBlock(nn.Module):
    """ESRGAN's dense block: 5 convs, each seeing the input and every earlier output (``growth`` channels each);
    x + 0.2 * conv5(...)."""

    def __init__(self, n_feats: int, growth: int, res_scale: float = 0.2):
        super().__init__()
        self.convs = nn.ModuleList(conv3x3(n_feats + i * growth, growth) for i in range(4))
        self.conv5 = conv3x3(n_feats + 4 * growth, n_feats)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        self.res_scale = res_scale

    def forward(self, x):
        feats = [x]
        for conv in self.convs:
            feats.append(self.lrelu(conv(torch.cat(feats, 1))))
        return x + self.res_scale * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Residual-in-Residual Dense Block: three dense blocks and an outer skip, x + 0.2 * rdb3(rdb2(rdb1(x)))."""

    def __init__(self, n_feats: int, growth: int, res_scale: float = 0.2):
        super().__init__()
        self.rdbs = nn.Sequential(*[ResidualDenseBlock(n_feats, growth, res_scale) for _ in range(3)])
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.res_scale * self.rdbs(x)


@dataclass
class RRDBNetConfig:
    n_feats: int = 64   # feature channels ("filters", ESRGAN's nf); the students of baek2024 use 16, 32, 48
    n_blocks: int = 23  # RRDB blocks (ESRGAN's nb)
    growth: int = 32    # growth channels inside a dense block (ESRGAN's gc)
    scale: int = 4      # nearest-neighbour x2 upsampling steps, each followed by a conv: x4 only
    res_scale: float = 0.2


class RRDBNet(nn.Module):
    """ESRGAN's generator (Wang et al. 2018, "ESRGAN", Fig. 3/4; layout of BasicSR's rrdbnet_arch).

    conv_first -> n_blocks RRDBs -> conv_body -> global skip -> 2 x [nearest x2, conv, LReLU] -> conv_hr,
    LReLU -> conv_last. Input ``(B,3,h,w)`` in [0,1], output ``(B,3,4h,4w)``; no mean shift.
    n_feats 64 / n_blocks 23 / growth 32 has 16,697,987 parameters. Layers for feature distillation
    (:meth:`feature_layers`): ``body.<i>`` (output of RRDB i+1) and ``conv_body``.
    """

    def __init__(self, cfg: RRDBNetConfig = RRDBNetConfig()):
        super().__init__()
        if cfg.scale != 4:
            raise ValueError(f"RRDBNet here is x4 only (two nearest x2 steps), got scale {cfg.scale}")
        self.cfg = cfg
        nf = cfg.n_feats
        self.conv_first = conv3x3(3, nf)
        self.body = nn.Sequential(*[RRDB(nf, cfg.growth, cfg.res_scale) for _ in range(cfg.n_blocks)])
        self.conv_body = conv3x3(nf, nf)
        self.conv_up1, self.conv_up2, self.conv_hr = conv3x3(nf, nf), conv3x3(nf, nf), conv3x3(nf, nf)
        self.conv_last = conv3x3(nf, 3)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x):
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in (self.conv_up1, self.conv_up2):
            feat = self.lrelu(conv(nn.functional.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))

    def feature_layers(self, blocks=(6, 12, 18, 23), conv_body: bool = True) -> list[str]:
        """Module names of the outputs of RRDB blocks (1-based; clipped to n_blocks, duplicates dropped) and conv_body."""
        names = list(dict.fromkeys(f"body.{min(b, self.cfg.n_blocks) - 1}" for b in blocks))
        return names + (["conv_body"] if conv_body else [])


class VGGStyleDiscriminator(nn.Module):
    """ESRGAN's discriminator (SRGAN's VGG-style net, BasicSR's VGGStyleDiscriminator) for square patches.

    5 stages of [conv3x3 stride 1, conv4x4 stride 2] (BN after every conv but the first, LReLU 0.2),
    widths C, 2C, 4C, 8C, 8C (C = ``n_feats``, BasicSR's num_feat), then Linear(8C * (s/32)^2, 100), LReLU, Linear(100, 1).
    ``input_size`` s = 128 in ESRGAN; any multiple of 32 works (smoke runs use 64). Returns
    one raw logit per image, ``(B,1)``.
    """

    def __init__(self, n_feats: int = 64, input_size: int = 128):
        super().__init__()
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        self.input_size = input_size
        nf = n_feats
        widths = [nf, 2 * nf, 4 * nf, 8 * nf, 8 * nf]
        layers, cin = [nn.Conv2d(3, nf, 3, 1, 1), nn.LeakyReLU(0.2, True)], nf
        for i, w in enumerate(widths):
            if i > 0:  # stage 0's first conv is the biased, un-normalised one above
                layers += [nn.Conv2d(cin, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.LeakyReLU(0.2, True)]
            layers += [nn.Conv2d(w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.LeakyReLU(0.2, True)]
            cin = w
        self.features = nn.Sequential(*layers)
        side = input_size // 32
        self.classifier = nn.Sequential(nn.Linear(8 * nf * side * side, 100), nn.LeakyReLU(0.2, True), nn.Linear(100, 1))

    def forward(self, x):
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"discriminator expects {self.input_size}x{self.input_size} inputs, got {tuple(x.shape[-2:])}")
        return self.classifier(self.features(x).flatten(1))


def prunable_conv_weights(net: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, "weight") of every Conv2d: what baek2024's pruning acts on (biases are kept)."""
    return [(m, "weight") for m in net.modules() if isinstance(m, nn.Conv2d)]


def prune_conv_weights(net: nn.Module, ratio: float, *, permanent: bool = True) -> dict:
    """Global unstructured L1 magnitude pruning of ``net``'s conv weights (torch.nn.utils.prune).

    The ``ratio`` fraction of conv weights with the smallest |w|, ranked over the whole network
    (not per layer), is set to zero: round(ratio * N) of the N conv weights. ``permanent``: the
    masks are folded into the weights (``prune.remove``), so the net is a plain module again
    and its zeros can be counted; pass False to keep the masks while fine-tuning (zeros stay
    zero), then call :func:`make_pruning_permanent`. Returns the counts before and after.
    """
    from torch.nn.utils import prune

    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"pruning ratio must be in [0, 1), got {ratio}")
    targets = prunable_conv_weights(net)
    n = sum(getattr(m, name).numel() for m, name in targets)
    if ratio > 0:
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=ratio)
        if permanent:
            make_pruning_permanent(net)
    kept = sum(int(torch.count_nonzero(getattr(m, name))) for m, name in targets)
    return {"ratio": ratio, "prunable": n, "prunable_nonzero": kept, "pruned": n - kept}


def make_pruning_permanent(net: nn.Module) -> nn.Module:
    """Fold every pruning mask of ``net`` into its weight (``prune.remove``); a no-op where none is."""
    from torch.nn.utils import prune

    for m in net.modules():
        if prune.is_pruned(m) and hasattr(m, "weight_orig"):
            prune.remove(m, "weight")
    return net


# ---------------------------------------------------------------------------------------------
# SRGAN: SRResNet generator and discriminator (Ledig et al. 2017), used by lee2021_srgan_kd
# (teacher 64 filters / 16 blocks, student 32 / 8) and lee2022_mutual_srgan (64 / 32).
# ---------------------------------------------------------------------------------------------

class SRResNetBlock(nn.Module):
    """SRGAN's residual block: x + BN(conv(PReLU(BN(conv(x))))), 3x3 convs, C -> C."""

    def __init__(self, n_feats: int):
        super().__init__()
        self.body = nn.Sequential(conv3x3(n_feats, n_feats), nn.BatchNorm2d(n_feats), nn.PReLU(),
                                  conv3x3(n_feats, n_feats), nn.BatchNorm2d(n_feats))

    def forward(self, x):
        return x + self.body(x)


class SRResNetUpsampler(nn.Sequential):
    """SRGAN's tail before the last conv: the PixelShuffle stages of :func:`pixel_shuffle_stages`, each with a PReLU."""

    def __init__(self, scale: int, n_feats: int):
        super().__init__(*pixel_shuffle_stages(scale, n_feats, nn.PReLU))


@dataclass
class SRResNetConfig:
    scale: int = 4
    n_feats: int = 64   # "filters" in lee2021_srgan_kd's Table 1
    n_blocks: int = 16  # "Resblocks"; lee2022_mutual_srgan uses 32


class SRResNet(nn.Module):
    """SRGAN's generator (Ledig et al. 2017, Fig. 4), width and depth as arguments.

    conv9x9(3->C)-PReLU -> n_blocks x [conv-BN-PReLU-conv-BN + skip] -> conv3x3-BN + long skip
    -> upsampler (PixelShuffle) -> conv9x9(C->3). ``(B,3,h,w)`` in [0,1] -> ``(B,3,s*h,s*w)``.
    Changed from SRGAN, where papers are silent: the output is linear in [0,1] (SRGAN scales
    HR to [-1,1] behind a tanh), no mean shift; PReLU has one shared slope (PyTorch's
    default, as in SRGAN); convs keep their bias also before BN. Parameters at x4:
    64/16 -> 1,549,462; 32/8 -> 247,886 (tests/test_lee2021_srgan_kd.py counts them).
    The block outputs are ``blocks.0`` .. ``blocks.{n-1}`` (:meth:`feature_layers`); the long-skip
    sum is the input of ``upsampler``.
    """

    def __init__(self, cfg: SRResNetConfig = SRResNetConfig()):
        super().__init__()
        self.cfg = cfg
        c = cfg.n_feats
        self.head = nn.Sequential(nn.Conv2d(3, c, 9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*[SRResNetBlock(c) for _ in range(cfg.n_blocks)])
        self.body_end = nn.Sequential(conv3x3(c, c), nn.BatchNorm2d(c))
        self.upsampler = SRResNetUpsampler(cfg.scale, c)
        self.tail = nn.Conv2d(c, 3, 9, padding=4)

    def feature_layers(self, blocks=None) -> list[str]:
        """Module names of the outputs of residual blocks ``blocks`` (1-based; default every block)."""
        n = self.cfg.n_blocks
        chosen = range(1, n + 1) if blocks is None else blocks
        bad = [b for b in chosen if not 1 <= b <= n]
        if bad:
            raise ValueError(f"blocks {bad} out of 1..{n}")
        return [f"blocks.{b - 1}" for b in chosen]

    def forward(self, x):
        x = self.head(x)
        x = x + self.body_end(self.blocks(x))
        return self.tail(self.upsampler(x))


@dataclass
class SRGANDiscriminatorConfig:
    input_size: int = 96  # HR patch side; the dense layer is sized for it (SRGAN: 96)
    n_feats: int = 64     # width of the first conv; doubles every second conv up to 8x
    dense: int = 1024


class SRGANDiscriminator(nn.Module):
    """SRGAN's discriminator (Ledig et al. 2017, Fig. 4): ``(B,3,S,S)`` in [0,1] -> logits ``(B,1)``.

    8 convs 3x3 of widths C,C,2C,2C,4C,4C,8C,8C, strides 1,2,1,2,1,2,1,2 (so S must be a
    multiple of 16), BN after all but the first, LeakyReLU(0.2); flatten; dense -> ``dense``,
    LeakyReLU(0.2), dense -> 1. No sigmoid: the losses take logits (BCE with logits).
    """

    def __init__(self, cfg: SRGANDiscriminatorConfig = SRGANDiscriminatorConfig()):
        super().__init__()
        if cfg.input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16 (four stride-2 convs), got {cfg.input_size}")
        self.cfg = cfg
        c = cfg.n_feats
        widths = [c, c, 2 * c, 2 * c, 4 * c, 4 * c, 8 * c, 8 * c]
        layers, cin = [], 3
        for i, cout in enumerate(widths):
            layers.append(nn.Conv2d(cin, cout, 3, stride=1 + i % 2, padding=1))
            if i:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = cout
        self.features = nn.Sequential(*layers)
        side = cfg.input_size // 16
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(cin * side * side, cfg.dense),
                                        nn.LeakyReLU(0.2, inplace=True), nn.Linear(cfg.dense, 1))

    def forward(self, x):
        if x.shape[-2:] != (self.cfg.input_size, self.cfg.input_size):
            raise ValueError(f"discriminator built for {self.cfg.input_size}x{self.cfg.input_size} inputs, "
                             f"got {tuple(x.shape[-2:])}")
        return self.classifier(self.features(x))


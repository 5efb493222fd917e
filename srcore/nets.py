"""Networks of the five papers, readable top to bottom.

Every network takes a float tensor ``(B,3,h,w)`` in ``[0,1]`` and returns ``(B,3,s*h,s*w)``.
Mean shift is a buffer, not a parameter, so parameter counts exclude it (the papers'
convention). Intermediate features are read with :class:`FeatureTaps` (forward hooks),
so no network is rewritten for a distillation method.
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


class EDSRUpsampler(nn.Sequential):
    """EDSR's tail: log2(s) x [conv C->4C, PixelShuffle(2)] for s in {2,4}; [conv C->9C, PixelShuffle(3)] for 3."""

    def __init__(self, scale: int, n_feats: int):
        if scale in (2, 4):
            layers = []
            for _ in range(int(math.log2(scale))):
                layers += [conv3x3(n_feats, 4 * n_feats), nn.PixelShuffle(2)]
        elif scale == 3:
            layers = [conv3x3(n_feats, 9 * n_feats), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"scale must be 2, 3 or 4, got {scale!r}")
        super().__init__(*layers)


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

    feature_layers = ("blocks.0", "blocks.1", "blocks.2")

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

    feature_layers = ("blocks.0", "blocks.1", "blocks.2")

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

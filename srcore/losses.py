"""Losses of the five papers. Each is checked on a hand-worked example in tests/test_losses.py.

Step functions call them inside ``Trainer.autocast()`` (bf16 on GPUs). What bf16's 8 mantissa bits
would spoil is computed in float32 whatever autocast says (:func:`in_float32`): affinity matrices,
softmax with a temperature, distances and their ratios, KL divergences and norms.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


def _up(value):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    if isinstance(value, (list, tuple)):
        return type(value)(_up(v) for v in value)
    return value


def in_float32(fn):
    """``fn`` computed in float32 under any autocast: its floating tensor arguments (also in lists) cast to
    float32 and autocast switched off on their device while it runs (autocast would cast a matmul back to bf16)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        device = tensors[0].device.type if tensors else "cpu"
        with torch.autocast(device_type=device, enabled=False):
            return fn(*_up(args), **{k: _up(v) for k, v in kwargs.items()})
    return wrapper


class FeatureAdapter(nn.Module):
    """1x1 conv mapping student channels to teacher channels; the identity when they already match."""

    def __init__(self, student_channels: int, teacher_channels: int):
        super().__init__()
        self.proj = (nn.Identity() if student_channels == teacher_channels
                     else nn.Conv2d(student_channels, teacher_channels, 1))

    def forward(self, x):
        return self.proj(x)


class FeatureDistillationLoss(nn.Module):
    """seo_squeezesr_kd's KD: sum_i L1(adapter_i(S_i), T_i) over paired block outputs.

    The paper pairs (T1,S1),(T2,S2),(T3,S3) but gives no loss; L1 (as the SR loss) is
    our choice. Teacher features are detached: the teacher only guides.
    """

    def __init__(self, student_channels, teacher_channels):
        super().__init__()
        if len(student_channels) != len(teacher_channels):
            raise ValueError(f"{len(student_channels)} student features but {len(teacher_channels)} teacher features")
        self.adapters = nn.ModuleList(FeatureAdapter(s, t) for s, t in zip(student_channels, teacher_channels))

    def forward(self, student_feats, teacher_feats) -> torch.Tensor:
        return sum(F.l1_loss(adapt(s), t.detach()) for adapt, s, t in zip(self.adapters, student_feats, teacher_feats))


def sr_kd_loss(sr, hr, student_feats, teacher_feats, kd: FeatureDistillationLoss, *, w_sr: float = 1.0, w_kd: float = 1.0):
    """L = w_sr L1(SR, HR) + w_kd sum_i L1(S_i, T_i); returns (total, parts).

    The parts are detached tensors: the Trainer reads them on log steps only (no sync per step).
    """
    l_sr = F.l1_loss(sr, hr)
    l_kd = kd(student_feats, teacher_feats)
    total = w_sr * l_sr + w_kd * l_kd
    return total, {"l1": l_sr.detach(), "kd": l_kd.detach()}


# --- moon2023_clsd: FAKD, LFD, deep supervision (Eqs. 1-4) and contrastive self-distillation (Eqs. 5-6) ------


@in_float32  # an affinity matrix: cosines of C-long sums, in float32
def spatial_affinity(feat: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """FAKD's spatial affinity (He et al. 2020): ``(B,C,H,W)`` -> ``(B,HW,HW)`` cosine similarity between pixels.

    Each pixel's C-vector is L2-normalised, so the affinity does not depend on the width C
    (teacher 256 and student 64 channels compare directly, no adapter).
    """
    f = feat.flatten(2)                            # (B,C,HW)
    f = f / (f.norm(dim=1, keepdim=True) + eps)    # per-pixel unit vectors
    return f.transpose(1, 2) @ f                   # (B,HW,HW)


class FeatureAffinityLoss(nn.Module):
    """FAKD's feature term: sum_i mean |A(S_i) - A(T_i)| over the paired body stages (teacher detached)."""

    def forward(self, student_feats, teacher_feats) -> torch.Tensor:
        if len(student_feats) != len(teacher_feats):
            raise ValueError(f"{len(student_feats)} student features but {len(teacher_feats)} teacher features")
        return sum(F.l1_loss(spatial_affinity(s), spatial_affinity(t.detach()))
                   for s, t in zip(student_feats, teacher_feats))


def fakd_loss(sr, hr, sr_teacher, student_feats, teacher_feats, *, alpha: float = 0.5, weight: float = 10.0):
    """FAKD's objective: (1-a) L1(SR,HR) + a L1(SR,SR_T) + w sum_i L1(A(S_i),A(T_i)); returns (total, parts)."""
    l_sr = F.l1_loss(sr, hr)
    l_out = F.l1_loss(sr, sr_teacher.detach())
    l_aff = FeatureAffinityLoss()(student_feats, teacher_feats)
    total = (1 - alpha) * l_sr + alpha * l_out + weight * l_aff
    return total, {"l1": l_sr.detach(), "l_teacher": l_out.detach(), "l_affinity": l_aff.detach()}


class LocalSelectiveFeatureLoss(nn.Module):
    """LFD (Park & Kwak 2021, "local-selective feature distillation"), as we read it; no public code exists.

    Assumptions (each stated in the moon2023_clsd notebook):
    * FitNet-style feature KD through a *local* regressor per stage: conv3x3-ReLU-conv3x3,
      student width -> teacher width (a 3x3 receptive field is the "local" part);
    * location weights from the detached teacher-student output difference
      D = mean_c |SR_T - SR| average-pooled by ``scale`` to the feature grid, turned into
      w = h*w * softmax(D / tau) over the h*w locations (mean weight 1: where the student is
      furthest from the teacher, the feature loss weighs more);
    * loss = sum_i mean_{b,c,y,x} w * |R_i(S_i) - T_i| over the same stages as FAKD.
    Features ``(B,C,h,w)``; images ``(B,3,s*h,s*w)`` in ``[0,1]``.
    """

    def __init__(self, student_channels, teacher_channels, tau: float = 0.02):
        super().__init__()
        if len(student_channels) != len(teacher_channels):
            raise ValueError(f"{len(student_channels)} student features but {len(teacher_channels)} teacher features")
        self.tau = tau
        self.regressors = nn.ModuleList(
            nn.Sequential(nn.Conv2d(s, s, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(s, t, 3, padding=1))
            for s, t in zip(student_channels, teacher_channels))

    @in_float32  # a softmax with temperature tau = 0.02: in float32
    def location_weights(self, sr, sr_teacher, size) -> torch.Tensor:
        """``(B,1,h,w)`` weights with mean 1 per image, from the detached output difference."""
        diff = (sr_teacher - sr).detach().abs().mean(1, keepdim=True)
        diff = F.adaptive_avg_pool2d(diff, size)
        b, _, h, w = diff.shape
        return (h * w) * torch.softmax(diff.flatten(1) / self.tau, dim=1).view(b, 1, h, w)

    def forward(self, student_feats, teacher_feats, sr, sr_teacher) -> torch.Tensor:
        total = 0.0
        for reg, s, t in zip(self.regressors, student_feats, teacher_feats):
            w = self.location_weights(sr, sr_teacher, t.shape[-2:])
            total = total + (w * (reg(s) - t.detach()).abs()).mean()
        return total


def lfd_loss(sr, hr, sr_teacher, student_feats, teacher_feats, lfd: LocalSelectiveFeatureLoss, *, weight: float = 1.0):
    """LFD's objective as we read it: L1(SR,HR) + w sum_i LFD_i; returns (total, parts)."""
    l_sr = F.l1_loss(sr, hr)
    l_fd = lfd(student_feats, teacher_feats, sr, sr_teacher)
    return l_sr + weight * l_fd, {"l1": l_sr.detach(), "l_lfd": l_fd.detach()}


def deep_supervision_terms(sr, aux, hr, *, detach_target: bool = True) -> dict:
    """Eqs. 1-3 of moon2023_clsd: L_SR = L1(SR,HR), L_ASR = mean_j L1(SR^j,HR), L_SD = mean_j L1(SR^j,SR).

    The 1/(2N) sum of per-image L1 norms is read as the mean absolute error (EDSR's L1, a
    constant factor shared by all three terms). SR is the teacher of the heads in L_SD, so it
    is detached unless ``detach_target`` is False.
    """
    target = sr.detach() if detach_target else sr
    return {"l_sr": F.l1_loss(sr, hr),
            "l_asr": sum(F.l1_loss(a, hr) for a in aux) / len(aux),
            "l_sd": sum(F.l1_loss(a, target) for a in aux) / len(aux)}


@in_float32  # distances that Eq. 5 divides by each other: in float32
def pairwise_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(N,...)``, ``(N,...)`` -> ``(N,N)``: D[i,k] = mean |x_i - y_k| (the L1 distance d of Eq. 5, per element)."""
    a, b = x.flatten(1), y.flatten(1)
    return (a[:, None, :] - b[None, :, :]).abs().mean(-1)


@in_float32  # a ratio of distance sums (eps 1e-12 is below bf16's resolution): in float32
def contrastive_self_distillation_loss(sr, aux_j, *, detach_anchor: bool = True, eps: float = 1e-12) -> torch.Tensor:
    """Eq. 5 of moon2023_clsd for one head j: L_CS^j = sum_i d(SR_i, SR_i^j) / sum_negatives.

    Positive of anchor i: the head's output for the same batch index, SR_i^j. Negatives of
    anchor i (2(N-1) of them, 2N(N-1) over the batch): the head's outputs for the other
    indices, measured from the anchor (across models, d(SR_i, SR_k^j)) and from the head's own
    output (within the head, d(SR_i^j, SR_k^j)), k != i. d is the L1 distance. SR (the
    student's final output, the teacher here) is detached unless ``detach_anchor`` is False.
    ``sr``, ``aux_j``: ``(N,3,H,W)``; N >= 2.
    """
    n = sr.shape[0]
    if n < 2:
        raise ValueError("the contrastive loss needs a batch of at least 2 (negatives are other batch indices)")
    anchor = sr.detach() if detach_anchor else sr
    cross = pairwise_l1(anchor, aux_j)   # cross[i,k] = d(SR_i, SR_k^j); the diagonal holds the positives
    within = pairwise_l1(aux_j, aux_j)   # within[i,k] = d(SR_i^j, SR_k^j)
    off = ~torch.eye(n, dtype=torch.bool, device=sr.device)
    positives = cross.diagonal()
    negatives = (cross * off).sum(1) + (within * off).sum(1)
    return (positives / (negatives + eps)).sum()


CLSD_FORMS = ("table5", "eq6")


def clsd_loss(sr, aux, hr, *, form: str = "table5", alpha: float = 10.0, beta: float = 10.0,
              detach_target: bool = True):
    """CLSD's objective; returns (total, parts).

    ``form="table5"``: L_SR + L_ASR + beta sum_j L_CS^j (Table 5's CLSD row, whose numbers equal
    Table 2's CLSD); ``form="eq6"``: Eq. 6, L_DS + beta sum_j L_CS^j = L_SR + L_ASR + alpha L_SD + beta sum_j L_CS^j.
    """
    if form not in CLSD_FORMS:
        raise ValueError(f"form must be one of {CLSD_FORMS}, got {form!r}")
    terms = deep_supervision_terms(sr, aux, hr, detach_target=detach_target)
    l_cs = sum(contrastive_self_distillation_loss(sr, a, detach_anchor=detach_target) for a in aux)
    total = terms["l_sr"] + terms["l_asr"] + beta * l_cs
    if form == "eq6":
        total = total + alpha * terms["l_sd"]
    return total, {"l1": terms["l_sr"].detach(), "l_asr": terms["l_asr"].detach(), "l_sd": terms["l_sd"].detach(),
                   "l_cs": l_cs.detach()}


def ds_loss(sr, aux, hr, *, alpha: float = 10.0, detach_target: bool = True):
    """Eq. 4 of moon2023_clsd: L_DS = L_SR + L_ASR + alpha L_SD (alpha 0: Table 5's L_SR + L_ASR row)."""
    terms = deep_supervision_terms(sr, aux, hr, detach_target=detach_target)
    total = terms["l_sr"] + terms["l_asr"] + alpha * terms["l_sd"]
    return total, {"l1": terms["l_sr"].detach(), "l_asr": terms["l_asr"].detach(), "l_sd": terms["l_sd"].detach()}


# ---------------------------------------------------------------------------------------------
# SRGAN losses (Ledig et al. 2017), used by lee2021_srgan_kd and lee2022_mutual_srgan:
# VGG19 content loss (or its declared pixel-MSE substitute), adversarial BCE, output KD.
# ---------------------------------------------------------------------------------------------

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# number of torchvision vgg19().features modules up to and including the named ReLU
VGG19_LAYERS = {"relu2_2": 9, "relu5_4": 36}  # SRGAN's VGG22 and VGG54


def vgg19_features(layer: str = "relu5_4") -> nn.Module:
    """torchvision's VGG19 ``features`` up to ``layer``, with the ImageNet weights found by
    ``srcore.pretrained.weights.require("vgg19")``; raises ``WeightsUnavailable`` (never random weights)."""
    import torchvision

    from srcore.pretrained import weights

    if layer not in VGG19_LAYERS:
        raise ValueError(f"unknown VGG19 layer {layer!r}; known: {sorted(VGG19_LAYERS)}")
    path = weights.require("vgg19")  # raises, naming the file and the folders searched
    vgg = torchvision.models.vgg19(weights=None)
    weights.load_state_dict(vgg, path)  # strict: every tensor replaced; a wrong file is refused by name
    return vgg.features[:VGG19_LAYERS[layer]]


class VGGContentLoss(nn.Module):
    """SRGAN's content loss l_VGG/5.4: MSE between VGG19 relu5_4 features of SR and HR.

    ``sr``, ``hr``: ``(B,3,H,W)`` in [0,1], ImageNet-normalised before VGG. Features are
    multiplied by ``feature_scale`` (SRGAN: 1/12.75, i.e. a weight of 1/12.75^2 ~ 0.006 on the
    feature MSE). ``features`` injects another frozen feature extractor (tests only: a result
    must never come from a VGG without its ImageNet weights).
    """

    def __init__(self, layer: str = "relu5_4", feature_scale: float = 1 / 12.75, features: nn.Module | None = None):
        super().__init__()
        self.features = (features if features is not None else vgg19_features(layer)).eval().requires_grad_(False)
        self.feature_scale = feature_scale
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True):
        return super().train(False)  # a frozen loss network stays in eval mode

    def _feats(self, x):
        return self.features((x - self.mean) / self.std) * self.feature_scale

    def forward(self, sr, hr):
        return F.mse_loss(self._feats(sr), self._feats(hr).detach())


class PixelMSELoss(nn.Module):
    """MSE(SR, HR) in [0,1] pixels: the declared substitute for the VGG content loss where the
    VGG19 ImageNet weights are not in ``$SRCORE_WEIGHTS`` (smoke and quick use it)."""

    def forward(self, sr, hr):
        return F.mse_loss(sr, hr)


CONTENT_LOSSES = {
    "vgg": "SRGAN's VGG19 relu5_4 feature MSE (ImageNet weights), features scaled by feature_scale",
    "mse": "pixel MSE: declared substitute for SRGAN's VGG19 content loss (VGG19 ImageNet weights unavailable)",
}


def content_loss(kind: str, *, layer: str = "relu5_4", feature_scale: float = 1 / 12.75) -> nn.Module:
    """l_c of SRGAN: ``"vgg"`` (needs the VGG19 weights, else raises WeightsUnavailable) or ``"mse"``."""
    if kind == "vgg":
        return VGGContentLoss(layer, feature_scale)
    if kind == "mse":
        return PixelMSELoss()
    raise ValueError(f"unknown content loss {kind!r}; known: {', '.join(CONTENT_LOSSES)}")


def adversarial_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """SRGAN's generative loss -log D(G(x)) as BCE with logits against "real" (mean over the batch)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def adversarial_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss: BCE(D(HR), real) + BCE(D(SR), fake), each a mean over the batch; pass SR detached."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def output_kd_loss(student_sr: torch.Tensor, teacher_sr: torch.Tensor) -> torch.Tensor:
    """l_KD of lee2021_srgan_kd (Eq. 2): MSE(G_S(x), G_T(x)); the teacher's image is a fixed target."""
    return F.mse_loss(student_sr, teacher_sr.detach())


def srgan_generator_loss(sr, hr, content: nn.Module, *, fake_logits=None, adv_weight: float = 1e-3,
                         teacher_sr=None, kd_weight: float = 1.0):
    """l_G = l_c(SR, HR) [+ kd_weight l_KD(SR, teacher SR)] [+ adv_weight l_a(D(SR))]; returns (total, parts).

    SRGAN's Eq. 3 with its 1e-3 adversarial weight; lee2021_srgan_kd's Eq. 2 adds l_KD with
    weight 1. A term is left out when its input (``teacher_sr``, ``fake_logits``) is None.
    """
    l_c = content(sr, hr)
    total, parts = l_c, {"l_c": l_c.detach()}
    if teacher_sr is not None:
        l_kd = output_kd_loss(sr, teacher_sr)
        total = total + kd_weight * l_kd
        parts["l_kd"] = l_kd.detach()
    if fake_logits is not None:
        l_a = adversarial_g_loss(fake_logits)
        total = total + adv_weight * l_a
        parts["l_a"] = l_a.detach()
    parts["l_g"] = total.detach()
    return total, parts


# ---------------------------------------------------------------------------------------------
# ESRGAN losses (Wang et al. 2018) and baek2024_esrgan_prune_kd's Eqs. 1-4: perceptual loss on
# VGG19 conv5_4 *before* its ReLU (or the declared pixel-MSE substitute), relativistic average
# GAN, and feature distillation through learnable 1x1 adapters.
# ---------------------------------------------------------------------------------------------


def vgg19_conv5_4_features() -> nn.Module:
    """VGG19 ``features`` up to conv5_4, before its ReLU (ESRGAN's choice): SRGAN's relu5_4 stack minus its ReLU.

    Loaded through :func:`vgg19_features` (``srcore.pretrained.weights.require("vgg19")``): raises
    ``WeightsUnavailable`` when the ImageNet weights are missing, never builds a random VGG.
    """
    from srcore.pretrained import weights

    weights.require("vgg19")  # refuse before importing torchvision when the weights are missing
    stack = vgg19_features("relu5_4")
    assert isinstance(stack[-1], nn.ReLU) and isinstance(stack[-2], nn.Conv2d)
    return stack[:-1]


class ESRGANPerceptualLoss(VGGContentLoss):
    """ESRGAN's L_percep: L1 between VGG19 conv5_4 features (before ReLU) of SR and HR, weight 1.

    ``sr``, ``hr``: ``(B,3,H,W)`` in [0,1], ImageNet-normalised first (BasicSR's use_input_norm).
    ``features`` injects another frozen extractor (tests only).
    """

    def __init__(self, features: nn.Module | None = None):
        super().__init__(feature_scale=1.0, features=features if features is not None else vgg19_conv5_4_features())

    def forward(self, sr, hr):
        return F.l1_loss(self._feats(sr), self._feats(hr).detach())


PERCEPTUAL_LOSSES = {
    "vgg": "ESRGAN's perceptual loss: L1 of VGG19 conv5_4 features before ReLU (ImageNet weights)",
    "mse": "pixel MSE: declared substitute for ESRGAN's VGG19 perceptual loss (VGG19 ImageNet weights unavailable)",
}


def esrgan_perceptual_loss(kind: str, *, profile: str) -> tuple[nn.Module, str]:
    """The perceptual term and a sentence saying what it is (for provenance).

    ``kind``: ``"vgg"`` (raises WeightsUnavailable without the weights), ``"mse"`` (the declared
    substitute), or ``"auto"``: vgg where the weights are, else the substitute, except in the
    ``paper`` profile, which never trains with a substitute and raises instead.
    """
    from srcore.pretrained import weights

    if kind not in ("auto", *PERCEPTUAL_LOSSES):
        raise ValueError(f"unknown perceptual loss {kind!r}; known: auto, {', '.join(PERCEPTUAL_LOSSES)}")
    if kind == "auto":
        kind = "vgg" if (profile == "paper" or weights.available("vgg19")) else "mse"
    if kind == "mse" and profile == "paper":
        raise ValueError("the paper profile trains ESRGAN with its VGG19 perceptual loss; no substitute")
    return (ESRGANPerceptualLoss() if kind == "vgg" else PixelMSELoss()), PERCEPTUAL_LOSSES[kind]


def relativistic_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """ESRGAN's RaGAN discriminator loss (Eq. 2 of ESRGAN), halved as in BasicSR; pass SR's logits detached.

    0.5 * [BCE(C(x_r) - E[C(x_f)], real) + BCE(C(x_f) - E[C(x_r)], fake)], expectations over the batch.
    """
    return 0.5 * (F.binary_cross_entropy_with_logits(real_logits - fake_logits.mean(), torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits - real_logits.mean(), torch.zeros_like(fake_logits)))


def relativistic_g_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """ESRGAN's RaGAN generator loss (Eq. 3 of ESRGAN): the same with labels swapped; HR's logits are detached."""
    real_logits = real_logits.detach()
    return 0.5 * (F.binary_cross_entropy_with_logits(real_logits - fake_logits.mean(), torch.zeros_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits - real_logits.mean(), torch.ones_like(fake_logits)))


GAN_LOSSES = {  # name -> (generator loss(real, fake), discriminator loss(real, fake))
    "ragan": (relativistic_g_loss, relativistic_d_loss),
    "vanilla": (lambda real, fake: adversarial_g_loss(fake), adversarial_d_loss),  # baek2024's Eq. 2 as printed
}


def esrgan_generator_loss(sr, hr, perceptual: nn.Module, real_logits, fake_logits, *, w_l1: float = 1e-2,
                          w_percep: float = 1.0, w_gan: float = 5e-3):
    """ESRGAN's L_G = w_percep L_percep + w_gan L_G^Ra + w_l1 L1 (ESRGAN: 1, 5e-3, 1e-2); returns (total, parts)."""
    l1 = F.l1_loss(sr, hr)
    l_p = perceptual(sr, hr)
    l_g = relativistic_g_loss(real_logits, fake_logits)
    total = w_percep * l_p + w_gan * l_g + w_l1 * l1
    return total, {"l1": l1.detach(), "l_percep": l_p.detach(), "l_gan": l_g.detach(), "l_g": total.detach()}


DISTILL_NORMS = ("rms", "norm", "mse")


class HiddenFeatureDistillationLoss(nn.Module):
    """Eq. 3 of baek2024_esrgan_prune_kd: L_distill = sum_i || f_i(C_i(x)) - C'_i(x) ||_2.

    f_i is a learnable 1x1 conv from the student's channels to the teacher's (always a conv,
    also at equal widths: the paper's f_i is learnable); teacher features are detached. Per tap,
    with d = f_i(C_i) - C'_i of shape ``(B,C,H,W)`` and the expectation over the batch:
    ``"norm"``: mean_b ||d_b||_2 (the printed norm, grows with sqrt(C H W));
    ``"rms"``:  mean_b ||d_b||_2 / sqrt(C H W) (the same norm made independent of width and patch size);
    ``"mse"``:  mean(d^2) (the squared form FitNets use).
    """

    def __init__(self, student_channels, teacher_channels, norm: str = "rms"):
        super().__init__()
        if len(student_channels) != len(teacher_channels):
            raise ValueError(f"{len(student_channels)} student features but {len(teacher_channels)} teacher features")
        if norm not in DISTILL_NORMS:
            raise ValueError(f"norm must be one of {DISTILL_NORMS}, got {norm!r}")
        self.norm = norm
        self.adapters = nn.ModuleList(nn.Conv2d(s, t, 1) for s, t in zip(student_channels, teacher_channels))

    @in_float32  # a norm over C*H*W elements: in float32
    def _distance(self, d: torch.Tensor) -> torch.Tensor:
        if self.norm == "mse":
            return d.pow(2).mean()
        per_image = d.flatten(1).norm(dim=1)
        if self.norm == "rms":
            per_image = per_image / d[0].numel() ** 0.5
        return per_image.mean()

    def forward(self, student_feats, teacher_feats) -> torch.Tensor:
        if len(student_feats) != len(self.adapters) or len(teacher_feats) != len(self.adapters):
            raise ValueError(f"expected {len(self.adapters)} feature pairs, got {len(student_feats)} and {len(teacher_feats)}")
        return sum(self._distance(f(s) - t.detach()) for f, s, t in zip(self.adapters, student_feats, teacher_feats))


def pruned_kd_student_loss(sr, hr, student_feats, teacher_feats, distill: HiddenFeatureDistillationLoss,
                           real_logits, fake_logits, *, lambda_recon: float = 1.0, lambda_distill: float = 1.0,
                           lambda_gan: float = 1.0, gan: str = "ragan"):
    """Eq. 4 of baek2024_esrgan_prune_kd: L = lambda_recon L_recon + lambda_gan L_GAN + lambda_distill L_distill.

    L_recon = L1(G(x), y) (Eq. 1); L_GAN the generator side of ``gan`` ("ragan": ESRGAN's, as the
    teacher's discriminator was trained; "vanilla": Eq. 2 as printed) on the discriminator D'
    (the teacher's, fine-tuned); L_distill Eq. 3. The paper prints no weight on L_GAN
    (``lambda_gan`` 1). Returns (total, parts detached for logging).
    """
    l_recon = F.l1_loss(sr, hr)
    l_gan = GAN_LOSSES[gan][0](real_logits, fake_logits)
    l_distill = distill(student_feats, teacher_feats)
    total = lambda_recon * l_recon + lambda_gan * l_gan + lambda_distill * l_distill
    return total, {"l1": l_recon.detach(), "l_gan": l_gan.detach(), "l_distill": l_distill.detach(), "loss": total.detach()}


# ---------------------------------------------------------------------------------------------
# lee2022_mutual_srgan: mutual distillation between the discriminators of two SRGANs (Eqs. 2-3),
# as Deep Mutual Learning (Zhang et al. 2018): D_i minimises KL(p_j || p_i), the peer detached.
# A discriminator's output is one logit z per image, read as a Bernoulli distribution
# (p = sigmoid(z) = P(real), 1 - p = P(fake)); ML* softens it with a temperature (Hinton).
# ---------------------------------------------------------------------------------------------


@in_float32  # a KL divergence of log-probabilities: in float32
def bernoulli_kl_from_logits(target_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Per-element KL(Bern(q) || Bern(p)) with q = sigmoid(target_logits), p = sigmoid(logits).

    q log(q/p) + (1-q) log((1-q)/(1-p)), computed with log-sigmoids (no log(0) at saturated
    logits). Shapes broadcast; returns the elementwise divergence (>= 0, 0 where q = p).
    """
    q = torch.sigmoid(target_logits)
    log_q, log_1mq = F.logsigmoid(target_logits), F.logsigmoid(-target_logits)
    log_p, log_1mp = F.logsigmoid(logits), F.logsigmoid(-logits)
    return q * (log_q - log_p) + (1 - q) * (log_1mq - log_1mp)


@in_float32  # logits divided by a temperature, then a KL: in float32
def mutual_kl_loss(logits: torch.Tensor, peer_logits: torch.Tensor, *, temperature: float = 1.0) -> torch.Tensor:
    """One KL term of Eq. 3 of lee2022_mutual_srgan for discriminator D_i: T^2 mean_b KL(p_j^T || p_i^T).

    ``logits``: D_i's raw outputs ``(B,1)``; ``peer_logits``: the peer D_j's on the paired images
    ``(B,1)``, detached here (the peer is a fixed target, as in Deep Mutual Learning).
    p^T = sigmoid(z / T). ``temperature`` 1: ML (plain probabilities); T > 1: ML* (softened, the
    KL multiplied by T^2 so its gradients keep the scale of T = 1, as in Hinton et al.). Mean
    over the batch (DML's batch-mean KL).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if logits.shape != peer_logits.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and peer logits {tuple(peer_logits.shape)} differ in shape")
    t = float(temperature)
    return t * t * bernoulli_kl_from_logits(peer_logits.detach() / t, logits / t).mean()


def mutual_distillation_loss(real_logits, fake_logits, peer_real_logits, peer_fake_logits, *,
                             temperature: float = 1.0):
    """Eq. 3 of lee2022_mutual_srgan for D_i: L_md = KL_SR + KL_HR; returns (total, parts).

    KL_SR: D_i on its own generator's SR batch (``fake_logits``) against the peer D_j on the
    peer generator's SR of the same LR batch (``peer_fake_logits``); KL_HR: both discriminators
    on the same real HR batch. Peer logits are detached; each term is :func:`mutual_kl_loss`.
    """
    kl_sr = mutual_kl_loss(fake_logits, peer_fake_logits, temperature=temperature)
    kl_hr = mutual_kl_loss(real_logits, peer_real_logits, temperature=temperature)
    return kl_sr + kl_hr, {"kl_sr": kl_sr.detach(), "kl_hr": kl_hr.detach()}


def discriminator_accuracy(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict:
    """Fraction of HR images called real (logit > 0) and of SR images called fake (logit < 0), as 0-d tensors."""
    return {"acc_real": (real_logits.detach() > 0).float().mean(), "acc_fake": (fake_logits.detach() < 0).float().mean()}

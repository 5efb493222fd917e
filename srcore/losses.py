"""Losses of the five papers. Each is checked on a hand-worked example in tests/test_losses.py."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
    """L = w_sr L1(SR, HR) + w_kd sum_i L1(S_i, T_i); returns (total, parts) with the parts as floats for logging."""
    l_sr = F.l1_loss(sr, hr)
    l_kd = kd(student_feats, teacher_feats)
    total = w_sr * l_sr + w_kd * l_kd
    return total, {"l1": l_sr.detach().item(), "kd": l_kd.detach().item()}

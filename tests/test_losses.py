"""Each loss on a hand-worked example."""
import pytest
import torch

from srcore import losses


def test_feature_distillation_sums_l1_over_pairs():
    kd = losses.FeatureDistillationLoss([4, 4, 4], [4, 4, 4])  # same widths: identity adapters
    s = [torch.zeros(1, 4, 2, 2), torch.full((1, 4, 2, 2), 2.0), torch.ones(1, 4, 2, 2)]
    t = [torch.ones(1, 4, 2, 2), torch.ones(1, 4, 2, 2), torch.ones(1, 4, 2, 2)]
    # |0-1| + |2-1| + |1-1| = 1 + 1 + 0
    assert kd(s, t).item() == pytest.approx(2.0)
    assert sum(p.numel() for p in kd.parameters()) == 0


def test_adapter_maps_channels_before_the_l1():
    kd = losses.FeatureDistillationLoss([2], [3])
    conv = kd.adapters[0].proj
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).view(3, 2, 1, 1))
        conv.bias.zero_()
    s = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)
    t = torch.tensor([1.0, 2.0, 0.0]).view(1, 3, 1, 1)
    # adapter(s) = (1, 2, 3); |1-1| + |2-2| + |3-0| over 3 values = 1
    assert kd([s], [t]).item() == pytest.approx(1.0)


def test_teacher_gets_no_gradient_and_weights_apply():
    kd = losses.FeatureDistillationLoss([1], [1])
    s = torch.zeros(1, 1, 2, 2, requires_grad=True)
    t = torch.ones(1, 1, 2, 2, requires_grad=True)
    sr, hr = torch.zeros(1, 3, 2, 2, requires_grad=True), torch.full((1, 3, 2, 2), 0.5)
    total, parts = losses.sr_kd_loss(sr, hr, [s], [t], kd, w_sr=2.0, w_kd=3.0)
    assert {k: float(v) for k, v in parts.items()} == {"l1": pytest.approx(0.5), "kd": pytest.approx(1.0)}
    assert total.item() == pytest.approx(2.0 * 0.5 + 3.0 * 1.0)
    total.backward()
    assert t.grad is None and s.grad is not None
    assert torch.allclose(s.grad, torch.full_like(s, -3.0 / 4))  # d/ds of 3 * mean|s - 1|


def test_mismatched_feature_lists():
    with pytest.raises(ValueError, match="2 student features but 3"):
        losses.FeatureDistillationLoss([4, 4], [4, 4, 4])


def test_what_bf16_would_spoil_is_computed_in_float32_under_autocast():
    torch.manual_seed(0)
    feat = torch.randn(2, 8, 6, 6, requires_grad=True)
    sr, aux = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    logits, peer = torch.randn(4, 1), torch.randn(4, 1)
    lfd = losses.LocalSelectiveFeatureLoss([8], [8], tau=0.02)
    plain = {"affinity": losses.spatial_affinity(feat), "cs": losses.contrastive_self_distillation_loss(sr, aux),
             "kl": losses.mutual_kl_loss(logits, peer, temperature=2.0),
             "weights": lfd.location_weights(sr, aux, (4, 4))}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = {"affinity": losses.spatial_affinity(feat.bfloat16()),
                "cs": losses.contrastive_self_distillation_loss(sr, aux),
                "kl": losses.mutual_kl_loss(logits, peer, temperature=2.0),
                "weights": lfd.location_weights(sr, aux, (4, 4))}
        assert (feat.bfloat16() @ feat.bfloat16().transpose(2, 3)).dtype == torch.bfloat16  # what autocast does elsewhere
    for k in plain:
        assert bf16[k].dtype == torch.float32, k
    for k in ("cs", "kl", "weights"):  # float32 inputs: the same numbers as without autocast
        assert torch.equal(bf16[k], plain[k]), k
    # bf16 features (a bf16 network's output): only their own rounding remains, the affinity is float32 arithmetic
    assert torch.allclose(bf16["affinity"], plain["affinity"], atol=2e-2)
    bf16["affinity"].sum().backward()
    assert feat.grad is not None and torch.isfinite(feat.grad).all()

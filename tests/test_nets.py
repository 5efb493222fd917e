"""Shapes and parameter counts of every network, counted by hand from the layer list."""
import pytest
import torch

from srcore import nets


def conv(cin, cout, k=3):
    return cin * cout * k * k + cout


def edsrt_count(scale, f=64, blocks=3, modules=9):
    tail = {2: conv(f, 4 * f), 3: conv(f, 9 * f), 4: 2 * conv(f, 4 * f)}[scale] + conv(f, 3)
    return conv(3, f) + blocks * modules * 2 * conv(f, f) + blocks * conv(f, f) + tail


def squeezesr_count(scale, f=64, sq=16):
    fire = conv(f, sq, 1) + conv(sq, f // 2, 1) + conv(sq, f // 2, 3)
    return conv(3, f) + 3 * fire + conv(f, 3 * scale * scale)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_parameter_counts_match_the_layer_list(scale):
    assert nets.count_parameters(nets.EDSRT(nets.EDSRTConfig(scale=scale))) == edsrt_count(scale)
    assert nets.count_parameters(nets.SqueezeSR(nets.SqueezeSRConfig(scale=scale))) == squeezesr_count(scale)


def test_hand_worked_totals_at_x2():
    # 1,792 head + 27 x 73,856 modules + 3 x 36,928 block convs + 147,712 + 1,731 tail
    assert edsrt_count(2) == 2_256_131
    # 1,792 head + 3 x 6,224 Fire modules + 6,924 sub-pixel tail
    assert squeezesr_count(2) == 27_388


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("make", [
    lambda s: nets.EDSRT(nets.EDSRTConfig(scale=s, n_feats=8, n_modules=1)),
    lambda s: nets.SqueezeSR(nets.SqueezeSRConfig(scale=s, n_feats=8, squeeze=2)),
    lambda s: nets.SqueezeSR(nets.SqueezeSRConfig(scale=s, n_feats=8, squeeze=2, upsampler="edsr")),
])
def test_output_shape(make, scale):
    net = make(scale)
    out = net(torch.rand(2, 3, 7, 5))
    assert out.shape == (2, 3, 7 * scale, 5 * scale)


def test_mean_shift_is_not_a_parameter_and_cancels():
    sub, add = nets.MeanShift(-1), nets.MeanShift(+1)
    assert nets.count_parameters(sub) == 0
    x = torch.rand(1, 3, 4, 4)
    assert torch.allclose(add(sub(x)), x)
    assert torch.allclose(sub(torch.zeros(1, 3, 1, 1)).flatten(), -torch.tensor(nets.DIV2K_RGB_MEAN))


def test_feature_taps_read_block_outputs_and_detach_their_hooks():
    net = nets.SqueezeSR(nets.SqueezeSRConfig(scale=2, n_feats=8, squeeze=2))
    x = torch.rand(1, 3, 6, 6)
    with nets.FeatureTaps(net, net.feature_layers()) as taps:
        net(x)
    feats = taps.features
    assert [f.shape for f in feats] == [(1, 8, 6, 6)] * 3
    # the third block's output is the second's plus the third Fire module's output
    assert torch.allclose(feats[2], feats[1] + net.blocks[2].fire(feats[1]))
    assert all(not m._forward_hooks for m in net.modules())


def test_feature_taps_name_an_unknown_layer():
    net = nets.SqueezeSR(nets.SqueezeSRConfig(n_feats=8, squeeze=2))
    with pytest.raises(KeyError, match="blocks.7"):
        nets.FeatureTaps(net, ["blocks.7"])


def test_nonzero_count():
    net = nets.SqueezeSR(nets.SqueezeSRConfig(n_feats=8, squeeze=2))
    with torch.no_grad():
        net.head.weight.zero_()
    assert nets.count_parameters(net, nonzero=True) == nets.count_parameters(net) - net.head.weight.numel()


def test_unknown_scale_and_upsampler():
    with pytest.raises(ValueError, match="scale"):
        nets.EDSRT(nets.EDSRTConfig(scale=5))
    with pytest.raises(ValueError, match="upsampler"):
        nets.SqueezeSR(nets.SqueezeSRConfig(upsampler="nearest"))


GENERATORS = {
    "EDSRT": (lambda: nets.EDSRT(nets.EDSRTConfig(scale=2, n_feats=4, n_modules=1)), ["blocks.0", "blocks.1", "blocks.2"]),
    "SqueezeSR": (lambda: nets.SqueezeSR(nets.SqueezeSRConfig(scale=2, n_feats=4, squeeze=2)), ["blocks.0", "blocks.1", "blocks.2"]),
    "EDSR": (lambda: nets.EDSR(nets.EDSRConfig(scale=2, n_feats=4, n_blocks=6)), ["body.1", "body.3", "body.6"]),
    "RRDBNet": (lambda: nets.RRDBNet(nets.RRDBNetConfig(n_feats=4, n_blocks=2, growth=2)), ["body.1", "conv_body"]),
    "SRResNet": (lambda: nets.SRResNet(nets.SRResNetConfig(scale=2, n_feats=4, n_blocks=2)), ["blocks.0", "blocks.1"]),
}


@pytest.mark.parametrize("name", GENERATORS)
def test_every_generator_names_its_distillation_layers_the_same_way(name):
    make, expected = GENERATORS[name]
    net = make()
    assert net.feature_layers() == expected
    x = torch.rand(1, 3, 8, 8)
    out, feats = nets.forward_with_features(net, x)
    assert torch.allclose(out, net(x)) and len(feats) == len(expected)
    assert all(f.shape[:2] == (1, 4) for f in feats)  # every tapped layer is a feature map of width n_feats


def test_srresnet_feature_layers_pick_blocks():
    net = GENERATORS["SRResNet"][0]()
    assert net.feature_layers([2]) == ["blocks.1"]
    with pytest.raises(ValueError, match="out of 1..2"):
        net.feature_layers([3])


def test_rrdbnet_config_speaks_the_common_vocabulary():
    cfg = nets.RRDBNetConfig()
    assert (cfg.n_feats, cfg.n_blocks, cfg.growth, cfg.scale, cfg.res_scale) == (64, 23, 32, 4, 0.2)
    assert nets.count_parameters(nets.RRDBNet(cfg)) == 16_697_987  # ESRGAN's generator, as before the rename


@pytest.mark.parametrize("disc", [
    lambda: nets.SRGANDiscriminator(nets.SRGANDiscriminatorConfig(input_size=32, n_feats=4, dense=8)),
    lambda: nets.VGGStyleDiscriminator(n_feats=4, input_size=32),
])
def test_every_discriminator_returns_one_logit_per_image(disc):
    assert disc()(torch.rand(3, 3, 32, 32)).shape == (3, 1)

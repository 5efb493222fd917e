"""srcore.pretrained.checkpoints: official layouts load into srcore's networks and give the official outputs.

The fixtures (../shared/fixtures/official_weights, see its README.md) are small random-weight
networks saved by the official code in each release layout, with the official forward's
output for a fixed input. Every layout of every file must reproduce it within 1e-5 on 0..1,
as released (wrapped), bare, and with DataParallel/compile prefixes.
"""
import re

import pytest
import torch
from conftest import ROOT
from torch import nn

from srcore import nets, train
from srcore.pretrained import checkpoints
from srcore.pretrained.checkpoints import UnsupportedCheckpoint, from_checkpoint

FIXTURES = ROOT.parent / "shared" / "fixtures" / "official_weights"
TOL = 1e-5  # on the 0..1 scale

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"no official-weights fixtures at {FIXTURES}")


def fixture(name: str) -> dict:
    return torch.load(FIXTURES / name, weights_only=True)


# (file, state_dict entry, wrapper entry or None, expected output entry, (input, output) value range)
LAYOUTS = {
    "edsr-pytorch": ("edsr_x2_r4f16_rs1.pt", "state_dict", "checkpoint_wrapper", "output", (255, 255)),
    "basicsr-edsr": ("edsr_x2_r4f16_rs1.pt", "state_dict_basicsr", "checkpoint_wrapper_basicsr", "output_basicsr", (255, 1)),
    "basicsr-rrdbnet": ("rrdbnet_x4_nf16_nb2_gc8.pt", "state_dict", "checkpoint_wrapper", "output", (1, 1)),
    "esrgan-rrdbnet": ("rrdbnet_x4_nf16_nb2_gc8.pt", "state_dict_esrgan", None, "output", (1, 1)),
    "esrgan-old-rrdbnet": ("rrdbnet_x4_nf16_nb2_gc8.pt", "state_dict_esrgan_old", None, "output", (1, 1)),
    "lornatang-srresnet": ("srresnet_x4_c16_n2_lornatang.pt", "state_dict", "checkpoint_wrapper", "output", (1, 1)),
    "lornatang-discriminator": ("srgan_discriminator_c4_dense32_lornatang.pt", "state_dict", "checkpoint_wrapper",
                                "output", (1, 1)),
}


def wrapped(sd: dict, how: str, release_wrapper: str | None):
    """The state_dict as a release ships it, bare, or with prefixed keys (DataParallel, torch.compile)."""
    if how == "as released":
        return {release_wrapper: sd} if release_wrapper else sd
    if how == "bare":
        return sd
    return {how + k: v for k, v in sd.items()}


def max_error(layout: str, how: str) -> float:
    file, sd_key, wrapper_key, out_key, (in_range, out_range) = LAYOUTS[layout]
    d = fixture(file)
    release_wrapper = d.get(wrapper_key) if wrapper_key else None
    net = from_checkpoint(wrapped(d[sd_key], how, release_wrapper))
    with torch.no_grad():
        out = net(d["input"] / in_range)  # srcore works on 0..1
    expected = d[out_key] / out_range
    if layout == "lornatang-srresnet":
        out = out.clamp(0, 1)  # the official forward ends with clamp_(0, 1); srcore's does not
    assert out.shape[0] == expected.shape[0]
    return float((out.reshape(-1) - expected.reshape(-1)).abs().max())


@needs_fixtures
@pytest.mark.parametrize("how", ["as released", "bare", "module.", "_orig_mod."])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_official_layout_reproduces_the_official_output(layout, how):
    assert max_error(layout, how) < TOL


@needs_fixtures
def test_each_fixture_layout_is_recognised_as_itself():
    for layout, (file, sd_key, *_rest) in LAYOUTS.items():
        assert checkpoints.detect(fixture(file)[sd_key]) == layout


@needs_fixtures
def test_srresnet_matches_before_the_official_clamp():
    d = fixture("srresnet_x4_c16_n2_lornatang.pt")
    net = from_checkpoint({"state_dict": d["state_dict"]})
    with torch.no_grad():
        out = net(d["input"])
    assert float((out - d["output_preclamp"]).abs().max()) < TOL
    assert float(out.min()) < 0  # so the clamp is really exercised above
    # convs before BatchNorm have no bias in the release: srcore's biases are loaded as zeros
    assert torch.count_nonzero(net.blocks[0].body[0].bias) == 0


@needs_fixtures
def test_sizes_are_inferred_from_the_tensors():
    d = fixture("edsr_x2_r4f16_rs1.pt")
    edsr = from_checkpoint(d["state_dict"])
    assert isinstance(edsr, nets.EDSR) and not edsr.training
    assert (edsr.cfg.scale, edsr.cfg.n_feats, edsr.cfg.n_blocks, edsr.cfg.res_scale) == (2, 16, 4, 1.0)
    assert torch.allclose(edsr.add_mean.mean.flatten(), torch.tensor(nets.DIV2K_RGB_MEAN), atol=1e-6)

    rrdb = from_checkpoint(fixture("rrdbnet_x4_nf16_nb2_gc8.pt")["state_dict_esrgan_old"])
    assert isinstance(rrdb, nets.RRDBNet)
    assert (rrdb.conv_first.out_channels, len(rrdb.body), rrdb.body[0].rdbs[0].convs[0].out_channels) == (16, 2, 8)

    g = from_checkpoint(fixture("srresnet_x4_c16_n2_lornatang.pt")["state_dict"])
    assert (g.cfg.scale, g.cfg.n_feats, g.cfg.n_blocks) == (4, 16, 2)

    dis = from_checkpoint(fixture("srgan_discriminator_c4_dense32_lornatang.pt")["state_dict"])
    assert isinstance(dis, nets.SRGANDiscriminator)
    assert (dis.cfg.input_size, dis.cfg.n_feats, dis.cfg.dense) == (96, 4, 32)


def edsr_pytorch_layout(net: nets.EDSR, std=(1.0, 1.0, 1.0)) -> dict:
    """An srcore EDSR written in EDSR-PyTorch's layout (0..255, mean shift as 1x1 convs), as the releases are."""
    sd = {("head.0." + k[5:] if k.startswith("head.") else k): v.clone() for k, v in net.state_dict().items()
          if not k.endswith(".mean")}
    sd["head.0.weight"] /= 255
    sd["tail.1.weight"] *= 255
    sd["tail.1.bias"] *= 255
    std = torch.tensor(std)
    mean = torch.tensor(nets.DIV2K_RGB_MEAN)
    for name, sign in (("sub_mean", -1), ("add_mean", 1)):
        sd[f"{name}.weight"] = (torch.eye(3) / std.view(3, 1)).view(3, 3, 1, 1)
        sd[f"{name}.bias"] = sign * 255 * mean / std
    return sd


@pytest.mark.parametrize("n_feats, n_blocks, scale, res_scale", [(256, 1, 2, 0.1), (8, 2, 3, 1.0), (8, 1, 4, 1.0)])
def test_edsr_res_scale_defaults_as_the_releases_and_scale_from_the_upsampler(n_feats, n_blocks, scale, res_scale):
    torch.manual_seed(0)
    sd = edsr_pytorch_layout(nets.EDSR(nets.EDSRConfig(scale=scale, n_feats=n_feats, n_blocks=n_blocks)))
    net = from_checkpoint(sd)
    assert (net.cfg.n_feats, net.cfg.n_blocks, net.cfg.scale, net.cfg.res_scale) == (n_feats, n_blocks, scale, res_scale)
    assert from_checkpoint(sd, res_scale=0.5).cfg.res_scale == 0.5  # what the weights cannot tell is an override


def test_unknown_override_is_an_error():
    sd = edsr_pytorch_layout(nets.EDSR(nets.EDSRConfig(n_feats=8, n_blocks=1)))
    with pytest.raises(TypeError, match="edsr-pytorch.*n_resblocks"):
        from_checkpoint(sd, n_resblocks=3)


def test_loading_is_strict():
    sd = edsr_pytorch_layout(nets.EDSR(nets.EDSRConfig(n_feats=8, n_blocks=2)))
    missing = {k: v for k, v in sd.items() if k != "body.1.body.2.weight"}
    with pytest.raises(RuntimeError, match=re.escape("body.1.body.2.weight")):
        from_checkpoint(missing)
    extra = dict(sd, **{"body.0.body.1.weight": torch.zeros(8)})
    with pytest.raises(RuntimeError, match=re.escape("body.0.body.1.weight")):
        from_checkpoint(extra)


@needs_fixtures
def test_renamed_layouts_refuse_keys_they_do_not_know():
    sd = dict(fixture("rrdbnet_x4_nf16_nb2_gc8.pt")["state_dict_esrgan"], **{"RRDB_trunk.0.RDB1.conv6.weight": torch.zeros(1)})
    with pytest.raises(UnsupportedCheckpoint, match=r"esrgan-rrdbnet: unexpected key RRDB_trunk\.0\.RDB1\.conv6\.weight"):
        from_checkpoint(sd)


def test_unrecognised_checkpoint_says_what_it_found_and_what_is_supported():
    sd = {"encoder.conv.weight": torch.zeros(8, 3, 3, 3), "encoder.conv.bias": torch.zeros(8)}
    with pytest.raises(UnsupportedCheckpoint) as err:
        from_checkpoint({"params": sd})
    msg = str(err.value)
    assert "encoder.conv.weight (8, 3, 3, 3)" in msg and "2 tensors" in msg
    for layout in checkpoints.LAYOUTS:
        assert layout in msg


def test_a_file_without_a_state_dict_is_refused():
    with pytest.raises(UnsupportedCheckpoint, match="no state_dict found.*'epoch'"):
        from_checkpoint({"epoch": 3, "optimizer": {}})


@needs_fixtures
@pytest.mark.parametrize("in_channels, real_scale", [(12, 2), (48, 1)])
def test_pixel_unshuffle_real_esrgan_is_refused(in_channels, real_scale):
    sd = dict(fixture("rrdbnet_x4_nf16_nb2_gc8.pt")["state_dict"])
    sd["conv_first.weight"] = torch.zeros(16, in_channels, 3, 3)  # as RealESRGAN_x2plus (12) / x1 (48)
    with pytest.raises(UnsupportedCheckpoint, match=rf"{in_channels} input channels.*x{real_scale}.*pixel-unshuffle"):
        from_checkpoint({"params_ema": sd})


@needs_fixtures
def test_rrdbnet_other_than_x4_is_refused():
    sd = dict(fixture("rrdbnet_x4_nf16_nb2_gc8.pt")["state_dict"])
    sd["conv_up3.weight"], sd["conv_up3.bias"] = torch.zeros(16, 16, 3, 3), torch.zeros(16)
    with pytest.raises(UnsupportedCheckpoint, match="only x4"):
        from_checkpoint(sd)


@needs_fixtures
def test_edsr_mean_shift_with_a_std_is_refused():
    sd = dict(fixture("edsr_x2_r4f16_rs1.pt")["state_dict"])
    std = torch.tensor([0.5, 1.0, 1.0])
    for name, sign in (("sub_mean", -1), ("add_mean", 1)):
        sd[f"{name}.weight"] = (torch.eye(3) / std.view(3, 1)).view(3, 3, 1, 1)
        sd[f"{name}.bias"] = sign * 255 * torch.tensor(nets.DIV2K_RGB_MEAN) / std
    with pytest.raises(UnsupportedCheckpoint, match=r"rgb_std \[0.5, 1.0, 1.0\], not 1"):
        from_checkpoint(sd)


class BasicSRVGGStyleDiscriminator(nn.Module):
    """BasicSR's VGGStyleDiscriminator (basicsr/archs/discriminator_arch.py) for 128x128 inputs, re-created:
    conv<i>_0 (3x3) / conv<i>_1 (4x4, stride 2) with bn<i>_<j> after all but conv0_0, LReLU 0.2, linear1/2."""

    def __init__(self, nf: int):
        super().__init__()
        widths = [nf, 2 * nf, 4 * nf, 8 * nf, 8 * nf]
        cin = 3
        for i, w in enumerate(widths):
            setattr(self, f"conv{i}_0", nn.Conv2d(cin, w, 3, 1, 1, bias=i == 0))
            if i:
                setattr(self, f"bn{i}_0", nn.BatchNorm2d(w))
            setattr(self, f"conv{i}_1", nn.Conv2d(w, w, 4, 2, 1, bias=False))
            setattr(self, f"bn{i}_1", nn.BatchNorm2d(w))
            cin = w
        self.linear1, self.linear2 = nn.Linear(8 * nf * 4 * 4, 100), nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        for i in range(5):
            x = self.conv0_0(x) if i == 0 else getattr(self, f"bn{i}_0")(getattr(self, f"conv{i}_0")(x))
            x = self.lrelu(x)
            x = self.lrelu(getattr(self, f"bn{i}_1")(getattr(self, f"conv{i}_1")(x)))
        return self.linear2(self.lrelu(self.linear1(x.flatten(1))))


def test_basicsr_vgg_style_discriminator():
    torch.manual_seed(1)
    official = BasicSRVGGStyleDiscriminator(nf=4)
    for m in official.modules():  # random BN statistics, so that eval mode's normalisation matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 1.5)
    official.eval()
    x = torch.rand(2, 3, 128, 128)
    net = from_checkpoint({"params": official.state_dict()})
    assert isinstance(net, nets.VGGStyleDiscriminator) and net.input_size == 128
    with torch.no_grad():
        assert float((net(x).reshape(-1) - official(x).reshape(-1)).abs().max()) < TOL

    bigger = dict(official.state_dict(), **{"conv5_0.weight": torch.zeros(32, 32, 3, 3)})
    with pytest.raises(UnsupportedCheckpoint, match="256x256"):
        from_checkpoint(bigger)


SMALL_SRCORE_NETS = {
    "EDSR": lambda: nets.EDSR(nets.EDSRConfig(scale=3, n_feats=8, n_blocks=2, res_scale=1.0)),
    "RRDBNet": lambda: checkpoints.make_rrdbnet(8, 1, 4),
    "SRResNet": lambda: nets.SRResNet(nets.SRResNetConfig(scale=2, n_feats=8, n_blocks=2)),
    "SRGANDiscriminator": lambda: nets.SRGANDiscriminator(nets.SRGANDiscriminatorConfig(input_size=32, n_feats=4, dense=16)),
    "VGGStyleDiscriminator": lambda: nets.VGGStyleDiscriminator(n_feats=4, input_size=64),
}


def small_srcore_net(kind: str) -> nn.Module:
    torch.manual_seed(2)
    return SMALL_SRCORE_NETS[kind]()


def _input(net: nn.Module) -> torch.Tensor:
    side = getattr(net, "input_size", None) or getattr(getattr(net, "cfg", None), "input_size", None) or 8
    return torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("kind", list(SMALL_SRCORE_NETS))
def test_srcore_checkpoints_round_trip(kind, tmp_path):
    net = small_srcore_net(kind)
    for m in net.modules():  # non-trivial BN statistics and slopes
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 2)
    net.eval()
    x = _input(net)
    with torch.no_grad():
        expected = net(x)
    # a Trainer's last.pt (it also holds NumPy's random state, which weights_only refuses)
    trainer = train.Trainer(tmp_path, {"G": net}, {}, lambda t, b: {}, train.TrainConfig(steps=1, progress=False),
                            device="cpu")
    trainer.save()
    for source in (trainer.checkpoint_path, net.state_dict()):
        loaded = from_checkpoint(source)
        assert type(loaded) is type(net) and not loaded.training
        with torch.no_grad():
            assert torch.equal(loaded(x), expected)


def test_trainer_checkpoint_with_several_networks_takes_net(tmp_path):
    g, d = small_srcore_net("SRResNet"), small_srcore_net("SRGANDiscriminator")
    state = {"step": 1, "nets": {"G": g.state_dict(), "D": d.state_dict(), "teacher": g.state_dict()}}
    assert isinstance(from_checkpoint(state), nets.SRResNet)  # "G" by default
    assert isinstance(from_checkpoint(state, net="D"), nets.SRGANDiscriminator)
    with pytest.raises(UnsupportedCheckpoint, match=r"\['D', 'teacher'\]: pass net="):
        from_checkpoint({"nets": {"D": d.state_dict(), "teacher": g.state_dict()}})


@needs_fixtures
def test_from_a_path_as_released(tmp_path):
    d = fixture("srresnet_x4_c16_n2_lornatang.pt")
    path = tmp_path / "SRResNet_x4-ImageNet.pth.tar"
    torch.save({"epoch": 10, "best_psnr": 28.0, "state_dict": {"_orig_mod." + k: v for k, v in d["state_dict"].items()}},
               path)
    net = from_checkpoint(path)
    with torch.no_grad():
        assert float((net(d["input"]) - d["output_preclamp"]).abs().max()) < TOL
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        from_checkpoint(tmp_path / "absent.pth")


@pytest.mark.parametrize("net", [
    nets.SqueezeSR(nets.SqueezeSRConfig(scale=3, n_feats=16, squeeze=4, upsampler="subpixel")),
    nets.SqueezeSR(nets.SqueezeSRConfig(scale=4, n_feats=16, squeeze=4, upsampler="edsr")),
    nets.EDSRT(nets.EDSRTConfig(scale=2, n_feats=8, n_modules=3)),
], ids=["squeezesr-subpixel-x3", "squeezesr-edsr-x4", "edsrt-x2"])
def test_seo_squeezesr_kd_networks_are_recognised_from_their_tensors(net, tmp_path):
    """A run folder of seo_squeezesr_kd (a Trainer's last.pt) rebuilds the same network: sizes from the shapes."""
    torch.save({"step": 3, "nets": {"net": net.state_dict()}}, tmp_path / "last.pt")
    back = from_checkpoint(tmp_path / "last.pt")
    assert back.cfg == net.cfg
    x = torch.rand(1, 3, 10, 12)
    assert torch.equal(back(x), net.eval()(x))

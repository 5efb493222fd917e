"""baek2024_esrgan_prune_kd: RRDBNet and discriminator counts, pruning, ESRGAN and distillation losses
on hand-worked examples, and the smoke notebook's recorded values."""
import copy
import hashlib
import json
import math

import pandas as pd
import pytest
import torch
from conftest import check_seeds, read_values, run_paper_notebook
from torch import nn

from srcore import losses, nets
from srcore.pretrained import weights

PAPER = "baek2024_esrgan_prune_kd"
sp = lambda x: math.log1p(math.exp(x))  # softplus: BCE-with-logits of logit z against "real" is sp(-z), against "fake" sp(z)


def tiny(nf=8, nb=2, gc=4):
    torch.manual_seed(0)
    return nets.RRDBNet(nets.RRDBNetConfig(n_feats=nf, n_blocks=nb, growth=gc))


# --- networks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("nf, count", [(64, 16_697_987), (16, 6_538_115), (32, 9_588_355), (48, 12_974_979)])
def test_rrdbnet_parameter_counts(nf, count):
    # ESRGAN's 16,697,987 (nf 64, nb 23, gc 32); the students change nf only, which gives the
    # paper's 6.5M / 9.6M / 12.9M (the last truncated from 12.97M)
    with torch.device("meta"):
        net = nets.RRDBNet(nets.RRDBNetConfig(n_feats=nf, n_blocks=23, growth=32))
    assert nets.count_parameters(net) == count


def test_rrdbnet_hand_worked_count_of_one_dense_block():
    # nf 4, gc 2: conv1 4->2, conv2 6->2, conv3 8->2, conv4 10->2 (9 in*out + out each), conv5 12->4
    # = (72+2) + (108+2) + (144+2) + (180+2) + (432+4) = 948
    assert nets.count_parameters(nets.ResidualDenseBlock(4, 2)) == 948


def test_rrdbnet_shapes_taps_and_scale():
    net = tiny()
    x = torch.rand(2, 3, 6, 5)
    assert net(x).shape == (2, 3, 24, 20)
    assert net.feature_layers() == ["body.1", "conv_body"]  # blocks 6, 12, 18, 23 clipped to nb=2
    assert tiny(nb=23).feature_layers() == ["body.5", "body.11", "body.17", "body.22", "conv_body"]
    with nets.FeatureTaps(net, net.feature_layers()) as taps:
        net(x)
    assert [f.shape for f in taps.features] == [(2, 8, 6, 5)] * 2
    with pytest.raises(ValueError, match="x4 only"):
        nets.RRDBNet(nets.RRDBNetConfig(scale=2))


def test_residual_scaling_is_0_2():
    # zero the last conv of each dense block: every block is the identity, so RRDB(x) = x
    rrdb = nets.RRDB(4, 2)
    x = torch.rand(1, 4, 3, 3)
    for rdb in rrdb.rdbs:
        nn.init.zeros_(rdb.conv5.weight)
        nn.init.constant_(rdb.conv5.bias, 1.0)
    # rdb: x + 0.2 * 1 (conv5 outputs its bias 1); three of them: x + 0.6; RRDB: x + 0.2 * (x + 0.6) = 1.2 x + 0.12
    assert torch.allclose(rrdb(x), 1.2 * x + 0.12, atol=1e-6)


def test_discriminator_count_and_shape():
    # convs: 3*64*9+64 = 1,792; 4x4 s2 and 3x3 convs (no bias) + BN(2C):
    # 65,536+128; 73,728+256; 262,144+256; 294,912+512; 1,048,576+512; 1,179,648+1,024; 4,194,304+1,024;
    # 2,359,296+1,024; 4,194,304+1,024; Linear 8192->100: 819,300; Linear 100->1: 101. Total 14,499,401
    with torch.device("meta"):
        d = nets.VGGStyleDiscriminator(64, 128)
    assert nets.count_parameters(d) == 14_499_401
    small = nets.VGGStyleDiscriminator(4, 64)
    assert small(torch.rand(3, 3, 64, 64)).shape == (3, 1)
    with pytest.raises(ValueError, match="64x64"):
        small(torch.rand(1, 3, 128, 128))
    with pytest.raises(ValueError, match="multiple of 32"):
        nets.VGGStyleDiscriminator(4, 100)


# --- pruning ----------------------------------------------------------------------------------

def test_global_pruning_at_0_3_leaves_70_percent():
    net = tiny()
    biases = {n: p.clone() for n, p in net.named_parameters() if n.endswith("bias")}
    kept_before = torch.cat([m.weight.detach().abs().flatten() for m, _ in nets.prunable_conv_weights(net)])
    n = kept_before.numel()
    counts = nets.prune_conv_weights(net, 0.3)
    assert counts["prunable"] == n and counts["prunable_nonzero"] == n - round(0.3 * n)
    assert counts["prunable_nonzero"] / n == pytest.approx(0.7, abs=1 / n)
    # permanent: plain weights again, no masks; biases untouched
    assert not any(name.endswith(("_orig", "_mask")) for name, _ in [*net.named_parameters(), *net.named_buffers()])
    assert all(torch.equal(p, biases[name]) for name, p in net.named_parameters() if name.endswith("bias"))
    total = nets.count_parameters(net)
    assert nets.count_parameters(net, nonzero=True) == total - round(0.3 * n)  # the notebook's formula
    # smallest magnitudes went, ranked over the whole net (global): every zeroed weight was <= every kept one
    after = torch.cat([m.weight.detach().flatten() for m, _ in nets.prunable_conv_weights(net)])
    assert kept_before[after == 0].max() <= kept_before[after != 0].min()
    rates = [float((m.weight == 0).float().mean()) for m, _ in nets.prunable_conv_weights(net)]
    assert max(rates) - min(rates) > 0.05  # layers are not pruned at 30% each


def test_pruning_ratio_zero_and_bad_ratio():
    net = tiny()
    before = copy.deepcopy(net.state_dict())
    assert nets.prune_conv_weights(net, 0.0)["pruned"] == 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        nets.prune_conv_weights(net, 1.0)


def test_finetuning_with_masks_keeps_the_zeros():
    net = tiny(nf=4, nb=1, gc=2)
    nets.prune_conv_weights(net, 0.5, permanent=False)
    for _ in range(2):  # plain gradient steps on weight_orig (the mask is applied in every forward)
        net.zero_grad()
        net(torch.rand(1, 3, 2, 2)).sum().backward()
        with torch.no_grad():
            for q in net.parameters():
                q -= 0.1 * q.grad
    nets.make_pruning_permanent(net)
    n = sum(m.weight.numel() for m, _ in nets.prunable_conv_weights(net))
    zeros = sum(int((m.weight == 0).sum()) for m, _ in nets.prunable_conv_weights(net))
    assert zeros == round(0.5 * n)


# --- losses -----------------------------------------------------------------------------------

def test_relativistic_average_gan_hand_worked():
    real, fake = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [2.0]])
    # mean(fake) = 1, mean(real) = 2: real - mean(fake) = (0, 2), fake - mean(real) = (-2, 0)
    # D: 0.5 [mean(sp(-0), sp(-2)) + mean(sp(-2), sp(0))] = 0.5 (ln 2 + sp(-2)) = 0.5 (0.693147 + 0.126928) = 0.410038
    assert losses.relativistic_d_loss(real, fake).item() == pytest.approx(0.5 * (math.log(2) + sp(-2)), rel=1e-6)
    assert losses.relativistic_d_loss(real, fake).item() == pytest.approx(0.410038, abs=1e-6)
    # G (labels swapped): 0.5 [mean(sp(0), sp(2)) + mean(sp(2), sp(0))] = 0.5 (0.693147 + 2.126928) = 1.410038
    assert losses.relativistic_g_loss(real, fake).item() == pytest.approx(1.410038, abs=1e-6)
    # the generator loss sends no gradient into the real logits
    real.requires_grad_(True)
    losses.relativistic_g_loss(real, fake.requires_grad_(True)).backward()
    assert real.grad is None and fake.grad is not None


def test_gan_table_vanilla_is_eq_2_as_printed():
    g, d = losses.GAN_LOSSES["vanilla"]
    real, fake = torch.tensor([[0.0]]), torch.tensor([[0.0]])
    assert g(real, fake).item() == pytest.approx(math.log(2))      # -log sigmoid(0)
    assert d(real, fake).item() == pytest.approx(2 * math.log(2))  # -log s(0) - log(1 - s(0))


def _distill(norm):
    kd = losses.HiddenFeatureDistillationLoss([1, 1], [1, 1], norm=norm)
    with torch.no_grad():
        for f in kd.adapters:
            f.weight.fill_(2.0)
            f.bias.zero_()
    return kd


@pytest.mark.parametrize("norm, expected", [
    # tap 1: s = (1, 2) -> f(s) = (2, 4); t = (-1, 0): d = (3, 4), ||d|| = 5
    # tap 2: s = (0, 0) -> (0, 0); t = (0, 1): d = (0, -1), ||d|| = 1
    ("norm", 5 + 1),                            # the printed norm, summed over taps
    ("rms", 5 / math.sqrt(2) + 1 / math.sqrt(2)),  # divided by sqrt(C H W) = sqrt(2): 4.242641
    ("mse", (9 + 16) / 2 + (0 + 1) / 2),       # mean squares: 12.5 + 0.5 = 13
])
def test_hidden_feature_distillation_hand_worked(norm, expected):
    kd = _distill(norm)
    s = [torch.tensor([1.0, 2.0]).view(1, 1, 1, 2), torch.zeros(1, 1, 1, 2)]
    t = [torch.tensor([-1.0, 0.0]).view(1, 1, 1, 2), torch.tensor([0.0, 1.0]).view(1, 1, 1, 2)]
    assert kd(s, t).item() == pytest.approx(expected, rel=1e-6)


def test_distillation_batch_mean_detach_and_adapters():
    kd = _distill("norm")
    # two images: ||d|| = 5 and 0 -> mean 2.5
    s = torch.tensor([[1.0, 2.0], [0.0, 0.0]]).view(2, 1, 1, 2)
    t = torch.tensor([[-1.0, 0.0], [0.0, 0.0]]).view(2, 1, 1, 2).requires_grad_(True)
    loss = kd([s, s], [t, t])
    assert loss.item() == pytest.approx(5.0)
    loss.backward()
    assert t.grad is None  # the teacher only guides
    # f_i is always a learnable 1x1 conv, also at equal widths (the paper's f_i is learnable)
    eq = losses.HiddenFeatureDistillationLoss([4], [4])
    assert sum(p.numel() for p in eq.parameters()) == 4 * 4 + 4
    assert [a.weight.shape for a in losses.HiddenFeatureDistillationLoss([16, 16], [64, 64]).adapters] == [(64, 16, 1, 1)] * 2
    with pytest.raises(ValueError, match="norm must be"):
        losses.HiddenFeatureDistillationLoss([1], [1], norm="l3")


def test_eq4_total_hand_worked():
    kd = _distill("norm")
    sr, hr = torch.full((1, 3, 2, 2), 0.5), torch.zeros(1, 3, 2, 2)  # L1 = 0.5
    s = [torch.tensor([1.0, 2.0]).view(1, 1, 1, 2)]
    t = [torch.tensor([-1.0, 0.0]).view(1, 1, 1, 2)]
    kd.adapters = kd.adapters[:1]                                     # one tap: L_distill = 5
    real, fake = torch.tensor([[0.0]]), torch.tensor([[0.0]])        # RaGAN G: 0.5 (sp(0) + sp(0)) = ln 2
    total, parts = losses.pruned_kd_student_loss(sr, hr, s, t, kd, real, fake, lambda_recon=2.0,
                                                 lambda_distill=0.1, lambda_gan=1.0)
    # 2 * 0.5 + ln 2 + 0.1 * 5 = 2.193147
    assert total.item() == pytest.approx(1.0 + math.log(2) + 0.5, rel=1e-6)
    assert {k: float(v) for k, v in parts.items()} == pytest.approx(  # floats, not tensors, in approx
        {"l1": 0.5, "l_gan": math.log(2), "l_distill": 5.0, "loss": 1.5 + math.log(2)})


def test_esrgan_generator_loss_hand_worked():
    sr, hr = torch.full((1, 3, 2, 2), 0.5), torch.zeros(1, 3, 2, 2)
    real, fake = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [2.0]])
    total, parts = losses.esrgan_generator_loss(sr, hr, losses.PixelMSELoss(), real, fake)
    # 1 * MSE 0.25 + 5e-3 * 1.410038 + 1e-2 * L1 0.5 = 0.25 + 0.00705019 + 0.005 = 0.26205019
    assert total.item() == pytest.approx(0.26205019, abs=1e-7)
    assert float(parts["l_percep"]) == pytest.approx(0.25) and float(parts["l1"]) == pytest.approx(0.5)


def test_perceptual_loss_plumbing_with_an_injected_network():
    # Plumbing only (an identity "feature extractor", never a result): SR = 0.5, HR = 0 in [0,1];
    # ImageNet-normalised difference 0.5/std per channel; L1 = 0.5 (1/0.229 + 1/0.224 + 1/0.225) / 3 = 2.212591
    loss = losses.ESRGANPerceptualLoss(features=nn.Identity())
    got = loss(torch.full((1, 3, 2, 2), 0.5), torch.zeros(1, 3, 2, 2)).item()
    assert got == pytest.approx(0.5 * (1 / 0.229 + 1 / 0.224 + 1 / 0.225) / 3, rel=1e-5)


def test_conv5_4_before_relu_drops_the_last_relu_of_srgans_stack(monkeypatch):
    # SRGAN's loader returns VGG19 features up to relu5_4 (36 modules); ESRGAN's layer is the conv
    # before it. A stand-in stack checks the slicing without building (or loading) a VGG.
    stack = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
    monkeypatch.setattr(losses, "vgg19_features", lambda layer: stack if layer == "relu5_4" else None)
    monkeypatch.setattr(weights, "require", lambda name: None)
    got = losses.vgg19_conv5_4_features()
    assert len(got) == 3 and isinstance(got[-1], nn.Conv2d)
    assert losses.VGG19_LAYERS["relu5_4"] == 36  # torchvision's features[34] is conv5_4, [35] its ReLU


def test_perceptual_policy_without_vgg_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("SRCORE_WEIGHTS", str(tmp_path / "user"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert not weights.available("vgg19")
    for profile in ("smoke", "quick"):
        loss, text = losses.esrgan_perceptual_loss("auto", profile=profile)
        assert isinstance(loss, losses.PixelMSELoss) and "declared substitute" in text
    with pytest.raises(weights.WeightsUnavailable, match="vgg19-dcbb9e9d.pth"):
        losses.esrgan_perceptual_loss("auto", profile="paper")
    with pytest.raises(weights.WeightsUnavailable):
        losses.esrgan_perceptual_loss("vgg", profile="smoke")
    with pytest.raises(ValueError, match="no substitute"):
        losses.esrgan_perceptual_loss("mse", profile="paper")
    with pytest.raises(ValueError, match="unknown perceptual loss"):
        losses.esrgan_perceptual_loss("lpips", profile="smoke")


# --- the smoke notebook -----------------------------------------------------------------------

@pytest.mark.notebook
def test_baek_recorded_values(smoke_run):
    out = smoke_run(PAPER)
    v = read_values(out)
    pub = v[v.published.notna()]
    assert len(pub) == 125
    assert pub.status.str.match(r"^(reproduced|n/a: .+)$").all()
    # parameter counts: exact (the note holds the integer; values are in millions)
    counts = {"ESRGAN": "16,697,987", "Teacher_0.3": "11,692,662", "Student_16": "6,538,115",
              "Student_32": "9,588,355", "Student_48": "12,974,979", "Teacher_0.5": "8,355,779", "Teacher_0.8": "3,350,454"}
    p = v[v.metric == "Params(M)"].set_index("method")
    assert set(counts) <= set(p.index) and (p.status == "reproduced").all()
    for m, c in counts.items():
        assert p.loc[m, "note"].startswith(c)
        assert p.loc[m, "reproduced"] == pytest.approx(int(c.replace(",", "")) / 1e6, abs=5e-4)  # values.csv keeps 6 digits
    # private sets say so; FID/LPIPS are n/a without their weights, never a number from random ones
    private = pub[pub.dataset.isin(["KHU", "MIV", "VRroom"])]
    assert len(private) == 48 and private.status.str.contains("private dataset").all()
    fl = v[v.metric.isin(["FID", "LPIPS"]) & ~v.dataset.isin(["KHU", "MIV", "VRroom"])]
    if not weights.available("fid_inception"):
        assert fl[fl.metric == "FID"].status.str.startswith("n/a: weights unavailable").all()
    if not weights.available("lpips_alex"):
        assert fl[fl.metric == "LPIPS"].status.str.startswith("n/a: weights unavailable").all()
    # PSNR/SSIM of tiny smoke networks: finite and bounded, per set and on average, with their notes
    t2 = v[(v.table == "Table 2") & v.metric.isin(["PSNR", "SSIM"]) & v.dataset.isin(["BSD100", "Set14", "Urban100", "Average", "Set5"])]
    assert len(t2) == 2 * (4 * 5 + 4)  # PSNR, SSIM x (Teacher_0.3, Student_16/32/48 x 4 sets + Average; ESRGAN x 4 sets)
    psnr, ssim = t2[t2.metric == "PSNR"], t2[t2.metric == "SSIM"]
    assert psnr.reproduced.between(3, 50).all() and ssim.reproduced.between(-1, 1).all()
    assert (t2.status == "reproduced").all() and t2[t2.dataset == "Urban100"].note.str.contains("first 1 of 100").all()
    assert pub[(pub.dataset == "Average") & (pub.status == "reproduced")].note.str.contains("BSD100, Set14, Urban100").all()
    t1 = v[(v.table == "Table 1") & (v.metric == "SSIM")]
    assert len(t1) == 4 and (t1.status == "reproduced").all()
    # the average we record is the mean of our per-set values (the paper's Average convention)
    s16 = v[(v.method == "Student_16") & (v.metric == "PSNR")].set_index("dataset").reproduced
    assert s16["Average"] == pytest.approx(s16[["BSD100", "Set14", "Urban100"]].mean(), rel=1e-5)
    for f in ["tables/table_1.md", "tables/table_2.md", "tables/text_iv.1.md", "tables/params.csv", "tables/claims.md",
              "tables/averages.csv", "figures/fig2_per_image.png", "figures/fig2_per_image.csv", "figures/training_loss.png"]:
        assert (out / f).is_file(), f
    claims = pd.read_csv(out / "tables" / "claims.csv")
    assert claims["published tables say"].str.contains("26.02 - 24.87 = 1.15 dB").any()
    fig2 = pd.read_csv(out / "figures" / "fig2_per_image.csv")
    assert {"Teacher_0.3", "Student_16", "Student_32", "Student_48"} <= set(fig2.method)
    prov = json.loads((out / "provenance.json").read_text())
    if not weights.available("vgg19"):
        assert "declared substitute" in prov["perceptual_loss"]
    assert all(r["nonzero_after"] < r["params"] for r in prov["pruning_of_trained_teacher"])


def run_notebook(out, **parameters):
    return run_paper_notebook(PAPER, out, **parameters)


SMALL = {"methods": ["Teacher_0.3", "Student_16_Teacher_0.3"], "teacher_steps": 2, "teacher_finetune_steps": 0,
         "distill_steps": 2, "lr": 1e-2}


@pytest.mark.notebook
def test_no_data_run_then_identical_rerun_then_another_lambda_distill(tmp_path, monkeypatch):
    """No data anywhere: the claims once said None.__format__; now 'not measured (no data)'. The same
    settings reuse every run; another lambda_distill trains the student again, not ESRGAN. A released ESRGAN
    serves every seed; its fine-tuning, like every student, is trained once per seed."""
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)
    small = SMALL
    v, prov = run_notebook(tmp_path / "first", **small)
    pub = v[v.published.notna()]
    assert len(pub) == 125
    private = pub.dataset.isin(["KHU", "MIV", "VRroom"])
    assert pub[private].status.str.contains("private dataset").all()
    counted = pub.metric == "Params(M)"
    assert (pub[counted].status == "reproduced").all()
    assert (pub[~private & ~counted].status == "n/a: benchmark data not found (smoke run on embedded images)").all()
    embedded = v[(v.dataset == "embedded") & v.metric.isin(["PSNR", "SSIM"])]
    assert set(embedded.method) == {"ESRGAN", "Teacher_0.3", "Student_16"} and embedded.reproduced.notna().all()
    assert prov["data"]["train_set"].startswith("embedded") and prov["trained_steps"] == 4
    claims = pd.read_csv(tmp_path / "first" / "tables" / "claims.csv")
    assert claims["our run"].str.contains("not measured \\(no data\\)").any()
    assert not claims["our run"].str.contains(r"\bnan\b|None").any()

    v2, prov2 = run_notebook(tmp_path / "again", **small)
    assert prov2["trained_steps"] == 0 and set(prov2["reused_runs"]) == set(prov["runs"])
    assert v2.reproduced.equals(v.reproduced)

    v3, prov3 = run_notebook(tmp_path / "distill", **small, lambda_distill=10.0)
    runs = {r["name"]: (k, r) for k, r in prov3["runs"].items()}
    assert runs["ESRGAN"][1]["reused"] and runs["ESRGAN"][0] in prov["runs"]
    student = runs["Student_16_Teacher_0.3"]
    assert student[1]["trained_steps"] == 2 and student[0] not in prov["runs"]
    psnr = lambda values: values[(values.dataset == "embedded") & (values.method == "Student_16") & (values.metric == "PSNR")].reproduced.item()
    assert psnr(v3) != psnr(v)

    # teacher_weights=<file>: ESRGAN is loaded, not trained, and its pruned teacher needs no training either
    esrgan_file = tmp_path / "checkpoints" / PAPER / runs["ESRGAN"][0] / "last.pt"  # the run's folder is its entry's name
    v4, prov4 = run_notebook(tmp_path / "file", **small, teacher_weights=str(esrgan_file))
    sha = hashlib.sha256(esrgan_file.read_bytes()).hexdigest()
    assert prov4["teacher_weights"]["x4"]["sha256"] == sha and prov4["trained_steps"] == 2  # the student only
    rows = v4[(v4.dataset == "embedded") & v4.method.isin(["ESRGAN", "Teacher_0.3", "Student_16"]) & (v4.metric == "PSNR")]
    assert len(rows) == 3 and rows.note.str.contains(f"last.pt (sha256 {sha})", regex=False).all()
    teacher = lambda values: values[(values.dataset == "embedded") & (values.method == "Teacher_0.3") & (values.metric == "PSNR")].reproduced.item()
    assert teacher(v4) == teacher(v)  # the same ESRGAN weights, pruned alike

    # over two seeds: the release, and its pruning (deterministic), are one network for every seed; the students of
    # both seeds distil from it (seed 0's is reused from the run above)
    v5, prov5 = run_notebook(tmp_path / "file_seeds", **small, teacher_weights=str(esrgan_file), seeds=[0, 1])
    psnr_rows = lambda values: values[(values.dataset == "embedded") & (values.metric == "PSNR")].set_index("method")
    rows = psnr_rows(v5)
    assert rows.loc[["ESRGAN", "Teacher_0.3"], "n_seeds"].isna().all() and rows.loc["Student_16", "n_seeds"] == 2
    assert teacher(v5) == teacher(v4) and prov5["trained_steps"] == 2
    # fine-tuning the pruned release is a trained run: once per seed
    v6, prov6 = run_notebook(tmp_path / "file_finetune", **{**small, "teacher_finetune_steps": 1},
                             teacher_weights=str(esrgan_file), seeds=[0, 1])
    rows = psnr_rows(v6)
    assert pd.isna(rows.loc["ESRGAN", "n_seeds"]) and rows.loc["Teacher_0.3", "n_seeds"] == 2 and rows.loc["Teacher_0.3", "sd"] > 0
    assert sorted(r["seed"] for r in prov6["runs"].values() if r["name"] == "Teacher_0.3_finetune") == [0, 1]
    for key in (k for k, r in prov6["runs"].items() if r["name"] == "Teacher_0.3_finetune"):
        log = pd.read_csv(tmp_path / "checkpoints" / PAPER / key / "log.csv")  # smoke: teacher_l1_steps 1
        assert log.l_d.notna().all()  # ESRGAN's loss from its first step: the teacher's L1-only warm-up is not repeated


@pytest.mark.notebook
def test_seeds_repeat_every_trained_run_and_report_mean_and_sd(tmp_path, monkeypatch):
    """Every trained run once per seed (the student of seed s from the teacher of seed s): n_seeds 2 and sd > 0 on
    every row of a trained network; the parameter counts are seed-independent."""
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)
    values, per_seed = check_seeds(PAPER, tmp_path, **SMALL)
    assert set(values[values.n_seeds == 2].method) == {"ESRGAN", "Teacher_0.3", "Student_16"}
    assert set(per_seed.method) == {"ESRGAN", "Teacher_0.3", "Student_16"}
    counts = values[values.metric == "Params(M)"]
    assert len(counts) == 7 and counts.n_seeds.isna().all() and counts.sd.isna().all()


@pytest.mark.notebook
def test_missing_teacher_file_stops_before_any_work(tmp_path):
    """A teacher file that is not there stops the run at its parameters, naming the file and where it looked."""
    import papermill as pm
    with pytest.raises(pm.PapermillExecutionError, match=r"looked for \S*no-such-esrgan\.pth|no-such-esrgan\.pth not found in"):
        run_notebook(tmp_path / "res", teacher_weights=str(tmp_path / "no-such-esrgan.pth"))
    assert not (tmp_path / "res").exists() and not (tmp_path / "checkpoints").exists()

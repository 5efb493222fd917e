"""lee2021_srgan_kd: SRGAN networks, losses and DMOS on hand-worked examples; the smoke notebook's values."""
import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import check_seeds, execute, provenance, read_values, run_paper_notebook
from torch import nn

from srcore import losses, nets, report, subjective
from srcore.pretrained import weights

# --- networks --------------------------------------------------------------------------------

def conv(cin, cout, k=3):
    return cin * cout * k * k + cout


def srresnet_count(scale, f, blocks):
    head = conv(3, f, 9) + 1                       # conv9x9 + PReLU (one shared slope)
    block = 2 * conv(f, f) + 2 * 2 * f + 1         # conv-BN-PReLU-conv-BN (BN: weight and bias)
    body_end = conv(f, f) + 2 * f                  # conv-BN before the long skip
    up = {2: conv(f, 4 * f) + 1, 3: conv(f, 9 * f) + 1, 4: 2 * (conv(f, 4 * f) + 1)}[scale]
    return head + blocks * block + body_end + up + conv(f, 3, 9)


def test_srresnet_hand_worked_totals_at_x4():
    # teacher 64/16: 15,617 head + 16 x 74,113 blocks + 37,056 + 2 x 147,713 upsampler + 15,555 tail
    assert srresnet_count(4, 64, 16) == 15_617 + 16 * 74_113 + 37_056 + 2 * 147_713 + 15_555 == 1_549_462
    # student 32/8: 7,809 head + 8 x 18,625 blocks + 9,312 + 2 x 36,993 upsampler + 7,779 tail
    assert srresnet_count(4, 32, 8) == 7_809 + 8 * 18_625 + 9_312 + 2 * 36_993 + 7_779 == 247_886
    # Table 1: 1.55M and 0.25M; the text's "about 6.24x" is 6.25 here
    assert round(1_549_462 / 1e6, 2) == 1.55 and round(247_886 / 1e6, 2) == 0.25
    assert 1_549_462 / 247_886 == pytest.approx(6.25, abs=0.005)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("f,blocks", [(64, 16), (32, 8), (64, 32)])
def test_srresnet_parameter_counts_match_the_layer_list(scale, f, blocks):
    net = nets.SRResNet(nets.SRResNetConfig(scale=scale, n_feats=f, n_blocks=blocks))
    assert nets.count_parameters(net) == srresnet_count(scale, f, blocks)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_srresnet_shapes(scale):
    net = nets.SRResNet(nets.SRResNetConfig(scale=scale, n_feats=8, n_blocks=2)).eval()
    assert net(torch.rand(2, 3, 6, 7)).shape == (2, 3, 6 * scale, 7 * scale)


def test_discriminator_count_and_shape():
    c = 64
    convs = conv(3, c) + conv(c, c) + conv(c, 2 * c) + conv(2 * c, 2 * c) + conv(2 * c, 4 * c) \
        + conv(4 * c, 4 * c) + conv(4 * c, 8 * c) + conv(8 * c, 8 * c)
    bn = 2 * (c + 2 * c + 2 * c + 4 * c + 4 * c + 8 * c + 8 * c)  # no BN after the first conv
    dense = (8 * c * 6 * 6) * 1024 + 1024 + 1024 + 1           # 96 / 16 = 6
    d = nets.SRGANDiscriminator()
    assert nets.count_parameters(d) == convs + bn + dense == 23_565_505
    small = nets.SRGANDiscriminator(nets.SRGANDiscriminatorConfig(input_size=32, n_feats=4, dense=8))
    assert small(torch.rand(3, 3, 32, 32)).shape == (3, 1)
    with pytest.raises(ValueError, match="built for 32x32"):
        small(torch.rand(1, 3, 48, 48))
    with pytest.raises(ValueError, match="multiple of 16"):
        nets.SRGANDiscriminatorConfig(input_size=40) and nets.SRGANDiscriminator(nets.SRGANDiscriminatorConfig(input_size=40))


# --- losses ----------------------------------------------------------------------------------

def test_adversarial_losses_hand_worked():
    # logit 0 -> p = 1/2 -> -log(1/2) = log 2 for either target
    zero = torch.zeros(4)
    assert losses.adversarial_g_loss(zero).item() == pytest.approx(math.log(2))
    assert losses.adversarial_d_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    # logit log 3 -> p = 3/4: G loss -log(3/4) = 0.287682; D with real p=3/4, fake p=3/4: -log(3/4) - log(1/4)
    l3 = torch.full((2,), math.log(3))
    assert losses.adversarial_g_loss(l3).item() == pytest.approx(0.287682, abs=1e-6)
    assert losses.adversarial_d_loss(l3, l3).item() == pytest.approx(0.287682 + 1.386294, abs=1e-6)


def test_output_kd_loss_is_mse_to_a_fixed_teacher():
    s = torch.tensor([0.0, 1.0, 2.0], requires_grad=True)
    t = torch.tensor([1.0, 1.0, 0.0], requires_grad=True)
    loss = losses.output_kd_loss(s, t)  # (1 + 0 + 4) / 3
    assert loss.item() == pytest.approx(5 / 3)
    loss.backward()
    assert t.grad is None and s.grad is not None


def test_content_loss_factory_and_mse_substitute():
    sr, hr = torch.full((1, 3, 2, 2), 0.5), torch.zeros(1, 3, 2, 2)
    assert losses.content_loss("mse")(sr, hr).item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="unknown content loss 'l2'"):
        losses.content_loss("l2")
    assert set(losses.CONTENT_LOSSES) == {"vgg", "mse"}


def test_vgg_content_loss_refuses_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("SRCORE_WEIGHTS", str(tmp_path / "user"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(weights.WeightsUnavailable, match="vgg19-dcbb9e9d.pth"):
        losses.content_loss("vgg")
    with pytest.raises(weights.WeightsUnavailable, match="SRCORE_WEIGHTS"):
        losses.VGGContentLoss()


def test_vgg_content_loss_plumbing_with_an_injected_network():
    # Plumbing only: an identity "feature extractor", never a result. Input normalised by the
    # ImageNet mean/std, then x (1/12.75). SR - HR = 0.229 in R only -> normalised difference 1 in R,
    # 0 in G, B -> MSE = (1/12.75)^2 / 3 = 0.00205049
    loss = losses.VGGContentLoss(features=nn.Identity())
    hr = torch.rand(1, 3, 4, 4)
    sr = hr.clone()
    sr[:, 0] += 0.229
    assert loss(sr, hr).item() == pytest.approx(1 / 12.75 ** 2 / 3, rel=1e-5)
    assert losses.VGGContentLoss(feature_scale=1.0, features=nn.Identity())(sr, hr).item() == pytest.approx(1 / 3, rel=1e-5)
    # frozen, and stays in eval mode when a trainer calls .train()
    frozen = losses.VGGContentLoss(features=nn.Conv2d(3, 2, 1))
    frozen.train()
    assert not frozen.features.training and not any(p.requires_grad for p in frozen.parameters())
    assert losses.VGG19_LAYERS["relu5_4"] == 36  # torchvision vgg19().features[35] is relu5_4


def test_srgan_generator_loss_terms_and_weights():
    sr, hr, t = torch.full((1, 3, 2, 2), 0.5), torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 1.0)
    mse = losses.content_loss("mse")
    total, parts = losses.srgan_generator_loss(sr, hr, mse)
    assert total.item() == pytest.approx(0.25) and set(parts) == {"l_c", "l_g"}
    # l_c 0.25 + 1.0 x l_KD 0.25 + 1e-3 x log 2 (logit 0)
    total, parts = losses.srgan_generator_loss(sr, hr, mse, fake_logits=torch.zeros(1), teacher_sr=t)
    assert total.item() == pytest.approx(0.5 + 1e-3 * math.log(2))
    assert float(parts["l_kd"]) == pytest.approx(0.25) and float(parts["l_a"]) == pytest.approx(math.log(2))  # floats, not tensors, in approx


# --- DMOS ------------------------------------------------------------------------------------

def hand_ratings():
    # rater A: ref 5 for img1, 4 for img2; d = ref - score = [1, 3, 1, 1], mean 1.5, sample std 1
    #   -> z = [-0.5, 1.5, -0.5, -0.5] -> 100 (z + 3) / 6 = [41.667, 75, 41.667, 41.667]
    # rater B: d = [0, 2, 2, 2], mean 1.5, sample std 1 -> z = [-1.5, 0.5, 0.5, 0.5]
    #   -> [25, 58.333, 58.333, 58.333]
    rows = [("A", "img1", "M1", 4, 5), ("A", "img1", "M2", 2, 5), ("A", "img2", "M1", 3, 4), ("A", "img2", "M2", 3, 4),
            ("B", "img1", "M1", 5, 5), ("B", "img1", "M2", 3, 5), ("B", "img2", "M1", 2, 4), ("B", "img2", "M2", 2, 4)]
    return pd.DataFrame(rows, columns=subjective.RATING_COLUMNS)


def test_dmos_hand_worked():
    d = subjective.dmos(hand_ratings()).set_index(["image", "method"]).dmos
    # img1/M1: (41.667 + 25) / 2; img1/M2: (75 + 58.333) / 2; img2: (41.667 + 58.333) / 2
    assert d["img1", "M1"] == pytest.approx(100 / 3)
    assert d["img1", "M2"] == pytest.approx(200 / 3)
    assert d["img2", "M1"] == pytest.approx(50) and d["img2", "M2"] == pytest.approx(50)
    # z-scored per rater, the grand mean is 50, but the methods' means differ (41.7 vs 58.3)
    assert d.mean() == pytest.approx(50)
    assert d.groupby(level="method").mean()["M1"] == pytest.approx(125 / 3)


def test_dmos_normalised_per_method_averages_50_per_method():
    import numpy as np
    rng = np.random.default_rng(0)
    rows = [(r, f"img{i}", m, int(rng.integers(1, 6)), 5) for r in "ABC" for i in range(5) for m in ("M1", "M2", "M3")]
    r = pd.DataFrame(rows, columns=subjective.RATING_COLUMNS)
    per_method = subjective.dmos(r, by=("rater", "method")).groupby("method").dmos.mean()
    assert per_method.tolist() == pytest.approx([50, 50, 50])  # what Table 3 shows: no ranking left
    per_rater = subjective.dmos(r).groupby("method").dmos.mean()
    assert per_rater.mean() == pytest.approx(50) and per_rater.std() > 1  # Eq. 5 as written keeps the ranking


def test_dmos_rejects_bad_tables():
    r = hand_ratings()
    with pytest.raises(ValueError, match="integers 1..5"):
        subjective.dmos(r.assign(score=r.score.replace(4, 6)))
    with pytest.raises(ValueError, match="duplicate"):
        subjective.dmos(pd.concat([r, r.iloc[:1]]))
    with pytest.raises(ValueError, match="z-score undefined"):
        subjective.dmos(r.assign(score=3, ref_score=5))
    with pytest.raises(ValueError, match="lack columns"):
        subjective.dmos(r.drop(columns="ref_score"))


def test_rating_session_is_blind_resumable_and_feeds_dmos(tmp_path):
    import numpy as np
    img = lambda v: np.full((4, 4, 3), v, np.uint8)  # noqa: E731
    images = {n: {"HR": img(0), "M1": img(1), "M2": img(2)} for n in ("img1", "img2")}
    path = tmp_path / "r.csv"
    a = subjective.RatingSession(images, path, rater="A", seed=3)
    assert sorted(a.trials) == sorted((n, m) for n in images for m in ("HR", "M1", "M2"))
    assert a.trials == subjective.RatingSession(images, tmp_path / "x.csv", rater="A", seed=3).trials  # fixed order
    assert a.trials != subjective.RatingSession(images, tmp_path / "x.csv", rater="B", seed=3).trials  # per rater
    ref, cand = a.pair()
    assert (ref == 0).all()
    for _ in range(3):
        a.rate(4)
    resumed = subjective.RatingSession(images, path, rater="A", seed=3)
    assert len(resumed.remaining) == 3 and resumed.current() == a.current()
    score = {"HR": 5, "M1": 4, "M2": 2}
    while resumed.current():
        resumed.rate(score[resumed.current()[1]])
    with pytest.raises(RuntimeError, match="finished"):
        resumed.rate(3)
    with pytest.raises(ValueError, match="score must be"):
        a.rate(0)
    raw = pd.read_csv(path)
    assert list(raw.columns) == subjective.RAW_COLUMNS and len(raw) == 6
    with pytest.raises(ValueError, match="no reference score"):
        subjective.reference_scores(raw[raw.method != "HR"])
    table = subjective.reference_scores(raw)
    assert len(table) == 4 and set(table.columns) == set(subjective.RATING_COLUMNS)


def test_rating_widget_degrades_to_a_message_without_ipywidgets(tmp_path):
    import numpy as np
    s = subjective.RatingSession({"a": {"HR": np.zeros((4, 4, 3), np.uint8)}}, tmp_path / "r.csv", rater="A")
    if subjective.widgets_available():
        assert subjective.rating_widget(s) is not None
    else:
        with pytest.raises(RuntimeError, match="needs ipywidgets"):
            subjective.rating_widget(s)


# --- the notebook ----------------------------------------------------------------------------

PAPER = "lee2021_srgan_kd"
BABY_X4_BICUBIC_PSNR = 31.7845  # Set5 baby, x4 MATLAB bicubic, Y, 4 px cropped (published: 31.78)


@pytest.mark.notebook
def test_smoke_notebook_values(smoke_run):
    out = smoke_run(PAPER)
    v = read_values(out)
    pub = v[v.published.notna()]
    assert len(pub) == 98
    # Table 1: the paper's architecture, counted exactly whatever the profile
    t1 = pub[pub.table == "Table 1"].set_index(["method", "metric"]).reproduced
    assert t1["Teacher", "Params(M)"] == pytest.approx(1.549462, abs=1e-5)  # values.csv keeps 6 digits
    assert t1["Student", "Params(M)"] == pytest.approx(0.247886, abs=1e-6)
    nets_table = pd.read_csv(out / "tables" / "networks.csv").set_index("network").parameters
    assert (nets_table["Teacher"], nets_table["Student"]) == (1_549_462, 247_886)  # exact
    assert (t1["Teacher", "Filters"], t1["Teacher", "Resblocks"], t1["Student", "Filters"], t1["Student", "Resblocks"]) == (64, 16, 32, 8)
    # Table 2: three sets measured for the six rows; General100 is left out by the smoke profile's eval_sets
    t2 = pub[pub.table == "Table 2"]
    done = t2[t2.dataset != "General100"]
    assert len(done) == 36 and (done.status == "reproduced").all()
    assert done[done.metric == "PSNR"].reproduced.between(0, 50).all()  # 4 steps: finite and bounded, not the paper
    assert done[done.metric == "SSIM"].reproduced.between(-1, 1).all()
    assert (done.steps == 4).all() and done.train_set.str.contains("stand-in for DIV2K").all()
    assert done.note.str.contains("declared substitute").all()
    assert done[done.dataset == "Urban100"].note.str.contains("first 1 of 100").all()
    assert t2[t2.dataset == "General100"].status.str.contains("General100 left out by eval_sets").all()
    # Bicubic on Set5's first image (baby) under the standard protocol: an anchor for the protocol
    bic = v[(v.method == "Bicubic") & (v.dataset == "Set5") & (v.metric == "PSNR")].reproduced.item()
    assert bic == pytest.approx(BABY_X4_BICUBIC_PSNR, abs=0.01)
    # Table 3: a human study; Table 4: PI needs Ma's model; NIQE extra rows for every method and HR
    assert pub[pub.table == "Table 3"].status.str.startswith("n/a: human study").all()
    assert (pub[pub.table == "Table 4"].status == "n/a: weights unavailable (NRQM_model.mat)").all()
    niqe = v[(v.table == "Table 4") & (v.metric == "NIQE")]
    assert set(niqe.method) == {"HR", "Bicubic", "Teacher", "Student", "GAN2GAN", "GAN2G", "GAN2G+AL", "G2G+AL"}
    if not weights.available("niqe"):  # its parameters are not in $SRCORE_WEIGHTS: n/a rows that say so
        assert niqe.status.str.startswith("n/a: weights unavailable (niqe_modelparameters.mat").all()
    else:
        # 4 steps leave noise, whose NIQE is finite but unbounded (664 for the seed-0 teacher); the sharp
        # original must score better (lower) than its bicubic reconstruction
        assert np.isfinite(niqe.reproduced).all() and (niqe.reproduced > 0).all()
        by_method = niqe.set_index("method").reproduced
        assert by_method["HR"] < by_method["Bicubic"]
        assert niqe.note.str.contains("Set5/butterfly").all()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["content_loss"] == {"kind": "mse", "what": losses.CONTENT_LOSSES["mse"], "substitute": True}
    assert prov["data"]["rated_images"] == ["Set5/butterfly"]  # the first of the seed-0 draw of 10
    assert set(prov["steps"]) == {f"{m} x4" for m in ("Teacher", "Teacher-G", "Student", "GAN2GAN", "GAN2G", "GAN2G+AL", "G2G+AL")}
    for f in ["tables/table_1.md", "tables/claims.md", "tables/orderings.csv", "tables/rated_images.csv",
              "tables/schedules.csv", "figures/fig2.png", "figures/fig2.csv", "figures/training_loss.png"]:
        assert (out / f).is_file(), f
    schedules = pd.read_csv(out / "tables" / "schedules.csv").set_index("method")
    assert (schedules.loc[["Student", "GAN2GAN", "GAN2G", "GAN2G+AL", "G2G+AL"], "steps"] == 4).all()  # one budget
    assert schedules.loc["G2G+AL", "phases"] == "g+kd x 2 then gan x 2"


@pytest.mark.notebook
def test_paper_profile_refuses_without_vgg19_weights(tmp_path, monkeypatch, data_root):
    import papermill as pm

    from srcore.runner import execute
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty torchvision cache
    with pytest.raises(pm.PapermillExecutionError, match="vgg19-dcbb9e9d.pth"):
        pm.execute_notebook(str(execute.NOTEBOOKS / f"{PAPER}.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"profile": "paper", "out_dir": str(tmp_path / "res")},
                            kernel_name="python3", progress_bar=False)
    assert not (tmp_path / "res").exists() and not (tmp_path / "checkpoints").exists()


SMALL = {"methods": ["GAN2G"], "teacher_steps": 2, "student_steps": 2, "lr": 1e-2}


def run_notebook(out, **parameters):
    return run_paper_notebook(PAPER, out, **parameters)


@pytest.mark.notebook
def test_no_data_run_then_identical_rerun_then_another_kd_weight(tmp_path, monkeypatch):
    """No data anywhere; the same settings reuse every run; another kd_weight trains the student again."""
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)
    v, prov = run_notebook(tmp_path / "first", **SMALL)
    pub = v[v.published.notna()]
    assert len(pub) == 98
    t2 = pub[pub.table == "Table 2"]
    assert len(t2) == 48 and (t2.status == "n/a: benchmark data not found (smoke run on embedded images)").all()
    assert pub[pub.table == "Table 3"].status.str.startswith("n/a: human study").all()
    assert (pub[pub.table == "Table 1"].status == "reproduced").all()
    embedded = v[v.dataset == "embedded"]
    assert set(embedded.method) == {"Bicubic", "Teacher", "GAN2G"} and embedded.reproduced.notna().all()
    assert prov["data"]["train_set"].startswith("embedded") and prov["trained_steps"] == 4
    claims = pd.read_csv(tmp_path / "first" / "tables" / "claims.csv")
    assert not claims["our run"].str.contains(r"\bnan\b").any()

    v2, prov2 = run_notebook(tmp_path / "again", **SMALL)
    assert prov2["trained_steps"] == 0 and set(prov2["reused_runs"]) == set(prov["runs"])
    assert v2.reproduced.equals(v.reproduced)

    v3, prov3 = run_notebook(tmp_path / "kd", **SMALL, kd_weight=10.0)
    runs = {r["name"]: (k, r) for k, r in prov3["runs"].items()}
    assert runs["Teacher"][1]["reused"] and runs["Teacher"][0] in prov["runs"]  # the teacher does not depend on kd_weight
    assert runs["GAN2G"][1]["trained_steps"] == 2 and runs["GAN2G"][0] not in prov["runs"]
    psnr = lambda values: values[(values.dataset == "embedded") & (values.method == "GAN2G") & (values.metric == "PSNR")].reproduced.item()
    assert psnr(v3) != psnr(v)

    # teacher_weights=<file>: the teacher is loaded, not trained; every dependent row names the file and its SHA-256
    # provenance["runs"] is keyed by each run's folder, beside out_dir under checkpoints/<paper>/
    teacher_dir = next(folder for folder, r in prov["runs"].items() if r["name"] == "Teacher")
    teacher_file = tmp_path / "checkpoints" / PAPER / teacher_dir / "last.pt"
    v4, prov4 = run_notebook(tmp_path / "file", **SMALL, teacher_weights=str(teacher_file))
    sha = hashlib.sha256(teacher_file.read_bytes()).hexdigest()
    assert prov4["teacher_weights"]["x4"]["sha256"] == sha and prov4["trained_steps"] == 2  # GAN2G only
    runs4 = {r["name"]: r for r in prov4["runs"].values()}
    # written files name machine paths portably ($TMPDIR/..., srcore.report.portable)
    assert runs4["Teacher"]["release"]["path"] == report.portable(str(teacher_file))
    assert runs4["Teacher"]["trained_steps"] == 0
    rows = v4[(v4.dataset == "embedded") & v4.method.isin(["Teacher", "GAN2G"])]
    assert rows.note.str.contains(f"last.pt (sha256 {sha})", regex=False).all()
    assert psnr(v4) == psnr(v)  # the same teacher weights and seed: the same student


@pytest.mark.notebook
def test_missing_teacher_file_stops_before_any_work(tmp_path):
    """A teacher file that is not there stops the run at its parameters, naming the file and where it looked."""
    import papermill as pm
    with pytest.raises(pm.PapermillExecutionError, match=r"looked for \S*no-such-teacher\.pth|no-such-teacher\.pth not found in"):
        run_notebook(tmp_path / "res", teacher_weights=str(tmp_path / "no-such-teacher.pth"))
    assert not (tmp_path / "res").exists() and not (tmp_path / "checkpoints").exists()


@pytest.mark.notebook
def test_seeds_repeat_teacher_and_student_and_report_mean_and_sd(tmp_path, monkeypatch):
    """Teacher and GAN2G once per seed, GAN2G of seed s distilled from the Teacher of seed s; Table 2 and
    Table 4's NIQE per seed; Bicubic and the ground truth's NIQE are the same for every seed."""
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)
    values, per_seed = check_seeds(PAPER, tmp_path, **SMALL)
    assert set(values[values.n_seeds == 2].method) == {"Teacher", "GAN2G"}
    assert set(per_seed.metric) == {"PSNR", "SSIM"} | ({"NIQE"} if weights.available("niqe") else set())
    assert values[values.method.isin(["Bicubic", "HR"])].n_seeds.isna().all()  # no seed shapes them
    runs = provenance(tmp_path / "two")["runs"].values()
    seed_of = {r["key"]: r["seed"] for r in runs}
    students = [r for r in runs if r["name"] == "GAN2G"]
    assert sorted(r["seed"] for r in students) == [0, 1]
    assert all(seed_of[r["depends_on"]["Teacher"]] == r["seed"] for r in students)
    claims = pd.read_csv(tmp_path / "two" / "tables" / "claims.csv")
    assert not claims["our run"].str.contains(r"\bnan\b").any()

    # a released teacher (here seed 0's file) serves every seed: its rows are seed-independent, and each seed's
    # student distils from it: seed 0's student is the one above, seed 1's is not
    teacher_dir = next(k for k, r in provenance(tmp_path / "two")["runs"].items() if r["name"] == "Teacher" and r["seed"] == 0)
    released = execute(PAPER, tmp_path / "released", seeds=[0, 1], **SMALL,
                       teacher_weights=str(tmp_path / "checkpoints" / PAPER / teacher_dir / "last.pt"))
    v = read_values(released).query("status == 'reproduced'")
    assert provenance(released)["trained_steps"] == 4  # GAN2G twice
    assert v[v.method == "Teacher"].n_seeds.isna().all() and (v[v.method == "GAN2G"].n_seeds == 2).all()
    psnr = lambda table: table[(table.method == "GAN2G") & (table.metric == "PSNR")].set_index("seed").reproduced
    again = psnr(pd.read_csv(released / "values_per_seed.csv"))
    assert again[0] == psnr(per_seed)[0] and again[1] != psnr(per_seed)[1]

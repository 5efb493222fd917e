"""lee2022_mutual_srgan: the mutual-distillation KL (Eq. 3), the paper's networks, the profiles, and the notebook in smoke."""
import json
import math

import pandas as pd
import pytest
import torch
from conftest import check_seeds, read_values, run_paper_notebook

from srcore import losses, nets
from srcore.paper import config
from srcore.pretrained import weights

PAPER = "lee2022_mutual_srgan"
LN4 = math.log(4.0)  # sigmoid(ln 4) = 4/5 = 0.8


# --- Eq. 3: KL between the Bernoulli distributions of two discriminators ----------------------------------

def test_bernoulli_kl_hand_worked():
    # KL(0.5 || 0.8) = 0.5 ln(0.5/0.8) + 0.5 ln(0.5/0.2) = 0.5 ln(0.625 * 2.5) = 0.5 ln 1.5625 = ln 1.25 = 0.223144
    kl = losses.bernoulli_kl_from_logits(torch.tensor(0.0), torch.tensor(LN4))
    assert kl.item() == pytest.approx(math.log(1.25), abs=1e-6)
    # the other direction: KL(0.8 || 0.5) = 0.8 ln 1.6 + 0.2 ln 0.4 = 0.376003 - 0.183258 = 0.192745 (KL is not symmetric)
    kl = losses.bernoulli_kl_from_logits(torch.tensor(LN4), torch.tensor(0.0))
    assert kl.item() == pytest.approx(0.192745, abs=1e-6)
    # equal distributions: 0; saturated logits stay finite
    assert losses.bernoulli_kl_from_logits(torch.tensor(1.3), torch.tensor(1.3)).item() == pytest.approx(0, abs=1e-7)
    assert torch.isfinite(losses.bernoulli_kl_from_logits(torch.tensor(100.0), torch.tensor(-100.0)))


def test_mutual_kl_is_the_batch_mean_of_kl_peer_to_own():
    # own p = (0.5, 0.8), peer q = (0.8, 0.5): KL(q||p) per image = (0.192745, 0.223144), mean 0.207944
    own, peer = torch.tensor([0.0, LN4]), torch.tensor([LN4, 0.0])
    assert losses.mutual_kl_loss(own, peer).item() == pytest.approx((0.192745 + 0.223144) / 2, abs=1e-6)


def test_temperature_softens_and_scales_by_t_squared():
    # T = 2: peer sigmoid(ln4 / 2) = sigmoid(ln 2) = 2/3, own sigmoid(0) = 1/2;
    # KL(2/3 || 1/2) = 2/3 ln(4/3) + 1/3 ln(2/3) = 0.191788 - 0.135155 = 0.056633; x T^2 = 4 -> 0.226532
    own, peer = torch.tensor([0.0]), torch.tensor([LN4])
    assert losses.mutual_kl_loss(own, peer, temperature=2.0).item() == pytest.approx(0.226532, abs=1e-5)
    # T = 1 is ML, the plain KL of test_bernoulli_kl_hand_worked
    assert losses.mutual_kl_loss(own, peer, temperature=1.0).item() == pytest.approx(0.192745, abs=1e-6)
    # large T: sigmoid(z/T) ~ 1/2 + z/(4T), KL ~ (dp)^2 / (2 * 1/4) = (a-b)^2 / (8 T^2), so T^2 KL -> (ln 4)^2 / 8 = 0.240227
    assert losses.mutual_kl_loss(own, peer, temperature=100.0).item() == pytest.approx(LN4 ** 2 / 8, abs=1e-4)
    with pytest.raises(ValueError, match="temperature"):
        losses.mutual_kl_loss(own, peer, temperature=0.0)
    with pytest.raises(ValueError, match="shape"):
        losses.mutual_kl_loss(torch.zeros(2), torch.zeros(3))


@pytest.mark.parametrize("temperature, expected", [(1.0, 0.5 - 0.8), (2.0, 2 * (0.5 - 2 / 3))])
def test_no_gradient_reaches_the_peer(temperature, expected):
    # d/db T^2 KL(sigmoid(a/T) || sigmoid(b/T)) = T (sigmoid(b/T) - sigmoid(a/T)); b = 0, a = ln 4:
    # T = 1: 0.5 - 0.8 = -0.3; T = 2: 2 (0.5 - 2/3) = -0.3333. The peer's logit gets none.
    own = torch.tensor([0.0], requires_grad=True)
    peer = torch.tensor([LN4], requires_grad=True)
    losses.mutual_kl_loss(own, peer, temperature=temperature).backward()
    assert own.grad.item() == pytest.approx(expected, abs=1e-6)
    assert peer.grad is None


def test_mutual_distillation_loss_pairs_sr_with_sr_and_hr_with_hr():
    # D_i: HR logits 0 (p 0.5), SR logits ln4 (0.8); peer D_j: HR ln4 (0.8), SR 0 (0.5)
    # KL_SR = KL(0.5 || 0.8) = 0.223144, KL_HR = KL(0.8 || 0.5) = 0.192745, L_md = 0.415889
    real, fake = torch.tensor([0.0], requires_grad=True), torch.tensor([LN4], requires_grad=True)
    peer_real, peer_fake = torch.tensor([LN4], requires_grad=True), torch.tensor([0.0], requires_grad=True)
    total, parts = losses.mutual_distillation_loss(real, fake, peer_real, peer_fake)
    assert parts["kl_sr"].item() == pytest.approx(0.223144, abs=1e-6)
    assert parts["kl_hr"].item() == pytest.approx(0.192745, abs=1e-6)
    assert total.item() == pytest.approx(0.415889, abs=1e-6)
    total.backward()
    assert peer_real.grad is None and peer_fake.grad is None
    assert real.grad.item() == pytest.approx(0.5 - 0.8) and fake.grad.item() == pytest.approx(0.8 - 0.5)


def test_discriminator_accuracy():
    # HR logits (1, -2, 3): 2 of 3 called real; SR logits (-1, 0.5): 1 of 2 called fake
    acc = losses.discriminator_accuracy(torch.tensor([1.0, -2.0, 3.0]), torch.tensor([-1.0, 0.5]))
    assert acc["acc_real"].item() == pytest.approx(2 / 3) and acc["acc_fake"].item() == pytest.approx(0.5)


# --- the paper's networks ----------------------------------------------------------------------------

def test_paper_generator_and_discriminator_parameter_counts():
    # head conv9x9 3->64 + PReLU: 3*64*81 + 64 + 1 = 15,617; block: 2 (64*64*9 + 64) + 2*128 (BN) + 1 = 74,113;
    # conv3x3-BN: 36,928 + 128 = 37,056; upsampling stage conv 64->256 + PReLU: 64*256*9 + 256 + 1 = 147,713;
    # tail conv9x9 64->3: 64*3*81 + 3 = 15,555.
    # x2: 15,617 + 32*74,113 + 37,056 + 147,713 + 15,555 = 2,587,557; x4 adds a stage: 2,735,270.
    counts = {x: nets.count_parameters(nets.SRResNet(nets.SRResNetConfig(scale=x, n_feats=64, n_blocks=32)))
              for x in (2, 4)}
    assert counts == {2: 2_587_557, 4: 2_735_270}
    # SRGAN's D at 96x96: convs+BN 1,792 + 37,056 + 74,112 + 147,840 + 295,680 + 590,592 + 1,181,184 + 2,360,832
    # = 4,689,088; dense 512*6*6*1024 + 1024 = 18,875,392 and 1024 + 1 = 1,025: 23,565,505
    assert nets.count_parameters(nets.SRGANDiscriminator()) == 23_565_505


def test_paper_profile_is_the_papers_recipe_and_quick_trains_its_networks():
    p = config.load(PAPER, "paper")
    assert (p.steps, p.batch_size, p.lr, p.betas, p.adv_weight, p.md_weight) == (50000, 16, 1e-4, [0.9, 0.999], 1e-3, 1.0)
    assert (p.gen_feats, p.gen_blocks, p.hr_patch, p.pretrain_steps, p.temperature) == (64, 32, 96, 0, 4.0)
    assert p.content_loss == "vgg" and p.train_sets == ["DIV2K"] and p.scales == [2, 4]
    q = config.load(PAPER, "quick")
    assert (q.gen_feats, q.gen_blocks, q.disc_feats, q.disc_dense, q.batch_size) == (64, 32, 64, 1024, 16)
    assert q.content_loss == "mse" and config.load(PAPER, "smoke").content_loss == "mse"


# --- the notebook in smoke ---------------------------------------------------------------------------

@pytest.mark.notebook
def test_lee2022_recorded_values(smoke_run):
    out = smoke_run(PAPER)
    v = read_values(out)
    pub = v[v.published.notna()]
    assert len(pub) == 48
    psnr = pub[pub.metric == "PSNR"]
    assert len(psnr) == 24 and (psnr.status == "reproduced").all()
    # 4 steps of tiny networks: finite, bounded PSNRs, each saying it used the declared substitute
    assert psnr.reproduced.between(0, 60).all() and (psnr.steps == 4).all()
    assert psnr.note.str.contains("declared substitute").all()
    assert psnr[psnr.dataset == "Urban100"].note.str.contains("first 1 of 100").all()
    pi = pub[pub.metric == "PI"]
    assert len(pi) == 24 and pi.status.str.startswith("n/a: weights unavailable (NRQM_model.mat)").all()
    # both cohort models and their mean for every setting, scale and set
    cohort = v[(v.table == "cohort") & (v.metric == "PSNR")].set_index(["dataset", "scale", "method"]).reproduced
    assert len(cohort) == 3 * 24
    for (d, x, m) in psnr[["dataset", "scale", "method"]].itertuples(index=False):
        assert cohort[d, x, f"{m} G1"] == pytest.approx(psnr.set_index(["dataset", "scale", "method"]).reproduced[d, x, m])
        assert cohort[d, x, f"{m} mean"] == pytest.approx((cohort[d, x, f"{m} G1"] + cohort[d, x, f"{m} G2"]) / 2)
    params = pd.read_csv(out / "tables" / "networks.csv").set_index("network").parameters  # exact counts
    assert params["generator x2 (paper: 64 filters, 32 blocks)"] == 2_587_557
    assert params["generator x4 (paper: 64 filters, 32 blocks)"] == 2_735_270
    assert params["SRGAN discriminator, 96x96 (paper)"] == 23_565_505
    assert v[v.table == "networks"].set_index("method").reproduced["SRGAN discriminator, 96x96 (paper)"] == \
        pytest.approx(23.5655, abs=1e-4)  # values.csv: millions, 6 significant digits

    prov = json.loads((out / "provenance.json").read_text())
    assert prov["content_loss"] == {"kind": "mse", "what": losses.CONTENT_LOSSES["mse"], "substitute": True}
    assert set(prov["steps"]) == {f"{m} x{x}" for m in ("Independent", "ML", "ML*") for x in (2, 4)}

    for f in ["tables/table_1.md", "tables/table_2.md", "tables/cohort_models.csv", "tables/claims.md",
              "figures/fig2_x2.png", "figures/fig3_x4.png", "figures/discriminators_over_training.png"]:
        assert (out / f).is_file(), f
    curves = pd.read_csv(out / "figures" / "discriminators_over_training.csv")
    assert set(curves.setting) == {"Independent", "ML", "ML*"}
    assert set(curves.quantity) == {"acc_real", "acc_fake", "kl_sr", "kl_hr"}
    acc = curves[curves.quantity.str.startswith("acc")].value
    assert acc.between(0, 1).all() and (curves[curves.quantity.str.startswith("kl")].value >= 0).all()
    claims = pd.read_csv(out / "tables" / "claims.csv")
    assert claims["published tables say"].str.contains("BSD100: ML\\* 24.075 < 24.172").any()
    assert claims["published tables say"].str.contains("ML\\* best in 3/4 sets").any()
    assert claims["published tables say"].str.contains("Independent best in 3/4 sets").any()


@pytest.mark.notebook
def test_lee2022_settings_differ_only_by_the_distillation_term(smoke_run):
    out = smoke_run(PAPER)
    runs = json.loads((out / "provenance.json").read_text())["runs"]  # keyed by each run's folder name
    folder = {(r["name"], r["scale"]): out.parent / "checkpoints" / PAPER / name for name, r in runs.items()}
    logs = {m: pd.read_csv(folder[m, 2] / "log.csv") for m in ("Independent", "ML", "ML*")}
    assert (logs["Independent"][["l_md1", "l_md2"]] == 0).all().all()
    assert (logs["ML"][["l_md1", "l_md2"]] > 0).all().all()
    # same seeds and batches: before the first update the three cohorts see identical logits
    first = {m: log.iloc[0] for m, log in logs.items()}
    for key in ("l_dis1", "l_dis2", "kl_sr1", "kl_hr1", "l_con1", "l_con2"):
        assert first["ML"][key] == pytest.approx(first["Independent"][key], rel=1e-6)
        assert first["ML*"][key] == pytest.approx(first["Independent"][key], rel=1e-6)
    # ML's L_md is the plain KL_SR + KL_HR; ML*'s is the softened one
    assert first["ML"]["l_md1"] == pytest.approx(first["ML"]["kl_sr1"] + first["ML"]["kl_hr1"], rel=1e-5)
    assert first["ML*"]["l_md1"] != pytest.approx(first["ML"]["l_md1"], rel=1e-6)


@pytest.mark.notebook
def test_lee2022_paper_profile_refuses_without_vgg19_weights(tmp_path, monkeypatch, data_root):
    """The paper profile stops at the content loss, before any data or training, naming the missing file."""
    import papermill as pm

    from srcore.runner import execute
    if weights.available("vgg19"):
        pytest.skip("VGG19 weights are present here")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty torchvision cache
    with pytest.raises(pm.PapermillExecutionError, match="vgg19-dcbb9e9d.pth"):
        pm.execute_notebook(str(execute.NOTEBOOKS / f"{PAPER}.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"profile": "paper", "out_dir": str(tmp_path / "res")},
                            kernel_name="python3", progress_bar=False)
    assert not (tmp_path / "res").exists() and not (tmp_path / "checkpoints").exists()


def run_notebook(out, **parameters):
    return run_paper_notebook(PAPER, out, **parameters)


SMALL = {"methods": ["Independent", "ML"], "scales": [2], "steps": 2, "lr": 1e-2}


@pytest.mark.notebook
def test_no_data_run_then_identical_rerun_then_another_md_weight(tmp_path, monkeypatch):
    """No data anywhere; the same settings reuse every cohort; another md_weight trains ML again, not Independent."""
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)
    v, prov = run_notebook(tmp_path / "first", **SMALL)
    pub = v[v.published.notna()]
    assert len(pub) == 48 and (pub.status == "n/a: benchmark data not found (smoke run on embedded images)").all()
    embedded = v[(v.dataset == "embedded") & (v.metric == "PSNR") & (v.table == "cohort")]
    assert set(embedded.method) == {f"{m} {g}" for m in ("Independent", "ML") for g in ("G1", "G2", "mean")}
    assert embedded.reproduced.notna().all()
    assert prov["data"]["train_set"].startswith("embedded") and prov["trained_steps"] == 4
    claims = pd.read_csv(tmp_path / "first" / "tables" / "claims.csv")
    assert not claims["our run"].str.contains(r"\bnan\b").any()

    v2, prov2 = run_notebook(tmp_path / "again", **SMALL)
    assert prov2["trained_steps"] == 0 and set(prov2["reused_runs"]) == set(prov["runs"])
    assert v2.reproduced.equals(v.reproduced)

    v3, prov3 = run_notebook(tmp_path / "md", **SMALL, md_weight=10.0)
    runs = {r["name"]: (k, r) for k, r in prov3["runs"].items()}
    assert runs["Independent"][1]["reused"] and runs["Independent"][0] in prov["runs"]  # no L_md: md_weight does not shape it
    assert runs["ML"][1]["trained_steps"] == 2 and runs["ML"][0] not in prov["runs"]
    psnr = lambda values: values[(values.dataset == "embedded") & (values.method == "ML G1") & (values.metric == "PSNR")].reproduced.item()
    assert psnr(v3) != psnr(v)


@pytest.mark.notebook
def test_seeds_repeat_every_cohort_and_each_seed_builds_its_own(tmp_path, monkeypatch):
    """seeds=[0, 1]: every setting's cohort once per seed (the seeds contract of conftest.check_seeds); within a seed the
    settings start from the same cohort, and seed 1's cohort is not seed 0's."""
    from srcore import data
    monkeypatch.setenv("SRCORE_DATA", data.NO_DATA)
    values, per_seed = check_seeds(PAPER, tmp_path, **SMALL)
    twice = values[values.n_seeds == 2]
    assert set(twice.method) == {"Independent", "ML"} | {f"{m} {g}" for m in ("Independent", "ML") for g in ("G1", "G2", "mean")}
    assert values[values.table == "networks"].n_seeds.isna().all()  # parameter counts: no seed shapes them

    runs = json.loads((tmp_path / "two" / "provenance.json").read_text())["runs"]
    first = {(r["name"], r["seed"]): pd.read_csv(tmp_path / "checkpoints" / PAPER / name / "log.csv").iloc[0]
             for name, r in runs.items()}
    assert set(first) == {(m, s) for m in ("Independent", "ML") for s in (0, 1)}
    for key in ("l_dis1", "l_dis2", "l_con1", "l_con2"):
        for s in (0, 1):  # before the first update Independent and ML of one seed see the same logits
            assert first["ML", s][key] == pytest.approx(first["Independent", s][key], rel=1e-6)
        assert first["Independent", 1][key] != pytest.approx(first["Independent", 0][key], rel=1e-6)

"""Correctness of the fast paths (no timings here: those are in benchmarks/).

Tiled inference equals whole-image inference; channels_last trains the same weights; step
functions may return tensors (read on log steps only); and the Trainer under two processes
(gloo, loopback) ends with the weights of one process trained on the combined batch.
"""
import os
import socket
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from srcore import data, distributed, evaluate, metrics, train

# --- tiled inference ---------------------------------------------------------------------------


def small_sr_net(scale=2, width=8, depth=4):
    """Random conv net with a receptive-field radius of depth+1 = 5 LR pixels (< the 32-pixel overlap)."""
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    layers += [nn.Conv2d(width, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale), nn.Sigmoid()]
    return nn.Sequential(*layers).eval()


def test_tiled_super_resolution_gives_the_whole_image_psnr(data_root):
    pair = data.benchmark_set("Set5", 2, root=data_root, names=["butterfly"])[0]
    net = small_sr_net()
    whole = evaluate.super_resolve(net, pair.lr, tile=None)
    auto = evaluate.super_resolve(net, pair.lr)  # "auto": whole image when memory allows (always on a CPU)
    tiled = evaluate.super_resolve(net, pair.lr, tile=40)  # 128/40: three full tiles and a partial one per side
    assert whole.shape == tiled.shape == pair.hr.shape
    assert np.array_equal(whole, auto)
    p_whole, p_tiled = metrics.psnr(whole, pair.hr, 2), metrics.psnr(tiled, pair.hr, 2)
    assert abs(p_whole - p_tiled) < 0.01
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1  # identical up to float summation order


def test_tiles_without_enough_context_differ_and_bad_tiles_are_refused():
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)
    net = small_sr_net()
    whole = evaluate.super_resolve(net, lr, tile=None)
    no_context = evaluate.super_resolve(net, lr, tile=16, overlap=0)
    assert no_context.shape == whole.shape and not np.array_equal(no_context, whole)  # the overlap is what fixes it
    with pytest.raises(ValueError):
        evaluate.super_resolve(net, lr, tile="big")
    with pytest.raises(ValueError):
        evaluate.super_resolve(net, lr, tile=0)


# --- Trainer fast paths (one process) -------------------------------------------------------------


def tiny_nets(seed=123):
    torch.manual_seed(seed)
    g = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2))
    d = nn.Conv2d(3, 1, 3)  # a second network with its own optimiser, as GANs need
    return g, d


def step_fn(t, batch):
    lr, hr = batch
    with t.autocast():
        sr = t.nets["G"](lr)
        loss = F.l1_loss(sr, hr)
    t.backward_step("G", loss)
    d_loss = (t.nets["D"](sr.detach()) ** 2).mean()  # a mean over samples: averaging over ranks is exact
    t.backward_step("D", d_loss)
    return {"l1": loss.detach(), "d": d_loss.item()}  # a tensor (read on log steps only) and a float


class CombinedBatches:
    """Batch k of a fixed stream (4 samples), or this rank's slice of it: what 2 ranks see together = 1 rank alone."""

    def __init__(self, rank=0, world=1, batch=4):
        self.k, self.rank, self.world, self.batch = 0, rank, world, batch

    def __next__(self):
        g = torch.Generator().manual_seed(self.k)
        self.k += 1
        lr, hr = torch.rand(self.batch, 3, 6, 6, generator=g), torch.rand(self.batch, 3, 12, 12, generator=g)
        part = slice(self.rank * self.batch // self.world, (self.rank + 1) * self.batch // self.world)
        return lr[part], hr[part]


def make_trainer(run_dir, steps, seed=123, **cfg):
    g, d = tiny_nets(seed)
    opts = {"G": torch.optim.Adam(g.parameters(), 1e-2), "D": torch.optim.Adam(d.parameters(), 1e-2)}
    config = train.TrainConfig(steps=steps, log_every=1, ckpt_every=3, progress=False, **cfg)
    return train.Trainer(run_dir, {"G": g, "D": d}, opts, step_fn, config, device=torch.device("cpu"))


def weights(t):
    return {f"{n}.{k}": v.detach().clone().contiguous() for n, net in t.nets.items() for k, v in net.state_dict().items()}


def test_channels_last_trains_the_same_weights(tmp_path):
    a = make_trainer(tmp_path / "a", 3).fit(CombinedBatches())
    b = make_trainer(tmp_path / "b", 3, channels_last=True).fit(CombinedBatches())
    assert b.nets["G"][0].weight.is_contiguous(memory_format=torch.channels_last)
    wa, wb = weights(a), weights(b)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
    assert [r["l1"] for r in a.log_rows] == pytest.approx([r["l1"] for r in b.log_rows], abs=1e-5)


def test_channels_last_evaluation_agrees_with_the_default_and_feeds_nhwc():
    lr = np.random.default_rng(1).integers(0, 256, (30, 26, 3), dtype=np.uint8)
    net = small_sr_net()
    ref = evaluate.super_resolve(net, lr, tile=None)
    nhwc = train.prepare_network(small_sr_net(), "cpu", channels_last=True)
    seen = []
    nhwc[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    got = evaluate.super_resolve(nhwc, lr, tile=None)
    assert seen == [True] and nhwc[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1  # float summation order only
    assert np.mean(got == ref) > 0.999


def test_evaluate_given_the_network_keeps_sr_on_its_device_with_the_same_scores(data_root):
    pairs = data.benchmark_set("Set5", 3, root=data_root, limit=2)
    net = small_sr_net(scale=3)
    sr = evaluate.super_resolve(net, pairs[0].lr, on_device=True)
    assert isinstance(sr, torch.Tensor) and sr.dtype == torch.uint8 and sr.device.type == "cpu"
    assert np.array_equal(sr.numpy(), evaluate.super_resolve(net, pairs[0].lr))
    by_net, kept = evaluate.evaluate(net, pairs, 3, progress=False, keep={pairs[1].name})
    by_fn, kept_fn = evaluate.evaluate(lambda lr: evaluate.super_resolve(net, lr), pairs, 3, progress=False,
                                       keep={pairs[1].name})
    assert by_net[["psnr", "ssim"]].equals(by_fn[["psnr", "ssim"]])
    assert isinstance(kept[pairs[1].name], np.ndarray) and np.array_equal(kept[pairs[1].name], kept_fn[pairs[1].name])


def test_compile_trains_and_evaluates_like_eager(tmp_path):
    """One switch, TrainConfig.compile, compiles every network in place for training and evaluation (~25 s on 2 CPUs)."""
    eager = make_trainer(tmp_path / "a", 2).fit(CombinedBatches())
    compiled = make_trainer(tmp_path / "b", 2, compile=True).fit(CombinedBatches())
    assert compiled.nets["G"]._compiled_call_impl is not None
    assert list(compiled.nets["G"].state_dict()) == list(eager.nets["G"].state_dict())  # names unchanged
    wa, wb = weights(eager), weights(compiled)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
    lr = np.random.default_rng(2).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    a, b = (evaluate.super_resolve(t.nets["G"], lr, tile=None) for t in (eager, compiled))
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_losses_returned_as_tensors_are_logged_as_floats(tmp_path):
    t = make_trainer(tmp_path / "r", 3).fit(CombinedBatches())
    assert all(type(r["l1"]) is float and type(r["d"]) is float for r in t.log_rows)
    assert (tmp_path / "r" / "log.csv").read_text().splitlines()[0] == "step,lr_G,lr_D,l1,d"


def test_each_rank_draws_its_own_share_of_the_patches():
    rng = np.random.default_rng(0)
    ts = data.TrainSet({f"i{k}": rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for k in range(3)}, 2, 8)
    one, r0, r1 = (data.PatchSampler(ts, 4, seed=7) for _ in range(3))
    distributed.shard_data(r0, 0, 2, split_batch=True)
    distributed.shard_data(r1, 1, 2, split_batch=True)
    distributed.shard_data(r1, 1, 2, split_batch=True)  # a sampler shared by two trainers is split once
    assert r0.batch_size == r1.batch_size == 2
    lr_one, lr0, lr1 = next(one)[0], next(r0)[0], next(r1)[0]
    assert torch.equal(lr0, lr_one[:2])  # rank 0 keeps the single-process stream
    assert lr1.shape == lr0.shape and not torch.equal(lr1, lr0)
    with pytest.raises(ValueError, match="divisible"):
        distributed.shard_data(data.PatchSampler(ts, 5, seed=7), 1, 2, split_batch=True)


# --- two processes (torchrun's environment, gloo on loopback) --------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank, world, port, out_dir, steps):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), GLOO_SOCKET_IFNAME=os.environ.get("GLOO_SOCKET_IFNAME", "lo"))
    torch.set_num_threads(1)
    # a different initialisation on each rank: the Trainer must start both from rank 0's weights
    t = make_trainer(out_dir / f"rank{rank}", steps, seed=123 + rank)
    assert t.world_size == world and t.rank == rank
    t.fit(CombinedBatches(rank, world))
    if rank == 0:
        torch.save({"weights": weights(t), "log": t.log_rows}, out_dir / "ddp.pt")
    torch.distributed.destroy_process_group()


def run_two_processes(worker, *args, timeout: float = 240):
    """``worker(rank, 2, port, *args)`` in 2 spawned processes (gloo on loopback); fails after ``timeout`` s."""
    ctx = mp.start_processes(worker, args=(2, free_port(), *args), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the 2-process run did not finish in {timeout:g} s")


def test_two_processes_match_one_process_on_the_combined_batch(tmp_path):
    steps = 5
    run_two_processes(ddp_worker, tmp_path, steps)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=False)
    one = make_trainer(tmp_path / "one", steps).fit(CombinedBatches())
    ref = weights(one)
    assert ddp["weights"].keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(ddp["weights"][k], ref[k], atol=1e-5, rtol=1e-4)
    # logged losses are the mean over ranks, i.e. the combined batch's
    assert [r["l1"] for r in ddp["log"]] == pytest.approx([r["l1"] for r in one.log_rows], abs=1e-5)
    # only rank 0 writes, and its checkpoint holds both ranks' random states for an exact resume
    assert not (tmp_path / "rank1").exists()
    ckpt = torch.load(tmp_path / "rank0" / "last.pt", weights_only=False)
    assert ckpt["step"] == steps and len(ckpt["ranks"]) == 2


def sampler_worker(rank, world, port, out_dir):
    """Under torchrun with PatchSampler (prefetched): a deadline stop, its resume, and an uninterrupted run."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), GLOO_SOCKET_IFNAME=os.environ.get("GLOO_SOCKET_IFNAME", "lo"))
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    ts = data.TrainSet({f"i{k}": rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for k in range(3)}, 2, 12)
    results = {}
    for name, run_dir, deadline in (("stopped", "run", time.time() - 1), ("resumed", "run", None),
                                    ("uninterrupted", "ref", None)):
        t = make_trainer(out_dir / run_dir, 5, deadline=deadline)
        t.fit(data.PatchSampler(ts, 4, seed=7))
        results[name] = (t.step, t.stopped_early, weights(t))
    if rank == 0:
        torch.save(results, out_dir / "sampler.pt")
    torch.distributed.destroy_process_group()


def test_two_processes_stop_together_at_a_deadline_and_resume_exactly(tmp_path):
    run_two_processes(sampler_worker, tmp_path)
    r = torch.load(tmp_path / "sampler.pt", weights_only=False)
    assert r["stopped"][:2] == (1, True)  # log_every=1: both ranks agree at the first step
    assert r["resumed"][:2] == r["uninterrupted"][:2] == (5, False)
    a, b = r["resumed"][2], r["uninterrupted"][2]
    assert all(torch.equal(a[k], b[k]) for k in a)

"""The shared training loop: resume after a kill ends with the same weights as an uninterrupted run."""
import os
import signal
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srcore import data, train


class Kill(Exception):
    pass


def make_run(run_dir, steps, kill_at=None, ckpt_every=4, deadline=None, on_step=None):
    torch.manual_seed(123)  # same initial weights in every run
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2))
    gan_d = nn.Conv2d(3, 1, 3)  # a second network with its own optimiser, as GANs need
    opts = {"G": torch.optim.Adam(net.parameters(), 1e-2), "D": torch.optim.Adam(gan_d.parameters(), 1e-2)}

    def step_fn(t, batch):
        if kill_at is not None and t.step == kill_at:
            raise Kill
        if on_step is not None:
            on_step(t)
        lr, hr = batch
        noise = torch.rand(1).item()  # consumes torch's RNG: must be restored on resume
        with t.autocast():
            sr = t.nets["G"](lr)
            loss = F.l1_loss(sr, hr) + 1e-3 * noise
        t.backward_step("G", loss)
        d_loss = t.nets["D"](sr.detach()).mean() ** 2
        t.backward_step("D", d_loss)
        return {"l1": loss.item(), "d": d_loss.item()}

    rng = np.random.default_rng(0)
    ts = data.TrainSet({f"i{k}": rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for k in range(3)}, 2, 8)
    cfg = train.TrainConfig(steps=steps, lr_milestones=(6,), lr_gamma=0.1, ckpt_every=ckpt_every, log_every=1,
                            progress=False, deadline=deadline)
    t = train.Trainer(run_dir, {"G": net, "D": gan_d}, opts, step_fn, cfg, device=torch.device("cpu"))
    return t, data.PatchSampler(ts, 2, seed=7)


def weights(t):
    return {f"{n}.{k}": v.clone() for n, net in t.nets.items() for k, v in net.state_dict().items()}


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    ref, sampler = make_run(tmp_path / "ref", 10)
    ref.fit(sampler)

    killed, sampler = make_run(tmp_path / "run", 10, kill_at=6)  # dies two steps after the checkpoint at 4
    with pytest.raises(Kill):
        killed.fit(sampler)
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["step"] == 4

    resumed, sampler = make_run(tmp_path / "run", 10)
    resumed.fit(sampler)
    assert resumed.step == 10
    a, b = weights(ref), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in resumed.log_rows] == list(range(1, 11))  # nothing lost, nothing twice
    assert resumed.log_rows == ref.log_rows
    assert resumed.optimizers["G"].param_groups[0]["lr"] == pytest.approx(1e-3)  # milestone at 6 applied once
    assert (tmp_path / "run" / "log.csv").read_text().count("\n") == 11


def test_a_finished_run_is_not_trained_again(tmp_path):
    t, sampler = make_run(tmp_path / "r", 4)
    t.fit(sampler)
    again, sampler = make_run(tmp_path / "r", 4, kill_at=0)  # would raise if it trained a step
    assert again.done
    again.fit(sampler)
    assert torch.equal(weights(again)["G.0.weight"], weights(t)["G.0.weight"])


def test_a_leftover_temporary_checkpoint_is_ignored(tmp_path):
    t, sampler = make_run(tmp_path / "r", 4)
    (tmp_path / "r" / ".last.pt.4242.tmp").write_bytes(b"half a file")  # a killed process's
    t.fit(sampler)
    assert torch.load(tmp_path / "r" / "last.pt", weights_only=False)["step"] == 4


def test_autocast_is_a_no_op_on_cpu_unless_bf16_is_asked_for(tmp_path):
    t, _ = make_run(tmp_path / "r", 1)
    assert t.autocast_dtype is None  # "auto": bf16 on CUDA only
    with t.autocast():
        assert not torch.is_autocast_enabled("cpu")
    t.cfg.autocast = "bf16"
    bf16 = train.Trainer(tmp_path / "b", t.nets, t.optimizers, t.step_fn, t.cfg, device="cpu")
    x = torch.rand(1, 3, 8, 8)
    with bf16.autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert bf16.nets["G"](x).dtype == torch.bfloat16  # convolutions run in bf16 on the CPU
    assert train.autocast_dtype("off", torch.device("cuda")) is None
    with pytest.raises(ValueError, match="autocast='fp16'; allowed: auto, bf16, off"):
        train.autocast_dtype("fp16", torch.device("cpu"))


def test_evaluation_hook_runs_every_n_steps_and_at_the_end(tmp_path):
    t, sampler = make_run(tmp_path / "r", 7)
    t.cfg.eval_every = 3
    seen = []

    def eval_fn(trainer):
        seen.append((trainer.step, trainer.nets["G"].training))
        return {"score": float(trainer.step)}

    t.eval_fn = eval_fn
    t.fit(sampler)
    assert seen == [(3, False), (6, False), (7, False)]  # networks in eval mode during the hook
    assert [r["step"] for r in t.eval_rows] == [3, 6, 7]
    assert (tmp_path / "r" / "eval.csv").read_text().splitlines()[0] == "step,score"


def test_a_checkpoint_of_another_network_is_named_not_loaded(tmp_path):
    t, sampler = make_run(tmp_path / "r", 2)
    t.fit(sampler)
    other, sampler = make_run(tmp_path / "r", 4)
    other.nets["G"] = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    with pytest.raises(RuntimeError, match=r"r/last.pt was made with other networks or settings.*retrain"):
        other.fit(sampler)



def test_a_deadline_in_the_past_stops_after_one_step_with_a_checkpoint(tmp_path):
    t, sampler = make_run(tmp_path / "r", 10, deadline=time.time() - 1)
    t.fit(sampler)
    assert t.stopped_early and t.step == 1 and not t.done
    assert torch.load(tmp_path / "r" / "last.pt", weights_only=False)["step"] == 1
    assert (tmp_path / "r" / "log.csv").read_text().splitlines()[1].startswith("1,")


def test_resume_after_a_deadline_stop_matches_uninterrupted(tmp_path):
    ref, sampler = make_run(tmp_path / "ref", 10)
    ref.fit(sampler)

    def late(t):  # the deadline passes during step 6 (between checkpoints at 4 and 8)
        if t.step == 5:
            t.cfg.deadline = time.time() - 1

    stopped, sampler = make_run(tmp_path / "run", 10, on_step=late)
    stopped.fit(sampler)
    assert stopped.stopped_early and stopped.step == 6
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["step"] == 6

    resumed, sampler = make_run(tmp_path / "run", 10)
    resumed.fit(sampler)
    assert resumed.step == 10 and not resumed.stopped_early and resumed.done
    a, b = weights(ref), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.log_rows == ref.log_rows


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR2])  # a scheduler's stop; SLURM's time-limit warning
def test_a_stop_signal_checkpoints_and_stops_then_the_handler_is_restored(tmp_path, signum):
    before = signal.getsignal(signum)

    def terminate(t):
        if t.step == 2:
            os.kill(os.getpid(), signum)

    t, sampler = make_run(tmp_path / "r", 10, on_step=terminate)
    t.fit(sampler)
    assert t.stopped_early and t.step == 3  # the step in which the signal arrived is finished and saved
    assert torch.load(tmp_path / "r" / "last.pt", weights_only=False)["step"] == 3
    assert (tmp_path / "r" / "log.csv").read_text().count("\n") == 4
    assert signal.getsignal(signum) is before


def test_the_checkpoint_holds_the_sampler_state_before_the_prefetched_batch(tmp_path):
    t, sampler = make_run(tmp_path / "r", 5, ckpt_every=100)  # one checkpoint, at the end, while a batch is prefetched
    seen = []
    step = t.step_fn
    t.step_fn = lambda tr, batch: (seen.append(batch), step(tr, batch))[1]
    t.fit(sampler)
    _, fresh = make_run(tmp_path / "unused", 5)
    expected = [next(fresh) for _ in range(5)]
    assert all(torch.equal(a, b) for got, want in zip(seen, expected) for a, b in zip(got, want))  # same batches, same order
    saved = torch.load(tmp_path / "r" / "last.pt", weights_only=False)["data"]
    assert saved == fresh.state_dict()  # 5 batches drawn, not the 6th that was prepared in the background
    assert sampler.state_dict() == fresh.state_dict()  # and the sampler itself is put back there
    assert all(torch.equal(a, b) for a, b in zip(next(sampler), next(fresh)))


class Uint8Batches:
    """The sampler's batches as uint8, as the Trainer hands them over on CUDA."""

    def __init__(self, sampler):
        self.sampler = sampler

    def __next__(self):
        return self.sampler.draw()


def test_uint8_batches_are_converted_on_the_device_to_the_same_floats(tmp_path):
    ref, sampler = make_run(tmp_path / "ref", 5)
    ref.fit(sampler)
    t, sampler = make_run(tmp_path / "u8", 5)
    t.fit(Uint8Batches(sampler))
    a, b = weights(ref), weights(t)
    assert all(torch.equal(a[k], b[k]) for k in a)
    lr8, hr8 = data.PatchSampler(sampler.ts, 2, seed=1).draw()
    lr, hr = train.to_device((lr8, hr8), t.device, torch.channels_last, t._255)
    assert lr.dtype == torch.float32 and lr.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(lr, lr8.float() / 255) and torch.equal(hr, data.uint8_to_float(hr8))

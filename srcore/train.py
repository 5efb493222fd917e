"""One step-based training loop for every paper.

The loop owns what every paper shares: device, seeds, bf16 autocast (on CUDA; on the CPU too
with ``TrainConfig(autocast="bf16")``), step LR schedules, checkpoints that resume exactly
(:meth:`Trainer.save`), progress bar, loss log (CSV) and a periodic evaluation hook. What a method does in one step is a plain function, so one network
with L1, a teacher/student pair, a GAN (two optimisers) or a cohort of four networks
all fit::

    def step_fn(t: Trainer, batch):
        lr, hr = batch
        with t.autocast():
            loss = F.l1_loss(t.nets["G"](lr), hr)
        t.backward_step("G", loss)
        return {"l1": loss.detach()}  # floats work too; tensors are read only on log steps (no GPU sync per step)

    Trainer(run_dir, {"G": net}, {"G": Adam(net.parameters(), 1e-4)}, step_fn, TrainConfig(steps=1000)).fit(batches)

A run killed at any point resumes from its last checkpoint and ends with exactly the
weights of an uninterrupted run: the checkpoint holds networks, optimisers, schedules,
every random state (torch, CUDA, numpy, Python, the patch sampler) and the log rows.

Wall clock: ``TrainConfig(deadline=time.time() + 60 * max_minutes)`` stops the loop after the
step in which the deadline passes; so does a signal of :data:`STOP_SIGNALS`. Either way the
Trainer writes its checkpoint, log.csv and eval.csv, sets ``trainer.stopped_early``
(``trainer.step < cfg.steps``) and returns; a later ``fit`` resumes.

Data path: a source with a ``draw`` method (:class:`srcore.data.PatchSampler`) has its next
batch prepared in a background thread while the current step runs. On CUDA it hands over
pinned uint8 batches, which are copied asynchronously and converted to float in [0,1] (and to
channels_last when enabled) on the GPU; step functions always receive float ``(B,3,h,w)``
tensors in [0,1] on the device, the same values, in the same order, as without prefetching.
The checkpoint holds the sampler's state *before* the prefetched batch, so resume stays exact.
Other iterators are read in the loop's own thread, as they may share torch's random state with
the step function.

Scale-out: the same code runs under ``torchrun --nproc_per_node=N`` (NCCL on CUDA, gloo on
CPU; the collectives are in :mod:`srcore.distributed`). The Trainer joins the process group from torchrun's environment, broadcasts rank 0's
weights, gives each rank its own patches (the sampler's random stream jumped by the rank) and
``batch_size / N`` of them (``cfg.split_batch``: the global batch stays the recipe's), averages
gradients in :meth:`Trainer.backward_step` with one coalesced all-reduce per optimiser, and only
rank 0 evaluates, logs, shows progress and writes checkpoints (holding every rank's random
state, so a resumed multi-process run continues exactly). Gradients are averaged by hand rather
than by wrapping in DistributedDataParallel so that networks keep their own class, attributes,
``state_dict`` names and :class:`~srcore.nets.FeatureTaps` layer names, and step functions with
several backward passes (GANs, frozen teachers, unused heads) need no ``find_unused_parameters``.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from srcore import distributed
from srcore.folders import write_atomic

# Where a step function's ``with t.autocast():`` computes in bf16 (TrainConfig.autocast; the profiles' ``autocast``):
AUTOCAST = {
    "auto": ("cuda",),        # on GPUs only (bf16 needs no loss scaling); float32 on a CPU
    "bf16": ("cuda", "cpu"),  # on the CPU too: rehearses on a CPU the numerics every GPU step runs with
    "off": (),                # float32 everywhere
}
# What stops training with a checkpoint: SIGTERM (what a cluster scheduler sends before it kills a job) and SIGUSR2
# (SLURM's warning before the time limit, which submitit asks for; not on Windows)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR2") if hasattr(signal, name))


@dataclass
class TrainConfig:
    steps: int
    lr_milestones: tuple[int, ...] = ()  # step LR: multiply by lr_gamma at these steps
    lr_gamma: float = 0.5
    ckpt_every: int = 1000
    log_every: int = 10
    eval_every: int = 0  # 0: evaluate only at the end (if an eval_fn is given)
    seed: int = 0
    autocast: str = "auto"  # bf16 autocast: auto (CUDA only), bf16 (CPU too), off (AUTOCAST)
    progress: bool = True
    channels_last: bool = False  # NHWC networks and batches (cuDNN's fast layout for bf16 convs); see benchmarks/
    compile: bool = False  # torch.compile each network in place (nn.Module.compile: names and state_dict unchanged)
    split_batch: bool = True  # under torchrun: each rank draws batch_size / world patches (global batch unchanged)
    deadline: float | None = None  # absolute time.time(): stop after the step in which it passes (checkpointed; resumable)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def l1_step(t: "Trainer", batch) -> dict:
    """The plain step: L1(net(LR), HR) for ``t.nets["net"]`` with optimiser "net" (EDSR's loss; the loss in float32)."""
    lr, hr = batch
    with t.autocast():
        sr = t.nets["net"](lr)
    loss = F.l1_loss(sr.float(), hr)
    t.backward_step("net", loss)
    return {"l1": loss.detach()}  # read only on log steps: no GPU sync per step


def default_device() -> torch.device:
    """This process's GPU (``cuda:$LOCAL_RANK`` under torchrun), else the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    local = os.environ.get("LOCAL_RANK")
    return torch.device("cuda", int(local)) if local is not None else torch.device("cuda")


def autocast_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """bf16 where ``mode`` (a key of :data:`AUTOCAST`) autocasts on ``device``'s type; None: float32."""
    if mode not in AUTOCAST:
        raise ValueError(f"autocast={mode!r}; allowed: {', '.join(AUTOCAST)}")
    return torch.bfloat16 if torch.device(device).type in AUTOCAST[mode] else None


def _as_float(value) -> float:
    return value.item() if isinstance(value, torch.Tensor) else float(value)


def prepare_network(net: nn.Module, device: torch.device, *, channels_last: bool = False,
                    compile: bool = False) -> nn.Module:
    """Move ``net`` to ``device`` (NHWC weights with ``channels_last``) and ``torch.compile`` it in place.

    What the Trainer does with ``TrainConfig.channels_last`` / ``compile``; call it on networks
    that are only evaluated (a teacher from official weights) to give them the same switches.
    :func:`srcore.evaluate.super_resolve` feeds NHWC input to a network whose weights are NHWC.
    Also turns on cuDNN autotuning on CUDA (:func:`enable_cudnn_autotune`).
    """
    device = torch.device(device)
    enable_cudnn_autotune(device)
    net.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    if compile and not getattr(net, "_compiled_call_impl", None):
        net.compile()  # in place: the module, its attributes and state_dict names stay as they are
    return net


def enable_cudnn_autotune(device: torch.device) -> None:
    """``torch.backends.cudnn.benchmark = True`` on CUDA: cuDNN times its convolution algorithms per shape.

    Training sees one patch shape, so the search is paid once. A no-op on other devices.
    """
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True


# --- checkpoint files ----------------------------------------------------------------------
def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a kill never leaves a half-written checkpoint."""
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_csv(path: Path, rows: list[dict]) -> None:
    """``rows`` as CSV (columns in order of first appearance), written atomically; nothing for no rows."""
    if not rows:
        return
    keys = list(dict.fromkeys(k for row in rows for k in row))

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, keys)
            writer.writeheader()
            writer.writerows(rows)
    write_atomic(path, write)


def finished_steps(path: Path) -> int | None:
    """The step of the checkpoint at ``path`` (None without one), read without loading every tensor."""
    if not Path(path).is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False, mmap=True)["step"]


class _Prefetch:
    """Batches of ``data`` prepared one step ahead in a background thread (``produce()`` runs there).

    Only for sources that use nothing but their own random state (``PatchSampler``). Its
    ``state_dict`` is the source's state *before* the batch being prepared: what a run without
    prefetching would checkpoint at this point. :meth:`close` waits for that batch and puts the
    source back into that state, as if the batch had never been drawn.
    """

    def __init__(self, data, produce: Callable[[], object], initializer: Callable[[], None] | None = None):
        self.data, self.produce = data, produce
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="srcore-batches", initializer=initializer)
        self._state = copy.deepcopy(data.state_dict())
        self._next = self.pool.submit(produce)

    def __next__(self):
        batch = self._next.result()
        self._state = copy.deepcopy(self.data.state_dict())  # read while the worker is idle: no race
        self._next = self.pool.submit(self.produce)
        return batch

    def state_dict(self) -> dict:
        return self._state

    def close(self) -> None:
        self._next.cancel()
        with contextlib.suppress(Exception):  # a failed unused batch changes nothing: the state is reset below
            self._next.result()
        self.pool.shutdown(wait=True)
        self.data.load_state_dict(self._state)


def batches(data, device: torch.device):
    """What the loop calls ``next`` on: a background prefetch for sources with ``draw`` (PatchSampler), else ``data``."""
    if not (hasattr(data, "draw") and hasattr(data, "state_dict") and hasattr(data, "load_state_dict")):
        return data
    if device.type == "cuda":  # pinned uint8: the copy is asynchronous, the GPU converts
        # the worker's current device is this rank's (else pinning would open a context on cuda:0)
        index = device.index if device.index is not None else torch.cuda.current_device()
        return _Prefetch(data, lambda: data.draw(pin=True), initializer=lambda: torch.cuda.set_device(index))
    return _Prefetch(data, lambda: next(data))  # CPU: the float conversion too runs in the worker (NumPy)


def to_device(batch, device: torch.device, memory_format=torch.preserve_format, scale: torch.Tensor | None = None):
    """A batch (tensor, or tuple/list of them) on ``device``; uint8 image batches become float in [0,1] there.

    ``scale``: 255 as a tensor on ``device`` (CUDA divides exactly by a tensor; by a Python scalar it multiplies by 1/255).
    """
    if isinstance(batch, torch.Tensor):
        if batch.dtype == torch.uint8:  # an image batch (PatchSampler.draw): converted on the device
            x = batch.to(device, non_blocking=True)
            fmt = memory_format if x.dim() == 4 else torch.preserve_format
            return x.to(torch.float32, memory_format=fmt).div_(scale if scale is not None else 255.0)
        if batch.dim() == 4:
            return batch.to(device, non_blocking=True, memory_format=memory_format)
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device, memory_format, scale) for b in batch)
    return batch


@dataclass
class Trainer:
    run_dir: Path
    nets: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    step_fn: Callable[["Trainer", object], dict]
    cfg: TrainConfig
    eval_fn: Callable[["Trainer"], dict] | None = None
    device: torch.device = field(default_factory=default_device)
    desc: str = "train"

    def __post_init__(self):
        self.world_size = distributed.init_distributed()
        self.rank = distributed.rank()
        self.device = torch.device(self.device)
        if self.device.type == "cuda" and self.device.index is None and self.world_size > 1:
            self.device = torch.device("cuda", torch.cuda.current_device())  # set to LOCAL_RANK by init_distributed
        self.run_dir = Path(self.run_dir)
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.schedulers = {name: torch.optim.lr_scheduler.MultiStepLR(opt, list(self.cfg.lr_milestones), self.cfg.lr_gamma)
                           for name, opt in self.optimizers.items()}
        self.step = 0
        self.stopped_early = False  # set by fit when cfg.deadline passed or a stop signal arrived before cfg.steps
        self.resumed_at = 0  # the step fit started from: the last checkpoint's (cfg.steps: a finished run, nothing trained)
        self._stop_requested = False  # set by the STOP_SIGNALS handler that fit installs
        self.elapsed = 0.0  # training seconds, summed over resumed sessions
        self.log_rows: list[dict] = []
        self.eval_rows: list[dict] = []
        self.memory_format = torch.channels_last if self.cfg.channels_last else torch.preserve_format
        for net in self.nets.values():
            prepare_network(net, self.device, channels_last=self.cfg.channels_last, compile=self.cfg.compile)
        self._255 = torch.tensor(255.0, device=self.device)  # a device tensor: CUDA divides exactly (a scalar: x * (1/255))
        self.autocast_dtype = autocast_dtype(self.cfg.autocast, self.device)
        self._sync_params = {name: [p for g in opt.param_groups for p in g["params"]]
                             for name, opt in self.optimizers.items()}

    # --- what step functions use -------------------------------------------------------
    def autocast(self):
        """bf16 autocast where ``cfg.autocast`` asks for it on this device (:func:`autocast_dtype`); else a no-op."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def backward_step(self, optimizer: str, loss: torch.Tensor) -> None:
        """zero_grad, backward, (average gradients over ranks), step for one named optimiser.

        bf16 needs no loss scaling. Under torchrun every rank must call this for the same
        optimisers in the same order (they do: the step function is the same code).
        """
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.world_size > 1:
            distributed.average_gradients(self._sync_params[optimizer])
        opt.step()

    # --- checkpoints: one file with everything an exact resume needs -------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def done(self) -> bool:
        """True when a finished run of ``cfg.steps`` steps is already on disk (rank 0's answer for every rank)."""
        step = finished_steps(self.checkpoint_path) if self.rank == 0 else None
        return distributed.broadcast_object(step is not None and step >= self.cfg.steps)

    def save(self, data=None) -> None:
        """Checkpoint (``last.pt``: networks, optimisers, schedules, step, training seconds, log rows and every random
        state: torch, CUDA, NumPy, Python, the patch sampler's, under torchrun every rank's), written atomically, and
        log.csv / eval.csv beside it. Written by rank 0; every rank must call it (it gathers random states)."""
        local = {"rng": rng_state(), "data": data.state_dict() if hasattr(data, "state_dict") else None}
        ranks = distributed.gather_objects(local)
        if self.rank != 0:
            return
        state = {
            "step": self.step, "elapsed": self.elapsed, "config": asdict(self.cfg),
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "rng": local["rng"], "data": local["data"],
            "log": self.log_rows, "eval": self.eval_rows,
        }
        if ranks is not None:
            state["ranks"] = ranks  # every rank's random state and sampler, for an exact multi-process resume
        atomic_save(state, self.checkpoint_path)
        write_csv(self.run_dir / "log.csv", self.log_rows)
        write_csv(self.run_dir / "eval.csv", self.eval_rows)

    def load(self, data=None) -> bool:
        """Restore the last checkpoint (and ``data``'s sampler) if there is one; True if restored.

        Rank 0 reads the file and sends it to the others. Resumed with another number of processes,
        every rank starts from rank 0's random state, its sampler stream jumped by the rank.
        """
        path = self.checkpoint_path
        state = None
        if self.rank == 0 and path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=False)
        state = distributed.broadcast_object(state)
        if state is None:
            return False
        try:
            for k, net in self.nets.items():
                net.load_state_dict(state["nets"][k])
        except (RuntimeError, KeyError) as e:
            raise RuntimeError(f"{path} was made with other networks or settings ({str(e).strip().splitlines()[0]}): "
                               f"delete that folder or retrain (notebooks: -p retrain=true)") from e
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        for k, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][k])
        mine = {"rng": state["rng"], "data": state["data"]}
        same_world = len(state.get("ranks") or [None]) == self.world_size
        if same_world and self.world_size > 1:
            mine = state["ranks"][self.rank]
        set_rng_state(mine["rng"])
        if mine["data"] is not None and hasattr(data, "load_state_dict"):
            data.load_state_dict(mine["data"])
        if not same_world:  # resumed with another number of processes: rank 0's state, jumped per rank
            distributed.shard_data(data, self.rank, self.world_size, self.cfg.split_batch, jump=True)
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.log_rows, self.eval_rows = state["log"], state["eval"]
        return True

    # --- the loop --------------------------------------------------------------------
    def fit(self, data) -> "Trainer":
        """Train until ``cfg.steps``, resuming from the last checkpoint in ``run_dir`` if there is one.

        Stops earlier, with a checkpoint, when ``cfg.deadline`` passes or a signal of STOP_SIGNALS arrives
        (``self.stopped_early``); under torchrun that is decided on log steps, so it may take
        up to ``cfg.log_every`` more steps.
        """
        self.stopped_early = self._stop_requested = False
        with self._signals_stop():
            resumed = self.load(data)
            self.resumed_at = self.step
            if not resumed:
                seed_everything(self.cfg.seed + self.rank)
            # resumed: each rank's stream is the checkpoint's, so only the batch is split
            distributed.shard_data(data, self.rank, self.world_size, self.cfg.split_batch, jump=not resumed)
            if self.world_size > 1:  # same starting weights everywhere, whatever each rank built or loaded
                distributed.broadcast_tensors([t.data for net in self.nets.values()
                                               for t in (*net.parameters(), *net.buffers())])
            bar = tqdm(total=self.cfg.steps, initial=self.step, desc=self.desc,
                       disable=not self.cfg.progress or self.rank != 0, dynamic_ncols=True)
            source = batches(data, self.device) if self.step < self.cfg.steps else data
            try:
                self._loop(source, bar)
            finally:
                if isinstance(source, _Prefetch):
                    source.close()
            bar.close()
            distributed.barrier()  # the last checkpoint is on disk before any rank moves on (and reads ``done``)
        for net in self.nets.values():
            net.eval()
        return self

    def _loop(self, data, bar) -> None:
        cfg = self.cfg
        nets = list(self.nets.values())
        tic = time.perf_counter()
        while self.step < cfg.steps:
            batch = to_device(next(data), self.device, self.memory_format, self._255)
            for net in nets:
                if not net.training:  # train() walks every submodule: only when something switched it off
                    net.train()
            losses = self.step_fn(self, batch)
            for sched in self.schedulers.values():
                sched.step()
            self.step += 1
            bar.update(1)
            log_step = self.step % cfg.log_every == 0
            stop = self.step < cfg.steps and self._should_stop(sync=log_step)
            last = self.step == cfg.steps
            if log_step or last or stop:
                lrs = {f"lr_{k}": opt.param_groups[0]["lr"] for k, opt in self.optimizers.items()}
                values = dict(zip(losses, distributed.mean_over_ranks([_as_float(v) for v in losses.values()],
                                                                       self.device)))
                self.log_rows.append({"step": self.step, **lrs, **values})
                bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
            due = cfg.eval_every and self.step % cfg.eval_every == 0
            if self.eval_fn is not None and (due or last) and self.rank == 0:
                self._evaluate()
            if self.step % cfg.ckpt_every == 0 or last or stop:
                self.elapsed += time.perf_counter() - tic
                tic = time.perf_counter()
                self.save(data)
            if stop:  # no evaluation hook here: the budget is spent; the resumed run evaluates at its end
                self.stopped_early = True
                reason = "a stop signal" if self._stop_requested else "the deadline"
                if self.rank == 0:
                    bar.write(f"{self.desc}: stopped by {reason} at step {self.step}/{cfg.steps}; checkpoint {self.checkpoint_path}")
                break

    def _evaluate(self) -> None:
        for net in self.nets.values():
            net.eval()
        with torch.no_grad():
            row = self.eval_fn(self)
        self.eval_rows.append({"step": self.step, **row})

    def _should_stop(self, sync: bool) -> bool:
        """Deadline passed or a stop signal received; under torchrun every rank gets the same answer (only when ``sync``)."""
        local = self._stop_requested or (self.cfg.deadline is not None and time.time() >= self.cfg.deadline)
        if self.world_size == 1:
            return local
        if not sync:  # ranks must agree (the stop saves, which gathers): decided on log steps, which sync anyway
            return False
        return distributed.any_rank(local, self.device)

    @contextlib.contextmanager
    def _signals_stop(self):
        """While training, a signal of STOP_SIGNALS asks the loop to checkpoint and stop (main thread only: Python's
        rule for handlers)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            self._stop_requested = True

        previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

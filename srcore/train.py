"""One step-based training loop for every paper.

The loop owns what every paper shares: device, seeds, bf16 autocast on CUDA, step LR
schedules, atomic checkpoints, resume, progress bar, loss log (CSV) and a periodic
evaluation hook. What a method does in one step is a plain function, so one network
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
step in which the deadline passes; so does SIGTERM (what a cluster scheduler sends before it
kills a job). Either way the Trainer writes its checkpoint, log.csv and eval.csv, sets
``trainer.stopped_early`` (``trainer.step < cfg.steps``) and returns; a later ``fit`` resumes.

Data path: a source with a ``draw`` method (:class:`srcore.data.PatchSampler`) has its next
batch prepared in a background thread while the current step runs. On CUDA it hands over
pinned uint8 batches, which are copied asynchronously and converted to float in [0,1] (and to
channels_last when enabled) on the GPU; step functions always receive float ``(B,3,h,w)``
tensors in [0,1] on the device, the same values, in the same order, as without prefetching.
The checkpoint holds the sampler's state *before* the prefetched batch, so resume stays exact.
Other iterators are read in the loop's own thread, as they may share torch's random state with
the step function.

Scale-out: the same code runs under ``torchrun --nproc_per_node=N`` (NCCL on CUDA, gloo on
CPU). The Trainer joins the process group from torchrun's environment, broadcasts rank 0's
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
import datetime
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
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm


@dataclass
class TrainConfig:
    steps: int
    lr_milestones: tuple[int, ...] = ()  # step LR: multiply by lr_gamma at these steps
    lr_gamma: float = 0.5
    ckpt_every: int = 1000
    log_every: int = 10
    eval_every: int = 0  # 0: evaluate only at the end (if an eval_fn is given)
    seed: int = 0
    amp: bool = True  # bf16 autocast, on CUDA only
    progress: bool = True
    channels_last: bool = False  # NHWC networks and batches (cuDNN's fast layout for bf16 convs); see benchmarks/
    compile: bool = False  # torch.compile each network in place (nn.Module.compile: names and state_dict unchanged)
    split_batch: bool = True  # under torchrun: each rank draws batch_size / world patches (global batch unchanged)
    deadline: float | None = None  # absolute time.time(): stop after the step in which it passes (checkpointed; resumable)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    """This process's GPU (``cuda:$LOCAL_RANK`` under torchrun), else the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    local = os.environ.get("LOCAL_RANK")
    return torch.device("cuda", int(local)) if local is not None else torch.device("cuda")


# --- several processes (torchrun) -----------------------------------------------------------
def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the one that writes files."""
    return rank() == 0


def init_distributed() -> int:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); the world size.

    A no-op without torchrun's environment or when already joined. NCCL on CUDA (each rank on
    ``cuda:$LOCAL_RANK``), gloo on CPU. The timeout is long because rank 0 alone evaluates while
    the others wait in the next all-reduce.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return world_size()
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=datetime.timedelta(hours=2))
    return world_size()


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])  # logical (NCHW) order whatever each tensor's layout


def _unflat(flat: torch.Tensor, tensors: list[torch.Tensor]) -> None:
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view(t.shape))
        offset += t.numel()


def _by_kind(tensors) -> dict:
    groups: dict = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    return groups


def broadcast_tensors(tensors, src: int = 0) -> None:
    """Overwrite ``tensors`` in place with rank ``src``'s values, one broadcast per (device, dtype)."""
    for group in _by_kind(tensors).values():
        flat = _flat(group)
        dist.broadcast(flat, src)
        _unflat(flat, group)


def average_gradients(params) -> None:
    """Mean of each ``.grad`` over all ranks, one all-reduce per (device, dtype) (ranks must agree which have one)."""
    grads = [p.grad for p in params if p.grad is not None]
    for group in _by_kind(grads).values():
        flat = _flat(group)
        dist.all_reduce(flat)
        _unflat(flat.div_(world_size()), group)


def _broadcast_object(obj, src: int = 0):
    box = [obj]
    dist.broadcast_object_list(box, src)
    return box[0]


def settings_tag(**settings) -> str:
    """A short, stable hash of the settings that shape a run, for its checkpoint folder name.

    ``f"EDSR-T_x2-{settings_tag(feats=64, steps=4000)}"``: another width or schedule gets
    another folder, so a cached checkpoint is never loaded into a different network.
    """
    import hashlib
    import json
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]


def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a kill never leaves a half-written checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _shard_data(data, rank_: int, world: int, split_batch: bool, jump: bool = True) -> None:
    """Per-rank data for a PatchSampler-like source (``rng``: numpy Generator, ``batch_size``: int).

    The random stream is jumped ``rank`` times (2^127 draws each: independent streams, rank 0's
    unchanged) and, with ``split_batch``, each rank draws ``batch_size / world`` patches. Done
    once per source, so a sampler shared by two trainers is not split twice.
    """
    if world <= 1 or getattr(data, "_srcore_sharded", False):
        return
    rng = getattr(data, "rng", None)
    if jump and isinstance(rng, np.random.Generator):
        data.rng = np.random.Generator(rng.bit_generator.jumped(rank_))
    batch = getattr(data, "batch_size", None)
    if split_batch and isinstance(batch, int):
        if batch % world:
            raise ValueError(f"batch_size {batch} is not divisible by the {world} processes; "
                             f"change batch_size or set TrainConfig(split_batch=False) for {batch} per process")
        data.batch_size = batch // world
    data._srcore_sharded = True


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
        self.world_size = init_distributed()
        self.rank = rank()
        self.device = torch.device(self.device)
        if self.device.type == "cuda" and self.device.index is None and self.world_size > 1:
            self.device = torch.device("cuda", torch.cuda.current_device())  # set to LOCAL_RANK by init_distributed
        self.run_dir = Path(self.run_dir)
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.schedulers = {name: torch.optim.lr_scheduler.MultiStepLR(opt, list(self.cfg.lr_milestones), self.cfg.lr_gamma)
                           for name, opt in self.optimizers.items()}
        self.step = 0
        self.stopped_early = False  # set by fit when cfg.deadline passed or SIGTERM arrived before cfg.steps
        self.resumed_at = 0  # the step fit started from: the last checkpoint's (cfg.steps: a finished run, nothing trained)
        self._stop_requested = False  # set by the SIGTERM handler that fit installs
        self.elapsed = 0.0  # training seconds, summed over resumed sessions
        self.log_rows: list[dict] = []
        self.eval_rows: list[dict] = []
        self.memory_format = torch.channels_last if self.cfg.channels_last else torch.preserve_format
        for net in self.nets.values():
            prepare_network(net, self.device, channels_last=self.cfg.channels_last, compile=self.cfg.compile)
        self._255 = torch.tensor(255.0, device=self.device)  # a device tensor: CUDA divides exactly (a scalar: x * (1/255))
        self.use_amp = self.cfg.amp and self.device.type == "cuda"
        self._sync_params = {name: [p for g in opt.param_groups for p in g["params"]]
                             for name, opt in self.optimizers.items()}

    # --- what step functions use -------------------------------------------------------
    def autocast(self):
        """bf16 autocast on CUDA when cfg.amp; a no-op elsewhere."""
        if self.use_amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward_step(self, optimizer: str, loss: torch.Tensor) -> None:
        """zero_grad, backward, (average gradients over ranks), step for one named optimiser.

        bf16 needs no loss scaling. Under torchrun every rank must call this for the same
        optimisers in the same order (they do: the step function is the same code).
        """
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.world_size > 1:
            average_gradients(self._sync_params[optimizer])
        opt.step()

    # --- checkpoints -----------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "last.pt"

    def _finished_on_disk(self) -> bool:
        if not self.checkpoint_path.is_file():
            return False
        # mmap: reads the step without pulling every tensor of a large checkpoint into memory
        return torch.load(self.checkpoint_path, map_location="cpu", weights_only=False, mmap=True)["step"] >= self.cfg.steps

    @property
    def done(self) -> bool:
        """True when a finished run of ``cfg.steps`` steps is already on disk (rank 0's answer for every rank)."""
        finished = self._finished_on_disk() if self.rank == 0 else None
        return _broadcast_object(finished) if self.world_size > 1 else finished

    def save(self, data=None) -> None:
        """Checkpoint, log.csv and eval.csv, written by rank 0; every rank must call it (it gathers random states)."""
        local = {"rng": _rng_state(), "data": data.state_dict() if hasattr(data, "state_dict") else None}
        ranks = None
        if self.world_size > 1:
            ranks = [None] * self.world_size
            dist.all_gather_object(ranks, local)
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
        self._write_csv("log.csv", self.log_rows)
        self._write_csv("eval.csv", self.eval_rows)

    def load(self, data=None) -> bool:
        """Restore the last checkpoint if there is one; True if restored. Rank 0 reads it and sends it to the others."""
        state = None
        if self.rank == 0 and self.checkpoint_path.is_file():
            state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        if self.world_size > 1:
            state = _broadcast_object(state)
        if state is None:
            return False
        try:
            for k, net in self.nets.items():
                net.load_state_dict(state["nets"][k])
        except (RuntimeError, KeyError) as e:
            raise RuntimeError(f"{self.checkpoint_path} was made with other networks or settings "
                               f"({str(e).strip().splitlines()[0]}): delete that folder or retrain "
                               f"(notebooks: -p retrain=true)") from e
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        for k, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][k])
        mine = {"rng": state["rng"], "data": state["data"]}
        same_world = len(state.get("ranks") or [None]) == self.world_size
        if same_world and self.world_size > 1:
            mine = state["ranks"][self.rank]
        _set_rng_state(mine["rng"])
        if mine["data"] is not None and hasattr(data, "load_state_dict"):
            data.load_state_dict(mine["data"])
        if not same_world:  # resumed with another number of processes: rank 0's state, jumped per rank
            _shard_data(data, self.rank, self.world_size, self.cfg.split_batch, jump=True)
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.log_rows, self.eval_rows = state["log"], state["eval"]
        return True

    def _write_csv(self, name: str, rows: list[dict]) -> None:
        if not rows:
            return
        keys = list(dict.fromkeys(k for row in rows for k in row))
        tmp = self.run_dir / f".{name}.tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, keys)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.run_dir / name)

    # --- the loop --------------------------------------------------------------------
    def _to_device(self, batch):
        if isinstance(batch, torch.Tensor):
            if batch.dtype == torch.uint8:  # an image batch (PatchSampler.draw): float in [0,1], converted on the device
                x = batch.to(self.device, non_blocking=True)
                fmt = self.memory_format if x.dim() == 4 else torch.preserve_format
                return x.to(torch.float32, memory_format=fmt).div_(self._255)
            if batch.dim() == 4:
                return batch.to(self.device, non_blocking=True, memory_format=self.memory_format)
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, (tuple, list)):
            return type(batch)(self._to_device(b) for b in batch)
        return batch

    def _evaluate(self) -> None:
        for net in self.nets.values():
            net.eval()
        with torch.no_grad():
            row = self.eval_fn(self)
        self.eval_rows.append({"step": self.step, **row})

    def _log_values(self, losses: dict) -> dict[str, float]:
        """Loss values as floats (the only host-device sync of a step); the mean over ranks under torchrun."""
        if self.world_size == 1 or not losses:
            return {k: _as_float(v) for k, v in losses.items()}
        values = torch.tensor([_as_float(v) for v in losses.values()], dtype=torch.float64,
                              device=self.device if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(values)
        return dict(zip(losses, (values / self.world_size).tolist()))

    def _should_stop(self, sync: bool) -> bool:
        """Deadline passed or SIGTERM received; under torchrun every rank gets the same answer (only when ``sync``)."""
        local = self._stop_requested or (self.cfg.deadline is not None and time.time() >= self.cfg.deadline)
        if self.world_size == 1:
            return local
        if not sync:  # ranks must agree (the stop saves, which gathers): decided on log steps, which sync anyway
            return False
        flag = torch.tensor([float(local)], device=self.device if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    @contextlib.contextmanager
    def _sigterm_stops(self):
        """While training, SIGTERM asks the loop to checkpoint and stop (main thread only: Python's rule for handlers)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            self._stop_requested = True

        previous = signal.signal(signal.SIGTERM, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def fit(self, data) -> "Trainer":
        """Train until ``cfg.steps``, resuming from the last checkpoint in ``run_dir`` if there is one.

        Stops earlier, with a checkpoint, when ``cfg.deadline`` passes or SIGTERM arrives
        (``self.stopped_early``); under torchrun that is decided on log steps, so it may take
        up to ``cfg.log_every`` more steps.
        """
        self.stopped_early = self._stop_requested = False
        with self._sigterm_stops():
            self._fit(data)
        return self

    def _batches(self, data):
        """What the loop calls ``next`` on: a background prefetch for sources with ``draw``, else ``data`` itself."""
        if not (hasattr(data, "draw") and hasattr(data, "state_dict") and hasattr(data, "load_state_dict")):
            return data
        if self.device.type == "cuda":  # pinned uint8: the copy is asynchronous, the GPU converts
            # the worker's current device is this rank's (else pinning would open a context on cuda:0)
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            return _Prefetch(data, lambda: data.draw(pin=True), initializer=lambda: torch.cuda.set_device(index))
        return _Prefetch(data, lambda: next(data))  # CPU: the float conversion too runs in the worker (NumPy)

    def _fit(self, data) -> None:
        resumed = self.load(data)
        self.resumed_at = self.step
        if not resumed:
            seed_everything(self.cfg.seed + self.rank)
        # resumed: each rank's stream is the checkpoint's, so only the batch is split
        _shard_data(data, self.rank, self.world_size, self.cfg.split_batch, jump=not resumed)
        if self.world_size > 1:  # same starting weights everywhere, whatever each rank built or loaded
            broadcast_tensors([t.data for net in self.nets.values() for t in (*net.parameters(), *net.buffers())])
        cfg = self.cfg
        bar = tqdm(total=cfg.steps, initial=self.step, desc=self.desc, disable=not cfg.progress or self.rank != 0,
                   dynamic_ncols=True)
        nets = list(self.nets.values())
        source = self._batches(data) if self.step < cfg.steps else data
        try:
            self._loop(source, nets, bar)
        finally:
            if isinstance(source, _Prefetch):
                source.close()
        bar.close()
        if self.world_size > 1:
            dist.barrier()  # the last checkpoint is on disk before any rank moves on (and reads ``done``)
        for net in nets:
            net.eval()

    def _loop(self, data, nets, bar) -> None:
        cfg = self.cfg
        tic = time.perf_counter()
        while self.step < cfg.steps:
            batch = self._to_device(next(data))
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
                values = self._log_values(losses)
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
                reason = "SIGTERM" if self._stop_requested else "the deadline"
                if self.rank == 0:
                    bar.write(f"{self.desc}: stopped by {reason} at step {self.step}/{cfg.steps}; checkpoint {self.checkpoint_path}")
                break

"""One paper over several GPUs, processes or cluster jobs: shards, executors, and one merged run folder.

    python -m srcore.reproduce --paper PAPER --profile quick --shard scale --gpus 0,1,2
    python -m srcore.reproduce --paper PAPER --profile paper --shard scale --executor slurm --partition gpu
    python -m srcore.reproduce --paper PAPER --profile quick --nproc-per-shard 4   # torchrun, 4 GPUs

A **shard** is one notebook execution. ``--shard scale`` makes one per scale of the paper (the unit
with nothing shared across it: every trained run is per scale); a paper with one scale is one
shard. Each writes its own run folder, ``<run>/shards/x<scale>/``, with checkpoints in the run
root's shared ``checkpoints/<paper>/`` (the keyed runs of an unsharded run are the same runs), and
the runner merges them into ``<run>/`` (``runs/<profile>/<paper>/``, :func:`srcore.runner.merge.merge`) and
promotes that like any run. A shard's parameters differ from the run's in ``scales`` alone: a figure
drawn at one scale is drawn by the shard of that scale (the notebooks' rule for any run).

Executors: ``local`` runs one process per shard, ``jobs`` at a time, each pinned to its GPUs with
CUDA_VISIBLE_DEVICES (or on the CPU); ``slurm`` submits one SLURM job per shard through submitit
(``submitit-local``: the same through submitit's local executor, for a machine without SLURM).
``nproc`` > 1 executes a shard's notebook under torchrun: every rank executes it and trains, rank 0
alone evaluates and writes. A shard whose folder holds finished results of the same parameters is
not run again (a failed or killed one is; its runs resume from their checkpoints).
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from srcore import folders
from srcore.paper import config
from srcore.runner import execute

EXECUTORS = ("local", "slurm", "submitit-local")
SHARDS = "shards"  # a sharded run's shard folders, kept inside its run folder


@dataclass
class Shard:
    paper: str
    profile: str
    name: str                 # x2, x3, ... or "all"
    overrides: dict           # the run's -p overrides and the shard's own (scales, figure scale)
    folder: str               # its run folder (<run>/shards/<name>)
    ckpt_dir: str             # the run root's checkpoints/<paper>: shared with unsharded runs
    executed: str             # the executed notebook
    nproc: int = 1            # processes (torchrun) executing it
    env: dict = field(default_factory=dict)  # CUDA_VISIBLE_DEVICES, set by the local executor

    @property
    def log(self) -> Path:
        return Path(self.folder).parent / f"{self.name}.log"

    def parameters(self) -> dict:
        return {"profile": self.profile, **self.overrides, "out_dir": self.folder, "ckpt_dir": self.ckpt_dir}


def shard_overrides(paper: str, profile: str, scale: int, overrides: dict) -> dict:
    """The overrides of the shard that trains ``scale`` alone (checked by config.load)."""
    out = {**overrides, "scales": [scale]}
    config.load(paper, profile, **out)
    return out


def plan(paper: str, profile: str, overrides: dict, root: Path, *, by: str | None = "scale", nproc: int = 1) -> list[Shard]:
    """The shards of ``paper`` (one per scale with ``by="scale"``, else one named "all"), every one checked."""
    params = config.load(paper, profile, **overrides)
    run = Path(root) / paper
    scales = params.get("scales") if by == "scale" else None
    parts = {f"x{x}": shard_overrides(paper, profile, x, overrides) for x in scales} if scales and len(scales) > 1 \
        else {f"x{scales[0]}" if scales else "all": dict(overrides)}
    return [Shard(paper, profile, name, ov, str(run / SHARDS / name), str(Path(root) / "checkpoints" / paper),
                  str(Path(root) / "executed" / f"{paper}.{name}.ipynb"), nproc)
            for name, ov in parts.items()]


def finished(shard: Shard) -> bool:
    """True when the shard's folder holds complete results made with the same profile and parameters, every
    run trained to its end (a run stopped early by a stop signal or the deadline resumes when the shard runs again)."""
    prov = Path(shard.folder) / "provenance.json"
    if not prov.is_file() or not (Path(shard.folder) / "values.csv").is_file():
        return False
    made = json.loads(prov.read_text())
    wanted = config.load(shard.paper, shard.profile, **shard.overrides).overrides
    stopped = any(r.get("stopped_early") for r in made.get("runs", {}).values())
    return made.get("profile") == shard.profile and made.get("overrides") == json.loads(json.dumps(wanted)) \
        and not stopped


# --- one shard, in whatever process runs it ----------------------------------------------------------------

def run_shard(spec: dict) -> str:
    """Execute one shard's notebook (under torchrun when it has several processes); returns its folder.

    The function a worker process, a submitit job or each torchrun rank calls.
    """
    shard = Shard(**spec)
    if shard.nproc > 1 and "LOCAL_RANK" not in os.environ:  # start the ranks, each calls this again
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={shard.nproc}",
               "-m", "srcore.runner.shards", json.dumps(asdict(shard))]
        done = subprocess.run(cmd, env={**os.environ, **shard.env})
        if done.returncode:
            raise RuntimeError(f"shard {shard.name}: torchrun exited with {done.returncode}")
        return shard.folder
    executed = Path(shard.executed)
    rank = int(os.environ.get("RANK", "0"))
    if rank:  # every rank keeps its own executed copy; rank 0's is the shard's, and rank 0 holds the folder
        executed = executed.with_name(f"{executed.stem}.rank{rank}.ipynb")
        execute.execute(shard.paper, shard.parameters(), executed)
        return shard.folder
    # a requeued job may start (on another node) before the old one's lock is seen to be stale: it waits for it
    with folders.hold(shard.folder, f"{shard.paper} {shard.profile} shard {shard.name}", wait=True,
                      timeout=2 * folders.STALE_S):
        execute.execute(shard.paper, shard.parameters(), executed)
    return shard.folder


# --- executors ---------------------------------------------------------------------------------------------

def _gpu_groups(gpus: list[int] | None, nproc: int) -> list[list[int]] | None:
    """The GPUs of each concurrent shard: ``nproc`` at a time from ``gpus`` (default: every visible GPU)."""
    if gpus is None:
        import torch
        gpus = list(range(torch.cuda.device_count()))
    if not gpus:
        return None
    groups = [gpus[i:i + nproc] for i in range(0, len(gpus) - nproc + 1, nproc)]
    if not groups:
        raise ValueError(f"{len(gpus)} GPUs ({gpus}) cannot hold one shard of {nproc} processes")
    return groups


def run_local(shards: list[Shard], *, jobs: int | None = None, gpus: list[int] | None = None, log=print) -> dict:
    """One process per shard (``python -m srcore.runner.shards SPEC``), ``jobs`` at a time; {name: error or None}."""
    groups = _gpu_groups(gpus, shards[0].nproc if shards else 1)
    width = max(1, min(jobs or (len(groups) if groups else 1), len(shards)))
    free: queue.Queue = queue.Queue()  # GPU groups to hand out; on a CPU, `width` turns
    for g in groups or [None] * width:
        free.put(g)

    def one(shard: Shard):
        group = free.get()
        try:
            env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ",".join(map(str, group))} if group else {})}
            shard.env = {k: env[k] for k in ("CUDA_VISIBLE_DEVICES",) if k in env}
            Path(shard.log).parent.mkdir(parents=True, exist_ok=True)
            log(f"[{shard.paper} {shard.name}] started{f' on GPUs {group}' if group else ''}; log {shard.log}")
            tic = time.perf_counter()
            with open(shard.log, "w") as out:
                done = subprocess.run([sys.executable, "-m", "srcore.runner.shards", json.dumps(asdict(shard))], env=env,
                                      stdout=out, stderr=subprocess.STDOUT)
            error = None if done.returncode == 0 else f"exited with {done.returncode}; log {shard.log}"
            log(f"[{shard.paper} {shard.name}] {'done' if error is None else 'FAILED: ' + error} "
                f"in {time.perf_counter() - tic:.0f} s")
            return error
        finally:
            free.put(group)

    with ThreadPoolExecutor(width) as pool:
        return dict(zip([s.name for s in shards], pool.map(one, shards)))


def slurm_executor(folder: Path, *, cluster: str = "slurm", partition: str | None = None, time_min: int = 480,
                   gpus_per_job: int = 1, cpus_per_job: int = 8, name: str = "srcore"):
    """A submitit executor writing its job scripts and logs into ``folder`` (one per shard)."""
    import submitit
    ex = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    ex.update_parameters(timeout_min=time_min, gpus_per_node=gpus_per_job, cpus_per_task=cpus_per_job, name=name,
                         **({"slurm_partition": partition} if partition and cluster == "slurm" else {}),
                         **({"slurm_signal_delay_s": 180} if cluster == "slurm" else {}))
    return ex


class ShardJob:
    """What a submitit job runs: :func:`run_shard`, requeued when SLURM stops it.

    A job near its time limit (SLURM's warning signal, ``slurm_signal_delay_s`` before it) or preempted is
    put back in the queue with the same shard (submitit's ``checkpoint`` protocol; at most 3 time-outs), and
    the requeued job resumes the shard's runs from their last checkpoints: a paper longer than a partition's
    time limit finishes without anyone resubmitting it.
    """

    def __call__(self, spec: dict) -> str:
        return run_shard(spec)

    def checkpoint(self, spec: dict):
        import submitit
        if submitit.JobEnvironment().cluster != "slurm":
            # SLURM ends a requeued job's processes itself (SIGTERM first: the Trainer saves); under submitit's local
            # executor the notebook's kernel would go on training beside the requeued job: it is killed, and the
            # requeue waits (at most KILL_WAIT_S) until it is gone. Either way the shard's locks (srcore.folders) keep
            # a process that lingers from writing beside the requeued job.
            kill_and_wait(descendants(os.getpid()))
        return submitit.helpers.DelayedSubmission(self, spec)


KILL_WAIT_S = 60.0  # how long a requeue waits for the killed kernel to be gone


def kill_and_wait(pids: list[int], limit: float = KILL_WAIT_S) -> list[int]:
    """SIGKILL ``pids`` and wait until each is gone (or a zombie: dead, not yet reaped); the ones still there after
    ``limit`` seconds are returned."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + limit
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _running(p)]
        if alive:
            time.sleep(0.05)
    return alive


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc: the notebook's kernel, torchrun's ranks), nearest first."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # the command name, in parentheses, may hold spaces; the parent's pid is the 2nd field after it
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # exited meanwhile
            continue
    found, level = [], {pid}
    while level:
        level = {p for p, pp in parent.items() if pp in level}
        found += sorted(level)
    return found


def submit(shards: list[Shard], *, cluster: str = "slurm", **resources) -> dict:
    """One job per shard; {name: submitit Job}. ``resources``: partition, time_min, gpus_per_job, cpus_per_job."""
    jobs = {}
    for shard in shards:
        folder = Path(shard.folder).parent / f"{shard.name}.slurm"
        ex = slurm_executor(folder, cluster=cluster, name=f"srcore-{shard.paper}-{shard.name}", **resources)
        jobs[shard.name] = ex.submit(ShardJob(), asdict(shard))
    return jobs


def wait(jobs: dict, log=print) -> dict:
    """Wait for every job; {name: error or None}. A failed job is reported with its log, the others are kept."""
    errors = {}
    for name, job in jobs.items():
        try:
            job.result()
            errors[name] = None
            log(f"[{name}] done (job {job.job_id}); log {job.paths.stdout}")
        except Exception as e:  # submitit's FailedJobError, UncompletedJobError: the shard failed
            errors[name] = f"job {job.job_id} failed ({type(e).__name__}); log {job.paths.stderr}"
            log(f"[{name}] FAILED: {errors[name]}")
    return errors


def run(paper: str, profile: str, overrides: dict, root: Path, *, by: str | None = "scale", executor: str = "local",
        jobs: int | None = None, gpus: list[int] | None = None, nproc: int = 1, slurm: dict | None = None,
        log=print) -> tuple[list[Shard], list[Shard]]:
    """Plan and run the unfinished shards with ``executor``; returns (every shard, those finished earlier), for
    the runner to merge into ``root/<paper>``.

    Raises RuntimeError naming the failed shards (the finished ones stay, and a rerun runs only the others).
    """
    shards = plan(paper, profile, overrides, root, by=by, nproc=nproc)
    done = [s for s in shards if finished(s)]
    todo = [s for s in shards if s not in done]
    for s in done:
        log(f"[{paper} {s.name}] finished earlier with the same parameters: {s.folder}")
    if todo:
        if executor == "local":
            errors = run_local(todo, jobs=jobs, gpus=gpus, log=log)
        elif executor in ("slurm", "submitit-local"):
            cluster = "slurm" if executor == "slurm" else "local"
            errors = wait(submit(todo, cluster=cluster, **(slurm or {})), log=log)
        else:
            raise ValueError(f"executor {executor!r}; executors: {', '.join(EXECUTORS)}")
        failed = {k: v for k, v in errors.items() if v}
        if failed:
            raise RuntimeError(f"{paper}: shard(s) {', '.join(failed)} failed ({'; '.join(failed.values())}); the others' "
                               f"results are kept, and the same command runs only the unfinished shards again")
    return shards, done


def main(argv=None) -> int:
    """``python -m srcore.runner.shards SPEC``: run one shard (what a local worker process or a torchrun rank executes)."""
    argv = sys.argv[1:] if argv is None else argv
    run_shard(json.loads(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Folders and files a run writes: held by one process at a time, replaced whole, and what a killed run left behind.

Two runs of one paper in one checkout (the notebook in JupyterLab and the same paper in a terminal, two jobs of
a user's cluster sharing a checkout) would write the same folders. What a run writes (its output folder and
``.partial``, an executed notebook, a keyed trained run, results/<paper> while promoted) is held while it is
written::

    with folders.hold(out_dir, "PAPER smoke run", way_out="wait for it to finish, or give --out-root"):
        ...

The lock is a hidden sibling file, ``.<name>.lock``, written whole under a temporary name and hard-linked into
place: a link makes it or finds one there, atomically, also on NFS (where fcntl locks may not be honoured). It
names its holder (host, pid, since when, what for); its modification time is the heartbeat, refreshed every
:data:`HEARTBEAT_S` by a thread of the holder. A lock is stale when its holder is gone: on this host, its pid is
dead or is another process now (/proc's start time differs); on another host, no heartbeat for :data:`STALE_S`.
A stale lock is taken over, with a warning naming the old holder.

Holds nest: a process may ask again for a lock it holds, and so may the processes it starts while holding it
(the notebook kernel of ``python -m srcore.reproduce``, torchrun's ranks), which find its token in :data:`ENV`.
Only the outermost hold of the process that made the lock removes it.

A folder is replaced whole (:func:`replace_folder`): the new one is complete in a hidden sibling
``.<name>.partial`` first; the old one is renamed ``.<name>.old`` and deleted only once the new one is in place.
:func:`recover` finishes or undoes a replacement that a kill interrupted and removes a killed run's ``.partial``,
never a live run's (one whose lock is held). A file is written whole the same way (:func:`write_atomic`).
"""
from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

HEARTBEAT_S = 30.0  # the holder touches its lock file this often: one small request, even on a shared file system
STALE_S = 300.0     # no heartbeat for this long: its holder on another host is gone. Ten missed beats, so a stalled
                    # file server or hosts' clocks a minute apart never make a live holder look gone
POLL_S = 1.0        # a waiting process looks at the lock this often
ENV = "SRCORE_LOCKS"  # tokens of the locks a process and its parents hold, for the processes it starts

log = logging.getLogger(__name__)
HOST = socket.gethostname()


def _pid_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux /proc), to tell it from a later one with its
    pid; "dead" for a process killed but not yet waited for by its parent (a zombie); None without /proc."""
    try:  # the command name, in parentheses, may hold spaces; the state and start time are fields 1 and 20 after it
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return "dead" if fields[0] in "ZX" else fields[19]


def _pid_space() -> int | None:
    """Which pids this process sees: containers on one host may share its name but not its pids."""
    with contextlib.suppress(OSError):
        return os.stat("/proc/self/ns/pid").st_ino
    return None


class LockHeld(RuntimeError):
    """``path`` is held by a live process; ``holder`` is its lock file's record (host, pid, started, what)."""

    def __init__(self, path, holder: dict, way_out: str = "", waited: float | None = None):
        self.path, self.holder, self.way_out, self.waited = Path(path), holder, way_out, waited
        still = "" if waited is None else f" (still, after waiting {waited:.0f} s)"
        super().__init__(f"{path} is in use{still} by {describe(holder)}" + (f"; {way_out}" if way_out else ""))

    def __reduce__(self):  # pickled whole: a cluster job's error travels back to the process that submitted it
        return LockHeld, (self.path, self.holder, self.way_out, self.waited)


def lock_file(path) -> Path:
    """The lock file of ``path``: a hidden sibling, like ``.<name>.partial`` (:func:`partial_dir`)."""
    path = Path(os.path.abspath(path))
    return path.parent / f".{path.name}.lock"


def describe(holder: dict) -> str:
    """The holder of a lock in words: pid, host, since when, what for, last heartbeat."""
    beat = time.time() - holder["heartbeat"]
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since {holder.get('started', '?')} "
            f"({holder.get('what', 'unreadable lock file')}), last heartbeat {beat:.0f} s ago")


def _record(what: str) -> dict:
    return {"host": HOST, "pid": os.getpid(), "pid_start": _pid_start(os.getpid()), "pid_space": _pid_space(),
            "started": datetime.now().astimezone().isoformat(timespec="seconds"), "what": what,
            "token": uuid.uuid4().hex}


def _read(lock: Path) -> dict | None:
    """The record in ``lock`` with its ``heartbeat`` (modification time); None if there is no lock."""
    try:
        with open(lock) as f:
            st, text = os.fstat(f.fileno()), f.read()
    except FileNotFoundError:
        return None
    try:
        holder = dict(json.loads(text))
    except (ValueError, TypeError):  # cut short (a full disk, say): only its age can tell
        holder = {}
    holder.setdefault("token", f"unreadable-{st.st_ino}")
    return {**holder, "heartbeat": st.st_mtime}


def _alive(holder: dict) -> bool:
    """Whether the holder of a lock is still there (see the module's docstring)."""
    here = holder.get("host") == HOST and holder.get("pid_space") == _pid_space()
    if os.name == "posix" and here and "pid" in holder:  # (on Windows os.kill would end the process)
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: alive
        start = _pid_start(holder["pid"])  # None without /proc: the pid alone tells
        return start is None or (start != "dead" and holder.get("pid_start") in (None, start))
    return time.time() - holder["heartbeat"] < STALE_S


def _create(lock: Path, record: dict) -> bool:
    """Make ``lock`` holding ``record`` unless a lock is there; True if this call made it."""
    tmp = lock.with_name(f"{lock.name}.{record['token']}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    try:
        try:
            os.link(tmp, lock)
        except FileExistsError:
            pass  # NFS may say so of a retried link that did make it: the link count below tells
        except OSError:  # a file system without hard links: an exclusive create is atomic too, only briefly empty
            with contextlib.suppress(FileExistsError), open(lock, "x") as f:
                f.write(tmp.read_text())
                return True
            return False
        return os.stat(tmp).st_nlink == 2
    finally:
        tmp.unlink(missing_ok=True)


def _take_over(lock: Path, stale: dict) -> None:
    """Remove the stale ``lock`` of ``stale``, unless another process is removing it.

    Whoever creates ``<lock>.<stale token>`` first (atomically, like a lock) removes it; nobody else
    removes a lock with that token, so nothing can come between its check and its removal, and two
    processes that found the same stale lock never remove the lock one of them made since.
    """
    claim = lock.with_name(f"{lock.name}.{stale['token']}")
    if not _create(claim, _record(f"taking over {lock.name}")):
        other = _read(claim)
        if other is not None and not _alive(other):  # killed while taking over: its claim is taken over in turn
            _take_over(claim, other)
        return
    try:
        if (_read(lock) or {}).get("token") == stale["token"]:
            lock.unlink()
            log.warning("%s: took over the lock of %s, whose holder is gone", lock, describe(stale))
    finally:
        claim.unlink(missing_ok=True)


class _Held:
    """A lock this process holds: how many holds are open, and the thread that keeps its heartbeat."""

    def __init__(self, lock: Path, record: dict, made: bool):
        self.lock, self.record, self.made, self.count = lock, record, made, 1
        self.stop = threading.Event()
        if made:
            threading.Thread(target=self._beat, name=f"heartbeat of {lock.name}", daemon=True).start()

    def ours(self) -> bool:
        return (_read(self.lock) or {}).get("token") == self.record["token"]

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            if not self.ours():  # taken over after this process stalled past STALE_S: nothing to refresh
                log.warning("%s is no longer held by this process (pid %d)", self.lock, os.getpid())
                return
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.lock)  # should it be another holder's by now, this refreshes a live lock: harmless

    def release(self) -> None:
        self.stop.set()
        if self.made and self.ours():
            self.lock.unlink(missing_ok=True)


_held: dict[Path, _Held] = {}
_mutex = threading.Lock()  # guards _held: threads of one process share its locks
_parents = set(os.environ.get(ENV, "").split())  # tokens of the locks held by the processes that started this one


def _export() -> None:
    """Put the tokens of this process's locks in :data:`ENV`, for the processes it starts."""
    os.environ[ENV] = " ".join(sorted(_parents | {h.record["token"] for h in _held.values()}))
    if not os.environ[ENV]:
        del os.environ[ENV]


def _acquire(lock: Path, what: str) -> dict | None:
    """Take ``lock`` if it is free, stale or already ours; None then, else its live holder's record."""
    while True:
        with _mutex:
            if lock in _held:
                _held[lock].count += 1
                return None
            record = _record(what)
            holder = record if _create(lock, record) else _read(lock)
            if holder is record or (holder is not None and holder["token"] in _parents):
                _held[lock] = _Held(lock, holder, made=holder is record)
                _export()
                return None
        if holder is not None and _alive(holder):
            return holder
        if holder is not None:
            _take_over(lock, holder)
            time.sleep(0.01)  # should another process be taking it over: let it finish


def _release(lock: Path) -> None:
    with _mutex:
        held = _held[lock]
        held.count -= 1
        if held.count == 0:
            del _held[lock]
            held.release()
            _export()


@contextlib.contextmanager
def hold(path, what: str, *, wait: bool = False, timeout: float | None = None, way_out: str = ""):
    """Hold the lock of ``path`` (a folder or file a run writes, which need not exist) for the ``with`` block.

    ``what``: what it is held for, shown to anyone who finds it held ("PAPER smoke run").
    When a live process holds it: ``wait=False`` raises :class:`LockHeld` at once, naming the holder and
    ``way_out`` (what the user can do instead); ``wait=True`` logs once who holds it, waits until it is
    released or stale and takes it, or raises LockHeld after ``timeout`` seconds (None: no limit).
    Yields the lock file.
    """
    lock = lock_file(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    tic, told = time.monotonic(), False
    while (holder := _acquire(lock, what)) is not None:
        waited = time.monotonic() - tic
        if not wait or (timeout is not None and waited > timeout):
            raise LockHeld(path, holder, way_out, waited if wait else None)
        if not told:
            log.warning("%s is in use by %s: waiting for it", path, describe(holder))
            told = True
        time.sleep(POLL_S)
    try:
        yield lock
    finally:
        _release(lock)


def is_locked(path) -> dict | None:
    """The record of a live holder of ``path``'s lock; None when there is no lock, it is stale, or it is
    held by this process or on its behalf (by the process that started it): whoever asks then owns what is there.

    For clean-ups (:func:`recover`): leftovers of ``path`` are removed only when this is None.
    """
    lock = lock_file(path)
    holder = _read(lock)
    if holder is None or lock in _held or holder["token"] in _parents or not _alive(holder):
        return None
    return holder


def _forget() -> None:
    """In a forked child: the parent's locks are the parent's (their tokens stay in ENV: held on its behalf)."""
    global _mutex, _parents
    _held.clear()
    _parents = set(os.environ.get(ENV, "").split())
    _mutex = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)


@atexit.register
def _release_all() -> None:
    """A process that exits with holds still open (a notebook whose cell raised, then its kernel shut down)
    leaves no lock behind; one killed outright leaves a stale lock, which the next holder takes over."""
    with _mutex:
        for held in _held.values():
            held.release()
        _held.clear()


# --- files and folders replaced whole --------------------------------------------------------------------------------
def write_atomic(path: str | os.PathLike, write) -> Path:
    """``write(tmp)`` into a hidden temporary file beside ``path``, then rename it to ``path``: a reader (or a
    kill) sees the previous file or the whole new one, never a part; the temporary file goes if ``write`` fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")  # its own, whichever process or thread writes
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def partial_dir(folder: Path) -> Path:
    """Where the new content of ``folder`` is put together before it replaces ``folder``."""
    return folder.parent / f".{folder.name}.partial"


def old_dir(folder: Path) -> Path:
    """Where the previous ``folder`` waits while the new one is renamed into place."""
    return folder.parent / f".{folder.name}.old"


def recover(folder: str | os.PathLike) -> None:
    """Undo what a killed run left beside ``folder``.

    ``.old`` without ``folder``: the kill fell between the two renames of :func:`replace_folder`;
    the previous folder is renamed back. ``.old`` with ``folder``: the new one was already in place;
    the old one goes. ``.partial``: a run died before it finished writing; it is deleted. Nothing is touched
    while another live process holds ``folder`` (:func:`is_locked`): its ``.partial`` is not a leftover.
    """
    folder = Path(folder)
    if is_locked(folder):
        return
    _settle(folder)
    shutil.rmtree(partial_dir(folder), ignore_errors=True)


def _settle(folder: Path) -> None:
    old = old_dir(folder)
    if old.exists():
        if folder.exists():
            shutil.rmtree(old)
        else:
            os.replace(old, folder)


def replace_folder(new: Path, folder: Path) -> Path:
    """Rename the complete folder ``new`` to ``folder``, replacing it; returns ``folder``.

    Two renames in the same parent: at every moment either ``folder`` or ``.old`` holds a
    complete previous version, and :func:`recover` puts it back after a kill.
    """
    new, folder = Path(new), Path(folder)
    old = old_dir(folder)
    _settle(folder)  # an earlier replacement was killed: finish or undo it first
    if folder.exists():
        os.replace(folder, old)
    os.replace(new, folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder

"""Lock files between real processes: a second run fails or waits, a killed holder's lock is taken over once.

Every wait is for a condition (a file appearing, a process exiting) with a generous limit, never for
a guessed time: the processes share busy cores.
"""
import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from srcore import folders
from srcore.folders import LockHeld

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 60  # for conditions that come in well under a second on an idle machine

PRELUDE = """
import logging, os, sys, time
from pathlib import Path
from srcore import folders
folders.HEARTBEAT_S, folders.POLL_S = 0.2, 0.02
logging.basicConfig(format="%(message)s")  # warnings to stderr, which the test reads
T = Path(sys.argv[1])

def until(path):
    while not Path(path).exists():
        time.sleep(0.005)

def note(line):
    with open(T / "events", "a") as f:
        f.write(line + "\\n")
"""

HOLD = """
with folders.hold(T / "out", "first run", way_out="a way out"):
    (T / "out").mkdir()
    (T / "out" / "work.txt").write_text("first")
    note("first acquired")
    (T / "held").touch()
    until(T / "go")
    note("first releasing")
"""


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(folders, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(folders, "POLL_S", 0.02)
    monkeypatch.delenv(folders.ENV, raising=False)


@pytest.fixture
def spawn(tmp_path):
    """spawn(code, name) -> a Python process running PRELUDE + code with T = tmp_path; its output in <name>.err."""
    started = []

    def start(code: str, name: str, inherit: bool = False) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if not inherit:
            env.pop(folders.ENV, None)
        with open(tmp_path / f"{name}.err", "w") as err:
            p = subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent(code), str(tmp_path)], env=env,
                                 stdout=err, stderr=subprocess.STDOUT)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def wait_for(condition, what: str):
    end = time.monotonic() + LIMIT_S
    while not condition():
        assert time.monotonic() < end, f"not within {LIMIT_S} s: {what}"
        time.sleep(0.005)


def exited(p: subprocess.Popen, tmp_path: Path, name: str) -> None:
    assert p.wait(timeout=LIMIT_S) == 0, (tmp_path / f"{name}.err").read_text()


def events(tmp_path):
    return (tmp_path / "events").read_text().splitlines()


def fake_lock(path, **fields) -> Path:
    """A lock file of ``path`` as another process would have left it (this host and pid unless ``fields`` say)."""
    lock = folders.lock_file(path)
    record = {"host": folders.HOST, "pid": os.getpid(), "pid_start": folders._pid_start(os.getpid()),
              "pid_space": folders._pid_space(), "started": "2026-01-01T00:00:00+00:00", "what": "fake run",
              "token": "f" * 32, **fields}
    lock.write_text(json.dumps(record))
    return lock


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def test_a_second_holder_fails_at_once_naming_the_first(spawn, tmp_path):
    first = spawn(HOLD, "first")
    wait_for((tmp_path / "held").exists, "the first process holds the lock")
    with pytest.raises(LockHeld) as e, \
            folders.hold(tmp_path / "out", "second run", way_out="wait for it to finish, or give --out-root"):
        pytest.fail("the second holder got in")
    message = str(e.value)
    started = e.value.holder["started"]
    for part in (f"pid {first.pid}", f"host {socket.gethostname()}", f"since {started}", "(first run)", "give --out-root"):
        assert part in message
    assert e.value.holder["pid"] == first.pid
    again = pickle.loads(pickle.dumps(e.value))  # as a cluster job's error comes back
    assert again.holder == e.value.holder and f"pid {first.pid}" in str(again) and "give --out-root" in str(again)
    assert (tmp_path / "out" / "work.txt").read_text() == "first"
    assert folders.is_locked(tmp_path / "out")["pid"] == first.pid
    (tmp_path / "go").touch()
    exited(first, tmp_path, "first")
    assert events(tmp_path) == ["first acquired", "first releasing"]
    assert not folders.lock_file(tmp_path / "out").exists()


def test_a_second_holder_in_wait_mode_acquires_once_the_first_releases(spawn, tmp_path):
    first = spawn(HOLD, "first")
    wait_for((tmp_path / "held").exists, "the first process holds the lock")
    second = spawn("""
        with folders.hold(T / "out", "second run", wait=True):
            note("second acquired")
        """, "second")
    wait_for(lambda: "waiting" in (tmp_path / "second.err").read_text(), "the second process says it waits")
    assert events(tmp_path) == ["first acquired"]
    (tmp_path / "go").touch()
    exited(second, tmp_path, "second")
    exited(first, tmp_path, "first")
    assert events(tmp_path) == ["first acquired", "first releasing", "second acquired"]
    said = (tmp_path / "second.err").read_text()
    assert said.count("waiting") == 1 and f"pid {first.pid}" in said and "first run" in said


def test_waiting_gives_up_after_the_timeout(spawn, tmp_path):
    first = spawn(HOLD, "first")
    wait_for((tmp_path / "held").exists, "the first process holds the lock")
    with pytest.raises(LockHeld, match=f"after waiting .* pid {first.pid}"), \
            folders.hold(tmp_path / "out", "second run", wait=True, timeout=0.1):
        pytest.fail("the second holder got in")


def test_a_lock_left_by_a_killed_holder_is_taken_over_with_a_warning(spawn, tmp_path, caplog):
    first = spawn(HOLD, "first")
    wait_for((tmp_path / "held").exists, "the first process holds the lock")
    first.kill()  # SIGKILL: no clean-up runs
    first.wait(timeout=LIMIT_S)
    lock = folders.lock_file(tmp_path / "out")
    assert json.loads(lock.read_text())["pid"] == first.pid
    with caplog.at_level(logging.WARNING, logger="srcore.folders"), folders.hold(tmp_path / "out", "next run"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert "took over" in caplog.text and f"pid {first.pid}" in caplog.text and "first run" in caplog.text
    assert not lock.exists()


def test_a_killed_holder_not_yet_waited_for_is_gone(spawn, tmp_path):
    first = spawn(HOLD, "first")
    wait_for((tmp_path / "held").exists, "the first process holds the lock")
    first.send_signal(signal.SIGKILL)  # a zombie until waited for: its pid is still there
    wait_for(lambda: folders.is_locked(tmp_path / "out") is None, "the killed holder's lock looks stale")
    first.wait(timeout=LIMIT_S)


def test_a_reused_pid_is_not_the_holder(tmp_path):
    if folders._pid_start(os.getpid()) is None:
        pytest.skip("no /proc: the pid alone tells")
    fake_lock(tmp_path / "out", pid_start="1")  # this process's pid, but a process that started at boot
    assert folders.is_locked(tmp_path / "out") is None


def test_processes_taking_over_one_stale_lock_hold_it_one_at_a_time(spawn, tmp_path):
    rounds, racers, dead = 8, 3, dead_pid()
    for i in range(rounds):  # each round, the racers find the same stale lock at once
        fake_lock(tmp_path / f"r{i}", pid=dead, pid_start=None, token=f"stale{i}")
    procs = [spawn(f"""
        for i in range({rounds}):
            (T / f"ready{{i}}.{{os.getpid()}}").touch()
            while len(list(T.glob(f"ready{{i}}.*"))) < {racers}:  # all start each round together
                time.sleep(0.001)
            with folders.hold(T / f"r{{i}}", "racer", wait=True):
                for step in ("enter", "leave"):
                    with open(T / f"r{{i}}.log", "a") as f:
                        f.write(f"{{step}} {{os.getpid()}}\\n")
                    time.sleep(0.002)
        """, f"racer{n}") for n in range(racers)]
    for n, p in enumerate(procs):
        exited(p, tmp_path, f"racer{n}")
    said = "".join((tmp_path / f"racer{n}.err").read_text() for n in range(racers))
    for i in range(rounds):
        lines = (tmp_path / f"r{i}.log").read_text().splitlines()
        pairs = list(zip(lines[::2], lines[1::2]))
        assert len(lines) == 2 * racers and all(a == "enter " + b.split()[1] and b.startswith("leave ")
                                                 for a, b in pairs), lines
        assert {b.split()[1] for _, b in pairs} == {str(p.pid) for p in procs}
        assert said.count(f".r{i}.lock: took over") == 1, said
        assert not folders.lock_file(tmp_path / f"r{i}").exists()


def test_a_late_taker_never_removes_the_lock_made_since(tmp_path):
    lock = fake_lock(tmp_path / "out", pid=dead_pid(), pid_start=None)
    stale = folders._read(lock)
    with folders.hold(tmp_path / "out", "first taker"):
        mine = folders._read(lock)["token"]
        folders._take_over(lock, stale)  # a second process that read the stale lock before the first took it
        assert folders._read(lock)["token"] == mine


def test_a_taker_killed_while_taking_over_does_not_block_the_lock(tmp_path):
    lock = fake_lock(tmp_path / "out", pid=dead_pid(), pid_start=None, token="stale")
    claim = lock.with_name(f"{lock.name}.stale")  # the claim of a process killed between its claim and the removal
    claim.write_text(json.dumps({"host": folders.HOST, "pid": dead_pid(), "pid_space": folders._pid_space(),
                                 "token": "claim"}))
    with folders.hold(tmp_path / "out", "next run"):
        assert folders._read(lock)["pid"] == os.getpid()
    assert not claim.exists() and not lock.exists()


def test_no_heartbeat_for_stale_s_is_stale_even_with_a_live_pid_on_another_host(tmp_path, caplog):
    lock = fake_lock(tmp_path / "out", host="another-host", pid=os.getpid())
    assert folders.is_locked(tmp_path / "out")["host"] == "another-host"  # heartbeat just now: live
    with pytest.raises(LockHeld, match="on host another-host"), folders.hold(tmp_path / "out", "second run"):
        pytest.fail("the second holder got in")
    beat = time.time() - folders.STALE_S - 10
    os.utime(lock, (beat, beat))
    assert folders.is_locked(tmp_path / "out") is None
    with caplog.at_level(logging.WARNING, logger="srcore.folders"), folders.hold(tmp_path / "out", "next run"):
        pass
    assert "took over" in caplog.text and "another-host" in caplog.text


def test_the_holder_refreshes_its_heartbeat(spawn, tmp_path):
    first = spawn(HOLD, "first")
    wait_for((tmp_path / "held").exists, "the first process holds the lock")
    lock = folders.lock_file(tmp_path / "out")
    old = time.time() - 1000
    os.utime(lock, (old, old))
    wait_for(lambda: lock.stat().st_mtime > old + 500, "a heartbeat")
    (tmp_path / "go").touch()
    exited(first, tmp_path, "first")


def test_is_locked_on_a_live_a_stale_and_an_absent_lock(spawn, tmp_path):
    assert folders.is_locked(tmp_path / "out") is None
    first = spawn(HOLD, "first")
    wait_for((tmp_path / "held").exists, "the first process holds the lock")
    holder = folders.is_locked(tmp_path / "out")
    assert (holder["pid"], holder["host"], holder["what"]) == (first.pid, socket.gethostname(), "first run")
    first.kill()
    first.wait(timeout=LIMIT_S)
    assert folders.lock_file(tmp_path / "out").exists() and folders.is_locked(tmp_path / "out") is None


def test_holds_nest_within_a_process_and_its_children(spawn, tmp_path):
    lock = folders.lock_file(tmp_path / "out")
    with folders.hold(tmp_path / "out", "outer"):
        with folders.hold(tmp_path / "out", "inner"):
            assert folders.is_locked(tmp_path / "out") is None  # ours: whoever asks owns what is there
        assert lock.exists()
        child = spawn("""
            with folders.hold(T / "out", "the kernel of the run"):
                note("child acquired")
            """, "child", inherit=True)
        exited(child, tmp_path, "child")
        assert events(tmp_path) == ["child acquired"]
        record = json.loads(lock.read_text())
        assert lock.exists() and record["pid"] == os.getpid()
        assert record["token"] in os.environ[folders.ENV].split()  # what the children find
    assert not lock.exists()
    assert record["token"] not in os.environ.get(folders.ENV, "").split()  # other tests' holds may remain


def test_release_leaves_a_lock_that_is_no_longer_ours(tmp_path):
    with folders.hold(tmp_path / "out", "first run") as lock:
        fake_lock(tmp_path / "out", host="another-host", token="theirs")  # taken over while this process stalled
    assert json.loads(lock.read_text())["token"] == "theirs"


def test_a_process_that_exits_inside_a_hold_leaves_no_lock(spawn, tmp_path):
    # as a notebook kernel whose cell raised and which was then shut down: the hold is never closed
    p = spawn("""
hold = folders.hold(T / "out", "a failed run")
hold.__enter__()
(T / "held").touch()
raise SystemExit(3)
""", "exits")
    assert p.wait(timeout=LIMIT_S) == 3, (tmp_path / "exits.err").read_text()
    assert (tmp_path / "held").exists() and not folders.lock_file(tmp_path / "out").exists()

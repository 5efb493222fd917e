"""Execute one paper notebook headless with papermill: the one place a kernel is started.

The kernel imports srcore from this checkout (not from whichever copy pip installed last) and
talks over local IPC sockets; its executed copy (outputs and any traceback) is written to
``executed``. Used by the batch runner (:mod:`srcore.reproduce`) and by every shard's worker
(:mod:`srcore.runner.shards`), also under torchrun, where each rank executes the notebook.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from srcore.report import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"


class _KnownToConfig(logging.Filter):
    """papermill only sees `profile` and `out_dir` in the parameters cell; the rest is checked by srcore.paper.config."""

    def filter(self, record):
        return not record.getMessage().startswith("Passed unknown parameter")


logging.getLogger("papermill").addFilter(_KnownToConfig())


def papers() -> list[str]:
    """Papers that have a notebook, in name order."""
    return sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


def kernel_config():
    """Kernel over local (Unix domain) sockets where the OS has them: over the default TCP transport
    every ipykernel >= 7 prints "Kernel is running over TCP without encryption"; ipc never leaves
    the machine. The sockets are <tmp>/srcore-kernel-<pid>-<n>: a short path (Unix sockets allow
    about 100 characters, which a connection file deep in a home folder can exceed)."""
    import tempfile

    from traitlets.config import Config

    prefix = os.path.join(tempfile.gettempdir(), f"srcore-kernel-{os.getpid()}")
    if os.name != "posix" or len(prefix) > 90:
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": prefix}})


def execute(paper: str, parameters: dict, executed: Path) -> None:
    """Run ``notebooks/<paper>.ipynb`` with papermill ``parameters``, keeping the executed copy at ``executed``.

    Raises papermill's PapermillExecutionError on a failing cell.
    """
    import papermill as pm

    path = os.environ.get("PYTHONPATH", "")
    if str(PROJECT_ROOT) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), path) if p)
    executed = Path(executed)
    executed.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(NOTEBOOKS / f"{paper}.ipynb", executed, parameters=parameters, cwd=str(NOTEBOOKS),
                        kernel_name="python3", progress_bar=False, log_output=False, config=kernel_config())

"""Run one measured command in a fresh process: wall time and that process's own peak RSS.

`os.wait4` returns the resource usage of exactly the waited-for child (`ru_maxrss`, KiB on Linux),
so each path's peak memory is its own, unlike `RUSAGE_CHILDREN`, which keeps the largest so far.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}


class ChildFailed(RuntimeError):
    """A measured command exited with a non-zero status."""


@dataclass(frozen=True)
class ChildRun:
    """What one run of a command cost."""

    seconds: float
    peak_rss_mb: float
    stdout: str


def run_child(argv: list[str], log: Path, cwd: Path | None = None) -> ChildRun:
    """Run `argv` to completion (stderr to `log`); raise `ChildFailed` with the log's tail on failure."""
    env = {**os.environ, **OFFLINE_ENV}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env, cwd=cwd, text=True)
        assert process.stdout is not None
        stdout = process.stdout.read()  # the children print little; reading to EOF cannot deadlock
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise ChildFailed(f"{' '.join(argv)} exited with {process.returncode}:\n{tail}")
    return ChildRun(seconds, usage.ru_maxrss / 1024, stdout)

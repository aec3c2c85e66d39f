"""Run one measured command in a fresh process: wall time and that process's own peak RSS.

Peak RSS is `ru_maxrss` from `os.wait4` on exactly that process (unlike `RUSAGE_CHILDREN`, which
keeps the largest child so far). One trap: Linux carries `ru_maxrss` across `exec` from the memory
the process had before it, and `subprocess` starts children with vfork, whose memory is the
parent's; a child of a 700 MB process (pytest with torch loaded) reports >= 700 MB even for
`print(1)`. So the command is started by a small launcher process (`python -m benchmarks.child`),
which waits for it and writes its rusage to a file: the command's figure then includes only the
launcher's ~10 MB, below any model's footprint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
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
    peak_rss_mb: float  # 10^6 bytes
    stdout: str


def run_child(argv: list[str], log: Path) -> ChildRun:
    """Run `argv` to completion through the launcher (stderr to `log`); raise `ChildFailed` with the
    log's tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="child-") as scratch, log.open("w") as err:
        usage_path = Path(scratch) / "rusage.json"
        launcher = [sys.executable, "-m", "benchmarks.child", str(usage_path), *argv]
        start = time.perf_counter()
        done = subprocess.run(
            launcher, check=False, stdout=subprocess.PIPE, stderr=err, env={**os.environ, **OFFLINE_ENV}, text=True
        )
        seconds = time.perf_counter() - start
        usage = json.loads(usage_path.read_text()) if usage_path.is_file() else {}
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise ChildFailed(f"{' '.join(argv)} exited with {done.returncode}:\n{tail}")
    return ChildRun(seconds, usage["maxrss_kib"] * 1024 / 1e6, done.stdout)


def launch(usage_path: Path, argv: list[str]) -> int:
    """Run `argv` (inheriting stdio), write its own rusage to `usage_path`, return its exit status."""
    process = subprocess.Popen(argv)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    usage_path.write_text(
        json.dumps({"maxrss_kib": usage.ru_maxrss, "user_s": usage.ru_utime, "sys_s": usage.ru_stime})
    )
    return process.returncode


if __name__ == "__main__":
    sys.exit(launch(Path(sys.argv[1]), sys.argv[2:]))

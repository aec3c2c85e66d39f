"""Build a checkpoint directory beside its target and move it into place only when done."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from train.errors import OutputError

# A directory holding this file is an earlier checkpoint, which a new one may replace.
MARKER = "metrics.json"


def check_output(target: Path) -> None:
    """Refuse a target that exists and is neither empty nor an earlier checkpoint."""
    if not target.exists():
        return
    if target.is_dir() and (not any(target.iterdir()) or (target / MARKER).is_file()):
        return
    raise OutputError(
        f"{target} exists and is not an earlier checkpoint (no {MARKER}); remove it or choose another output path"
    )


@contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield an empty directory beside `target`; it replaces `target` on success.

    On any error the staged directory is removed and `target` is left as it was.
    """
    check_output(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would make the checkpoint private
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        previous = target.with_name(f".{target.name}.previous-{os.getpid()}")
        target.rename(previous)
        staging.rename(target)
        shutil.rmtree(previous)
    else:
        staging.rename(target)

"""Where the tools may write: one set of rules for every output path, checked before any work.

Nightly jobs run unattended with wide permissions, so a path the tool writes (an output file, a report,
an artifact or checkpoint directory, the demo's folder) must never be something the same command reads,
lie inside a directory it reads (an artifact, a checkpoint, an input folder), replace a device node, a
FIFO or a directory, or need a name the file system cannot hold. Each rule names the flag and the path.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from scorer.errors import InputError, WriteError

# Longest suffix the tools add to a target's name for their own files (".NAME.partial", ".NAME.lock", ...).
SIDE_NAME_OVERHEAD = len("..export-tmp") + 16


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name one file (hard links and symlinks included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def check_parent(path: Path, flag: str) -> None:
    """The parent must be an existing, writable directory that can hold the tool's side files."""
    parent = path.parent
    if not parent.exists():
        raise InputError(f"{flag} {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise InputError(f"{flag} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: directory {parent} is not writable")
    try:
        name_max = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if len(os.fsencode(path.name)) + SIDE_NAME_OVERHEAD > name_max:
        raise InputError(
            f"{flag} {path}: file name too long ({len(os.fsencode(path.name))} bytes; at most "
            f"{name_max - SIDE_NAME_OVERHEAD} here, since the tool writes side files named after it)"
        )


def cache_dir() -> Path:
    """The product's cache: `$SCORER_CACHE_DIR`, else `$XDG_CACHE_HOME` (when set and not empty), else
    ~/.cache, then `product-scorer`. Every command that reads it counts it among its reads, so no output may
    land in it (the path rules below)."""
    root = os.environ.get("SCORER_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "product-scorer"


def check_not_read(path: Path, reads: Iterable[Path], flag: str) -> None:
    """`path` is not a path the command reads, nor inside one, nor (for a directory) around one."""
    for read in reads:
        if read.exists() and path.exists() and _same(path, read):
            raise InputError(f"{flag} {path} is {read}, which this command reads")
        if read.resolve() == path.resolve():
            raise InputError(f"{flag} {path} is {read}, which this command reads")
        if read.is_dir() and _inside(path, read):
            raise InputError(f"{flag} {path} is inside {read}, which this command reads")
        if _inside(read, path):
            raise InputError(f"{flag} {path} contains {read}, which this command reads")


def check_file_target(path: Path, reads: Iterable[Path], flag: str) -> None:
    """A file the tool will create or replace: absent or a regular file, never something it reads."""
    check_parent(path, flag)
    check_not_read(path, reads, flag)
    if path.exists() or path.is_symlink():
        if path.is_dir():
            raise InputError(f"{flag} {path} is a directory; give a file path")
        if not path.is_file():
            raise InputError(f"{flag} {path} exists and is not a regular file; it will not be replaced")


def check_distinct(targets: dict[str, Path | None]) -> None:
    """No two outputs of one command may be the same path (e.g. `--report` equal to `-o`)."""
    seen: dict[Path, str] = {}
    for flag, path in targets.items():
        if path is None:
            continue
        key = path.resolve()
        if key in seen:
            raise InputError(f"{flag} {path} is also given as {seen[key]}; give each output its own path")
        seen[key] = flag


def check_dir_target(path: Path, reads: Iterable[Path], flag: str, marker: str, force: bool = True) -> None:
    """A directory the tool will create or replace: absent, empty, or one it wrote before (holding `marker`).

    `force=False` refuses an existing directory of ours too (the caller's `--force` lifts that).
    """
    check_parent(path, flag)
    check_not_read(path, reads, flag)
    if path.is_symlink() and not path.is_dir():
        raise InputError(f"{flag} {path} is a link to something that is not a directory")
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{flag} {path} exists and is not a directory; it will not be replaced")
        empty = not any(path.iterdir())
        ours = (path / marker).is_file()
        if not empty and not ours:
            raise InputError(
                f"{flag} {path} exists and was not written by this tool (no {marker}); remove it or choose another path"
            )
        if ours and not force:
            raise InputError(f"{flag} {path} already exists (use --force to replace it)")


@contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield an empty directory beside `target`; it replaces `target` on success, else is removed.

    Check the target with `check_dir_target` first: this replaces whatever directory is there.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would make the result private
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


@contextmanager
def atomic_write(path: Path, hint: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; when the block succeeds the file is fsynced and
    renamed onto `path`, so nobody ever sees half of it. On any error the temporary file is removed, and an
    OSError (a full disk, a lost permission) becomes a WriteError naming `path` (exit 1), `hint` appended."""
    # a name of its own: two writers of one path never write into the same temporary file
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        yield tmp
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteError.from_os_error(path, exc, hint) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str, hint: str = "") -> None:
    """Write a small text file (a report) through `atomic_write`."""
    with atomic_write(path, hint) as tmp:
        tmp.write_text(text)

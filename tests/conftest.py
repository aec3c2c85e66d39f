"""Shared fixtures: tiny offline CrossEncoders, their exported artifacts, and sample Parquet inputs."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
# `--precision auto` caches its probe per machine: keep the tests' decisions out of the user's cache.
os.environ.setdefault("SCORER_CACHE_DIR", tempfile.mkdtemp(prefix="scorer-test-cache-"))

from builders import SMALL, tiny_cross_encoder

from scorer import precision as selection
from scorer.main import main
from scorer.openvino_backend import openvino_available
from scorer.precision import CpuInfo, cpu_info

# Tiny random models have no meaningful ranking: their gates only check fp32 parity and finiteness. They serve the
# plumbing tests (windows, resume, reuse, paths); what auto may pick and how low-precision variants score is tested
# on a hidden-128 model under the default gates (`spread`: tests/test_variants.py, tests/test_precision_auto.py),
# and auto itself checks each candidate against fp32 on the run's first pairs under the manifest's gates.
LOOSE_GATES = [
    "--int8-min-spearman",
    "-1",
    "--int8-max-flip-rate",
    "1",
    "--fp16-min-spearman",
    "-1",
    "--fp16-max-flip-rate",
    "1",
]


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a busy 2-core machine threads make them crawl."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def find_shared_data(relative: str) -> Path | None:
    """A file of the real product data (`../shared/data` beside the checkout, or `$SCORER_DATA`), if present:
    it is never part of the repository."""
    root = Path(os.environ.get("SCORER_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    return root / relative if (root / relative).is_file() else None


def shared_data(relative: str) -> Path:
    """`find_shared_data`, or skip the test saying what is absent."""
    path = find_shared_data(relative)
    if path is None:
        pytest.skip(f"{relative} of the product data is absent (not part of a clone; set SCORER_DATA)")
    return path


def invoke(*args: str | Path) -> Result:
    """Run the `scorer` CLI in-process."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def long_pairs_table(n: int = 240, seed: int = 3) -> pa.Table:
    """Sample pairs: product titles plus descriptions longer than 128 tokens."""
    from samples.catalogue import sample_pairs

    return sample_pairs(n, seed)


@pytest.fixture(scope="session")
def calibration_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calibration") / "calibration.parquet"
    pq.write_table(long_pairs_table(200, seed=11), path)
    return path


@pytest.fixture(scope="session")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "pairs.parquet"
    pq.write_table(long_pairs_table(), path, row_group_size=100)
    return path


def _artifact(factory: pytest.TempPathFactory, kind: str, calibration: Path) -> tuple[Path, Path]:
    root = factory.mktemp(kind)
    checkpoint = tiny_cross_encoder(kind, root / "checkpoint")
    artifact = root / "artifact"
    result = invoke("export", checkpoint, "-o", artifact, "--calibration", calibration, *LOOSE_GATES)
    assert result.exit_code == 0, result.output
    return checkpoint, artifact


@pytest.fixture(scope="session")
def bert(tmp_path_factory: pytest.TempPathFactory, calibration_file: Path) -> tuple[Path, Path]:
    """(checkpoint, artifact) of a tiny random BERT CrossEncoder."""
    return _artifact(tmp_path_factory, "bert", calibration_file)


@pytest.fixture(scope="session")
def modernbert(tmp_path_factory: pytest.TempPathFactory, calibration_file: Path) -> tuple[Path, Path]:
    """(checkpoint, artifact) of a tiny random ModernBERT CrossEncoder (sliding window of 16 tokens)."""
    return _artifact(tmp_path_factory, "modernbert", calibration_file)


def artifact_copy(bert: tuple[Path, Path], tmp_path: Path) -> Path:
    """A copy of the tiny BERT's artifact, to edit."""
    artifact = tmp_path / "artifact"
    shutil.copytree(bert[1], artifact)
    return artifact


def edit_manifest(artifact: Path, edit: Callable[[dict], object]) -> None:
    """Apply `edit` to the artifact's manifest.json as parsed JSON, and write it back."""
    path = artifact / "manifest.json"
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))


# The CPU variants beside fp32 on a small model: what this machine can build and run -------------------------------

HERE = cpu_info()
needs_bf16 = pytest.mark.skipif(
    not (HERE.has_bf16 and openvino_available()),
    reason="bf16 is not built here: "
    + (
        "the openvino package is not installed"
        if not openvino_available()
        else f"needs the CPU flag avx512_bf16 or amx_bf16, which {HERE.model} lacks"
    ),
)
needs_openvino = pytest.mark.skipif(not openvino_available(), reason="the openvino package is not installed")
AVX2_CPU = CpuInfo("Test CPU, AVX2 only", frozenset({"avx2"}))


@pytest.fixture
def with_openvino(monkeypatch: pytest.MonkeyPatch) -> None:
    """Selection tests do not depend on whether openvino is installed here."""
    monkeypatch.setattr(selection, "openvino_available", lambda: True)


@pytest.fixture(scope="session")
def spread(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, artifact with every CPU variant) of a small BERT (hidden 128: shapes OpenVINO's int8 kernels
    handle) whose scores spread, exported under the default gates on the built-in gate pairs: what `auto` may
    pick here is what those gates let through on this CPU, never a loosened test gate."""
    root = tmp_path_factory.mktemp("spread")
    checkpoint = tiny_cross_encoder("bert", root / "checkpoint", size=SMALL)
    artifact = root / "artifact"
    result = invoke("export", checkpoint, "-o", artifact, "--precisions", "fp32,int8,bf16,fp32-openvino,int8-openvino")
    assert result.exit_code == 0, result.output
    return checkpoint, artifact

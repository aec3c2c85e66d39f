"""Where the tools may write (`scorer.paths`): never over an input, an artifact, a checkpoint, the cache, a FIFO or a
hard link to what the command reads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import artifact_copy, invoke

from scorer.artifact import sha256_file


def _copy(path: Path, directory: Path) -> Path:
    target = directory / path.name
    shutil.copy(path, target)
    return target


def test_report_may_not_replace_an_input_or_the_output(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path
) -> None:
    a, b = _copy(pairs_file, tmp_path), tmp_path / "b.parquet"
    shutil.copy(pairs_file, b)
    before = b.read_bytes()
    output = tmp_path / "out.parquet"
    result = invoke("run", a, b, "-m", bert[1], "-o", output, "--report", b)
    assert result.exit_code == 2 and f"--report {b} is {b}, which this command reads" in result.output
    assert b.read_bytes() == before and not output.exists()
    result = invoke("run", a, "-m", bert[1], "-o", output, "--report", output)
    assert result.exit_code == 2 and "is also given as -o/--output" in result.output
    assert not output.exists()


def test_output_may_not_land_in_the_artifact(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    artifact = artifact_copy(bert, tmp_path)
    model = artifact / "model.int8.onnx"
    digest = sha256_file(model)
    result = invoke("run", pairs_file, "-m", artifact, "-o", model)
    assert result.exit_code == 2 and f"is inside {artifact}, which this command reads" in result.output
    assert sha256_file(model) == digest


def test_output_that_is_a_fifo_or_a_hard_link_to_an_input_is_refused(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo.parquet"
    os.mkfifo(fifo)
    result = invoke("run", pairs_file, "-m", bert[1], "-o", fifo)
    assert result.exit_code == 2 and "is not a regular file" in result.output
    assert fifo.is_fifo()
    result = invoke("run", fifo, "-m", bert[1], "-o", tmp_path / "out.parquet")  # reading it would block
    assert result.exit_code == 2 and f"input {fifo} is not a regular file" in result.output
    source = _copy(pairs_file, tmp_path)
    link = tmp_path / "link.parquet"
    os.link(source, link)
    result = invoke("run", source, "-m", bert[1], "-o", link)
    assert result.exit_code == 2 and "which this command reads" in result.output
    assert link.read_bytes() == pairs_file.read_bytes()


def test_export_never_replaces_its_checkpoint_or_a_foreign_directory(
    bert: tuple[Path, Path], calibration_file: Path, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(bert[0], checkpoint)
    files = sorted(p.name for p in checkpoint.iterdir())
    result = invoke("export", checkpoint, "-o", checkpoint, "--force")
    assert result.exit_code == 2 and "which this command reads" in result.output
    result = invoke("export", checkpoint, "-o", tmp_path, "--force")  # would delete the checkpoint inside it
    assert result.exit_code == 2
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    result = invoke("export", checkpoint, "-o", mine, "--force", "--calibration", calibration_file)
    assert result.exit_code == 2 and "was not written by this tool (no manifest.json)" in result.output
    assert sorted(p.name for p in checkpoint.iterdir()) == files and (mine / "notes.txt").read_text() == "keep"


def test_train_never_writes_over_what_it_reads(tmp_path: Path) -> None:
    """An earlier checkpoint that holds the training data may not be replaced by the new checkpoint."""
    from samples.catalogue import write_splits

    earlier = tmp_path / "earlier"
    data = write_splits(earlier, fmt="pairs", seed=0, rows=(20, 10, 10))
    (earlier / "metrics.json").write_text("{}")
    result = invoke("train", "--train", data["train"], "-o", earlier, "--base-model", tmp_path / "none")
    assert result.exit_code == 2 and "contains" in result.output and data["train"].is_file()


def test_no_output_lands_in_the_cache_or_a_model_directory(
    bert: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SCORER_CACHE_DIR", str(cache))
    embedder = cache / "product-scorer" / "embedders" / "all-MiniLM-L6-v2"
    embedder.mkdir(parents=True)
    (embedder / "model.onnx").write_bytes(b"the cached embedder")
    catalogue = tmp_path / "catalogue.parquet"
    pq.write_table(pa.table({"sku": ["a", "b"], "title": ["sony tv 40", "sony tv 42"]}), catalogue)
    base = ["candidates", catalogue, "--id-col", "sku", "--text-col", "title", "--generators", "lexical"]
    cached = invoke(*base, "-o", embedder / "model.onnx")
    assert cached.exit_code == 2 and f"is inside {cache / 'product-scorer'}, which this command reads" in cached.output
    model = invoke(*base, "--embedder-model", bert[0], "-o", bert[0] / "pairs.parquet")
    assert model.exit_code == 2 and f"is inside {bert[0]}, which this command reads" in model.output
    probe_cache = cache / "product-scorer" / "precision.json"
    run_into_cache = invoke("run", catalogue, "-m", bert[1], "-o", probe_cache, "--query-col", "title")
    assert run_into_cache.exit_code == 2 and "which this command reads" in run_into_cache.output
    assert (embedder / "model.onnx").read_bytes() == b"the cached embedder" and not probe_cache.exists()
    assert not (bert[0] / "pairs.parquet").exists()

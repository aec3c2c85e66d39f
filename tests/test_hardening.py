"""Adversarial input: no flag, input or artifact may destroy data, exhaust memory, resume on stale
state, load a model from outside the artifact, or end in a traceback. One section per class."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import invoke

from scorer.artifact import sha256_file
from scorer.main import main
from scorer.model import LoadedModel
from scorer.output import STATE_NAME, staging_dir
from scorer.reader import open_inputs
from scorer.runner import RunJob, RunSettings, run

ROWS = 600
INT8 = ("--precision", "int8")  # the variant `_interrupted` scores with (auto could probe another)


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory: pytest.TempPathFactory, pairs_file: Path) -> Path:
    """600 rows of sample pairs with a unique id."""
    table = pq.read_table(pairs_file).drop_columns(["id"])
    table = pa.concat_tables([table] * (ROWS // table.num_rows + 1)).slice(0, ROWS)
    table = table.add_column(0, "row_id", pa.array(range(ROWS), pa.int64()))
    path = tmp_path_factory.mktemp("rows") / "rows.parquet"
    pq.write_table(table, path, row_group_size=200)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, bert: tuple[Path, Path], rows_file: Path) -> pa.Table:
    """The uninterrupted output of `rows_file` with 100-row windows, in int8 like `_interrupted`'s run."""
    output = tmp_path_factory.mktemp("reference") / "out.parquet"
    assert invoke("run", rows_file, "-m", bert[1], "-o", output, *INT8, "--window-rows", "100").exit_code == 0
    return pq.read_table(output)


def _copy(path: Path, directory: Path) -> Path:
    target = directory / path.name
    shutil.copy(path, target)
    return target


def _artifact_copy(bert: tuple[Path, Path], tmp_path: Path) -> Path:
    artifact = tmp_path / "artifact"
    shutil.copytree(bert[1], artifact)
    return artifact


# 1. Paths that overwrite what is not ours -------------------------------------------------------------


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
    artifact = _artifact_copy(bert, tmp_path)
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


def test_demo_replaces_only_an_earlier_demo(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from demo.run import main as demo

    (tmp_path / "thesis.txt").write_text("years of work")
    result = CliRunner().invoke(demo, ["--output", str(tmp_path)])
    assert result.exit_code == 2 and "was not written by this tool" in result.output
    assert (tmp_path / "thesis.txt").read_text() == "years of work"


# 2. Memory linear in max_length, scores unchanged ------------------------------------------------------


def _long_texts(seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = [
        "chocolate",
        "70%",
        "cacao",
        "DRK",
        "CHCLT",
        "bar,",
        "coconut",
        "ÉCLAIR",
        "巧克力",
        "x" * 150,
        "  ",
        "GTIN",
    ]
    return [
        " ".join(rng.choice(words, size=int(n))) + suffix
        for n, suffix in ((3000, ""), (400, " tail"), (2500, "!"), (5000, "日本語テキスト"))
    ]


def test_long_texts_tokenize_exactly_like_the_reference_tokenizer(bert: tuple[Path, Path]) -> None:
    """Token ids equal the Hugging Face tokenizer's (what CrossEncoder.predict feeds the model)."""
    from transformers import AutoTokenizer

    model = LoadedModel.load(bert[1], "fp32")
    reference = AutoTokenizer.from_pretrained(str(bert[0]))
    texts = _long_texts(0) + ["short title", ""]
    queries = [q for q in texts for _ in texts]
    candidates = [c for _ in texts for c in texts]
    encoded = model.tokenizer.encode(queries, candidates)
    expected = reference(queries, candidates, truncation="longest_first", max_length=model.manifest.max_length)
    assert [ids.tolist() for ids in encoded.ids] == expected["input_ids"]
    assert [ids.tolist() for ids in encoded.type_ids] == expected["token_type_ids"]
    full = reference(queries, candidates)["input_ids"]
    assert encoded.truncated == sum(len(ids) > model.manifest.max_length for ids in full) > 0


def test_megabyte_texts_score_like_predict_in_bounded_memory(bert: tuple[Path, Path], tmp_path: Path) -> None:
    """Ten rows of a 1 MB and a 512 KB text: peak RSS stays far below the tokenizer's quadratic overflow
    (22 GB and more), and the scores equal CrossEncoder.predict, computed where predict can afford it."""
    from export.reference import load_cross_encoder, reference_scores

    megabyte = [(" ".join(_long_texts(i)) * 40)[: 1 << 20] for i in range(10)]
    halves = [text[: 1 << 19] for text in megabyte[::-1]]
    source, output = tmp_path / "huge.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({"query": megabyte, "candidate": halves}), source)
    command = [sys.executable, "-m", "scorer", "run", str(source), "-m", str(bert[1]), "-o", str(output)]
    command += ["--precision", "fp32"]
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True)
    assert int(done.stdout) < 1_200_000, done.stdout  # KB; the tokenizer's overflow alone needed > 22 GB
    scores = pq.read_table(output)["score"].to_numpy()
    # Longest-first keeps the same tokens of prefixes that hold far more than max_length tokens and keep the
    # query the longer text, so predict on those prefixes is the reference (on the whole texts it cannot run).
    model = load_cross_encoder(bert[0])
    expected = reference_scores(model, [q[:40000] for q in megabyte[:3]], [c[:20000] for c in halves[:3]])
    assert np.allclose(scores[:3], expected, atol=1e-5)
    short = ["dark chocolate coconut bar"] * 2  # (1 MB, short): linear for predict too
    fp32 = LoadedModel.load(bert[1], "fp32")
    assert np.allclose(fp32.score(megabyte[:2], short), reference_scores(model, megabyte[:2], short), atol=1e-5)


# 3. Resume proves what it keeps ------------------------------------------------------------------------


def _interrupted(artifact: Path, source: Path, output: Path, monkeypatch: pytest.MonkeyPatch, after: int = 3) -> None:
    """Score `source` until the `after`-th window, then stop as SIGTERM would: committed parts stay."""
    model = LoadedModel.load(artifact, "int8")
    real = LoadedModel.score_encoded
    calls: list[int] = []

    def stop(self: LoadedModel, *args: object) -> object:
        calls.append(1)
        if len(calls) == after:
            raise KeyboardInterrupt("SIGTERM")
        return real(self, *args)

    with monkeypatch.context() as patch:
        patch.setattr(LoadedModel, "score_encoded", stop)
        with pytest.raises(KeyboardInterrupt):
            sources = open_inputs([source], "query", "candidate", "score")
            run(RunJob(sources, model, output, RunSettings(window_rows=100)))
    assert len(list(staging_dir(output).glob("part-*.parquet"))) == after - 1


def _resume(artifact: Path, source: Path, output: Path, *extra: str) -> object:
    return invoke("run", source, "-m", artifact, "-o", output, *INT8, "--window-rows", "100", *extra)


def test_same_size_edit_in_place_is_caught(
    bert: tuple[Path, Path], rows_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, output = tmp_path / "rows.parquet", tmp_path / "out.parquet"
    table = pq.read_table(rows_file)
    plain = {"row_group_size": 200, "compression": "none", "use_dictionary": False, "write_statistics": False}
    pq.write_table(table, source, **plain)
    _interrupted(bert[1], source, output, monkeypatch)
    queries = table["query"].to_pylist()
    queries[5] = queries[5][:-1] + ("X" if queries[5][-1] != "X" else "Y")  # same length: same size, same footer
    size = source.stat().st_size
    pq.write_table(table.set_column(1, "query", pa.array(queries)), source, **plain)
    assert source.stat().st_size == size
    result = _resume(bert[1], source, output)
    assert result.exit_code == 2 and "changed: inputs" in result.output and not output.exists()


def test_stray_truncated_and_foreign_parts_are_never_assembled(
    bert: tuple[Path, Path], rows_file: Path, reference: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "out.parquet"
    _interrupted(bert[1], rows_file, output, monkeypatch, after=4)
    parts = sorted(staging_dir(output).glob("part-*.parquet"))
    shutil.copy(parts[0], staging_dir(output) / "part-00000-00000099.parquet")  # a stray window
    shutil.copy(parts[0], parts[1])  # a part holding another window's rows
    parts[2].write_bytes(parts[2].read_bytes()[:200])  # a truncated part
    result = _resume(bert[1], rows_file, output, "--report", str(tmp_path / "report.json"))
    assert result.exit_code == 0, result.output
    assert pq.read_table(output).equals(reference)  # every row once, in order, bit-identical
    assert json.loads((tmp_path / "report.json").read_text())["rows_resumed"] == 100


def test_progress_without_a_readable_state_is_refused_until_restart(
    bert: tuple[Path, Path], rows_file: Path, reference: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "out.parquet"
    _interrupted(bert[1], rows_file, output, monkeypatch)
    state = staging_dir(output) / STATE_NAME
    state.write_text(state.read_text()[:40])
    result = _resume(bert[1], rows_file, output)
    assert result.exit_code == 2 and "unreadable" in result.output and "--restart" in result.output
    state.unlink()
    result = _resume(bert[1], rows_file, output)
    assert result.exit_code == 2 and "cannot be proven to belong to this run" in result.output
    assert _resume(bert[1], rows_file, output, "--restart").exit_code == 0
    assert pq.read_table(output).equals(reference)


# 4. Only the artifact's own files, a validated manifest -----------------------------------------------


def _edit_manifest(artifact: Path, edit: object) -> None:
    path = artifact / "manifest.json"
    raw = json.loads(path.read_text())
    edit(raw)  # type: ignore[operator]
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("parent", lambda m: m["variants"]["int8"].update(file="../model.int8.onnx"), "must be a plain file name"),
        ("absolute", lambda m: m["variants"]["int8"].update(file="/etc/passwd"), "must be a plain file name"),
        ("tokenizer", lambda m: m.update(tokenizer="../tokenizer.json"), "must be a plain file name"),
        ("variants list", lambda m: m.update(variants=[]), "variants must be a JSON dict"),
        ("string length", lambda m: m.update(max_length="256"), "max_length must be a JSON int"),
        ("bool length", lambda m: m.update(max_length=True), "max_length must be a JSON int"),
        ("activation", lambda m: m.update(activation="softmax"), "unknown activation 'softmax'"),
        ("variant type", lambda m: m["variants"].update(int8="model.int8.onnx"), "variants.int8 must be a JSON dict"),
        ("max_length 8", lambda m: m.update(max_length=8), "the manifest was edited"),
    ],
)
def test_manifest_is_validated(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path, name: str, edit: object, message: str
) -> None:
    artifact = _artifact_copy(bert, tmp_path)
    shutil.copy(artifact / "model.int8.onnx", tmp_path / "model.int8.onnx")  # what `..` would reach
    shutil.copy(artifact / "tokenizer.json", tmp_path / "tokenizer.json")
    _edit_manifest(artifact, edit)
    result = invoke("run", pairs_file, "-m", artifact, "-o", tmp_path / "out.parquet", "--precision", "int8")
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out.parquet").exists()


def test_manifest_that_is_not_an_object_is_refused(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    artifact = _artifact_copy(bert, tmp_path)
    (artifact / "manifest.json").write_text("[]")
    result = invoke("run", pairs_file, "-m", artifact, "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and "must be a JSON object" in result.output


def test_symlink_leaving_the_artifact_is_refused(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    artifact = _artifact_copy(bert, tmp_path)
    outside = tmp_path / "elsewhere.onnx"
    (artifact / "model.int8.onnx").rename(outside)
    (artifact / "model.int8.onnx").symlink_to(outside)
    result = invoke("run", pairs_file, "-m", artifact, "-o", tmp_path / "out.parquet", "--precision", "int8")
    assert result.exit_code == 2 and "links outside the artifact directory" in result.output


def test_verify_takes_the_reference_settings_from_the_checkpoint(
    bert: tuple[Path, Path], calibration_file: Path, tmp_path: Path
) -> None:
    """A manifest edited to max_length 8, with a tokenizer that carries no truncation of its own (as artifacts
    exported before the tokenizer recorded it): verify must compare against predict at the checkpoint's length."""
    artifact = _artifact_copy(bert, tmp_path)
    tokenizer = json.loads((artifact / "tokenizer.json").read_text())
    tokenizer["truncation"] = None
    (artifact / "tokenizer.json").write_text(json.dumps(tokenizer))
    digest = sha256_file(artifact / "tokenizer.json")
    _edit_manifest(artifact, lambda m: m.update(max_length=8, tokenizer_sha256=digest))
    result = invoke("verify", artifact, "--checkpoint", bert[0], "--calibration", calibration_file)
    assert result.exit_code == 1 and "parity gate failed" in result.output


# 5. Validation reads the right column ------------------------------------------------------------------


def test_null_pre_check_is_not_fooled_by_a_nested_column(bert: tuple[Path, Path], tmp_path: Path) -> None:
    source, output = tmp_path / "nested.parquet", tmp_path / "out.parquet"
    n = 300
    table = pa.table(
        {
            "meta": pa.array([{"a": i, "b": str(i)} for i in range(n)]),
            "query": [f"dark chocolate {i}" for i in range(n)],
            "candidate": [None if i == 250 else f"cacao bar {i}" for i in range(n)],
        }
    )
    pq.write_table(table, source, row_group_size=100)
    result = invoke("run", source, "-m", bert[1], "-o", output, "--window-rows", "50")
    assert result.exit_code == 2 and "column 'candidate', row 250: null text" in result.output
    assert not staging_dir(output).exists()  # found before the first window was scored


# 6. Clear errors instead of tracebacks -----------------------------------------------------------------


def test_duplicate_column_names_are_named(bert: tuple[Path, Path], tmp_path: Path) -> None:
    source = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"]), pa.array(["c"])], ["query", "candidate", "query"])
    pq.write_table(table, source)
    result = invoke("run", source, "-m", bert[1], "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and "'query' appear more than once" in result.output and str(source) in result.output


def test_corrupt_data_met_by_the_null_pre_scan_is_named(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path
) -> None:
    source = tmp_path / "corrupt.parquet"
    pq.write_table(pq.read_table(pairs_file), source, write_statistics=False, compression="none")
    data = bytearray(source.read_bytes())
    metadata = pq.read_metadata(source)
    chunk = metadata.row_group(0).column(metadata.schema.names.index("candidate"))
    start = chunk.data_page_offset
    data[start : start + 64] = b"\xff" * 64
    source.write_bytes(bytes(data))
    result = invoke("run", source, "-m", bert[1], "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and str(source) in result.output and "corrupt Parquet data" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window-rows", str(2**64)], "Invalid value for '--window-rows'"),
        (["--batch-tokens", str(2**40)], "Invalid value for '--batch-tokens'"),
        (["-o", "{tmp}/" + "n" * 250 + ".parquet"], "file name too long"),
        (["--report", "{tmp}/missing/report.json"], "does not exist"),
        (["-o", "{tmp}/file.txt/out.parquet"], "is not a directory"),
        (["-m", "{tmp}/file.txt"], "is a file; give the artifact directory"),
    ],
)
def test_bad_flags_exit_2_before_any_work(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "file.txt").write_text("not a directory")
    options = {"-m": str(bert[1]), "-o": str(tmp_path / "out.parquet")}
    extra: list[str] = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        value = value.format(tmp=tmp_path)
        if flag in options:
            options[flag] = value
        else:
            extra += [flag, value]
    result = invoke("run", pairs_file, *[x for kv in options.items() for x in kv], *extra)
    assert result.exit_code == 2 and message in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # nothing written, no side files


def test_lock_that_is_a_directory_is_named(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    (tmp_path / ".out.parquet.lock").mkdir()
    result = invoke("run", pairs_file, "-m", bert[1], "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and ".out.parquet.lock" in result.output and "not a regular file" in result.output


def test_disk_full_at_start_leaves_no_lock(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import scorer.output

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(scorer.output.os, "replace", full)  # state.json cannot be committed
    result = invoke("run", pairs_file, "-m", bert[1], "-o", tmp_path / "out.parquet")
    assert result.exit_code == 1 and "the disk is full" in result.output
    assert [p.name for p in tmp_path.iterdir()] == []


def test_more_inputs_than_open_files_allowed(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    """1100 shards under a limit of 1024 open files: inputs are opened one at a time."""
    shards = tmp_path / "shards"
    shards.mkdir()
    table = pq.read_table(pairs_file).slice(0, 1)
    for i in range(300):
        pq.write_table(table, shards / f"part-{i:04d}.parquet")
    output = tmp_path / "out.parquet"
    command = [sys.executable, "-m", "scorer", "run", str(shards), "-m", str(bert[1]), "-o", str(output)]

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))

    done = subprocess.run(command, check=False, capture_output=True, text=True, preexec_fn=limit)
    assert done.returncode == 0, done.stderr
    assert pq.read_table(output).num_rows == 300


@pytest.mark.parametrize(
    "args",
    [
        ["run", "x.parquet", "-m", "artifact", "-o", "out.parquet", "--gpu-memory", "nan"],
        ["group", "x.parquet", "-o", "groups.parquet", "--threshold", "nan"],
        ["candidates", "x.parquet", "-o", "p.parquet", "--id-col", "id", "--text-col", "t", "--pairs-per-s", "inf"],
        ["export", "checkpoint", "-o", "artifact", "--threshold", "nan"],
        ["verify", "artifact", "--checkpoint", "checkpoint", "--int8-min-spearman", "-inf"],
        ["train", "--train", __file__, "-o", "checkpoint", "--lr", "nan"],
        ["train", "--train", __file__, "-o", "checkpoint", "--time-budget", "inf"],
        ["train-embedder", "--train", __file__, "-o", "model", "--epochs", "nan"],
    ],
)
def test_float_flags_refuse_nan_and_infinities(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "is not a finite number" in result.output


@pytest.mark.parametrize("command", ["candidates", "group"])
def test_a_second_writer_of_an_output_is_refused(command: str, tmp_path: Path) -> None:
    from scorer.output import OutputLock

    catalogue = tmp_path / "catalogue.parquet"
    pq.write_table(pa.table({"sku": ["a", "b", "c"], "title": ["sony tv 40", "sony tv 42", "lg phone"]}), catalogue)
    scored = tmp_path / "scored.parquet"
    scores = pa.array([0.9, 0.2], pa.float32())
    pq.write_table(pa.table({"query_id": ["a", "a"], "candidate_id": ["b", "c"], "score": scores}), scored)
    args = {
        "candidates": [catalogue, "--id-col", "sku", "--text-col", "title", "--generators", "lexical"],
        "group": [scored, "--threshold", "0.5"],
    }[command]
    output = tmp_path / "out.parquet"
    with OutputLock(output):  # another process writing this output
        refused = invoke(command, *args, "-o", output)
    assert refused.exit_code == 2 and "is being written by another run" in refused.output
    assert not output.exists()
    done = invoke(command, *args, "-o", output)
    assert done.exit_code == 0, done.output
    assert pq.read_table(output).num_rows == {"candidates": 1, "group": 3}[command]  # one shared-token pair; 3 ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalogue.parquet", "out.parquet", "scored.parquet"]


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    """One file per input class that used to end in a traceback (scorer.inputs now names what is wrong)."""
    invalid = pa.array([b"sony tv", b"\xff\xfe tv", b"lg"], pa.binary()).view(pa.string())
    duplicated = pa.Table.from_arrays(
        [pa.array(["a", "b"]), pa.array(["sony tv", "sony tv 2"]), pa.array(["x", "y"])],
        names=["sku", "title", "title"],
    )
    scores = pa.array([0.9, 0.8], pa.float32())
    tables = {
        "utf8": pa.table({"sku": ["a", "b", "c"], "title": invalid}),
        "uint64": pa.table({"sku": pa.array([2**63 + 5, 7], pa.uint64()), "title": ["sony tv", "sony tv 2"]}),
        "duplicated": duplicated,
        "scored-uint64": pa.table(
            {
                "query_id": pa.array([2**63 + 1, 2], pa.uint64()),
                "candidate_id": pa.array([2, 3], pa.uint64()),
                "score": scores,
            }
        ),
        "scored-duplicated": pa.Table.from_arrays(
            [pa.array(["a", "b"]), pa.array(["b", "c"]), scores, scores],
            names=["query_id", "candidate_id", "score", "score"],
        ),
        "catalogue": pa.table({"sku": ["a", "b", "c"], "title": ["sony tv", "sony tv 2", "lg"]}),
        "list-truth": pa.table({"id": ["a", "b"], "group": pa.array([[1], [2]])}),
    }
    paths = {}
    for name, table in tables.items():
        paths[name] = tmp_path / f"{name}.parquet"
        pq.write_table(table, paths[name])
    return paths


@pytest.mark.parametrize(
    ("command", "data", "flags", "message"),
    [
        ("candidates", "utf8", [], "utf8.parquet: column 'title', row 1: invalid UTF-8"),
        ("candidates", "uint64", [], "column 'sku', row 0: id 9223372036854775813 does not fit a 64-bit signed"),
        ("candidates", "duplicated", [], "duplicated.parquet: column name 'title' appears more than once"),
        (
            "candidates",
            "catalogue",
            ["--truth", "list-truth"],
            "column 'group' has type list<element: int64>, expected",
        ),
        ("group", "scored-uint64", [], "column 'query_id', row 0: id 9223372036854775809 does not fit"),
        ("group", "scored-duplicated", [], "column name 'score' appears more than once"),
    ],
)
def test_bad_input_classes_exit_2_naming_file_column_and_row(
    command: str, data: str, flags: list[str], message: str, tmp_path: Path
) -> None:
    paths = _bad_inputs(tmp_path)
    common = {"candidates": ["--id-col", "sku", "--text-col", "title", "--generators", "lexical"], "group": []}
    flags = [str(paths[flag]) if flag in paths else flag for flag in flags]
    result = invoke(command, paths[data], *common[command], *flags, "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out.parquet").exists()


def test_run_refuses_invalid_utf8_in_a_string_column(bert: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "pairs.parquet"
    queries = pa.array([b"sony tv", b"lg \xff phone"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"query": queries, "candidate": ["sony tv 40", "lg phone"]}), path)
    result = invoke("run", path, "-m", bert[1], "-o", tmp_path / "out.parquet", "--precision", "fp32")
    assert result.exit_code == 2 and "pairs.parquet: column 'query', row 1: invalid UTF-8" in result.output
    assert not (tmp_path / "out.parquet").exists()


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

"""The CUDA path's CPU-testable parts: provider options, token budgets, multiple-of-8 padding, ordered and
bounded prefetch, IOBinding, the gate's device record, and the GPU benchmark's smoke run on the CPU."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import invoke

from scorer import session
from scorer.batching import CPU_PROFILE, CUDA_PROFILE, pad_batch, plan_batches, profile_for
from scorer.errors import InputError
from scorer.model import LoadedModel
from scorer.prefetch import prefetched
from scorer.runner import MAX_PREFETCH_WORKERS, prefetch_workers
from scorer.session import CPU, CUDA


def test_cuda_provider_options_bound_the_arena() -> None:
    options = session.cuda_provider_options(3 << 30, device_id=1)
    assert options == {
        "device_id": "1",
        "gpu_mem_limit": str(3 * 1024**3),
        "arena_extend_strategy": "kSameAsRequested",
        "use_tf32": "0",
    }
    assert session.providers(CUDA, 1 << 30) == [(CUDA, session.cuda_provider_options(1 << 30)), CPU]
    assert session.providers(CPU) == [CPU]
    assert session.DEFAULT_GPU_MEM_LIMIT == 8 * 1024**3


def test_cuda_needs_a_visible_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session.ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert session.cuda_available() is False
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(session.Path, "glob", lambda self, pattern: iter([Path("/dev/nvidia0")]))
    assert session.cuda_available() is True
    assert session.provider_for("fp16") == CUDA and session.provider_for("int8") == CPU
    monkeypatch.setattr(session.ort, "get_available_providers", lambda: [CPU])
    assert session.cuda_available() is False
    with pytest.raises(InputError, match="fp16 needs CUDA"):
        session.provider_for("fp16")


def test_gpu_name_follows_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: object) -> object:
        asked.append(argv)
        return type("Done", (), {"stdout": "NVIDIA H100 80GB HBM3\n"})()

    monkeypatch.setattr(session.subprocess, "run", fake_run)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert session.gpu_name(1) == "NVIDIA H100 80GB HBM3"
    assert asked[0][1:3] == ["-i", "5"]
    monkeypatch.setattr(session.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError()))
    assert session.gpu_name() is None


def test_token_budgets_by_provider() -> None:
    assert profile_for(CPU) == CPU_PROFILE and profile_for("OpenVINO CPU bf16") == CPU_PROFILE
    assert profile_for(CUDA) == CUDA_PROFILE
    assert (CPU_PROFILE.batch_tokens, CPU_PROFILE.multiple, CPU_PROFILE.max_rows) == (8192, 1, 64)
    assert (CUDA_PROFILE.batch_tokens, CUDA_PROFILE.multiple, CUDA_PROFILE.max_rows) == (65536, 8, 8192)
    assert CUDA_PROFILE.window_rows == 16384 and CPU_PROFILE.window_rows == 4096
    # 3000 title-like pairs of 20-40 tokens: one CUDA batch of the whole window, 47 CPU batches of <= 64 rows
    lengths = np.random.default_rng(0).integers(20, 41, 3000)
    cuda = plan_batches(lengths, CUDA_PROFILE.batch_tokens, CUDA_PROFILE.multiple, CUDA_PROFILE.max_rows)
    cpu = plan_batches(lengths, CPU_PROFILE.batch_tokens, CPU_PROFILE.multiple, CPU_PROFILE.max_rows)
    assert [len(b.rows) for b in cuda] == [1638, 1362]  # 65536 // 40 rows, then the rest padded to 32
    assert [b.padded_length for b in cuda] == [40, 32]
    assert len(cpu) == 47 and max(len(b.rows) for b in cpu) == 64
    assert prefetch_workers(CPU) == 1
    assert 1 <= prefetch_workers(CUDA) <= MAX_PREFETCH_WORKERS


def test_multiple_of_8_padding_keeps_tokens() -> None:
    rng = np.random.default_rng(1)
    lengths = rng.integers(3, 60, 500)
    ids = [rng.integers(1000, 2000, n) for n in lengths]
    type_ids = [np.r_[np.zeros(n // 2, np.int64), np.ones(n - n // 2, np.int64)] for n in lengths]
    batches = plan_batches(lengths, 4096, multiple=8, max_rows=8192)
    assert all(b.padded_length % 8 == 0 for b in batches)
    assert sorted(np.concatenate([b.rows for b in batches]).tolist()) == list(range(500))
    for batch in batches:
        feeds = pad_batch(ids, type_ids, batch, pad_id=0)
        assert feeds["input_ids"].shape == (len(batch.rows), batch.padded_length)
        assert batch.padded_length - 8 < lengths[batch.rows].max() <= batch.padded_length
        for i, row in enumerate(batch.rows):
            n = lengths[row]
            assert feeds["input_ids"][i, :n].tolist() == ids[row].tolist()
            assert feeds["token_type_ids"][i, :n].tolist() == type_ids[row].tolist()
            assert feeds["attention_mask"][i].sum() == n and not feeds["input_ids"][i, n:].any()


def test_prefetch_keeps_order_with_slow_early_items() -> None:
    def work(i: int) -> int:
        time.sleep(0.02 if i % 3 == 0 else 0.0)  # early items finish last
        return i * i

    with prefetched(range(40), work, workers=4, depth=5) as results:
        assert list(results) == [i * i for i in range(40)]


def test_prefetch_is_bounded() -> None:
    started, consumed, most_ahead = [], [], [0]
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.append(i)
            most_ahead[0] = max(most_ahead[0], len(started) - len(consumed))
        return i

    with prefetched(range(100), work, workers=3, depth=4) as results:
        for item in results:
            time.sleep(0.002)  # a slow consumer: the feeder runs ahead as far as it may
            consumed.append(item)
    assert consumed == list(range(100))
    # depth futures queued + one submitted while the feeder waits to queue it + the one being consumed
    assert 4 <= most_ahead[0] <= 4 + 2


def test_prefetch_propagates_errors_in_order() -> None:
    def work(i: int) -> int:
        if i == 7:
            raise InputError("pairs.parquet: column 'query', row 7: null text")
        return i

    seen = []
    with (
        pytest.raises(InputError, match=r"^pairs.parquet: column 'query', row 7: null text$"),
        prefetched(range(20), work, workers=3, depth=3) as results,
    ):
        seen.extend(results)
    assert seen == list(range(7))

    def source():
        yield from range(5)
        raise InputError("pairs.parquet: corrupt Parquet data near row 5")

    seen.clear()
    with (
        pytest.raises(InputError, match="near row 5"),
        prefetched(source(), lambda i: i, workers=2, depth=2) as results,
    ):
        seen.extend(results)
    assert seen == list(range(5))


def test_prefetch_stops_its_threads_when_the_consumer_leaves() -> None:
    before = threading.active_count()
    with prefetched(iter(range(10_000)), lambda i: i, workers=4, depth=8) as results:
        assert next(results) == 0
    assert threading.active_count() == before
    with pytest.raises(ValueError, match="at least 1"), prefetched(range(3), lambda i: i, workers=0):
        pass


def test_iobinding_path_matches_plain_run(bert: tuple[Path, Path], calibration_file: Path) -> None:
    """The CUDA feeding code (OrtValues in, output bound on the device, one copy back), run on the CPU device."""
    model = LoadedModel.load(bert[1], "fp32")
    assert model.onnx.device is None and model.profile == CPU_PROFILE
    table = pq.read_table(calibration_file)
    queries, candidates = table["query"].to_pylist()[:50], table["candidate"].to_pylist()[:50]
    plain = model.score(queries, candidates)
    bound = replace(model, onnx=replace(model.onnx, device="cpu")).score(queries, candidates)
    assert plain.shape == (50,) and np.array_equal(plain, bound)
    # CUDA's batching (multiple-of-8 padding, batches padded ahead in a thread) on the same CPU session:
    # ONNX Runtime fp32 gives the same scores whatever the batch and padding
    as_cuda = replace(model, onnx=replace(model.onnx, provider=CUDA, device="cpu"))
    assert as_cuda.profile == CUDA_PROFILE
    scores, stats = as_cuda.score_encoded(model.tokenizer.encode(queries, candidates), batch_tokens=512)
    assert stats.batches > 2 and stats.padded_tokens % 8 == 0
    np.testing.assert_allclose(scores, plain, rtol=0, atol=1e-6)


def test_run_report_names_provider_and_resolved_budget(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path
) -> None:
    out, report = tmp_path / "out.parquet", tmp_path / "report.json"
    result = invoke("run", pairs_file, "-m", bert[1], "-o", out, "--precision", "fp32", "--report", report)
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["provider"] == CPU and data["prefetch_workers"] == 1
    assert data["settings"]["batch_tokens"] == 8192 and data["settings"]["window_rows"] == 4096
    assert "prefetch_workers" not in data["settings"]  # speed only: not part of the resume fingerprint
    again = tmp_path / "again.parquet"
    result = invoke("run", pairs_file, "-m", bert[1], "-o", again, "--precision", "fp32", "--prefetch-workers", "3")
    assert result.exit_code == 0, result.output
    assert pq.read_table(out)["score"].equals(pq.read_table(again)["score"])


def test_gate_records_the_device() -> None:
    from export.gate import device_record, gate_provider

    assert gate_provider("fp16", True) == CUDA and gate_provider("fp16", False) == CPU
    assert gate_provider("int8", True) == CPU
    assert device_record(CUDA, CUDA, gpu="NVIDIA H100 80GB HBM3") == {
        "runtime": CUDA,
        "gpu": "NVIDIA H100 80GB HBM3",
    }
    assert set(device_record(CPU, CPU)) == {"runtime", "cpu"}


def test_gpu_benchmark_parts_on_cpu(tmp_path: Path) -> None:
    from benchmarks import gpu

    info = gpu.write_pairs(250, tmp_path / "pairs.parquet", tmp_path / "no-data", log=lambda m: None)
    table = pq.read_table(tmp_path / "pairs.parquet")
    assert table.num_rows == 250 and info["rows"] == 250 and "sample catalogue" in info["source"]
    assert gpu.GpuSampler.parse("87, 4123") == (87.0, 4123.0) and gpu.GpuSampler.parse("[N/A], 3") is None
    sampler = gpu.GpuSampler()
    sampler.samples = [(1.0, 10.0, 1000.0), (2.0, 90.0, 5000.0), (3.0, 80.0, 6000.0), (9.0, 0.0, 1200.0)]
    assert sampler.summary(1.5, 3.5, baseline_mib=1000.0) == {
        "gpu_util_mean_pct": 85.0,
        "gpu_util_samples": 2,
        "gpu_mem_peak_mib": 5000.0,
    }
    assert gpu.peak_flops("NVIDIA H100 80GB HBM3") == 989e12 and gpu.peak_flops("NVIDIA H100 PCIe") == 756e12
    assert gpu.mfu(989e12 * 0.25, 1.0, 989e12) == 0.25 and gpu.mfu(1.0, None, 1.0) is None
    models = {
        "mmbert-small-arch": {
            "paths": {
                "torch-fp16": {"pairs_per_s": 20_000.0},
                "scorer-fp16": {"pairs_per_s": 50_000.0, "parity": {"spearman": 0.999, "flip_rate": 0.002}},
                "session-fp16": {"pairs_per_s": 80_000.0},
            }
        }
    }
    rows = {row["target"]: row for row in gpu.targets(models, "fp16")}
    assert (
        rows["mmBERT-small scorer / torch fp16"]["measured"] == 2.5 and rows["mmBERT-small scorer / torch fp16"]["met"]
    )
    assert rows["mmBERT-small fp16 GPU-side pairs/s"]["met"] is True
    assert rows["mmbert-small-arch flip rate vs torch fp32"]["met"] is False
    assert rows["MiniLM end-to-end pairs/s"]["met"] is None


def test_gpu_benchmark_without_cuda_says_so(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from benchmarks import gpu

    result = CliRunner().invoke(gpu.main, ["--out", str(tmp_path / "gpu")])
    assert result.exit_code == 1 and "CUDA is absent" in result.output and "--device cpu" in result.output


@pytest.mark.slow  # builds and exports a tiny BERT and starts three processes: about a minute on 2 cores
def test_gpu_benchmark_smoke_on_cpu(tmp_path: Path) -> None:
    from benchmarks import gpu

    result = gpu.bench(tmp_path, gpu.Setup("cpu", 120, 64), data=None, log=lambda m: None)
    model = result["models"]["tiny-bert"]
    assert set(model["paths"]) == {"torch-fp32", "scorer-fp32", "session-fp32"}
    assert model["gate"]["device"] == "cpu" and model["gate"]["default_gate_failures"] == []
    scorer = model["paths"]["scorer-fp32"]
    assert scorer["provider"] == CPU and scorer["batch_tokens"] == 8192 and scorer["prefetch_workers"] == 1
    assert scorer["parity"]["flips"] == 0 and scorer["parity"]["max_abs_diff"] < 1e-4
    assert model["paths"]["session-fp32"]["batches"] >= 2 and model["flops_total"] > 0
    assert (tmp_path / "gpu.md").read_text().count("| scorer-fp32 |") == 1
    assert json.loads((tmp_path / "gpu.json").read_text())["models"]["tiny-bert"]["tokens"]["max"] <= 256

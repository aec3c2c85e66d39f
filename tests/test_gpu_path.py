"""The CUDA path's CPU-testable parts: provider options, IOBinding and CUDA batching on a CPU session, the run's
provider report, the gate's device record, and the GPU benchmark's smoke run on the CPU."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import invoke

from scorer import session
from scorer.batching import CPU_PROFILE, CUDA_PROFILE
from scorer.errors import InputError
from scorer.model import LoadedModel
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

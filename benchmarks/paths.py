"""The four paths under test, each an end-to-end command (Parquet in, Parquet out) run in a fresh process.

| name | what | ceiling |
|---|---|---|
| `torch` | `CrossEncoder(ckpt).predict`, fp32, default batching (the reference) | fp32 |
| `st_onnx_int8` | sentence-transformers' ONNX backend on its dynamic int8 (avx2) export | int8 |
| `scorer_fp32` | `scorer run --precision fp32` | fp32 |
| `scorer_int8` | `scorer run --precision int8` | int8 |

Every command takes `INPUT -o OUTPUT --report REPORT.json`; the report's `seconds` is the time
spent inside the process after start-up (scoring loop for `scorer run`; imports to written file for
the sentence-transformers paths), the harness measures the whole process.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.st_onnx import INT8_FILE

TORCH, ST_ONNX_INT8, SCORER_FP32, SCORER_INT8 = "torch", "st_onnx_int8", "scorer_fp32", "scorer_int8"


@dataclass(frozen=True)
class BenchPath:
    """One path: a name, a label for reports, which GEMM ceiling bounds it, and its command prefix."""

    name: str
    label: str
    ceiling: str
    prefix: tuple[str, ...]

    def argv(self, input_path: Path, output: Path, report: Path) -> list[str]:
        return [*self.prefix, str(input_path), "-o", str(output), "--report", str(report)]


def build_paths(checkpoint: Path, artifact: Path, st_onnx_dir: Path) -> list[BenchPath]:
    """The four paths, the torch reference first."""
    python = sys.executable
    st_score = (python, "-m", "benchmarks.st_score")
    scorer = (python, "-m", "scorer.cli", "run", "-m", str(artifact), "--no-progress", "--precision")
    return [
        BenchPath(TORCH, "torch fp32 (CrossEncoder.predict)", "fp32", (*st_score, "--checkpoint", str(checkpoint))),
        BenchPath(
            ST_ONNX_INT8,
            "sentence-transformers ONNX int8 (avx2)",
            "int8",
            (*st_score, "--checkpoint", str(st_onnx_dir), "--onnx-file", INT8_FILE),
        ),
        BenchPath(SCORER_FP32, "scorer run fp32", "fp32", (*scorer, "fp32")),
        BenchPath(SCORER_INT8, "scorer run int8", "int8", (*scorer, "int8")),
    ]

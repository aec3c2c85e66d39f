"""The paths under test, each an end-to-end command (Parquet in, Parquet out) run in a fresh process.

| name | what | ceiling |
|---|---|---|
| `torch` | `CrossEncoder(ckpt).predict`, fp32, default batching (the reference) | fp32 |
| `torch_bf16` | the same with `model_kwargs={"torch_dtype": torch.bfloat16}` (only where the CPU has bf16) | bf16 |
| `st_onnx_int8` | sentence-transformers' ONNX backend on its dynamic int8 (avx2) export | int8 |
| `scorer_fp32` | `scorer run --precision fp32` | fp32 |
| `scorer_int8` | `scorer run --precision int8` | int8 |
| `scorer_bf16` | `scorer run --precision bf16`: OpenVINO bf16 (where the artifact has a gated bf16 variant) | bf16 |
| `scorer_int8_openvino` | `scorer run --precision int8-openvino`: OpenVINO, int8 weights and per-token activations (where gated) | int8 |
| `scorer_auto` | `scorer run` with its default `--precision auto` (with the bf16 paths) | the chosen variant's |

bf16 paths are set against the bf16 GEMM ceiling where the CPU has bf16 (`benchmarks.ceiling`); auto against
the ceiling of the variant it chose.

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
TORCH_BF16, SCORER_BF16, SCORER_AUTO = "torch_bf16", "scorer_bf16", "scorer_auto"
SCORER_INT8_OPENVINO = "scorer_int8_openvino"


@dataclass(frozen=True)
class BenchPath:
    """One path: a name, a label for reports, which GEMM ceiling bounds it, and its command prefix."""

    name: str
    label: str
    ceiling: str
    prefix: tuple[str, ...]

    def argv(self, input_path: Path, output: Path, report: Path) -> list[str]:
        return [*self.prefix, str(input_path), "-o", str(output), "--report", str(report)]


def build_paths(
    checkpoint: Path, artifact: Path, st_onnx_dir: Path, bf16: bool = False, int8_openvino: bool = False
) -> list[BenchPath]:
    """The paths, the torch reference first; `bf16` (the CPU has bf16 and the artifact a gated bf16 variant)
    adds torch bf16, `scorer run --precision bf16` and `scorer run` with its default (auto); `int8_openvino`
    (a gated int8-openvino variant this machine runs) adds `scorer run --precision int8-openvino`."""
    python = sys.executable
    st_score = (python, "-m", "benchmarks.st_score")
    scorer = (python, "-m", "scorer", "run", "-m", str(artifact), "--no-progress", "--precision")
    torch = (*st_score, "--checkpoint", str(checkpoint))
    bf16_paths = [
        BenchPath(TORCH_BF16, "torch bf16 (CrossEncoder.predict)", "bf16", (*torch, "--bf16")),
        BenchPath(SCORER_BF16, "scorer run bf16 (OpenVINO)", "bf16", (*scorer, "bf16")),
        BenchPath(SCORER_AUTO, "scorer run auto (default)", "auto", (*scorer, "auto")),
    ]
    return [
        BenchPath(TORCH, "torch fp32 (CrossEncoder.predict)", "fp32", torch),
        BenchPath(
            ST_ONNX_INT8,
            "sentence-transformers ONNX int8 (avx2)",
            "int8",
            (*st_score, "--checkpoint", str(st_onnx_dir), "--onnx-file", INT8_FILE),
        ),
        BenchPath(SCORER_FP32, "scorer run fp32", "fp32", (*scorer, "fp32")),
        BenchPath(SCORER_INT8, "scorer run int8", "int8", (*scorer, "int8")),
        *(bf16_paths if bf16 else []),
        *(
            [BenchPath(SCORER_INT8_OPENVINO, "scorer run int8-openvino", "int8", (*scorer, "int8-openvino"))]
            if int8_openvino
            else []
        ),
    ]

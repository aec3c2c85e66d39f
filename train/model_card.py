"""The checkpoint's README.md: base, data, loss, hyperparameters, metrics, usage."""

from __future__ import annotations

from typing import Any

_LOSSES = {
    "lambda": "`LambdaLoss` with the `NDCGLoss2PPScheme` weighting (listwise; pairs are grouped by query into lists)",
    "bce": "`BinaryCrossEntropyLoss` (pointwise; listwise rows are split into pairs whose grades become soft labels)",
}
_RECIPES = {
    "pairs": (
        "the pair recipe: BCE with positives weighted, F1 on the eval pairs after every epoch, "
        "the best epoch kept, early stopping"
    ),
    "lambda": "the seed recipe (listwise)",
    "bce": "the seed recipe with a pointwise loss",
}
_METRIC_ORDER = (
    "map",
    "mrr@10",
    "ndcg@10",
    "threshold",
    "precision",
    "recall",
    "f1",
    "precision@0.5",
    "recall@0.5",
    "f1@0.5",
)


def _table(rows: list[tuple[str, str]], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def _text(text: dict[str, str] | None) -> str:
    """How the pairs' texts were built: `scorer run` builds them the same way."""
    if text is None:
        return "the lists' query and documents"
    return f"query from {text['query']}, candidate from {text['candidate']} (several columns: joined by a space)"


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _metric_rows(figures: dict[str, float | int]) -> list[tuple[str, str]]:
    def rank(name: str) -> int:
        base = name.removeprefix("pairs_")
        order = _METRIC_ORDER.index(base) if base in _METRIC_ORDER else len(_METRIC_ORDER)
        return order + (len(_METRIC_ORDER) + 1) * name.startswith("pairs_")

    return [(name, _format(figures[name])) for name in sorted(figures, key=rank)]


def render_model_card(metrics: dict[str, Any]) -> str:
    """Markdown for a checkpoint, from the content of its `metrics.json`."""
    config, train, evaluation = metrics["config"], metrics["train"], metrics["eval"]
    options = metrics["options"]
    threshold = metrics["threshold"]
    hyper = [
        ("recipe", f"{metrics['recipe']} ({metrics['recipe_reason']})"),
        ("pair text", _text(metrics["text"])),
        ("product codes", "hyphens inside codes dropped (`train.codes`)" if metrics["codes_joined"] else "as written"),
        ("loss", config["loss"]),
        ("epochs", config["epochs"]),
        ("max steps", config["max_steps"]),
        ("batch size", f"{config['batch_size']} ({train['unit']} per step)"),
        ("learning rate", config["lr"]),
        ("warmup ratio", config["warmup_ratio"]),
        ("max length", f"{config['max_length']} tokens per pair"),
        ("seed", config["seed"]),
        ("positive weight", _format(train["positive_weight"])),
        ("both pair orders", options["both_orders"] if metrics["recipe"] == "pairs" else "-"),
        ("time budget", "-" if options["time_budget"] is None else f"{options['time_budget']} min"),
        ("precision", train["precision"]),
        ("gradient checkpointing", train["gradient_checkpointing"]),
    ]
    run = [
        ("training rows", f"{train['rows']} {train['unit']}"),
        ("steps", train["steps"]),
        ("epochs", _format(train["epochs"])),
        ("stopped", train["stopped"]),
        ("kept", _kept(metrics["selection"])),
        (f"{train['unit']} per second", _format(train[f"{train['unit']}_per_s"])),
        ("train loss (mean)", _format(train["loss"])),
        ("wall time", f"{train['seconds']:.0f} s on {train['device']} ({train['cpu']})"),
    ]
    sections = [
        "---",
        "library_name: sentence-transformers",
        f"base_model: {config['base_model']}",
        "pipeline_tag: text-ranking",
        "tags: [sentence-transformers, cross-encoder, reranker, product-matching]",
        "---",
        "",
        f"# Product reranker fine-tuned from `{config['base_model']}`",
        "",
        (
            "A [sentence-transformers](https://www.sbert.net) CrossEncoder that scores "
            "(query product, candidate product) pairs: same product (score near 1) or "
            "not (near 0), for catalogue deduplication and reranking."
        ),
        "",
        "## Model details",
        "",
        _table(
            [
                ("base model", f"`{config['base_model']}`"),
                ("max sequence length", config["max_length"]),
                ("output", "one score per pair"),
                ("activation", f"`{metrics['activation']}`"),
                (
                    "decision threshold",
                    f"{threshold:.4f} ({metrics['threshold_source']})",
                ),
            ],
            ("", ""),
        ),
        "",
        (
            "The loss trains raw logits; the checkpoint saves a Sigmoid activation, so "
            "`predict` returns scores in [0, 1]. Treat a pair as a duplicate when its "
            f"score is at least the decision threshold ({threshold:.4f})."
        ),
        "",
        "## Training data",
        "",
        *[f"- `{name}` ({fmt})" for name, fmt in train["files"]],
        "",
        "## Training procedure",
        "",
        f"Recipe: {_RECIPES[metrics['recipe']]}. Loss: {_LOSSES[config['loss']]}.",
        "",
        _table(hyper, ("hyperparameter", "value")),
        "",
        _table(run, ("run", "value")),
        "",
        "## Evaluation",
        "",
    ]
    evaluated = [fmt for fmt in ("pairs", "listwise") if fmt in evaluation]
    for fmt in evaluated:
        sections += [
            f"### {fmt} eval data",
            "",
            *[f"- `{name}`" for name in metrics["eval_files"][fmt]],
            "",
            _table(_metric_rows(evaluation[fmt]), ("metric", "value")),
            "",
        ]
    if not evaluated:
        sections += ["No evaluation data was given.", ""]
    sections += [
        "## Usage",
        "",
        "```python",
        "from sentence_transformers import CrossEncoder",
        "",
        'model = CrossEncoder("path/to/this/checkpoint")',
        "scores = model.predict([",
        '    ("DRK CHCLT BAR, COCONUT 3.5OZ",',
        '     "Nordvik 70 % Cacao Dark Chocolate With Coconut, 100 g"),',
        "])",
        f"is_duplicate = scores >= {threshold:.4f}",
        "```",
        "",
        "For batch scoring with ONNX Runtime:",
        "",
        "```bash",
        "scorer export path/to/this/checkpoint -o artifact/",
        "scorer run pairs.parquet -m artifact/ -o scores.parquet",
        "```",
        "",
        f"Library versions: {_versions(metrics['versions'])}.",
        "",
    ]
    return "\n".join(str(part) for part in sections)


def _kept(selection: dict[str, Any]) -> str:
    best = selection["best"]
    if best is None:
        return selection["rule"]
    return f"{selection['rule']}: epoch {best['epoch']:.2f} (step {best['step']}, eval F1 {best['valid_f1']:.4f})"


def _versions(versions: dict[str, str]) -> str:
    return ", ".join(f"{name} {version}" for name, version in versions.items())

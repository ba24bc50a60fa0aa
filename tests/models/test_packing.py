"""Packed documents (seq_idx): every model gives each document the logits it gets alone."""

from __future__ import annotations

import pytest
import torch
from model_testing import VOCAB, relative_error, tiny_config

from mamba_lm import InferenceParams, build_model
from mamba_lm.modules.packing import document_positions, run_per_document


@pytest.mark.parametrize("kind", ["mamba", "s4d", "mamba_s4d", "transformer"])
def test_packed_documents_match_each_document_alone(kind):
    model = build_model(tiny_config(kind))
    ids = torch.randint(0, VOCAB, (2, 13))
    lengths = [[6, 2, 5], [1, 9, 3]]  # documents shorter than the conv width too
    seq_idx = torch.stack([torch.repeat_interleave(torch.arange(3), torch.tensor(row)) for row in lengths])
    packed = model(ids, seq_idx=seq_idx.to(torch.int32)).logits
    for row, row_lengths in enumerate(lengths):
        start = 0
        for length in row_lengths:
            alone = model(ids[row : row + 1, start : start + length]).logits
            assert relative_error(packed[row : row + 1, start : start + length], alone) < 1e-5
            start += length
    unpacked = model(ids).logits
    assert relative_error(packed, unpacked) > 1e-3  # the boundaries do change the result


def test_run_per_document_equals_separate_runs():
    x = torch.randn(2, 7, 3)
    seq_idx = torch.tensor([[4, 4, 5, 5, 5, 9, 9], [0, 0, 0, 0, 0, 0, 1]])
    packed = run_per_document(lambda t: t.cumsum(dim=1), x, seq_idx)
    expected = torch.cat([x[0, :2].cumsum(0), x[0, 2:5].cumsum(0), x[0, 5:].cumsum(0)])
    assert torch.allclose(packed[0], expected)
    assert torch.allclose(packed[1], torch.cat([x[1, :6].cumsum(0), x[1, 6:]]))
    doc, pos = document_positions(seq_idx)
    assert doc.tolist() == [[0, 0, 1, 1, 1, 2, 2], [0, 0, 0, 0, 0, 0, 1]]
    assert pos.tolist() == [[0, 1, 0, 1, 2, 0, 1], [0, 1, 2, 3, 4, 5, 0]]


@pytest.mark.parametrize("kind", ["mamba", "s4d", "mamba_s4d", "transformer"])
def test_packed_documents_and_an_inference_cache_are_refused_together(kind):
    model = build_model(tiny_config(kind))
    ids = torch.randint(0, VOCAB, (1, 6))
    params = InferenceParams(max_seqlen=6, max_batch_size=1)
    with pytest.raises(ValueError, match="seq_idx .packed documents. cannot be combined"):
        model.backbone.layers[0].mixer(
            model.backbone.embedding(ids),
            seq_idx=torch.zeros(1, 6, dtype=torch.int32),
            inference_params=params,
        )

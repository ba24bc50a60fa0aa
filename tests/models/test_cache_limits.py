"""A decoding cache too large for the device fails with one ValueError naming the length and the limit."""

from __future__ import annotations

import re

import pytest
import torch

import mamba_lm.generation as generation
from mamba_lm import build_model, configs
from mamba_lm.generation import InferenceParams, check_decoding_fits
from mamba_lm.static_decoder import inference_cache_bytes


@pytest.fixture
def transformer():
    torch.manual_seed(0)
    return build_model(configs.get("transformer_tiny", vocab_size=64)).eval()


def test_generate_refuses_a_kv_cache_larger_than_the_device(transformer):
    prompt = torch.randint(0, 64, (1, 4))
    with pytest.raises(
        ValueError, match=r"decoding 1,000,000,004 positions .* GiB of cpu: at most [\d,]+ positions"
    ):
        transformer.generate(prompt, max_new_tokens=10**9)


def test_a_forward_with_a_huge_inference_cache_is_refused_before_allocating(transformer):
    params = InferenceParams(max_seqlen=10**9, max_batch_size=1)
    with pytest.raises(
        ValueError, match=r"1,000,000,000 positions \(InferenceParams.max_seqlen\).*lower max_seqlen"
    ):
        transformer(torch.randint(0, 64, (1, 4)), inference_params=params)
    assert params.key_value_memory_dict == {}  # nothing allocated
    mamba = build_model(configs.get("mamba_tiny", vocab_size=64)).eval()  # a fixed-size state: any length
    mamba(torch.randint(0, 64, (1, 4)), inference_params=InferenceParams(max_seqlen=10**9, max_batch_size=1))


def test_the_limit_named_is_the_longest_length_that_fits(transformer, monkeypatch):
    def needed(length: int) -> int:
        return inference_cache_bytes(transformer, 2, length) + 2 * length * generation.TOKEN_BYTES

    monkeypatch.setattr(generation, "device_memory", lambda device: (needed(100), needed(100)))
    check_decoding_fits(transformer, 2, 100, torch.device("cpu"))
    with pytest.raises(ValueError) as error:
        check_decoding_fits(transformer, 2, 101, torch.device("cpu"))
    assert re.search(r"decoding 101 positions .* at most 100 positions could fit", str(error.value))
    prompt = torch.randint(0, 64, (2, 4))
    assert transformer.generate(prompt, max_new_tokens=90, cuda_graph=False).shape == (2, 94)

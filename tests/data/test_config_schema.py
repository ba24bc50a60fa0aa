"""Data configs go through OmegaConf's structured configs: values convert as in the Hydra configs, errors name
the key."""

from __future__ import annotations

import pytest
from mamba_lm.data import parse_data_config


def test_values_convert_to_the_field_types_as_hydra_would():
    config = parse_data_config({"kind": "induction_heads", "seqlen": "128", "eval_seqlens": ["64", 128]})
    assert config.seqlen == 128 and config.eval_seqlens == [64, 128]


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"kind": "lm", "seqlen": True}, TypeError, "data.seqlen must be int, got bool True"),
        (
            {"kind": "lm", "validation": {"max_blocks": "x"}},
            TypeError,
            "data.validation.max_blocks must be int or null",
        ),
        (
            {"kind": "lm", "dataset": {"files": "a.txt"}},
            TypeError,
            "data.dataset.files must be a list of str or null",
        ),
        (
            {"kind": "induction_heads", "eval_seqlens": [64, "x"]},
            TypeError,
            "data.eval_seqlens[1]: Value 'x'",
        ),
        ({"kind": "lm", "tokenizer": {"vocab": 3}}, ValueError, "data.tokenizer: unknown key(s) ['vocab']"),
        ({"kind": "lm", "seqlen": 0}, ValueError, "data.seqlen"),
    ],
)
def test_errors_name_the_key(values, error, message):
    with pytest.raises(error) as raised:
        parse_data_config(values)
    assert message in str(raised.value)

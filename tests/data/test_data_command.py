"""``python -m data build NAME KEY=VALUE``: the config comes from the Hydra configs' data group (the
checkout's or the installed copy), overrides merge as in Hydra, and a bad key is one line naming it."""

from __future__ import annotations

import json

from mamba_lm.data.__main__ import load_config, main


def test_overrides_merge_into_the_named_config():
    config = load_config("induction_heads", ["seqlen=64", "data.val_examples=8", "eval_seqlens=[64,128]"])
    assert config.kind == "induction_heads" and config.seqlen == 64 and config.val_examples == 8
    assert list(config.eval_seqlens) == [64, 128]


def test_build_describes_the_data_and_a_bad_key_is_one_line(tmp_path, capsys):
    cache = f"cache_dir={tmp_path}"
    assert main(["build", "induction_heads", "seqlen=64", "val_examples=8", cache]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["seqlen"] == 64 and described["vocab_size"] == 16
    assert main(["build", "induction_heads", "colour=blue", cache]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "colour" in error and len(error.strip().splitlines()) == 1


def test_an_unknown_config_names_the_known_ones(capsys):
    try:
        load_config("no_such_data", [])
    except SystemExit as stop:
        assert "no data config 'no_such_data'; known:" in str(stop) and "code_corpus" in str(stop)
    else:
        raise AssertionError("expected SystemExit")

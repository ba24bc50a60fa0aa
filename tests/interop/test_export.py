"""``python -m evaluation export``: a folder that transformers' Auto classes load with the same logits, the
run's own tokenizer (same ids, real EOS/pad ids) and a generation config; the Hub upload's arguments."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from evaluation_parts import EOS, generated_sentences
from helpers import CountingLoader, tiny_trainer
from mamba_lm.evaluation.__main__ import main
from mamba_lm.evaluation.text_tokenizer import TextTokenizer

from mamba_lm import MambaConfig, MambaLMHeadModel, TransformerConfig, TransformerLMHeadModel

VOCAB = 320


def _run(kind: str, root, tokenizer_file, accelerator):
    """A run folder of 2 training steps on a VOCAB-token model, with the tokenizer beside it."""
    torch.manual_seed(0)
    if kind == "mamba":
        model = MambaLMHeadModel(MambaConfig(d_model=16, n_layer=2, vocab_size=VOCAB, d_state=4))
    else:
        model = TransformerLMHeadModel(TransformerConfig(d_model=16, n_layer=2, n_head=2, vocab_size=VOCAB))
    run = root / f"run_{kind}"
    tiny_trainer(accelerator, run, model=model, loader=CountingLoader(4, vocab=VOCAB), max_steps=2).fit()
    (run / "tokenizer.json").write_bytes(tokenizer_file.read_bytes())
    return run, model.eval()


@pytest.mark.parametrize("kind", ["mamba", "transformer"])
def test_export_loads_with_auto_classes(kind, tmp_path, tokenizer_file, accelerator):
    run, model = _run(kind, tmp_path, tokenizer_file, accelerator)
    out = tmp_path / "export"
    assert main(["export", f"checkpoint={run}", f"out={out}"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= names
    assert "tokenizer_config.json" in names

    hf_model = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    ours = TextTokenizer.from_file(tokenizer_file)
    text = " ".join(generated_sentences(3, seed=5))
    ids = hf_tokenizer(text)["input_ids"]
    assert ids == ours.encode(text)  # no added BOS/EOS: the ids training saw
    assert hf_tokenizer.decode(ids) == ours.decode(ids)
    eos = ours.token_to_id(EOS)
    assert hf_tokenizer.eos_token_id == hf_model.config.eos_token_id == eos
    assert hf_tokenizer.pad_token_id == hf_model.config.pad_token_id == eos  # no dedicated pad token
    assert hf_model.generation_config.eos_token_id == eos
    assert json.loads((out / "generation_config.json").read_text())["pad_token_id"] == eos

    input_ids = torch.tensor([ids[:12]])
    with torch.no_grad():
        expected = model(input_ids).logits
        assert torch.allclose(hf_model(input_ids).logits, expected, atol=1e-4)
        greedy = hf_model.generate(input_ids, max_new_tokens=4, do_sample=False)
    assert torch.equal(greedy, model.generate(input_ids, max_new_tokens=4, top_k=1))


def test_export_arguments_and_refusals(tmp_path, tokenizer_file, accelerator, monkeypatch, capsys):
    run, _ = _run("mamba", tmp_path, tokenizer_file, accelerator)
    calls = []

    class FakeApi:  # the real code path up to the network: HfApi's two calls and their arguments
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))
            return "https://huggingface.co/me/tiny/commit/abc"

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    out = tmp_path / "bf16"
    args = ["export", f"checkpoint={run}", f"out={out}", "push_to_hub=me/tiny", "private=true", "dtype=bf16"]
    assert main(args) == 0
    assert calls[1] == ("create_repo", "me/tiny", {"private": True, "exist_ok": True, "repo_type": "model"})
    assert calls[2] == (
        "upload_folder",
        {"folder_path": str(out), "repo_id": "me/tiny", "repo_type": "model"},
    )
    assert "uploaded" in capsys.readouterr().out
    assert transformers.AutoModelForCausalLM.from_pretrained(out, dtype="auto").dtype == torch.bfloat16

    assert main(["export", f"checkpoint={run}", f"out={out}"]) == 2  # not empty: no silent overwrite
    assert "not empty" in capsys.readouterr().err
    assert main(["export", f"checkpoint={run}", f"out={tmp_path / 'x'}", "push_to_hub=noslash"]) == 2
    assert "owner/name" in capsys.readouterr().err
    assert main(["export", f"checkpoint={run}"]) == 2
    assert "needs out=" in capsys.readouterr().err

"""Export a model with its tokenizer as a Hugging Face folder: ``export_to_hf(checkpoint, out)``.

The folder holds the transformers model (``MambaForCausalLM`` or ``LlamaForCausalLM``, through
``mamba_lm.hf.to_hf``: config.json + model.safetensors), the run's own tokenizer as a fast tokenizer
(tokenizer.json, tokenizer_config.json with the real EOS and padding tokens) and generation_config.json,
so that ``AutoModelForCausalLM.from_pretrained(out)`` and ``AutoTokenizer.from_pretrained(out)`` load it.
``push_to_hub(out, repo_id)`` uploads such a folder.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers

from mamba_lm.hf import to_hf

from .loading import load_for_eval, resolve_dtype
from .text_tokenizer import TextTokenizer

PAD_TOKENS = ("<pad>", "<|pad|>", "[PAD]", "<|padding|>")
"""Spellings of a dedicated padding token; without one the EOS token pads (as GPT-2 and GPT-NeoX do)."""


def export_to_hf(
    checkpoint: str | Path,
    out: str | Path,
    dtype: str = "float32",
    tokenizer: str | Path | None = None,
    eos_token: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the model at ``checkpoint`` (anything ``load_for_eval`` reads) into ``out``; returns ``out``.

    Args:
        dtype: the stored weights' dtype (float32, bfloat16, float16).
        tokenizer: a tokenizer.json to use instead of the checkpoint's own.
        eos_token: the EOS token's string when the tokenizer leaves it unclear.
        overwrite: write into a folder that already holds files (otherwise ``FileExistsError``).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"export folder {out} is not empty; choose another out= or pass overwrite=true")
    loaded = load_for_eval(checkpoint, device="cpu", tokenizer=tokenizer, eos_token=eos_token)
    text_tokenizer = loaded.tokenizer
    if text_tokenizer.vocab_size > loaded.model.config.padded_vocab_size:
        raise ValueError(
            f"the tokenizer has {text_tokenizer.vocab_size} tokens but the model's embedding only "
            f"{loaded.model.config.padded_vocab_size} rows: pass the tokenizer the model was trained with"
        )
    if text_tokenizer.eos_token_id is None:
        raise ValueError(
            f"the tokenizer {text_tokenizer.source} has no recognizable EOS token; "
            "pass eos_token=<its string>"
        )
    hf_tokenizer = fast_tokenizer(text_tokenizer)
    hf_model = to_hf(loaded.model).to(resolve_dtype(dtype, torch.device("cpu")))
    special = {
        "eos_token_id": hf_tokenizer.eos_token_id,
        "bos_token_id": hf_tokenizer.bos_token_id,
        "pad_token_id": hf_tokenizer.pad_token_id,
    }
    for key, value in special.items():
        setattr(hf_model.config, key, value)
    hf_model.generation_config = transformers.GenerationConfig(**special)
    if loaded.seqlen:
        hf_tokenizer.model_max_length = loaded.seqlen  # the length it was trained on
    out.mkdir(parents=True, exist_ok=True)
    hf_model.save_pretrained(out)
    hf_tokenizer.save_pretrained(out)
    return out


def fast_tokenizer(text_tokenizer: TextTokenizer) -> transformers.PreTrainedTokenizerFast:
    """The transformers tokenizer around the same ``tokenizers`` object: same ids, no special tokens added
    when encoding (as in training); BOS = EOS (documents are separated by EOS), padding by a dedicated
    token when the vocabulary has one, else by EOS."""
    eos = text_tokenizer.tokenizer.id_to_token(text_tokenizer.eos_token_id)
    pad = next((token for token in PAD_TOKENS if text_tokenizer.token_to_id(token) is not None), eos)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=text_tokenizer.tokenizer,
        eos_token=eos,
        bos_token=eos,
        pad_token=pad,
        add_bos_token=False,
        add_eos_token=False,
        clean_up_tokenization_spaces=False,
    )


def push_to_hub(folder: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Create ``repo_id`` on the Hugging Face Hub (if needed) and upload ``folder``; returns the commit URL.
    Credentials: ``token``, else the saved login / ``HF_TOKEN``."""
    from huggingface_hub import HfApi

    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"push_to_hub needs a repository id 'owner/name', got {repo_id!r}")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model")
    return str(getattr(commit, "commit_url", commit))

"""``python -m evaluation export checkpoint=RUN out=DIR [push_to_hub=OWNER/NAME] ...``.

Writes a Hugging Face folder (weights, config, tokenizer files, generation config) that
``AutoModelForCausalLM.from_pretrained(DIR)`` and ``AutoTokenizer.from_pretrained(DIR)`` load, and
optionally uploads it to the Hub.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cli import option
from ..export import export_to_hf, push_to_hub


@dataclass
class Options:
    checkpoint: str = option(help="run folder, checkpoint folder, or HF/mamba_ssm model folder")
    out: str = option(help="folder to write the transformers model and tokenizer into")
    push_to_hub: str | None = option(None, help="Hub repository OWNER/NAME to upload the folder to")
    private: bool = option(False, help="create the Hub repository as private (with push_to_hub)")
    dtype: str = option("float32", help="stored weights: float32 | bfloat16 | float16")
    tokenizer: str | None = option(None, help="tokenizer.json (default: the checkpoint's)")
    eos_token: str | None = option(None, help="the EOS token string, if the tokenizer leaves it unclear")
    overwrite: bool = option(False, help="write into a non-empty out folder")


def run(options: Options, positional: list[str]) -> int:
    if positional:
        raise ValueError(f"export takes key=value arguments only, got {positional}")
    out = export_to_hf(
        options.checkpoint,
        options.out,
        dtype=options.dtype,
        tokenizer=options.tokenizer,
        eos_token=options.eos_token,
        overwrite=options.overwrite,
    )
    print(f"exported {options.checkpoint} to {out}")
    if options.push_to_hub:
        url = push_to_hub(out, options.push_to_hub, private=options.private)
        print(f"uploaded {out} to https://huggingface.co/{options.push_to_hub} ({url})")
    return 0

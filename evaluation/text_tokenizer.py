"""The text tokenizer of a checkpoint: a ``tokenizer.json`` read with the ``tokenizers`` library.

Runs written by train.py carry a copy of their tokenizer.json; Hugging Face checkpoints carry one
too (plus tokenizer_config.json naming the EOS token). The EOS id is taken, in this order, from an
explicit argument, tokenizer_config.json's ``eos_token``, or the first of the usual EOS spellings
present in the vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer

COMMON_EOS_TOKENS = ("<|endoftext|>", "</s>", "<eos>", "<|eos|>", "<|end_of_text|>")


class TextTokenizer:
    """Encode text to token ids and back, without adding special tokens."""

    def __init__(self, tokenizer: Tokenizer, eos_token_id: int | None, source: str = "") -> None:
        self.tokenizer = tokenizer
        self.eos_token_id = eos_token_id
        self.source = source
        """Where the tokenizer came from (a path), for messages and result files."""

    @classmethod
    def from_file(cls, path: str | Path, eos_token: str | None = None) -> TextTokenizer:
        """Load a tokenizer.json (or a folder holding one); ``eos_token`` overrides the EOS lookup."""
        path = Path(path)
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(
                f"no tokenizer at {path}: expected a tokenizer.json file (runs of train.py keep one in the "
                "run folder; for other checkpoints pass tokenizer=PATH/TO/tokenizer.json)"
            )
        try:
            tokenizer = Tokenizer.from_file(str(file))
        except Exception as error:  # the tokenizers library raises a bare Exception on bad files
            raise ValueError(f"{file} is not a valid tokenizer.json: {error}") from error
        return cls(tokenizer, _find_eos_id(tokenizer, file.parent, eos_token), str(file))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def token_to_id(self, token: str) -> int | None:
        return self.tokenizer.token_to_id(token)


def _find_eos_id(tokenizer: Tokenizer, folder: Path, eos_token: str | None) -> int | None:
    if eos_token is not None:
        token_id = tokenizer.token_to_id(eos_token)
        if token_id is None:
            raise ValueError(f"eos_token {eos_token!r} is not in the tokenizer's vocabulary")
        return token_id
    config_file = folder / "tokenizer_config.json"
    if config_file.is_file():
        configured = json.loads(config_file.read_text(encoding="utf-8")).get("eos_token")
        if isinstance(configured, dict):  # older files store an AddedToken dict
            configured = configured.get("content")
        if isinstance(configured, str) and tokenizer.token_to_id(configured) is not None:
            return tokenizer.token_to_id(configured)
    for candidate in COMMON_EOS_TOKENS:
        if tokenizer.token_to_id(candidate) is not None:
            return tokenizer.token_to_id(candidate)
    return None

"""Batched decoding of prompts of different lengths, stopping at stop strings (lm-eval's generate_until).

Recurrent models cannot take left padding (a pad token would enter the state), so the rows of a
batch are kept in step instead (``mamba_lm.static_decoder``): the shortest prompt length is read in
parallel form, then every step feeds each row either its next prompt token (a row still reading its
longer prompt) or the token it just produced. Every row's state is therefore exactly that of its
own prompt, for Mamba, S4D and attention alike. The steps run on the device without host syncs (a
CUDA graph on a GPU); stop strings are looked for every ``check_every`` tokens and each
continuation is cut back to where its first one ended.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mamba_lm.static_decoder import Sampling, decoder_for

from .perplexity import autocast_context, model_device


@torch.inference_mode()
def decode_until(
    model: torch.nn.Module,
    prompts: list[list[int]],
    max_new_tokens: int,
    decode: Callable[[list[int]], str],
    stop_strings: list[str] | None = None,
    eos_token_id: int | None = None,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    vocab_size: int | None = None,
    compute_dtype: torch.dtype | None = None,
    generator: torch.Generator | None = None,
    cuda_graph: bool = True,
    check_every: int = 16,
) -> list[str]:
    """Continue every prompt until its text contains a stop string, it produces ``eos_token_id``, or it
    has ``max_new_tokens`` new tokens; return each continuation's text (stop string included, the
    caller cuts it), EOS excluded.

    Args:
        model: a causal LM taking ``(input_ids, inference_params=, num_last_tokens=)``.
        prompts: token ids, each non-empty.
        decode: token ids -> text (the tokenizer's decode).
        temperature: 0 = greedy; else sampling with ``top_k`` / ``top_p`` (mamba_lm.generation.sample).
        vocab_size: sample only ids below it (padded embedding rows never come out).
        compute_dtype: autocast dtype (None or float32: the weights' own).
        cuda_graph: on a GPU, replay the decode step as one CUDA graph (not with a ``generator``).
    """
    if not prompts or any(len(prompt) == 0 for prompt in prompts):
        raise ValueError("decode_until needs at least one prompt and no empty prompt")
    if max_new_tokens == 0:
        return ["" for _ in prompts]
    device = model_device(model)
    stop_strings = [stop for stop in (stop_strings or []) if stop]
    lengths = [len(prompt) for prompt in prompts]
    padded = torch.zeros(len(prompts), max(lengths), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        padded[row, : len(prompt)] = torch.tensor(prompt, dtype=torch.long)

    def continuation(tokens: torch.Tensor, row: int) -> list[int]:
        """Row ``row``'s new tokens, at most max_new_tokens, cut before its first EOS."""
        new = tokens[row, lengths[row] : lengths[row] + max_new_tokens].tolist()
        return new[: new.index(eos_token_id)] if eos_token_id in new else new

    def row_done(tokens: torch.Tensor, row: int) -> bool:
        new = tokens[row, lengths[row] : lengths[row] + max_new_tokens].tolist()
        return eos_token_id in new or len(new) == max_new_tokens or _has_stop(decode(new), stop_strings)

    def every_row_done(tokens: torch.Tensor) -> bool:
        return all(row_done(tokens, row) for row in range(len(prompts)))

    with autocast_context(device, compute_dtype):
        decoder = decoder_for(
            model,
            len(prompts),
            max(lengths) + max_new_tokens,
            Sampling(temperature, top_k, top_p),
            eos_token_id,
            vocab_size,
            device,
            cuda_graph=cuda_graph and device.type == "cuda" and generator is None,
        )
        tokens = decoder.run(
            padded.to(device),
            lengths,
            max_new_tokens,
            check_every=check_every,
            should_stop=every_row_done if stop_strings else None,
            generator=generator,
        ).cpu()
    return [_cut_at_stop(continuation(tokens, row), decode, stop_strings) for row in range(len(prompts))]


def _cut_at_stop(tokens: list[int], decode: Callable[[list[int]], str], stop_strings: list[str]) -> str:
    """The text of the shortest prefix of ``tokens`` whose text contains a stop string (all of it if none)."""
    text = decode(tokens)
    if not _has_stop(text, stop_strings):
        return text
    for count in range(1, len(tokens) + 1):
        prefix = decode(tokens[:count])
        if _has_stop(prefix, stop_strings):
            return prefix
    return text


def _has_stop(text: str, stop_strings: list[str]) -> bool:
    return any(stop in text for stop in stop_strings)

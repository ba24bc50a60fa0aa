"""Batched recurrent decoding of prompts of different lengths, stopping at stop strings.

Recurrent models cannot take left padding (a pad token would enter the state), so the rows of a
batch are kept in step instead: the shortest prompt length is read in parallel form (filling the
inference cache), then every step feeds each row either its next prompt token (a row still reading
its longer prompt) or the token it just produced. Every row's state is therefore exactly that of
its own prompt, for Mamba, S4D and attention alike, and all rows share one cache position.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mamba_lm.generation import InferenceParams, sample

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
    """
    if not prompts or any(len(prompt) == 0 for prompt in prompts):
        raise ValueError("decode_until needs at least one prompt and no empty prompt")
    device = model_device(model)
    stop_strings = [stop for stop in (stop_strings or []) if stop]
    batch = len(prompts)
    shortest, longest = min(map(len, prompts)), max(map(len, prompts))
    params = InferenceParams(max_seqlen=longest + max_new_tokens, max_batch_size=batch)
    generated: list[list[int]] = [[] for _ in prompts]
    done = [max_new_tokens == 0] * batch

    next_input = torch.tensor([prompt[:shortest] for prompt in prompts], dtype=torch.long, device=device)
    position = shortest  # tokens of every row already read
    while not all(done):
        with autocast_context(device, compute_dtype):
            logits = model(next_input, inference_params=params, num_last_tokens=1).logits[:, -1]
        params.seqlen_offset += next_input.shape[1]
        if vocab_size is not None:
            logits = logits[:, :vocab_size]
        produced = sample(logits.float(), temperature, top_k, top_p, generator).tolist()
        step_tokens = []
        for row, prompt in enumerate(prompts):
            if position < len(prompt):  # still reading its prompt: the prediction is not used
                step_tokens.append(prompt[position])
                continue
            token = produced[row]
            step_tokens.append(token)
            if done[row]:
                continue
            if token == eos_token_id:
                done[row] = True
                continue
            generated[row].append(token)
            if len(generated[row]) >= max_new_tokens or _has_stop(decode(generated[row]), stop_strings):
                done[row] = True
        next_input = torch.tensor(step_tokens, dtype=torch.long, device=device)[:, None]
        position += 1
    return [decode(tokens) for tokens in generated]


def _has_stop(text: str, stop_strings: list[str]) -> bool:
    return any(stop in text for stop in stop_strings)

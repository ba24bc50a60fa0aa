"""``python -m evaluation generate checkpoint=RUN prompt=TEXT max_new_tokens=N [temperature=0] ...``.

Continues a prompt (or every line of ``prompts_file``) with the checkpoint's model and its own
tokenizer, and prints only the continuation on stdout (with ``prompts_file``: one line per prompt,
line breaks inside a continuation written as ``\\n``); progress and speed go to stderr. Greedy by
default (temperature=0), hence deterministic; sampling is seeded by ``seed``. Runs on the CPU or a
GPU (there the decode step is one CUDA graph). Decoding stops at the tokenizer's EOS token.

Before anything is allocated, the decoding cache (KV cache, SSM states) is sized for the longest
prompt plus max_new_tokens and compared with the memory free on the device.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mamba_lm.generation import GIB, device_memory
from mamba_lm.static_decoder import inference_cache_bytes

from ..cli import option
from ..decoding import decode_until
from ..loading import load_for_eval, resolve_device, resolve_dtype
from ..perplexity import autocast_context

PREFILL_BYTES_PER_TOKEN_AND_WIDTH = 64
"""Rough peak of the prompt's parallel forward, per token and model width (fp32 intermediates of one
layer at a time, Mamba's expand 2 included); added to the cache when checking what fits."""


@dataclass
class Options:
    checkpoint: str = option(help="run folder, checkpoint folder, or HF/mamba_ssm model folder")
    prompt: str | None = option(None, help="the text to continue")
    prompts_file: str | None = option(None, help="a text file with one prompt per line (instead of prompt)")
    max_new_tokens: int = option(64, help="tokens to generate after each prompt (fewer at EOS)")
    temperature: float = option(0.0, help="0: greedy (deterministic); > 0: sample at this temperature")
    top_k: int = option(0, help="sample among the k most likely tokens (0: all)")
    top_p: float = option(1.0, help="sample among the most likely tokens holding this probability")
    seed: int = option(0, help="random seed for sampling")
    batch_size: int = option(8, help="prompts decoded together")
    device: str | None = option(None, help="cpu | cuda | cuda:N (default: cuda when available)")
    dtype: str = option("auto", help="autocast dtype: auto | float32 | bfloat16 | float16")
    tokenizer: str | None = option(None, help="tokenizer.json (default: the checkpoint's)")
    max_memory_gb: float | None = option(
        None, help="memory the decoding may take, in GiB (default: what the device has free)"
    )


def run(options: Options, positional: list[str]) -> int:
    if positional:
        raise ValueError(f"generate takes key=value arguments only, got {positional}")
    texts = _read_prompts(options)
    if options.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {options.max_new_tokens}")
    if options.batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {options.batch_size}")
    if options.temperature < 0 or options.top_k < 0 or not 0 < options.top_p <= 1:
        raise ValueError(
            "need temperature >= 0, top_k >= 0 and 0 < top_p <= 1, got "
            f"temperature={options.temperature}, top_k={options.top_k}, top_p={options.top_p}"
        )
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    loaded = load_for_eval(options.checkpoint, device, tokenizer=options.tokenizer)
    tokenizer, model = loaded.tokenizer, loaded.model
    prompts = [tokenizer.encode(text) for text in texts]
    for number, (text, ids) in enumerate(zip(texts, prompts), start=1):
        if not ids:
            where = "prompt" if options.prompt is not None else f"line {number} of {options.prompts_file}"
            raise ValueError(f"{where} is empty: {text!r} encodes to no token")
    batch = min(options.batch_size, len(prompts))
    if device.type == "cuda" and dtype != torch.float32:
        _cast_weights(model, dtype)  # no per-step weight casts inside the CUDA graph
    with autocast_context(device, dtype):
        _check_memory(model, batch, max(map(len, prompts)), options, device)

    torch.manual_seed(options.seed)
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    started, generated = time.perf_counter(), 0
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        outputs = decode_until(
            model,
            chunk,
            options.max_new_tokens,
            tokenizer.decode,
            eos_token_id=tokenizer.eos_token_id,
            temperature=options.temperature,
            top_k=options.top_k,
            top_p=options.top_p,
            vocab_size=vocab_size,
            compute_dtype=dtype,
        )
        for text in outputs:
            print(text if options.prompt is not None else text.replace("\n", "\\n"), flush=True)
        generated += sum(len(tokenizer.encode(text)) for text in outputs)
    seconds = time.perf_counter() - started
    print(
        f"generated about {generated} tokens for {len(prompts)} prompt(s) in {seconds:.2f} s "
        f"({generated / seconds:.1f} tokens/s, {device}, {str(dtype).removeprefix('torch.')}, "
        f"batch {batch})",
        file=sys.stderr,
    )
    return 0


def _cast_weights(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Weights in the compute dtype, except the SSM parameters kept in fp32 (marked ``_no_weight_decay``:
    A_log, D, S4D's log_dt ...), as autocast would compute with them anyway."""
    for parameter in model.parameters():
        if parameter.is_floating_point() and not getattr(parameter, "_no_weight_decay", False):
            parameter.data = parameter.data.to(dtype)


def _read_prompts(options: Options) -> list[str]:
    if (options.prompt is None) == (options.prompts_file is None):
        raise ValueError("give exactly one of prompt=TEXT or prompts_file=FILE")
    if options.prompt is not None:
        if not options.prompt:
            raise ValueError("prompt is empty: give the text to continue")
        return [options.prompt]
    path = Path(options.prompts_file)
    if not path.is_file():
        raise FileNotFoundError(f"prompts_file {path} does not exist")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ValueError(f"prompts_file {path} holds no prompt")
    for number, line in enumerate(lines, start=1):
        if not line:
            raise ValueError(f"line {number} of prompts_file {path} is empty (one prompt per line)")
    return lines


def _check_memory(
    model: torch.nn.Module, batch: int, longest_prompt: int, options: Options, device: torch.device
) -> None:
    """Size the cache on the meta device and compare it with the free memory, before allocating."""
    length = longest_prompt + options.max_new_tokens
    width = getattr(getattr(model, "config", None), "d_model", 0)
    per_row = inference_cache_bytes(model, 1, length) + length * width * PREFILL_BYTES_PER_TOKEN_AND_WIDTH
    if options.max_memory_gb is not None:
        free, where = options.max_memory_gb * GIB, f"max_memory_gb={options.max_memory_gb}"
    else:
        memory = device_memory(device)
        if memory is None:
            return
        free, where = memory[0], f"free on {device}"
    if per_row > free:
        raise ValueError(
            f"prompt ({longest_prompt} tokens) + max_new_tokens={options.max_new_tokens} is too long: "
            f"one sequence of {length} tokens needs {per_row / GIB:.3g} GiB of cache, "
            f"{free / GIB:.3g} GiB {where}"
        )
    if batch * per_row > free:
        raise ValueError(
            f"batch_size={batch} does not fit: {batch} sequences of {length} tokens need "
            f"{batch * per_row / GIB:.3g} GiB of cache, {free / GIB:.3g} GiB {where}; "
            f"at most {int(free // per_row)} fit"
        )

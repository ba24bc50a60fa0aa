"""Recurrent decoding: the inference cache, sampling (temperature, top-k, top-p) and ``generate``.

The prompt runs once in parallel form and leaves each mixer's final state in the cache (Mamba: conv
window and SSM state; S4D: its state; attention: keys and values); every new token is then one
recurrent step of every layer. ``generate`` runs those steps through ``static_decoder.StaticDecoder``:
static buffers, sampling on the device, and on a GPU one CUDA graph replayed per token.

Attention's KV cache grows with the length it is allocated for: before allocating, the decoding
memory is sized on the meta device and compared with what the device has free
(``check_decoding_fits``, ``InferenceParams.layer_state``), so an impossible length fails with one
ValueError naming the length and the limit instead of an allocator error.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

GIB = 1024**3
TOKEN_BYTES = 8
"""Bytes per position and row of the decoder's int64 token buffer (besides the mixers' caches)."""


@dataclass
class InferenceParams:
    """The inference cache (mamba_ssm's name and fields). Mixers read and update their own state."""

    max_seqlen: int
    """Longest prompt + generated length the cache must hold (the KV cache is allocated this long)."""
    max_batch_size: int
    """Largest batch the cache holds."""
    seqlen_offset: int = 0
    """Tokens already processed: 0 while reading the prompt, then the position of the next token."""
    key_value_memory_dict: dict[int, Any] = field(default_factory=dict)
    """layer_idx -> that mixer's state (allocated on first use)."""
    position: torch.Tensor | None = None
    """When set, (1,) int64 on the model's device: the position of the token being read in a one-token
    step. Attention reads it instead of ``seqlen_offset``, so a captured CUDA graph stays valid as the
    position advances on the device."""

    def layer_state(self, mixer: nn.Module, batch_size: int, seq_idx: torch.Tensor | None = None) -> Any:
        """The state of ``mixer`` (identified by its ``layer_idx``), allocated for ``batch_size`` rows on
        first use; every later call must bring the same batch size. ``seq_idx``: the mixer's packed-document
        ids, refused (one cached state per row cannot hold several documents)."""
        if seq_idx is not None:
            raise ValueError(
                f"{type(mixer).__name__}: seq_idx (packed documents) cannot be combined with an "
                "inference cache"
            )
        if mixer.layer_idx is None:
            raise ValueError(
                f"{type(mixer).__name__}: a mixer used with an inference cache needs a layer_idx"
            )
        if batch_size > self.max_batch_size:
            raise ValueError(
                f"inference cache holds batches of up to {self.max_batch_size}, got {batch_size}"
            )
        if mixer.layer_idx not in self.key_value_memory_dict:
            _check_state_fits(mixer, batch_size, self.max_seqlen)
            state = mixer.allocate_inference_cache(batch_size, self.max_seqlen)
            self.key_value_memory_dict[mixer.layer_idx] = state
        state = self.key_value_memory_dict[mixer.layer_idx]
        cached_batch = (state[0] if isinstance(state, tuple) else state).shape[0]
        if cached_batch != batch_size:
            raise ValueError(
                f"the inference cache holds states for batch {cached_batch}, got batch {batch_size}"
            )
        return state


def device_memory(device: str | torch.device) -> tuple[int, int] | None:
    """(free, total) bytes of ``device``: CUDA's ``mem_get_info``, the CPU's MemAvailable and MemTotal; None
    if unknown (another device type, no /proc/meminfo)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return int(free), int(total)
    meminfo = Path("/proc/meminfo")
    if device.type != "cpu" or not meminfo.is_file():
        return None
    values = {}
    for line in meminfo.read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("MemAvailable", "MemTotal"):
            values[name] = int(rest.split()[0]) * 1024
    return (values["MemAvailable"], values["MemTotal"]) if len(values) == 2 else None


def check_decoding_fits(model: nn.Module, batch_size: int, max_seqlen: int, device: torch.device) -> None:
    """Raise ValueError when decoding ``max_seqlen`` positions (prompt + new tokens) for ``batch_size`` rows
    needs more than all the memory of ``device``: the mixers' caches (attention's KV cache and RoPE tables
    grow with the length; SSM states do not) and the token buffer, sized on the meta device. The message
    names the length, the memory and the most positions that could fit. (Compared with the whole memory,
    not what is free now: a decoder kept from an earlier call holds memory it would give back.)
    Call under the autocast the decoding uses.
    """
    from .static_decoder import inference_cache_bytes

    def needed(length: int) -> int:
        return inference_cache_bytes(model, batch_size, length) + batch_size * length * TOKEN_BYTES

    memory = device_memory(device)
    total = needed(max_seqlen)
    if memory is None or total <= memory[1]:
        return
    limit, per_position = memory[1], needed(2) - needed(1)
    fits = max(0, (limit - needed(1)) // per_position + 1)
    raise ValueError(
        f"decoding {max_seqlen:,} positions (prompt + max_new_tokens) for batch {batch_size} needs "
        f"{total / GIB:.3g} GiB (KV cache and buffers), more than all {limit / GIB:.3g} GiB of {device}: "
        f"at most {fits:,} positions could fit at this batch size"
    )


def _check_state_fits(mixer: nn.Module, batch_size: int, max_seqlen: int) -> None:
    """Raise ValueError when ``mixer``'s cache for ``max_seqlen`` positions is larger than all the memory
    of the device its weights are on (sized on the meta device; a mixer that cannot is not checked)."""
    if "device" not in inspect.signature(mixer.allocate_inference_cache).parameters:
        return
    state = mixer.allocate_inference_cache(batch_size, max_seqlen, device="meta")
    tensors = state if isinstance(state, tuple) else (state,)
    needed = sum(tensor.numel() * tensor.element_size() for tensor in tensors)
    device = next(mixer.parameters()).device
    memory = device_memory(device) if device.type != "meta" else None
    if memory is not None and needed > memory[1]:
        raise ValueError(
            f"an inference cache of {max_seqlen:,} positions (InferenceParams.max_seqlen) for batch "
            f"{batch_size} needs {needed / GIB:.3g} GiB in layer {mixer.layer_idx} alone, more than all "
            f"{memory[1] / GIB:.3g} GiB of {device}: lower max_seqlen"
        )


def sample(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token per row. logits: (batch, vocab) float. Returns (batch,) int64.

    top_k=1 (or temperature=0) is greedy; top_k=0 keeps every token; top_p<1 keeps the smallest set of
    most likely tokens whose probability reaches top_p (nucleus sampling); temperature divides the logits.
    Only device operations of fixed shapes: no host synchronization, so it can run inside a CUDA graph.
    """
    if top_k < 0 or not 0.0 < top_p <= 1.0 or temperature < 0:
        raise ValueError(
            f"need top_k >= 0, 0 < top_p <= 1, temperature >= 0; got {top_k}, {top_p}, {temperature}"
        )
    if top_k == 1 or temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k > 0:
        kth_best = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # probability of the strictly more likely tokens
        sorted_logits = sorted_logits.masked_fill(mass_before >= top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = torch.softmax(logits, dim=-1)
    # argmax of p / E with E ~ Exp(1) is a draw from p (the smallest E / p wins an exponential race).
    race = torch.empty_like(probs).exponential_(generator=generator)
    return (probs / race).argmax(dim=-1)


@torch.no_grad()  # not inference_mode: the returned ids may feed a differentiable forward
def generate(
    model: nn.Module,
    input_ids: torch.Tensor,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    eos_token_id: int | None = None,
    vocab_size: int | None = None,
    generator: torch.Generator | None = None,
    cuda_graph: bool = True,
) -> torch.Tensor:
    """Decode recurrently. model: an LM whose forward takes (input_ids, inference_params=, num_last_tokens=)
    and returns ``.logits``. input_ids: (batch, prompt_len) int64, prompt_len >= 1.
    vocab_size: sample only ids below it (the padded embedding rows never come out).
    eos_token_id: a row that produced it keeps producing it; decoding stops when every row has.
    cuda_graph: on a CUDA device, capture the one-token step once (per model, batch size and
    settings; kept for the next call) and replay it; not with a ``generator`` (a graph samples with
    the default one: seed it with ``torch.manual_seed``).
    Returns (batch, prompt_len + generated) int64, generated <= max_new_tokens.
    """
    from .static_decoder import Sampling, decoder_for

    if input_ids.dim() != 2 or input_ids.shape[1] == 0 or input_ids.dtype.is_floating_point:
        raise ValueError(
            "generate: input_ids must be (batch, prompt_len >= 1) integers, "
            f"got {tuple(input_ids.shape)} {input_ids.dtype}"
        )
    if max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    sampling = Sampling(temperature, top_k, top_p)
    sample(torch.zeros(1, 2), **vars(sampling))  # bad settings fail here, before allocating
    batch, prompt_len = input_ids.shape
    if max_new_tokens == 0:
        return input_ids.long().clone()
    device = input_ids.device
    check_decoding_fits(model, batch, max(prompt_len + max_new_tokens, 2), device)
    decoder = decoder_for(
        model,
        batch,
        prompt_len + max_new_tokens,
        sampling,
        eos_token_id,
        vocab_size,
        device,
        cuda_graph=cuda_graph and device.type == "cuda" and generator is None,
    )
    return decoder.run(input_ids.long(), [prompt_len] * batch, max_new_tokens, generator=generator)

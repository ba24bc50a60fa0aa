"""The decoding engine behind ``generate``: static caches, one fixed-shape step, CUDA-graph replay.

Every buffer a decode step touches is allocated once per (model, batch, capacity, sampling):
the mixers' states (``InferenceParams``), the token ids so far, the position of the token being
read (a device tensor, so attention and RoPE need no Python int), the finished flags. A step reads
the last token, runs every layer's recurrent step, samples the next token on the device, and writes
it into those buffers: its shapes never change and nothing is read back to the host. On a GPU that
step is captured once in a CUDA graph and replayed for every token (one launch per token); on the
CPU it runs eagerly. The host looks at the device only every ``check_every`` tokens (has every
row finished?).

Rows of a batch may have prompts of different lengths: recurrent states cannot skip a padding token,
so the shortest prompt length is read in parallel form and every later step feeds each row either
its next prompt token (still reading) or the token it just produced.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .generation import InferenceParams, sample


@dataclass(frozen=True)
class Sampling:
    """How the next token is drawn (see ``mamba_lm.generation.sample``)."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0


def allocate_inference_cache(
    model: nn.Module, batch_size: int, max_seqlen: int, device: str | torch.device | None = None
) -> InferenceParams:
    """An ``InferenceParams`` with every mixer's state allocated now (zeros) instead of on first use.
    device="meta" sizes the cache without allocating memory (see ``inference_cache_bytes``)."""
    params = InferenceParams(max_seqlen=max_seqlen, max_batch_size=batch_size)
    for module in model.modules():
        if getattr(module, "layer_idx", None) is None or not hasattr(module, "allocate_inference_cache"):
            continue
        params.key_value_memory_dict[module.layer_idx] = _allocate(module, batch_size, max_seqlen, device)
    return params


def _allocate(module: nn.Module, batch_size: int, max_seqlen: int, device) -> Any:
    if device is None:
        return module.allocate_inference_cache(batch_size, max_seqlen)
    if "device" in inspect.signature(module.allocate_inference_cache).parameters:
        return module.allocate_inference_cache(batch_size, max_seqlen, device=device)
    # A mixer without a device argument: one row where its weights are, then the shapes on `device`.
    one_row = module.allocate_inference_cache(1, max_seqlen)
    tensors = one_row if isinstance(one_row, tuple) else (one_row,)
    resized = tuple(torch.empty((batch_size, *t.shape[1:]), dtype=t.dtype, device=device) for t in tensors)
    return resized if isinstance(one_row, tuple) else resized[0]


def inference_cache_bytes(model: nn.Module, batch_size: int, max_seqlen: int) -> int:
    """Bytes the decoding cache of ``model`` takes for this batch and length (KV caches, SSM states),
    computed on the meta device: nothing is allocated. Call under the autocast the decoding uses."""
    params = allocate_inference_cache(model, batch_size, max_seqlen, device="meta")
    return sum(
        tensor.numel() * tensor.element_size()
        for state in params.key_value_memory_dict.values()
        for tensor in (state if isinstance(state, tuple) else (state,))
    )


class StaticDecoder:
    """Static buffers and the captured decode step for one (model, batch size, capacity, sampling)."""

    def __init__(
        self,
        model: nn.Module,
        batch_size: int,
        max_seqlen: int,
        sampling: Sampling,
        eos_token_id: int | None,
        vocab_size: int | None,
        device: torch.device,
        cuda_graph: bool,
    ):
        """cuda_graph: capture the step (a CUDA device; sampling then uses the default generator)."""
        self.model_ref = weakref.ref(model)
        max_seqlen = max(max_seqlen, 2)  # room for the step captured at position 0
        self.batch_size, self.max_seqlen = batch_size, max_seqlen
        self.sampling, self.eos_token_id, self.vocab_size = sampling, eos_token_id, vocab_size
        self.generator: torch.Generator | None = None  # set by each run (eager decoding only)
        self.params = allocate_inference_cache(model, batch_size, max_seqlen)
        self.params.position = torch.zeros(1, dtype=torch.long, device=device)
        self.tokens = torch.zeros(batch_size, max_seqlen, dtype=torch.long, device=device)
        """(batch, max_seqlen): each row's prompt, then what it generated."""
        self.prompt_lengths = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
        self.input_ids = torch.zeros(batch_size, 1, dtype=torch.long, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        if cuda_graph:
            self._capture()

    # ---- the step (fixed shapes, no host sync) ----

    def _logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(batch, seqlen) ids -> (batch, vocab) logits of the last position, through the cache."""
        model = self.model_ref()
        if hasattr(model, "backbone") and hasattr(model, "lm_head"):
            # The LM's own forward checks the ids' range on the host: skipped for the step.
            hidden = model.backbone(input_ids, inference_params=self.params)
            logits = model.lm_head(hidden[:, -1])
        else:
            logits = model(input_ids, inference_params=self.params, num_last_tokens=1).logits[:, -1]
        return logits[:, : self.vocab_size] if self.vocab_size is not None else logits

    def _advance(self, logits: torch.Tensor) -> None:
        """Choose the token at position + 1 of every row (its prompt's, or sampled), record it, and
        make it the next input."""
        next_position = self.params.position + 1  # (1,)
        produced = sample(logits, **vars(self.sampling), generator=self.generator)  # (batch,)
        reading = next_position < self.prompt_lengths  # rows still inside their prompt
        if self.eos_token_id is not None:
            produced = produced.masked_fill(self.finished, self.eos_token_id)
            self.finished |= (produced == self.eos_token_id) & ~reading
        prompt_token = self.tokens.index_select(1, next_position)[:, 0]
        token = torch.where(reading, prompt_token, produced)
        self.tokens.index_copy_(1, next_position, token[:, None])
        self.input_ids.copy_(token[:, None])
        self.params.position.copy_(next_position)

    def _step(self) -> None:
        self._advance(self._logits(self.input_ids))

    def _capture(self) -> None:
        """Warm up on a side stream (Triton compiles, cuBLAS sets up), then capture one step on it.
        The warm-up's writes into the caches are overwritten by the next prompt.

        Kept apart from every other graph and from later eager work, whatever ran before:
        - the default CUDA generator's state is restored afterwards: the warm-up samples with it, and
          a seeded call that captures must draw what one that replays draws (a replay draws from the
          generator's current offset, as an eager step does);
        - cuBLAS's per-stream workspaces are dropped before and after the capture (as PyTorch's own
          CUDA-graph trees do), so the graph's workspace is allocated in its own memory pool and no
          eager call or later capture shares it, or frees it under the graph;
        - Python's garbage collector is off meanwhile, so no other model's decoder (its graph, its
          memory pool) is torn down in the middle of the capture."""
        device = self.tokens.device
        rng_state = torch.cuda.get_rng_state(device)
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            self.graph = self._warm_up_and_capture()
        finally:
            if gc_was_enabled:
                gc.enable()
            torch.cuda.synchronize(device)
            _drop_cublas_workspaces()
            torch.cuda.set_rng_state(rng_state, device)

    def _warm_up_and_capture(self) -> torch.cuda.CUDAGraph | None:
        """The captured step, or None (with a warning) when the step cannot be captured."""
        self.params.seqlen_offset = 1  # every mixer takes its one-token step
        with _graph_safe_autocast():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    self.params.position.zero_()  # the step writes at position + 1 < max_seqlen
                    self._step()
                self.params.position.zero_()
            torch.cuda.synchronize(self.tokens.device)
            _drop_cublas_workspaces()
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph, stream=side):
                    self._step()
            except RuntimeError as error:  # an op that cannot be captured (e.g. a host sync)
                warnings.warn(
                    f"CUDA graph capture of the decode step failed, decoding eagerly instead: {error}",
                    stacklevel=4,
                )
                return None
        return graph

    # ---- one batch of prompts ----

    def run(
        self,
        prompts: torch.Tensor,
        prompt_lengths: Sequence[int],
        max_new_tokens: int,
        check_every: int = 16,
        should_stop: Callable[[torch.Tensor], bool] | None = None,
        generator: torch.Generator | None = None,
        timings: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """Decode ``max_new_tokens`` tokens past each row's prompt, or until every row produced the EOS
        token (checked every ``check_every`` steps, and trimmed back to the step where the last row
        did), or until ``should_stop(tokens)`` says so (called every ``check_every`` steps with the
        tokens so far, (batch, length) on the CPU).

        prompts: (batch, longest) int64 on the decoder's device, each row's prompt left-aligned
        (anything after its length is ignored). Returns the tokens (batch, length) on the device:
        row r holds its prompt, then its generated tokens from prompt_lengths[r] on.
        generator: for sampling; only without a CUDA graph (a graph samples with the default one).
        timings: if given, filled with ``prefill_s`` (the prompt part and the first token) and
        ``decode_s`` / ``decode_steps`` (the steps after it), at the cost of two device syncs.
        """
        if generator is not None and self.graph is not None:
            raise ValueError("a CUDA-graph decoder samples with the default generator; pass generator=None")
        self.generator = generator
        shortest, longest = min(prompt_lengths), max(prompt_lengths)
        if prompts.shape != (self.batch_size, longest) or shortest < 1:
            raise ValueError(
                f"the decoder takes (batch={self.batch_size}, longest prompt) ids and prompt lengths >= 1, "
                f"got {tuple(prompts.shape)} and lengths {list(prompt_lengths)}"
            )
        self._check_token_range(prompts)
        if longest + max_new_tokens > self.max_seqlen:
            raise ValueError(
                f"the decoder holds {self.max_seqlen} positions, asked for {longest + max_new_tokens}"
            )
        self.tokens[:, :longest].copy_(prompts[:, :longest])
        self.prompt_lengths.copy_(torch.as_tensor(prompt_lengths, dtype=torch.long))
        self.finished.zero_()
        if max_new_tokens == 0:
            return self.tokens[:, :longest].clone()

        clock = _Clock(self.tokens.device) if timings is not None else None
        self.params.seqlen_offset = 0  # the prompt in parallel form fills the caches
        logits = self._logits(self.tokens[:, :shortest])
        self.params.position.fill_(shortest - 1)
        self._advance(logits)  # the token at position `shortest`
        self.params.seqlen_offset = shortest  # from now on one recurrent step per token
        if clock is not None:
            timings["prefill_s"] = clock.lap()

        steps = longest + max_new_tokens - shortest  # positions to fill after the prompt part
        done = 1
        while done < steps:
            for _ in range(min(check_every, steps - done)):
                if self.graph is not None:
                    self.graph.replay()
                else:
                    self._step()
            done += min(check_every, steps - done)
            self.params.seqlen_offset = shortest + done - 1
            if self._should_stop(shortest + done, should_stop):
                break
        length = shortest + done
        if clock is not None:
            timings["decode_s"], timings["decode_steps"] = clock.lap(), done - 1
        return self._trim_after_eos(self.tokens[:, :length], longest)

    def _check_token_range(self, prompts: torch.Tensor) -> None:
        """Ids outside the embedding would fail on the device (the step skips the LM's own check)."""
        embedding = getattr(getattr(self.model_ref(), "backbone", None), "embedding", None)
        if embedding is None or prompts.numel() == 0:
            return
        low, high = (int(value) for value in torch.stack(torch.aminmax(prompts)).tolist())
        if low < 0 or high >= embedding.num_embeddings:
            raise ValueError(
                f"input_ids must lie in [0, {embedding.num_embeddings}) (the padded vocabulary), "
                f"got values in [{low}, {high}]"
            )

    def _should_stop(self, length: int, should_stop: Callable[[torch.Tensor], bool] | None) -> bool:
        if self.eos_token_id is not None and bool(self.finished.all()):
            return True
        return should_stop is not None and should_stop(self.tokens[:, :length].cpu())

    def _trim_after_eos(self, tokens: torch.Tensor, longest: int) -> torch.Tensor:
        """When every row has produced the EOS token, cut the steps after the last row did."""
        if self.eos_token_id is None or not bool(self.finished.all()):
            return tokens.clone()
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        is_eos = (tokens == self.eos_token_id) & (positions >= self.prompt_lengths[:, None])
        first_eos = torch.where(is_eos, positions, tokens.shape[1]).min(dim=1).values
        return tokens[:, : max(int(first_eos.max()) + 1, longest)].clone()


class _Clock:
    """Wall time between laps, the device synchronized at each."""

    def __init__(self, device: torch.device):
        self.device = device
        self._sync()
        self.last = time.perf_counter()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def lap(self) -> float:
        self._sync()
        now = time.perf_counter()
        elapsed, self.last = now - self.last, now
        return elapsed


def _drop_cublas_workspaces() -> None:
    """Forget cuBLAS's cached per-(handle, stream) workspaces (a private PyTorch call, skipped where
    this build has none): the next cuBLAS call on a stream allocates a new one."""
    clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
    if clear is not None:
        clear()


@contextlib.contextmanager
def _graph_safe_autocast():
    """Under autocast, the same autocast without its weight-cast cache: a cast cached outside a CUDA
    graph would be missing from it (PyTorch asks for ``cache_enabled=False`` around capture)."""
    if not torch.is_autocast_enabled("cuda"):
        yield
        return
    with torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"), cache_enabled=False):
        yield


_DECODERS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, StaticDecoder]] = weakref.WeakKeyDictionary()


def decoder_for(
    model: nn.Module,
    batch_size: int,
    max_seqlen: int,
    sampling: Sampling,
    eos_token_id: int | None,
    vocab_size: int | None,
    device: torch.device,
    cuda_graph: bool,
) -> StaticDecoder:
    """The model's decoder for these settings, kept on the model object (a weak reference: it goes
    with the model). Reused while everything the captured step depends on is unchanged (see
    ``_capture_key``) and it is long enough; else a new one replaces it (one per model, so the old
    caches and graph are freed first)."""
    key = (batch_size, sampling, eos_token_id, vocab_size, device, cuda_graph, *_capture_key(model, device))
    cached = _DECODERS.get(model)
    if cached is not None and cached[0] == key and cached[1].max_seqlen >= max_seqlen:
        return cached[1]
    _DECODERS.pop(model, None)  # free the old caches before allocating new ones
    decoder = StaticDecoder(
        model, batch_size, max_seqlen, sampling, eos_token_id, vocab_size, device, cuda_graph
    )
    _DECODERS[model] = (key, decoder)
    return decoder


def _capture_key(model: nn.Module, device: torch.device) -> tuple:
    """What a captured step bakes in besides the decoder's settings: the address, dtype and device of
    every parameter and buffer (a graph reads those addresses), train/eval mode (dropout), the
    modules' fused / unfused paths, and the autocast, grad and inference-mode state."""
    autocast = torch.is_autocast_enabled(device.type)
    return (
        tuple((t.data_ptr(), t.dtype, t.device) for t in (*model.parameters(), *model.buffers())),
        tuple((m.training, getattr(m, "fused", None)) for m in model.modules()),
        autocast and torch.get_autocast_dtype(device.type),
        torch.is_grad_enabled(),
        torch.is_inference_mode_enabled(),
    )


def release_decoder(model: nn.Module) -> None:
    """Free the decoder kept for ``model`` (its caches and CUDA graph); the next decode builds a new one."""
    _DECODERS.pop(model, None)

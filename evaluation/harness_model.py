"""The lm-eval model ``mamba_lm``: Mamba / S4D / Transformer++ checkpoints with their tokenizer.

Registered with lm-eval by ``import evaluation``, so that::

    lm_eval.simple_evaluate(model="mamba_lm", model_args="checkpoint=RUN_DIR,dtype=bfloat16", tasks=[...])

works, as does ``MambaEvalLM(model=..., tokenizer=...)`` around a model already in memory.

- ``loglikelihood``: requests sorted by length (longest first), ``batch_size`` at a time, padded on
  the right (causal models: padding after a sequence cannot change its logits); the log-softmax
  over the model's (padded) vocabulary, exactly as the training loss.
- ``loglikelihood_rolling``: lm-eval's rolling windows of ``max_length`` tokens, disjoint, each token
  predicted once; scored through the same batched path.
- ``generate_until``: greedy (or sampled, when the task asks) recurrent decoding with the model's
  inference cache (``evaluation.decoding``), stopping each sequence at its first stop string or EOS.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm

from .decoding import decode_until
from .loading import load_for_eval, resolve_device, resolve_dtype
from .perplexity import autocast_context
from .text_tokenizer import TextTokenizer

DEFAULT_MAX_LENGTH = 2048
DEFAULT_MAX_GEN_TOKS = 256
AUTO_BATCH_LIMIT = 64
"""batch_size=auto: the largest batch tried on a GPU (lm-eval's max_batch_size overrides it)."""
CPU_AUTO_BATCH_SIZE = 16
"""batch_size=auto on the CPU, where memory is not probed."""
logger = logging.getLogger(__name__)

# (context, continuation) strings, context tokens, continuation tokens: what TemplateLM hands over.
TokenRequest = tuple[tuple[str, str] | None, list[int], list[int]]


class MambaEvalLM(TemplateLM):
    """lm-eval's LM interface over one of this project's causal LMs and its text tokenizer."""

    def __init__(
        self,
        checkpoint: str | None = None,
        batch_size: int | str = 1,
        device: str | None = None,
        dtype: str = "auto",
        max_length: int | None = None,
        max_gen_toks: int = DEFAULT_MAX_GEN_TOKS,
        tokenizer: str | TextTokenizer | None = None,
        eos_token: str | None = None,
        model: torch.nn.Module | None = None,
        max_batch_size: int | None = None,
        pretrained: str | None = None,
    ) -> None:
        """
        Args:
            checkpoint: a run folder of train.py, one of its checkpoint folders, a Hugging Face
                Mamba/Llama folder (config.json + weights) or a reference mamba_ssm folder.
            batch_size: requests per forward pass: an integer, or "auto" / "auto:N" (on a GPU the
                largest power of two up to max_batch_size whose forward pass at max_length fits in
                memory; on the CPU 16).
            device: "cpu", "cuda", "cuda:1"...; default: CUDA when available. A CUDA device on a
                machine without one falls back to the CPU with a warning (lm-eval's default is cuda:0).
            dtype: autocast compute dtype: "float32", "bfloat16", "float16" or "auto" (bfloat16 on a
                GPU that supports it, else float32). Weights stay fp32 as in training.
            max_length: longest token sequence fed to the model; default: the run's training seqlen,
                or 2048.
            max_gen_toks: default cap on generated tokens when a task does not give one.
            tokenizer: a tokenizer.json path (or a loaded TextTokenizer); default: the checkpoint's.
            eos_token: the EOS token string, when the tokenizer does not make it clear.
            model: a model already in memory (then ``tokenizer`` is required and ``checkpoint`` unused).
            max_batch_size: the largest batch batch_size=auto tries (default 64).
            pretrained: the same as ``checkpoint`` (the name lm-eval's ``hf`` model uses).
        """
        super().__init__()
        if pretrained is not None and checkpoint is not None and str(pretrained) != str(checkpoint):
            raise ValueError(f"mamba_lm got checkpoint={checkpoint} and pretrained={pretrained}: give one")
        checkpoint = checkpoint if checkpoint is not None else pretrained
        auto_batch = isinstance(batch_size, str) and batch_size.strip().lower().startswith("auto")
        self._batch_size = 1 if auto_batch else _parse_batch_size(batch_size)
        self._device = resolve_device(_available(device))
        self.compute_dtype = resolve_dtype(dtype, self._device)
        if model is None:
            if checkpoint is None:
                raise ValueError(
                    "mamba_lm needs model_args checkpoint=RUN_DIR_OR_CHECKPOINT (or pretrained=)"
                )
            loaded = load_for_eval(checkpoint, device=self._device, tokenizer=tokenizer, eos_token=eos_token)
            model, text_tokenizer, trained_length = loaded.model, loaded.tokenizer, loaded.seqlen
        else:
            if tokenizer is None:
                raise ValueError(
                    "MambaEvalLM(model=...) needs tokenizer= (a tokenizer.json path or TextTokenizer)"
                )
            text_tokenizer = (
                tokenizer
                if isinstance(tokenizer, TextTokenizer)
                else TextTokenizer.from_file(tokenizer, eos_token)
            )
            model, trained_length = model.to(self._device), None
        self.model = model.eval()
        self.text_tokenizer = text_tokenizer
        self._max_length = int(max_length or trained_length or DEFAULT_MAX_LENGTH)
        self.max_gen_toks = int(max_gen_toks)
        if auto_batch:
            self._batch_size = self._auto_batch_size(int(max_batch_size or AUTO_BATCH_LIMIT))
            logger.info("mamba_lm: batch_size=auto chose %d", self._batch_size)

    def _auto_batch_size(self, limit: int) -> int:
        """The largest power of two up to ``limit`` whose forward pass over max_length tokens fits in GPU
        memory (the log-softmax over the vocabulary included); on the CPU ``CPU_AUTO_BATCH_SIZE``."""
        if self.device.type != "cuda":
            return max(1, min(limit, CPU_AUTO_BATCH_SIZE))
        fits, size = 1, 1
        while size <= limit:
            try:
                with torch.no_grad(), autocast_context(self.device, self.compute_dtype):
                    tokens = torch.zeros(size, self.max_length, dtype=torch.long, device=self.device)
                    F.log_softmax(self.model(tokens).logits.float(), dim=-1)
            except torch.cuda.OutOfMemoryError:
                break
            finally:
                torch.cuda.empty_cache()
            fits, size = size, size * 2
        return fits

    # lm-eval's model properties -------------------------------------------------------------

    @property
    def eot_token_id(self) -> int:
        if self.text_tokenizer.eos_token_id is None:
            raise ValueError(
                f"the tokenizer {self.text_tokenizer.source} has no recognizable EOS token; pass "
                "model_args eos_token=<the EOS string>"
            )
        return self.text_tokenizer.eos_token_id

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def tokenizer_name(self) -> str:
        return self.text_tokenizer.source.replace("/", "__")

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        return self.text_tokenizer.encode(string)

    def tok_decode(self, tokens: list[int]) -> str:
        return self.text_tokenizer.decode(tokens)

    # scoring ----------------------------------------------------------------------------------

    @torch.no_grad()
    def _loglikelihood_tokens(
        self, requests: list[TokenRequest], disable_tqdm: bool = False, **kwargs
    ) -> list[tuple[float, bool]]:
        """Sum of log p(continuation | context) and whether greedy decoding would produce it."""
        for _, _, continuation in requests:
            if not continuation:
                raise ValueError("loglikelihood got an empty continuation (nothing to score)")
            if len(continuation) > self.max_length:
                raise ValueError(
                    f"a continuation of {len(continuation)} tokens is longer than "
                    f"max_length={self.max_length}"
                )
        order = sorted(range(len(requests)), key=lambda i: -len(requests[i][1]) - len(requests[i][2]))
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        for start in tqdm(range(0, len(order), self.batch_size), disable=disable_tqdm, desc="loglikelihood"):
            chunk = order[start : start + self.batch_size]
            scores = self._score_batch([(requests[i][1], requests[i][2]) for i in chunk])
            for index, score in zip(chunk, scores):
                results[index] = score
                if requests[index][0] is not None:
                    self.cache_hook.add_partial("loglikelihood", requests[index][0], score)
        return results  # type: ignore[return-value]

    def _score_batch(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """One forward pass over right-padded ``context + continuation[:-1]`` rows (left-truncated to
        max_length); the continuation's tokens are scored at the last positions of each row."""
        rows = [(context + continuation)[-(self.max_length + 1) :][:-1] for context, continuation in pairs]
        width = max(len(row) for row in rows)
        input_ids = torch.zeros(len(rows), width, dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        with autocast_context(self.device, self.compute_dtype):
            logits = self.model(input_ids.to(self.device)).logits
        log_probs = F.log_softmax(logits.float(), dim=-1)
        scores = []
        for r, (row, (_, continuation)) in enumerate(zip(rows, pairs)):
            positions = torch.arange(len(row) - len(continuation), len(row), device=self.device)
            targets = torch.tensor(continuation, dtype=torch.long, device=self.device)
            row_log_probs = log_probs[r, positions]  # (len(continuation), vocab)
            total = row_log_probs.gather(-1, targets[:, None]).sum().item()
            greedy = bool((row_log_probs.argmax(-1) == targets).all())
            scores.append((total, greedy))
        return scores

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Log-likelihood of whole documents (each separately), conditioned on the EOS token."""
        windows: list[TokenRequest] = []
        owners: list[int] = []
        for index, (text,) in enumerate(request.args for request in requests):
            token_windows = get_rolling_token_windows(
                token_list=self.tok_encode(text),
                prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length,
                context_len=1,
            )
            for context, continuation in map(make_disjoint_window, token_windows):
                windows.append((None, context, continuation))
                owners.append(index)
        window_scores = self._loglikelihood_tokens(windows, disable_tqdm=disable_tqdm)
        totals = [0.0] * len(requests)
        for owner, (log_prob, _) in zip(owners, window_scores):
            totals[owner] += log_prob
        for request, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", request.args, total)
        return totals

    # generation -------------------------------------------------------------------------------

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Continue each context until one of its stop strings (or EOS, or max_gen_toks tokens).

        Requests with the same generation kwargs are decoded together, ``batch_size`` at a time,
        longest context first. The returned text ends before the first stop string.
        """
        eos_text = (
            self.tok_decode([self.eot_token_id]) if self.text_tokenizer.eos_token_id is not None else None
        )
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(repr(sorted(request.args[1].items())), []).append(index)
        outputs: list[str | None] = [None] * len(requests)
        progress = tqdm(total=len(requests), disable=disable_tqdm, desc="generate_until")
        for indices in groups.values():
            gen_kwargs = normalize_gen_kwargs(requests[indices[0]].args[1], self.max_gen_toks)
            stops = handle_stop_sequences(gen_kwargs.pop("until", None), eos=eos_text)
            max_new = int(gen_kwargs.pop("max_gen_toks"))
            sampling = _sampling_options(gen_kwargs)
            if max_new >= self.max_length:
                raise ValueError(
                    f"max_gen_toks={max_new} must be below the model's max_length={self.max_length}"
                )
            encoded = {
                # an empty context is conditioned on EOS, as loglikelihood does
                i: self.tok_encode(requests[i].args[0])[-(self.max_length - max_new) :]
                or [self.prefix_token_id]
                for i in indices
            }
            indices = sorted(indices, key=lambda i: -len(encoded[i]))
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                texts = decode_until(
                    self.model,
                    [encoded[i] for i in chunk],
                    max_new_tokens=max_new,
                    decode=self.tok_decode,
                    stop_strings=stops,
                    eos_token_id=self.text_tokenizer.eos_token_id,
                    vocab_size=self.text_tokenizer.vocab_size,
                    compute_dtype=self.compute_dtype,
                    **sampling,
                )
                for index, text in zip(chunk, texts):
                    outputs[index] = postprocess_generated_text(text, stops, None)
                    self.cache_hook.add_partial("generate_until", requests[index].args, outputs[index])
                progress.update(len(chunk))
        progress.close()
        return outputs  # type: ignore[return-value]


def _available(device: str | None) -> str | None:
    """``device``, or "cpu" (with a warning) when it names CUDA on a machine without a GPU."""
    if device is not None and str(device).startswith("cuda") and not torch.cuda.is_available():
        logger.warning("mamba_lm: device=%s asked for, but no CUDA GPU is available: using the CPU", device)
        return "cpu"
    return device


def _parse_batch_size(batch_size: int | str) -> int:
    try:
        value = int(batch_size)
    except (TypeError, ValueError):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}") from None
    if value < 1:
        raise ValueError(f"batch_size must be a positive integer, got {value}")
    return value


def _sampling_options(gen_kwargs: dict) -> dict[str, float | int]:
    """Temperature / top-k / top-p for ``decode_until`` (temperature 0 = greedy); other keys are errors."""
    do_sample = bool(gen_kwargs.pop("do_sample", False))
    temperature = float(gen_kwargs.pop("temperature", 0.0) or 0.0)
    temperature = temperature if do_sample else 0.0
    options = {
        "temperature": temperature,
        "top_k": int(gen_kwargs.pop("top_k", 0) or 0),
        "top_p": float(gen_kwargs.pop("top_p", 1.0) or 1.0),
    }
    if gen_kwargs:
        raise ValueError(f"mamba_lm generate_until does not support generation kwargs {sorted(gen_kwargs)}")
    return options

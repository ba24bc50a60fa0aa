"""The causal-LM head shared by every language model here: backbone, tied LM head, forward and generate."""

from __future__ import annotations

from collections import namedtuple
from functools import partial

import torch
from torch import nn

from mamba_lm.kernels import linear_cross_entropy

from ..generation import InferenceParams, generate
from ..modules.packing import check_seq_idx
from .backbone import MixerModel, init_weights
from .loss import IGNORE_INDEX, LossSums, cross_entropy_sums

CausalLMOutput = namedtuple("CausalLMOutput", ["logits"])
"""What an LM's forward returns: ``.logits`` (batch, seqlen or num_last_tokens, padded_vocab)."""


class LMHeadModel(nn.Module):
    """backbone (MixerModel) + lm_head. Subclasses build the backbone from their config."""

    fused = True
    """With labels: the LM head and cross-entropy fused and chunked (``kernels.linear_cross_entropy``),
    never holding the whole logits (True), or logits then cross-entropy (False, the reference)."""

    def __init__(self, config, backbone: MixerModel, n_residuals_per_layer: int, device=None, dtype=None):
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.lm_head = nn.Linear(
            config.d_model, config.padded_vocab_size, bias=False, device=device, dtype=dtype
        )
        self.apply(
            partial(
                init_weights,
                n_layer=config.n_layer,
                initializer_range=config.initializer_range,
                rescale_prenorm_residual=config.rescale_prenorm_residual,
                n_residuals_per_layer=n_residuals_per_layer,
            )
        )
        if config.tie_embeddings:
            self.lm_head.weight = self.backbone.embedding.weight

    def forward(
        self,
        input_ids: torch.Tensor,
        seq_idx: torch.Tensor | None = None,
        inference_params: InferenceParams | None = None,
        num_last_tokens: int = 0,
        labels: torch.Tensor | None = None,
        count_correct: bool = False,
    ) -> CausalLMOutput | LossSums:
        """input_ids: (batch, seqlen) int64 token ids below the padded vocab size.
        seq_idx: (batch, seqlen) int, the document of each position in a packed row: no token sees an
        earlier document. inference_params: the decoding cache (see ``generate``).
        num_last_tokens: if > 0, only the logits of the last that many positions.
        Returns CausalLMOutput(logits (batch, seqlen or num_last_tokens, padded_vocab_size)).

        labels: (batch, seqlen) int64, the target of each position (IGNORE_INDEX = -100 where none):
        then returns LossSums(loss_sum fp32, count, correct) of the cross-entropy over the padded
        vocabulary instead of logits (argmax hits counted only with ``count_correct``)."""
        self.check_input_ids(input_ids)
        if seq_idx is not None:
            check_seq_idx(seq_idx, *input_ids.shape)
        hidden = self.backbone(input_ids, seq_idx=seq_idx, inference_params=inference_params)
        if labels is not None:
            if labels.shape != input_ids.shape or num_last_tokens > 0:
                raise ValueError(
                    f"labels must be (batch, seqlen) = {tuple(input_ids.shape)} without num_last_tokens, "
                    f"got {tuple(labels.shape)} and num_last_tokens={num_last_tokens}"
                )
            return self._loss(hidden, labels, count_correct)
        if num_last_tokens > 0:
            hidden = hidden[:, -num_last_tokens:]
        return CausalLMOutput(logits=self.lm_head(hidden))

    def _loss(self, hidden: torch.Tensor, labels: torch.Tensor, count_correct: bool) -> LossSums:
        """hidden (batch, seqlen, d_model), labels (batch, seqlen) -> LossSums."""
        if not self.fused:
            logits = self.lm_head(hidden)
            return cross_entropy_sums(logits.flatten(0, 1), labels.flatten(), count_correct)
        return LossSums(
            *linear_cross_entropy(
                hidden, self.lm_head.weight, labels, ignore_index=IGNORE_INDEX, count_correct=count_correct
            )
        )

    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int = 32,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        eos_token_id: int | None = None,
        generator: torch.Generator | None = None,
        cuda_graph: bool = True,
    ) -> torch.Tensor:
        """Decode recurrently from a prompt (batch, prompt_len) int64; greedy when top_k=1.
        On a GPU the one-token step is captured once as a CUDA graph and replayed (``cuda_graph=False``:
        eager steps; see ``mamba_lm.generation.generate``).
        Returns (batch, prompt_len + new) int64 (fewer new tokens only if every row hit eos_token_id)."""
        return generate(
            self,
            input_ids,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            eos_token_id=eos_token_id,
            vocab_size=self.config.vocab_size,
            generator=generator,
            cuda_graph=cuda_graph,
        )

    @classmethod
    def from_pretrained(cls, path, device=None, dtype=None):
        """The model stored at ``path``: a run, checkpoint, transformers, reference-package or
        ``save_pretrained`` folder (see ``mamba_lm.pretrained``); TypeError if it holds another class."""
        from ..pretrained import from_pretrained  # it builds models: imported when called (no cycle)

        model = from_pretrained(path, device=device, dtype=dtype)
        if not isinstance(model, cls):
            raise TypeError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def save_pretrained(self, save_directory):
        """Write config.json and model.safetensors into ``save_directory`` (``from_pretrained`` reads it)."""
        from ..pretrained import save_pretrained

        return save_pretrained(self, save_directory)

    def check_input_ids(self, input_ids: torch.Tensor) -> None:
        """Raise ValueError unless ``input_ids`` is a (batch, seqlen) integer tensor within the vocabulary."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise ValueError(
                "input_ids must be a (batch, seqlen) tensor, "
                f"got {getattr(input_ids, 'shape', type(input_ids))}"
            )
        if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
            raise ValueError(f"input_ids must hold integer token ids, got {input_ids.dtype}")
        # Checked on the host before a CUDA-graph capture (trainer/graphed_step.py): a capture cannot sync.
        capturing = input_ids.is_cuda and torch.cuda.is_current_stream_capturing()
        if (
            input_ids.numel()
            and input_ids.device.type != "meta"
            and not torch.compiler.is_compiling()
            and not capturing
        ):
            low, high = torch.stack(torch.aminmax(input_ids)).tolist()  # one device sync
            vocab = self.backbone.embedding.num_embeddings
            if low < 0 or high >= vocab:
                raise ValueError(
                    f"input_ids must lie in [0, {vocab}) (the padded vocabulary), "
                    f"got values in [{low}, {high}]"
                )

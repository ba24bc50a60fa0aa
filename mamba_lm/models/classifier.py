"""``SequenceClassifier``: the Long Range Arena model: encoder, residual mixer blocks, pooling, decoder.

As S4's LRA models: a token embedding (or a linear encoder for real-valued inputs such as pixels,
read as (x - input_mean) / input_std),
N residual blocks (pre- or post-norm, dropout), optionally bidirectional, mean or last pooling over the
real (non-padded) positions, and a linear decoder. Padding sits at the end of each row; every mixer is
causal, so padding never reaches a real position, and the backward direction of a bidirectional block
reverses each row within its length.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ClassifierConfig
from ..modules.block import Block
from ..modules.mixers import build_mixer
from ..modules.mlp import GatedMLP
from ..modules.norm import make_norm
from ..modules.s4d_bidirectional import BidirectionalS4D

_MIXER_LAYER = {"mamba": "Mamba1", "s4d": "S4D", "attention": "MHA"}


def _value_range(tensor: torch.Tensor) -> tuple[int, int] | None:
    """(min, max) of a non-empty integer tensor, read with one device sync; None where its values cannot be
    read: an empty or meta tensor, inside a CUDA-graph capture or torch.compile (no value checks there)."""
    capturing = tensor.is_cuda and torch.cuda.is_current_stream_capturing()
    if not tensor.numel() or capturing or torch.compiler.is_compiling() or tensor.device.type == "meta":
        return None
    low, high = torch.stack(torch.aminmax(tensor)).tolist()
    return low, high


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each row's first lengths[b] positions, leaving the padding after them in place.

    x: (batch, seqlen, d); lengths: (batch,) int or None (= full length). Its own inverse."""
    if lengths is None:
        return x.flip(1)
    t = torch.arange(x.shape[1], device=x.device)
    index = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (batch, seqlen)
    return x.gather(1, index[:, :, None].expand_as(x))


class BidirectionalMixer(nn.Module):
    """Runs one mixer forward and another on the reversed sequence; merges by adding or by concatenating
    (then a linear layer back to d_model). Input and output (batch, seqlen, d_model)."""

    def __init__(
        self,
        forward_mixer: nn.Module,
        backward_mixer: nn.Module,
        merge: str,
        d_model: int,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if merge not in ("add", "concat"):
            raise ValueError(f'merge must be "add" or "concat", got {merge!r}')
        self.forward_mixer, self.backward_mixer, self.merge = forward_mixer, backward_mixer, merge
        self.merge_proj = (
            nn.Linear(2 * d_model, d_model, device=device, dtype=dtype) if merge == "concat" else None
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        ahead = self.forward_mixer(x)
        behind = reverse_within_length(self.backward_mixer(reverse_within_length(x, lengths)), lengths)
        if self.merge_proj is None:
            return ahead + behind
        return self.merge_proj(torch.cat((ahead, behind), dim=-1))


class SequenceClassifier(nn.Module):
    """forward(input_ids, lengths=None) -> logits (batch, num_classes). See ``ClassifierConfig``."""

    def __init__(self, config: ClassifierConfig, device=None, dtype=None):
        super().__init__()
        if not isinstance(config, ClassifierConfig):
            raise TypeError(f"SequenceClassifier needs a ClassifierConfig, got {type(config).__name__}")
        self.config = config
        d, factory = config.d_model, {"device": device, "dtype": dtype}
        if config.vocab_size > 0:
            self.encoder = nn.Embedding(config.vocab_size, d, **factory)
        else:
            self.encoder = nn.Linear(config.d_input, d, **factory)
        self.layers = nn.ModuleList(self._make_block(i, device, dtype) for i in range(config.n_layer))
        self.norm_f = (
            make_norm(config.norm, d, config.norm_epsilon, **factory) if config.prenorm else nn.Identity()
        )
        if config.retrieval:  # S4's retrieval head over [a, b, a - b, a * b] (its LRA setting: GELU)
            self.decoder = nn.Sequential(
                nn.Linear(4 * d, d, **factory), nn.GELU(), nn.Linear(d, config.num_classes, **factory)
            )
        else:
            self.decoder = nn.Linear(d, config.num_classes, **factory)

    def _make_mixer(self, layer_idx: int, device, dtype) -> nn.Module:
        config = self.config
        layer = _MIXER_LAYER[config.mixer]
        options = dict(config.mixer_cfg)
        if layer == "MHA":
            options.setdefault("n_head", max(1, config.d_model // 64))
        return build_mixer(layer, config.d_model, layer_idx, device, dtype, **options)

    def _make_block(self, layer_idx: int, device, dtype) -> Block:
        config, d = self.config, self.config.d_model
        if config.bidirectional and config.bidirectional_merge == "kernel":  # S4's: one two-sided S4D
            mixer = BidirectionalS4D(d, layer_idx=layer_idx, device=device, dtype=dtype, **config.mixer_cfg)
        else:
            mixer = self._make_mixer(layer_idx, device, dtype)
        if config.bidirectional and config.bidirectional_merge != "kernel":
            backward = self._make_mixer(layer_idx, device, dtype)
            mixer = BidirectionalMixer(mixer, backward, config.bidirectional_merge, d, device, dtype)
        mlp = norm2 = None
        if config.d_intermediate > 0:
            mlp = GatedMLP(d, config.d_intermediate, device=device, dtype=dtype)
            norm2 = make_norm(config.norm, d, config.norm_epsilon, device, dtype)
        norm = make_norm(config.norm, d, config.norm_epsilon, device, dtype)
        return Block(mixer, norm, mlp=mlp, norm2=norm2, prenorm=config.prenorm, dropout=config.dropout)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids: (batch, seqlen) int64 token ids, or, when vocab_size = 0, real values (batch, seqlen)
        or (batch, seqlen, d_input). lengths: (batch,) int, the real (non-padded) length of each row, the
        padding at the end; None = no padding. With ``retrieval``: input_ids (batch, 2, seqlen) and
        lengths (batch, 2). Returns logits (batch, num_classes) in the model dtype."""
        if not self.config.retrieval:
            return self.decoder(self._encode_and_pool(input_ids, lengths))
        if input_ids.dim() < 3 or input_ids.shape[1] != 2:
            raise ValueError(f"retrieval input_ids must be (batch, 2, seqlen), got {tuple(input_ids.shape)}")
        batch = input_ids.shape[0]
        if lengths is not None:
            lengths = torch.as_tensor(lengths)
            if lengths.shape != (batch, 2):
                raise ValueError(
                    f"retrieval lengths must be (batch, 2) = ({batch}, 2), got {tuple(lengths.shape)}"
                )
            lengths = lengths.flatten()
        pooled = self._encode_and_pool(input_ids.flatten(0, 1), lengths).view(batch, 2, -1)
        first, second = pooled.unbind(dim=1)
        return self.decoder(torch.cat((first, second, first - second, first * second), dim=-1))

    def _encode_and_pool(self, inputs: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """(batch, seqlen[, d_input]) -> pooled features (batch, d_model)."""
        x = self._encode(inputs)
        batch, seqlen, _ = x.shape
        if lengths is not None:
            lengths = self._check_lengths(lengths, batch, seqlen, x.device)
        mixer_kwargs = {"lengths": lengths} if self.config.bidirectional else {}
        residual = None
        for layer in self.layers:
            x, residual = layer(x, residual, **mixer_kwargs)
        return self._pool(self.norm_f(x, residual) if self.config.prenorm else x, lengths)

    def check_input_ids(self, input_ids: torch.Tensor) -> None:
        """Raise ValueError unless token inputs lie within the vocabulary (a no-op for real-valued inputs).
        Skipped inside a CUDA-graph capture or torch.compile, where it would synchronise with the host: the
        graphed training step calls it on each batch before the replay (trainer/graphed_step.py)."""
        if self.config.vocab_size <= 0:
            return
        low, high = _value_range(input_ids) or (0, 0)  # unreadable here: nothing to check
        if low < 0 or high >= self.config.vocab_size:
            raise ValueError(f"input_ids must lie in [0, {self.config.vocab_size}), got [{low}, {high}]")

    def _encode(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.config.vocab_size > 0:
            if inputs.dim() != 2 or inputs.dtype.is_floating_point:
                raise ValueError(
                    "input_ids must be (batch, seqlen) integer token ids, "
                    f"got {tuple(inputs.shape)} {inputs.dtype}"
                )
            self.check_input_ids(inputs)
            return self.encoder(inputs)
        if inputs.dim() == 2:
            inputs = inputs[:, :, None]
        if inputs.dim() != 3 or inputs.shape[-1] != self.config.d_input:
            raise ValueError(
                "real-valued inputs must be (batch, seqlen) or "
                f"(batch, seqlen, d_input={self.config.d_input}), "
                f"got {tuple(inputs.shape)}"
            )
        standardized = (inputs.to(self.encoder.weight.dtype) - self.config.input_mean) / self.config.input_std
        return self.encoder(standardized)

    @staticmethod
    def _check_lengths(lengths: torch.Tensor, batch: int, seqlen: int, device) -> torch.Tensor:
        lengths = torch.as_tensor(lengths, device=device)
        if lengths.shape != (batch,) or lengths.dtype.is_floating_point:
            raise ValueError(
                f"lengths must be (batch,) = ({batch},) integers, got {tuple(lengths.shape)} {lengths.dtype}"
            )
        low, high = _value_range(lengths) or (1, seqlen)  # unreadable here: nothing to check
        if low < 1 or high > seqlen:
            raise ValueError(f"lengths must lie in [1, seqlen={seqlen}], got [{low}, {high}]")
        return lengths.long()

    def _pool(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """(batch, seqlen, d) -> (batch, d): mean over real positions, or the last real position."""
        batch, seqlen, _ = x.shape
        if self.config.pooling == "last":
            last = lengths - 1 if lengths is not None else torch.full((batch,), seqlen - 1, device=x.device)
            return x[torch.arange(batch, device=x.device), last]
        if lengths is None:
            return x.mean(dim=1)
        real = (torch.arange(seqlen, device=x.device) < lengths[:, None]).to(x.dtype)  # (batch, seqlen)
        return (x * real[:, :, None]).sum(dim=1) / lengths[:, None].to(x.dtype)

"""Model configurations: plain dataclasses (``dataclasses.asdict`` converts them, ``from_dict`` reads back).

Every field is documented where it is declared. ``MambaConfig`` keeps the reference implementation's
(mamba_ssm) field names, so a reference ``config.json`` loads with ``MambaConfig.from_dict``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

MIXER_LAYERS = ("Mamba1", "S4D", "MambaS4D")
"""Mixers an LM built from ``MambaConfig`` can use (``ssm_cfg["layer"]``)."""

CLASSIFIER_MIXERS = ("mamba", "s4d", "attention")
"""Mixers a ``SequenceClassifier`` can use (``ClassifierConfig.mixer``)."""


def pad_vocab(vocab_size: int, multiple: int) -> int:
    """The embedding size: ``vocab_size`` rounded up to a multiple of ``multiple`` (tensor-core friendly)."""
    return vocab_size + (-vocab_size) % multiple


def _require(condition: bool, config_name: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{config_name}: {message}")


class DictConfigMixin:
    """``to_dict`` / ``from_dict`` with a clear error for unknown keys."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """Build from a plain dict (e.g. a Hydra node converted with ``OmegaConf.to_container``)."""
        if not isinstance(values, dict):
            raise TypeError(f"{cls.__name__}.from_dict expects a dict, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; valid fields are {sorted(known)}")
        return cls(**values)


@dataclass
class MambaConfig(DictConfigMixin):
    """A Mamba (or S4D) language model: embedding, ``n_layer`` pre-norm residual mixer blocks, LM head."""

    d_model: int = 768
    """Width of the residual stream."""
    n_layer: int = 24
    """Number of residual blocks (one mixer each, no MLP)."""
    vocab_size: int = 50277
    """Tokenizer vocabulary size (GPT-NeoX: 50277); the embedding is padded, see pad_vocab_size_multiple."""
    d_state: int = 16
    """SSM state size N per channel (S4D: N/2 complex modes)."""
    expand: int = 2
    """Mamba: inner width d_inner = expand * d_model."""
    d_conv: int = 4
    """Mamba: width of the depthwise causal convolution."""
    dt_rank: int | str = "auto"
    """Mamba: rank of the Delta projection; "auto" = ceil(d_model / 16)."""
    dt_min: float = 0.001
    """Smallest initial time step Delta (drawn log-uniform in [dt_min, dt_max])."""
    dt_max: float = 0.1
    """Largest initial time step Delta."""
    dt_init: str = "random"
    """Mamba: dt_proj.weight init, "random" (uniform +-dt_rank^-0.5 * dt_scale) or "constant"."""
    dt_scale: float = 1.0
    """Mamba: scale of the dt_proj.weight init."""
    dt_init_floor: float = 1e-4
    """Mamba: initial Delta values are clamped to at least this."""
    conv_bias: bool = True
    """Mamba: the depthwise convolution has a bias."""
    bias: bool = False
    """Mamba: in_proj and out_proj have biases."""
    ssm_cfg: dict[str, Any] = field(default_factory=dict)
    """Mixer choice and its extra options: {"layer": "Mamba1" (default), "S4D" or "MambaS4D", ...}.
    "MambaS4D" is the Mamba block (in_proj, conv, gate, out_proj: expand, d_conv, conv_bias, bias) with a
    time-invariant S4D layer in place of S6. S4D and MambaS4D extras: "init" ("lin", "inv" or "legs"),
    "ssm_lr" (learning rate for the SSM parameters, read by the trainer), "trainable_B" (B is a
    parameter), "n_ssm" ((A, B) copies shared by the channels)."""
    rms_norm: bool = True
    """RMSNorm (True) or LayerNorm (False) before each mixer and at the end."""
    norm_epsilon: float = 1e-5
    """Epsilon of every norm."""
    residual_in_fp32: bool = True
    """Keep the residual stream in fp32 whatever the compute dtype."""
    pad_vocab_size_multiple: int = 8
    """The embedding has vocab_size rounded up to a multiple of this many rows."""
    tie_embeddings: bool = True
    """The LM head shares the embedding matrix."""
    initializer_range: float = 0.02
    """Std of the normal init of the embedding."""
    rescale_prenorm_residual: bool = True
    """Scale out_proj.weight by 1/sqrt(n_layer) at init (GPT-2's residual scaling)."""

    def __post_init__(self) -> None:
        name = type(self).__name__
        for key in (
            "d_model",
            "n_layer",
            "vocab_size",
            "d_state",
            "expand",
            "d_conv",
            "pad_vocab_size_multiple",
        ):
            value = getattr(self, key)
            _require(
                isinstance(value, int) and value > 0, name, f"{key} must be a positive int, got {value!r}"
            )
        _require(
            self.dt_rank == "auto" or (isinstance(self.dt_rank, int) and self.dt_rank > 0),
            name,
            f'dt_rank must be "auto" or a positive int, got {self.dt_rank!r}',
        )
        _require(
            0 < self.dt_min <= self.dt_max,
            name,
            f"need 0 < dt_min <= dt_max, got {self.dt_min}, {self.dt_max}",
        )
        _require(
            self.dt_init in ("random", "constant"),
            name,
            f'dt_init must be "random" or "constant", got {self.dt_init!r}',
        )
        _require(
            isinstance(self.ssm_cfg, dict), name, f"ssm_cfg must be a dict, got {type(self.ssm_cfg).__name__}"
        )
        layer = self.ssm_cfg.get("layer", "Mamba1")
        _require(
            layer in MIXER_LAYERS, name, f"ssm_cfg['layer'] must be one of {MIXER_LAYERS}, got {layer!r}"
        )
        shadowed = sorted(set(self.ssm_cfg) & {f.name for f in dataclasses.fields(self)})
        _require(not shadowed, name, f"ssm_cfg keys {shadowed} are top-level fields: set them there instead")
        if layer in ("S4D", "MambaS4D"):
            _require(
                self.d_state % 2 == 0,
                name,
                f"{layer} needs an even d_state (N/2 complex modes), got {self.d_state}",
            )

    @property
    def layer(self) -> str:
        """The mixer: "Mamba1", "S4D" or "MambaS4D"."""
        return self.ssm_cfg.get("layer", "Mamba1")

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def resolved_dt_rank(self) -> int:
        return math.ceil(self.d_model / 16) if self.dt_rank == "auto" else int(self.dt_rank)

    @property
    def padded_vocab_size(self) -> int:
        return pad_vocab(self.vocab_size, self.pad_vocab_size_multiple)

    def mixer_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of the chosen mixer (``ssm_cfg`` extras included)."""
        extras = {k: v for k, v in self.ssm_cfg.items() if k != "layer"}
        ssm = {"d_state": self.d_state, "dt_min": self.dt_min, "dt_max": self.dt_max}
        if self.layer == "S4D":
            return {**ssm, **extras}
        block = {"d_conv": self.d_conv, "expand": self.expand, "conv_bias": self.conv_bias, "bias": self.bias}
        if self.layer == "MambaS4D":  # the Mamba block around S4D's own SSM options
            return {**ssm, **block, **extras}
        s6 = {
            "dt_rank": self.dt_rank,
            "dt_init": self.dt_init,
            "dt_scale": self.dt_scale,
            "dt_init_floor": self.dt_init_floor,
        }
        return {**ssm, **block, **s6, **extras}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MambaConfig:
        """Also reads a reference (mamba_ssm) config.json: its ssm_cfg keys that are top-level fields here
        (d_state, d_conv, expand, ...) are lifted, and its hybrid-model keys must be off."""
        values = dict(values)
        values.pop("fused_add_norm", None)  # an implementation detail of the reference kernels
        d_intermediate = values.pop("d_intermediate", 0)
        attn_layer_idx = values.pop("attn_layer_idx", None) or []
        attn_cfg = values.pop("attn_cfg", None) or {}
        if d_intermediate or attn_layer_idx or attn_cfg:
            raise ValueError(
                "MambaConfig: hybrid models (d_intermediate, attn_layer_idx, attn_cfg) are not supported; "
                f"got d_intermediate={d_intermediate}, attn_layer_idx={attn_layer_idx}, attn_cfg={attn_cfg}"
            )
        ssm_cfg = dict(values.get("ssm_cfg") or {})
        top_level = {f.name for f in dataclasses.fields(cls)}
        for key in sorted(set(ssm_cfg) & top_level):
            values[key] = ssm_cfg.pop(key)
        values["ssm_cfg"] = ssm_cfg
        return super().from_dict(values)


@dataclass
class TransformerConfig(DictConfigMixin):
    """A Transformer++ language model: RoPE, SwiGLU MLP, RMSNorm, no biases, tied embeddings."""

    d_model: int = 768
    """Width of the residual stream."""
    n_layer: int = 12
    """Number of blocks (attention + MLP each)."""
    n_head: int = 12
    """Attention heads; head_dim = d_model / n_head."""
    vocab_size: int = 50277
    """Tokenizer vocabulary size; the embedding is padded, see pad_vocab_size_multiple."""
    d_intermediate: int = 0
    """SwiGLU hidden width; 0 = LLaMA's rule: 8/3 * d_model rounded up to a multiple of mlp_multiple_of."""
    mlp_multiple_of: int = 256
    """Rounding multiple of LLaMA's MLP width rule."""
    rope_theta: float = 10000.0
    """RoPE base."""
    norm_epsilon: float = 1e-5
    """Epsilon of every RMSNorm."""
    residual_in_fp32: bool = True
    """Keep the residual stream in fp32 whatever the compute dtype."""
    pad_vocab_size_multiple: int = 8
    """The embedding has vocab_size rounded up to a multiple of this many rows."""
    tie_embeddings: bool = True
    """The LM head shares the embedding matrix."""
    initializer_range: float = 0.02
    """Std of the normal init of the embedding."""
    rescale_prenorm_residual: bool = True
    """Scale out_proj.weight and fc2.weight by 1/sqrt(2 * n_layer) at init."""

    def __post_init__(self) -> None:
        name = type(self).__name__
        for key in (
            "d_model",
            "n_layer",
            "n_head",
            "vocab_size",
            "mlp_multiple_of",
            "pad_vocab_size_multiple",
        ):
            value = getattr(self, key)
            _require(
                isinstance(value, int) and value > 0, name, f"{key} must be a positive int, got {value!r}"
            )
        _require(
            self.d_model % self.n_head == 0,
            name,
            f"d_model={self.d_model} not divisible by n_head={self.n_head}",
        )
        _require(
            (self.d_model // self.n_head) % 2 == 0, name, "head_dim = d_model / n_head must be even for RoPE"
        )
        _require(self.d_intermediate >= 0, name, f"d_intermediate must be >= 0, got {self.d_intermediate}")

    @property
    def mlp_hidden_dim(self) -> int:
        if self.d_intermediate:
            return self.d_intermediate
        width = math.ceil(8 * self.d_model / 3)
        return self.mlp_multiple_of * math.ceil(width / self.mlp_multiple_of)

    @property
    def padded_vocab_size(self) -> int:
        return pad_vocab(self.vocab_size, self.pad_vocab_size_multiple)


@dataclass
class ClassifierConfig(DictConfigMixin):
    """A sequence classifier (Long Range Arena): encoder, residual mixer blocks, pooling, linear decoder."""

    num_classes: int = 10
    """Number of output classes."""
    mixer: str = "s4d"
    """Mixer of every block: "mamba", "s4d" or "attention" (causal; see bidirectional)."""
    d_model: int = 256
    """Width of the residual stream."""
    n_layer: int = 6
    """Number of residual blocks."""
    vocab_size: int = 0
    """Token vocabulary (input_ids are token ids); 0 = real-valued inputs through a linear encoder."""
    d_input: int = 1
    """Real-valued inputs: features per position ((batch, seqlen) inputs count as d_input = 1)."""
    input_mean: float = 0.0
    """Real-valued inputs: the encoder reads (x - input_mean) / input_std (e.g. pixel intensities 0..255
    normalized as S4's LRA data loaders do)."""
    input_std: float = 1.0
    """Real-valued inputs: see input_mean."""
    mixer_cfg: dict[str, Any] = field(default_factory=dict)
    """Extra mixer options: Mamba (d_state, expand, d_conv, ...), S4D (d_state, init, dt_min, dt_max,
    ssm_lr, trainable_B, n_ssm), attention (n_head, rope_theta)."""
    d_intermediate: int = 0
    """Width of a SwiGLU MLP after each mixer; 0 = no MLP (S4/Mamba style)."""
    bidirectional: bool = False
    """Run a second mixer on the sequence reversed within its length and merge the two."""
    bidirectional_merge: str = "add"
    """How the two directions merge: "add" or "concat" (then a linear layer back to d_model) the outputs of
    two mixers; "kernel" (S4D only): S4's bidirectional layer, one S4D with a two-sided kernel."""
    pooling: str = "mean"
    """"mean" over non-padded positions or "last" (the last non-padded position)."""
    dropout: float = 0.0
    """Dropout after each mixer (and MLP)."""
    prenorm: bool = True
    """Norm before the mixer (pre-norm) or after the residual add (post-norm)."""
    norm: str = "layer"
    """"layer", "rms" or "batch" normalization in the blocks."""
    norm_epsilon: float = 1e-5
    """Epsilon of every norm."""
    retrieval: bool = False
    """LRA Retrieval: two documents per example, input_ids (batch, 2, seqlen) and lengths (batch, 2); the
    same blocks encode and pool each, and the decoder reads [a, b, a - b, a * b] through a GELU hidden
    layer (S4's retrieval head)."""

    def __post_init__(self) -> None:
        name = type(self).__name__
        for key in ("num_classes", "d_model", "n_layer", "d_input"):
            value = getattr(self, key)
            _require(
                isinstance(value, int) and value > 0, name, f"{key} must be a positive int, got {value!r}"
            )
        _require(self.vocab_size >= 0, name, f"vocab_size must be >= 0, got {self.vocab_size}")
        _require(self.input_std > 0, name, f"input_std must be > 0, got {self.input_std}")
        _require(
            self.mixer in CLASSIFIER_MIXERS,
            name,
            f"mixer must be one of {CLASSIFIER_MIXERS}, got {self.mixer!r}",
        )
        _require(
            self.pooling in ("mean", "last"), name, f'pooling must be "mean" or "last", got {self.pooling!r}'
        )
        _require(
            self.norm in ("layer", "rms", "batch"),
            name,
            f'norm must be "layer", "rms" or "batch", got {self.norm!r}',
        )
        _require(
            self.bidirectional_merge in ("add", "concat", "kernel"),
            name,
            f'bidirectional_merge must be "add", "concat" or "kernel", got {self.bidirectional_merge!r}',
        )
        _require(
            self.bidirectional_merge != "kernel" or self.mixer == "s4d",
            name,
            f'bidirectional_merge "kernel" (one two-sided S4D) needs mixer "s4d", got {self.mixer!r}',
        )
        _require(0.0 <= self.dropout < 1.0, name, f"dropout must be in [0, 1), got {self.dropout}")
        _require(isinstance(self.mixer_cfg, dict), name, "mixer_cfg must be a dict")


ModelConfig = MambaConfig | TransformerConfig | ClassifierConfig
"""Any config ``mamba_lm.build_model`` accepts."""

"""Configs of the synthetic tasks (``kind: selective_copying`` / ``induction_heads``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mamba_lm.data.checks import check_choice, check_positive


@dataclass
class SelectiveCopyingConfig:
    """Selective Copying (Mamba paper, Sec. 4.1): recall data tokens scattered among noise tokens."""

    kind: str = "selective_copying"
    """Selects this config type."""
    seqlen: int = 4096
    """Total sequence length: the scattered region, then one marker per data token."""
    vocab_size: int = 16
    """Token 0 is noise, vocab_size - 1 the marker, 1..vocab_size - 2 data tokens."""
    num_data_tokens: int = 16
    """Data tokens to memorize and reproduce in order."""
    val_examples: int = 512
    """Examples in the fixed validation set."""
    val_seed: int = 1234
    """Seed of the validation set (independent of the run's seed, so runs compare on the same set)."""
    cache_dir: str | None = None
    """Unused (examples are generated on the fly); accepted for uniformity with other data configs."""

    def __post_init__(self) -> None:
        if self.vocab_size < 3:
            raise ValueError(f"data.vocab_size must be >= 3 (noise, marker, data), got {self.vocab_size}")
        check_positive("data.num_data_tokens", self.num_data_tokens)
        check_positive("data.val_examples", self.val_examples)
        if self.seqlen < 2 * self.num_data_tokens:
            raise ValueError(f"data.seqlen={self.seqlen} is too short for {self.num_data_tokens} data tokens")


@dataclass
class InductionHeadsConfig:
    """Induction Heads (Mamba paper, Sec. 4.1): after a trigger token, recall what followed it before."""

    kind: str = "induction_heads"
    """Selects this config type."""
    seqlen: int = 256
    """Training sequence length (the paper trains at 256)."""
    vocab_size: int = 16
    """vocab_size - 1 is the trigger token; 0..vocab_size - 2 are ordinary tokens."""
    supervise: str = "answer"
    """Training loss positions: "answer" (only the recalled token at the end) or "all" (next-token
    prediction at every position, the earlier work's setting: H3 / safari's induction-head task, which the
    Mamba paper's setup follows; every token but the answer is random). Validation scores the answer only."""
    trigger_position: int | None = None
    """Index of the first trigger in every training and validation sequence; null (default): uniformly
    random in [0, length - 3]. A fixed early index (e.g. 5) makes every example span the whole length
    between the memorized token and the question, as the public reproduction of the paper's result
    (state-spaces/mamba issues #61, #62: "TTTTTSM...SM") does."""
    eval_seqlens: list[int] = field(default_factory=lambda: [2**k for k in range(6, 21)])
    """Test lengths for ``val_loader(batch_size, seqlen=...)`` (the paper: 2^6 .. 2^20)."""
    val_examples: int = 256
    """Examples per validation length."""
    val_seed: int = 1234
    """Seed of the validation sets."""
    cache_dir: str | None = None
    """Unused (examples are generated on the fly); accepted for uniformity with other data configs."""

    def __post_init__(self) -> None:
        if self.vocab_size < 3:
            raise ValueError(f"data.vocab_size must be >= 3, got {self.vocab_size}")
        if self.seqlen < 4 or any(length < 4 for length in self.eval_seqlens):
            raise ValueError("data.seqlen and data.eval_seqlens must be >= 4")
        check_positive("data.val_examples", self.val_examples)
        shortest = min([self.seqlen, *self.eval_seqlens])
        if self.trigger_position is not None and not 0 <= self.trigger_position <= shortest - 3:
            raise ValueError(
                f"data.trigger_position={self.trigger_position} must be null or in [0, {shortest - 3}] "
                f"(the shortest training or test length, {shortest}, minus 3)"
            )
        check_choice("data.supervise", self.supervise, ("answer", "all"))

"""Cross-entropy fused with the LM head, chunked over tokens so the fp32 logits never exist whole."""

from .chunked import linear_cross_entropy
from .ref import linear_cross_entropy_ref

__all__ = ["linear_cross_entropy", "linear_cross_entropy_ref"]

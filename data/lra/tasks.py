"""The six Long Range Arena tasks: lengths, classes, vocabularies and token encodings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mamba_lm.data.lra import listops


@dataclass(frozen=True)
class LRATask:
    """What a model needs to know about one task."""

    seqlen: int
    """LRA's input length (per document)."""
    num_classes: int
    vocab_size: int
    pad_token_id: int | None
    """None where every input has the same length (images)."""
    num_documents: int = 1
    """2 for retrieval: batches carry input_ids (B, 2, L)."""


BYTE_PAD_ID = 0
"""Text and retrieval read UTF-8 bytes as ids byte + 1, with 0 for padding (LRA's byte encoder)."""

LRA_TASKS = {
    "lra_listops": LRATask(
        2048, listops.NUM_CLASSES, len(listops.VOCAB), listops.TOKEN_IDS[listops.PAD_TOKEN]
    ),
    "lra_text": LRATask(4096, 2, 257, BYTE_PAD_ID),
    "lra_retrieval": LRATask(4000, 2, 257, BYTE_PAD_ID, num_documents=2),
    "lra_image": LRATask(1024, 10, 256, None),
    "lra_pathfinder": LRATask(32 * 32, 2, 256, None),
    "lra_pathx": LRATask(128 * 128, 2, 256, None),
}
"""Task specification by data ``kind``; image tasks read 8-bit grayscale pixels as ids 0..255."""


def encode_bytes(text: str | bytes, max_length: int) -> np.ndarray:
    """Byte ids (uint16, shape (<= max_length,)) of ``text``'s UTF-8 bytes, each byte + 1."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return np.frombuffer(data[:max_length], dtype=np.uint8).astype(np.uint16) + 1


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma of uint8 RGB (..., 3) as uint8 (...), rounding exactly as PIL's ``convert("L")``."""
    rgb = rgb.astype(np.uint32)
    return ((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16).astype(np.uint8)

"""Cross-entropy over rows of logits in one Triton kernel: loss, argmax hit and gradient per row.

One program per row walks the vocabulary twice in blocks of BLOCK_V: first an online max and
sum of exponentials (and the argmax), giving logsumexp; then, when the gradient is wanted,
softmax - one_hot(label) written over the logits in place, in their dtype (bf16 under autocast).
The row is read twice (the second time mostly from L2) and written once, instead of the dozen
passes of fp32 copies that the PyTorch ops make.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def xent_rows_kernel(
    LOGITS, LABELS, LOSS, HIT, vocab, stride_row, ignore_index,
    COUNT_CORRECT: tl.constexpr, WRITE_GRAD: tl.constexpr, BLOCK_V: tl.constexpr,
):  # fmt: skip
    """Row i_r: LOSS[i_r] = logsumexp - logit[label] (0 when ignored), HIT[i_r] = argmax == label,
    and with WRITE_GRAD the row becomes softmax - one_hot(label) (zero when ignored)."""
    i_r = tl.program_id(0).to(tl.int64)
    p_row = LOGITS + i_r * stride_row
    label = tl.load(LABELS + i_r)
    labelled = label != ignore_index
    o_v = tl.arange(0, BLOCK_V)
    b_max = tl.full([], float("-inf"), tl.float32)
    b_sum = tl.full([], 0.0, tl.float32)
    best_val = tl.full([], float("-inf"), tl.float32)
    best_idx = tl.full([], 0, tl.int32)
    for v0 in range(0, vocab, BLOCK_V):
        m_v = v0 + o_v < vocab
        b_x = tl.load(p_row + v0 + o_v, mask=m_v, other=-float("inf")).to(tl.float32)
        blk_max = tl.max(b_x, axis=0)
        new_max = tl.maximum(b_max, blk_max)
        b_sum = b_sum * tl.exp(b_max - new_max) + tl.sum(tl.exp(b_x - new_max), axis=0)
        b_max = new_max
        if COUNT_CORRECT:
            blk_idx = v0 + tl.argmax(b_x, axis=0)
            better = blk_max > best_val  # strict: the first maximum wins, as in torch.argmax
            best_idx = tl.where(better, blk_idx, best_idx)
            best_val = tl.where(better, blk_max, best_val)
    lse = b_max + tl.log(b_sum)
    in_range = (label >= 0) & (label < vocab)
    target_logit = tl.load(p_row + tl.where(in_range, label, 0)).to(tl.float32)
    # A label outside [0, vocab) that is not ignore_index makes the loss NaN (as an error would).
    loss = tl.where(in_range, lse - target_logit, float("nan"))
    tl.store(LOSS + i_r, tl.where(labelled, loss, 0.0))
    if COUNT_CORRECT:
        tl.store(HIT + i_r, (labelled & (best_idx == label)).to(tl.int32))
    if WRITE_GRAD:
        for v0 in range(0, vocab, BLOCK_V):
            m_v = v0 + o_v < vocab
            b_x = tl.load(p_row + v0 + o_v, mask=m_v, other=0.0).to(tl.float32)
            b_grad = tl.exp(b_x - lse) - tl.where(v0 + o_v == label, 1.0, 0.0)
            b_grad = tl.where(labelled, b_grad, 0.0)
            tl.store(p_row + v0 + o_v, b_grad.to(LOGITS.dtype.element_ty), mask=m_v)


def xent_rows_triton(logits, labels, ignore_index, count_correct, write_grad):
    """logits (n, vocab) in the compute dtype, unit stride along vocab; labels (n,).

    Returns (loss sum fp32 scalar, argmax hits int64 scalar or None, d loss / d logits (n, vocab) in
    logits' dtype: the logits tensor itself, overwritten, or None)."""
    n_rows, vocab = logits.shape
    loss = torch.empty(n_rows, dtype=torch.float32, device=logits.device)
    # Without count_correct the kernel never writes HIT: loss stands in.
    hits = torch.empty(n_rows, dtype=torch.int32, device=logits.device) if count_correct else loss
    on_gpu = logits.device.type == "cuda"
    block_v = min(4096 if on_gpu else 32, triton.next_power_of_2(vocab))
    xent_rows_kernel[(n_rows,)](
        LOGITS=logits, LABELS=labels, LOSS=loss, HIT=hits,
        vocab=vocab, stride_row=logits.stride(0), ignore_index=ignore_index,
        COUNT_CORRECT=count_correct, WRITE_GRAD=write_grad, BLOCK_V=block_v,
        num_warps=8 if on_gpu else 1,
    )  # fmt: skip
    hit_sum = hits.sum(dtype=torch.int64) if count_correct else None
    return loss.sum(), hit_sum, logits if write_grad else None

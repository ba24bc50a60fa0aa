"""``linear_cross_entropy``: the LM head's matmul and the cross-entropy, a chunk of tokens at a time.

The whole (N, vocab) fp32 logits never exist: each chunk of tokens gets its logits (matmul in the
compute dtype, bf16 under autocast), its logsumexp in fp32, and, when gradients are wanted, its
softmax-minus-one-hot right away (one Triton kernel over the rows on GPUs, triton_rows.py),
turned into the chunk's rows of d hidden and its share of d weight (accumulated in fp32). The
backward only scales the two by the incoming gradient.
"""

from __future__ import annotations

import torch

from ..dispatch import triton_runs_on
from .checks import check_cross_entropy_args, compute_dtype

# A chunk's logits in fp32 take at most this many bytes. The PyTorch row path holds them (and a
# compute-dtype copy); the Triton row kernel keeps only the compute-dtype logits, which become the gradient.
CHUNK_LOGITS_BYTES = 1 << 30


def default_chunk_size(vocab: int) -> int:
    """The largest power of two of tokens whose fp32 logits fit in CHUNK_LOGITS_BYTES."""
    tokens = max(1, CHUNK_LOGITS_BYTES // (4 * vocab))
    return 1 << (tokens.bit_length() - 1)


def xent_rows_torch(logits, labels, ignore_index, count_correct, write_grad):
    """The PyTorch twin of ``xent_rows_triton``: logits (n, vocab) in the compute dtype, labels (n,).

    Returns (loss sum fp32 scalar, argmax hits int64 scalar or None, d loss / d logits (n, vocab) in
    logits' dtype or None)."""
    logits32 = logits.float()  # (n, vocab)
    labelled = labels != ignore_index
    target = torch.where(labelled, labels, 0).long()  # (n,)
    lse = torch.logsumexp(logits32, dim=-1)  # (n,)
    target_logit = logits32.gather(1, target[:, None]).squeeze(1)
    loss_sum = torch.where(labelled, lse - target_logit, 0.0).sum()
    hits = ((logits32.argmax(dim=-1) == labels) & labelled).sum() if count_correct else None
    if not write_grad:
        return loss_sum, hits, None
    # d loss / d logits = softmax - one_hot(target) on labelled rows, zero on the others.
    dlogits = logits32.sub_(lse[:, None]).exp_()
    dlogits.scatter_add_(1, target[:, None], -torch.ones_like(lse[:, None]))
    dlogits.mul_(labelled[:, None])
    return loss_sum, hits, dlogits.to(logits.dtype)


def chunked_loss_and_grads(h, w, labels, ignore_index, chunk_size, count_correct, grad_hidden, grad_weight):
    """h: (N, d) and w: (vocab, d), both in the compute dtype; labels (N,) integer.

    Returns loss_sum (fp32 scalar), correct (int64 scalar), d loss_sum / d h ((N, d) in h's dtype, or
    None) and d loss_sum / d w ((vocab, d) fp32, or None). Rows of logits go through the Triton kernel
    where Triton runs (CUDA, or the interpreter), else through the PyTorch twin.
    """
    if triton_runs_on(h):
        from .triton_rows import xent_rows_triton as xent_rows
    else:
        xent_rows = xent_rows_torch
    write_grad = grad_hidden or grad_weight
    loss_sum = torch.zeros((), dtype=torch.float32, device=h.device)
    correct = torch.zeros((), dtype=torch.int64, device=h.device)
    dh = torch.empty_like(h) if grad_hidden else None
    dw = torch.zeros(w.shape, dtype=torch.float32, device=w.device) if grad_weight else None
    for start in range(0, h.shape[0], chunk_size):
        h_c = h[start : start + chunk_size]  # (n, d)
        logits = h_c @ w.t()  # (n, vocab) in the compute dtype
        loss_c, hits_c, dlogits = xent_rows(
            logits, labels[start : start + chunk_size], ignore_index, count_correct, write_grad
        )
        loss_sum += loss_c
        if count_correct:
            correct += hits_c
        if grad_hidden:
            torch.mm(dlogits, w, out=dh[start : start + chunk_size])
        if grad_weight:
            dw += dlogits.t() @ h_c
    return loss_sum, correct, dh, dw


class LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, labels, ignore_index, chunk_size, count_correct, dtype):
        with torch.autocast(hidden.device.type, enabled=False):
            loss_sum, correct, dh, dw = chunked_loss_and_grads(
                hidden.to(dtype), weight.to(dtype), labels, ignore_index, chunk_size, count_correct,
                grad_hidden=ctx.needs_input_grad[0], grad_weight=ctx.needs_input_grad[1],
            )  # fmt: skip
        ctx.save_for_backward(
            dh.to(hidden.dtype) if dh is not None else None, dw.to(weight.dtype) if dw is not None else None
        )
        ctx.mark_non_differentiable(correct)
        return loss_sum, correct

    @staticmethod
    def backward(ctx, dloss, dcorrect):
        dh, dw = ctx.saved_tensors
        return (
            dh * dloss.to(dh.dtype) if dh is not None else None,
            dw * dloss.to(dw.dtype) if dw is not None else None,
            *([None] * 5),
        )


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = -100,
    chunk_size: int | None = None,
    count_correct: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of logits = hidden @ weight.T, without holding the (N, vocab) logits.

    Equal to ``linear_cross_entropy_ref`` (F.linear, then F.cross_entropy on fp32 logits) within the
    compute dtype's rounding; differentiable in hidden and weight. The matmuls run in autocast's dtype
    when autocast is on (weight and hidden are cast to it), else in the inputs' common dtype.

    Args:
        hidden: (..., d), e.g. bf16 under autocast or fp32.  weight: (vocab, d), the LM head.
        labels: (...) integer, ignore_index where a position has no label.
        chunk_size: tokens per chunk (default: a power of two with at most 1 GiB of fp32 logits).
        count_correct: also count labelled positions whose argmax logit is the label.
    Returns:
        (loss_sum fp32 scalar, labelled count int64 scalar, argmax hits int64 scalar (0 unless
        count_correct)). Gradients: hidden's in hidden's dtype, weight's in weight's dtype.
    """
    check_cross_entropy_args(hidden, weight, labels, chunk_size)
    dtype = compute_dtype(hidden, weight)
    flat_hidden = hidden.reshape(-1, hidden.shape[-1])
    flat_labels = labels.reshape(-1)
    chunk_size = chunk_size or default_chunk_size(weight.shape[0])
    if torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad):
        loss_sum, correct = LinearCrossEntropy.apply(
            flat_hidden, weight, flat_labels, ignore_index, chunk_size, count_correct, dtype
        )
    else:
        with torch.autocast(hidden.device.type, enabled=False):
            loss_sum, correct, _, _ = chunked_loss_and_grads(
                flat_hidden.to(dtype), weight.to(dtype), flat_labels, ignore_index, chunk_size,
                count_correct, grad_hidden=False, grad_weight=False,
            )  # fmt: skip
    return loss_sum, (flat_labels != ignore_index).sum(), correct

"""Shared helpers for the causal-convolution tests: random inputs, running with gradients, tolerances."""

from __future__ import annotations

import torch

TOLERANCES = {
    torch.float32: dict(rtol=1e-4, atol=1e-4),
    torch.float64: dict(rtol=1e-10, atol=1e-10),
    torch.bfloat16: dict(rtol=2e-2, atol=3e-2),
}
GRAD_NAMES = ("x", "weight", "bias", "initial_states")


def make_inputs(
    batch=2,
    dim=6,
    seqlen=16,
    width=4,
    dtype=torch.float32,
    device="cpu",
    seed=0,
    channel_last=True,
    bias=True,
    activation="silu",
    docs=False,
    initial_states=False,
) -> dict:
    """Keyword arguments for ``causal_conv1d_*``: x (batch, dim, seqlen) in dtype, as a view of a
    (batch, seqlen, 2 * dim) Linear output (channel-last, not contiguous) or contiguous; weight (dim,
    width) and bias (dim,) fp32 (the model's parameters); seq_idx with a few packed documents per row."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, dt=torch.float32):
        return torch.randn(*shape, generator=g).to(device=device, dtype=dt)

    if channel_last:
        x = rand(batch, seqlen, 2 * dim, dt=dtype)[:, :, :dim].transpose(1, 2)
    else:
        x = rand(batch, dim, seqlen, dt=dtype)
    seq_idx = None
    if docs:  # row 0: documents starting at 1/3 and 2/3 (and a one-step document); row 1: from step 1 on
        seq_idx = torch.zeros(batch, seqlen, dtype=torch.int32)
        seq_idx[0, seqlen // 3 :] = 1
        seq_idx[0, 2 * seqlen // 3 :] = 3
        seq_idx[0, 2 * seqlen // 3 + 1 :] = 4
        seq_idx[1:, 1:] = 2
        seq_idx = seq_idx.to(device)
    return dict(
        x=x,
        weight=rand(dim, width) / width**0.5,
        bias=rand(dim) if bias else None,
        seq_idx=seq_idx,
        activation=activation,
        initial_states=rand(batch, dim, width - 1, dt=dtype) if initial_states else None,
    )


def run_with_grads(conv, inputs: dict, seed=1, upcast=False):
    """Run ``conv(**inputs, return_final_states=True)`` and backpropagate fixed random weights of y and
    of the final states. Returns (y, final_states, {name: grad}); ``upcast`` runs on fp32 copies."""
    call, leaves = dict(inputs), {}
    for name in GRAD_NAMES:
        if inputs.get(name) is not None:
            src = inputs[name].detach()  # copied with its strides: a strided view of x stays one
            dtype = torch.float32 if upcast else src.dtype
            leaf = torch.empty_strided(src.shape, src.stride(), dtype=dtype, device=src.device).copy_(src)
            leaves[name] = leaf.requires_grad_()
            call[name] = leaves[name]
    y, final = conv(**call, return_final_states=True)
    g = torch.Generator().manual_seed(seed)
    w_y = torch.randn(y.shape, generator=g).to(y.device)
    w_final = torch.randn(final.shape, generator=g).to(y.device)
    ((y.float() * w_y).sum() + (final.float() * w_final).sum()).backward()
    return y, final, {name: leaf.grad for name, leaf in leaves.items()}


def assert_conv_close(got, ref, dtype, what=""):
    """Compare (y, final_states, grads) with the reference's; sums over batch x seqlen (dweight,
    dbias) are compared relative to their size."""
    y, final, grads = got
    y_ref, final_ref, grads_ref = ref
    tol = TOLERANCES[dtype]
    torch.testing.assert_close(y.double(), y_ref.double(), **tol, msg=lambda m: f"{what} y: {m}")
    torch.testing.assert_close(final.double(), final_ref.double(), **tol, msg=lambda m: f"{what} final: {m}")
    assert set(grads) == set(grads_ref), f"{what}: gradients of {set(grads)} vs {set(grads_ref)}"
    for name, grad in grads.items():
        assert grad is not None and torch.isfinite(grad).all(), f"{what} d{name} missing or not finite"
        ref_grad = grads_ref[name].double()
        gtol = dict(tol, atol=max(tol["atol"], tol["rtol"] * ref_grad.abs().max().item()))
        torch.testing.assert_close(grad.double(), ref_grad, **gtol, msg=lambda m, n=name: f"{what} d{n}: {m}")

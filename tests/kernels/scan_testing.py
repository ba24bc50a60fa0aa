"""Shared helpers for the selective-scan tests: random inputs, running a scan with gradients, tolerances."""

from __future__ import annotations

import torch

# The reference package's own tolerances (its tests), gradients up to 10x looser for delta.
TOLERANCES = {
    torch.float32: dict(rtol=6e-4, atol=2e-3),
    torch.float16: dict(rtol=3e-3, atol=5e-3),
    torch.bfloat16: dict(rtol=3e-2, atol=5e-2),
}
ARG_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "initial_state")


def make_inputs(
    batch=2,
    dim=4,
    dstate=4,
    seqlen=16,
    groups=1,
    dtype=torch.float32,
    device="cpu",
    seed=0,
    z=True,
    D=True,
    delta_bias=True,
    initial_state=True,
    grouped_bc=None,
) -> dict:
    """Random scan arguments (a dict for ``selective_scan_*(**inputs)``); u, delta, z in `dtype`.

    B and C are 3-D (batch, dstate, seqlen) when groups == 1 and grouped_bc is not True.
    """
    g = torch.Generator(device="cpu").manual_seed(seed)

    def rand(*shape, scale=1.0, dt=torch.float32):
        return (torch.randn(*shape, generator=g) * scale).to(device=device, dtype=dt)

    four_d = grouped_bc if grouped_bc is not None else groups > 1
    bc_shape = (batch, groups, dstate, seqlen) if four_d else (batch, dstate, seqlen)
    inputs = dict(
        u=rand(batch, dim, seqlen, dt=dtype),
        delta=rand(batch, dim, seqlen, scale=0.5, dt=dtype),
        A=-torch.exp(rand(dim, dstate, scale=0.5)),
        B=rand(*bc_shape, dt=dtype),
        C=rand(*bc_shape, dt=dtype),
        D=rand(dim) if D else None,
        z=rand(batch, dim, seqlen, dt=dtype) if z else None,
        delta_bias=rand(dim, scale=0.5) if delta_bias else None,
        delta_softplus=True,
        initial_state=rand(batch, dim, dstate) if initial_state else None,
    )
    return inputs


def run_with_grads(scan, inputs: dict, seed=1, upcast=False, **kwargs):
    """Run `scan(**inputs, return_last_state=True)` and backpropagate fixed random weights of out and
    last_state. Returns (out, last_state, {name: grad}); `upcast` runs on fp32 copies (a reference)."""
    leaves = {}
    call = dict(inputs)
    for name in ARG_NAMES:
        value = inputs.get(name)
        if value is not None:
            leaf = value.detach().clone()
            if upcast:
                leaf = leaf.float()
            leaves[name] = leaf.requires_grad_()
            call[name] = leaves[name]
    out, last = scan(**call, return_last_state=True, **kwargs)
    g = torch.Generator(device="cpu").manual_seed(seed)
    w_out = torch.randn(out.shape, generator=g).to(out.device)
    w_last = torch.randn(last.shape, generator=g).to(out.device)
    ((out.float() * w_out).sum() + (last.float() * w_last).sum()).backward()
    return out, last, {name: leaf.grad for name, leaf in leaves.items()}


def assert_scan_close(got, ref, dtype, what=""):
    """Compare (out, last_state, grads) of a scan with those of the reference."""
    out, last, grads = got
    out_ref, last_ref, grads_ref = ref
    tol = TOLERANCES[dtype]
    torch.testing.assert_close(out.float(), out_ref.float(), **tol, msg=lambda m: f"{what} out: {m}")
    torch.testing.assert_close(last.float(), last_ref.float(), **tol, msg=lambda m: f"{what} last_state: {m}")
    assert set(grads) == set(grads_ref)
    for name, grad in grads.items():
        assert grad is not None and torch.isfinite(grad).all(), f"{what} d{name} missing or not finite"
        scale = 10.0 if name in ("delta", "delta_bias") else 1.0
        gtol = dict(rtol=tol["rtol"] * scale, atol=tol["atol"] * scale)
        # Sums over long axes (dA, dD, d bias) grow with the length: compare relative to their size.
        ref_grad = grads_ref[name].float()
        gtol["atol"] = max(gtol["atol"], gtol["rtol"] * ref_grad.abs().max().item())
        torch.testing.assert_close(grad.float(), ref_grad, **gtol, msg=lambda m, n=name: f"{what} d{n}: {m}")


def assert_softplus_of_delta_is_accurate(scan, device="cpu"):
    """softplus(delta) inside ``scan`` equals torch's to fp32 accuracy from -30 to 25 (the reference CUDA
    kernel's log1pf(expf(x))): with one step, unit u, B and C and A = 0 the output is softplus(delta).
    A plain log(1 + exp(x)) fails it: 0 below -16.6, a few ulps of 1.0 from -9."""
    delta = torch.tensor([-30.0, -20.0, -16.0, -12.0, -9.0, -4.0, 0.0, 3.0, 19.0, 25.0, -17.0, -8.0])
    delta = delta.to(device)
    dim = delta.numel()
    ones = torch.ones(1, 1, 1, device=device)
    u, A = torch.ones(1, dim, 1, device=device), torch.zeros(dim, 1, device=device)
    y = scan(u, delta.view(1, dim, 1), A, ones, ones, delta_softplus=True)
    y = y[0] if isinstance(y, tuple) else y
    torch.testing.assert_close(y[0, :, 0], torch.nn.functional.softplus(delta), rtol=2e-6, atol=0.0)

"""Mamba's one-token step kernels against their PyTorch reference; the reference against the scan.

On a CPU machine the Triton kernels run in Triton's interpreter (imported so by tests/conftest.py); on a
GPU they are compiled.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mamba_lm.kernels import (
    conv_state_update,
    selective_scan_ref,
    selective_state_update,
    selective_state_update_ref,
)
from mamba_lm.kernels.selective_state_update import conv_state_update_ref, triton_step

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOLERANCES = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.bfloat16: dict(rtol=1e-2, atol=1e-2)}


def rand(generator, *shape, dtype=torch.float32, scale=1.0):
    return (torch.randn(*shape, generator=generator) * scale).to(device=DEVICE, dtype=dtype)


def ssm_inputs(batch, dim, dstate, dtype, seed, D=True, z=True, dt_bias=True):
    """Random step arguments; x and z are strided chunks of one (batch, 2 * dim) tensor, as in Mamba;
    B and C strided slices of one (batch, 2 + 2 * dstate) tensor, as x_proj's output split."""
    g = torch.Generator().manual_seed(seed)
    xz = rand(g, batch, 2 * dim, dtype=dtype)
    dbc = rand(g, batch, 2 + 2 * dstate, dtype=dtype)
    return dict(
        state=rand(g, batch, dim, dstate),
        x=xz[:, :dim],
        dt=rand(g, batch, dim, dtype=dtype, scale=0.5),
        A=-torch.exp(rand(g, dim, dstate, scale=0.5)),
        B=dbc[:, 2 : 2 + dstate],
        C=dbc[:, 2 + dstate :],
        D=rand(g, dim) if D else None,
        z=xz[:, dim:] if z else None,
        dt_bias=rand(g, dim, scale=0.5) if dt_bias else None,
    )


def run_ssm(update, inputs, **flags):
    state = inputs["state"].clone()
    y = update(state, **{k: v for k, v in inputs.items() if k != "state"}, **flags)
    return y, state


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("batch, dim, dstate", [(1, 10, 5), (3, 7, 16), (3, 33, 4)])
def test_state_update_kernel_matches_reference(batch, dim, dstate, dtype):
    inputs = ssm_inputs(batch, dim, dstate, dtype, seed=dim)
    got_y, got_state = run_ssm(triton_step.selective_state_update_triton, inputs, **_flags(True, False))
    ref_y, ref_state = run_ssm(selective_state_update_ref, inputs, dt_softplus=True)
    assert got_y.dtype == dtype and got_y.shape == (batch, dim)
    torch.testing.assert_close(got_state, ref_state, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_y, ref_y, **TOLERANCES[dtype])


@pytest.mark.parametrize(
    "D, z, dt_bias, softplus",
    [(False, False, False, False), (True, False, False, True), (False, True, True, False)],
    ids=["bare", "D-softplus", "z-bias"],
)
def test_state_update_optional_arguments(D, z, dt_bias, softplus):
    inputs = ssm_inputs(3, 9, 6, torch.float32, seed=4, D=D, z=z, dt_bias=dt_bias)
    if not softplus:  # keep dt positive, as softplus would
        inputs["dt"] = inputs["dt"].abs()
        if dt_bias:
            inputs["dt_bias"] = inputs["dt_bias"].abs()
    got = run_ssm(triton_step.selective_state_update_triton, inputs, **_flags(softplus, False))
    ref = run_ssm(selective_state_update_ref, inputs, dt_softplus=softplus)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_state_update_takes_A_log():
    inputs = ssm_inputs(2, 6, 4, torch.float32, seed=5)
    A_log = torch.log(-inputs["A"])
    got = run_ssm(triton_step.selective_state_update_triton, {**inputs, "A": A_log}, **_flags(True, True))
    ref = run_ssm(selective_state_update_ref, inputs, dt_softplus=True)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("batch, dim, rank", [(1, 10, 3), (3, 7, 9)])
def test_state_update_applies_the_dt_projection(batch, dim, rank, dtype):
    """With dt_proj_weight, dt is the low-rank input (a strided slice, as x_proj's output split) and
    the kernel applies the projection: equal to projecting first, then the plain update."""
    inputs = ssm_inputs(batch, dim, 4, dtype, seed=rank)
    g = torch.Generator().manual_seed(rank)
    low = rand(g, batch, rank + 8, dtype=dtype, scale=0.5)[:, 2 : 2 + rank]
    weight = rand(g, dim, rank, dtype=dtype, scale=rank**-0.5)
    fused = {**inputs, "dt": low, "dt_proj_weight": weight}
    got = run_ssm(triton_step.selective_state_update_triton, fused, **_flags(True, False))
    ref = run_ssm(selective_state_update_ref, fused, dt_softplus=True)
    projected = run_ssm(
        selective_state_update_ref, {**inputs, "dt": low.float() @ weight.float().T}, dt_softplus=True
    )
    torch.testing.assert_close(ref, projected, rtol=0, atol=0)
    torch.testing.assert_close(got[1], ref[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[0], ref[0], **TOLERANCES[dtype])


def _flags(softplus: bool, a_is_log: bool) -> dict:
    return dict(dt_softplus=softplus, a_is_log=a_is_log)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("width", [2, 3, 4])
@pytest.mark.parametrize("batch, dim, bias", [(1, 5, True), (3, 11, False)])
def test_conv_kernel_matches_reference(batch, dim, width, bias, dtype):
    g = torch.Generator().manual_seed(width * dim)
    xz = rand(g, batch, 2 * dim, dtype=dtype)
    x = xz[:, :dim]  # strided, as in Mamba
    state = rand(g, batch, dim, width, dtype=dtype)
    weight, bias_t = rand(g, dim, width), rand(g, dim) if bias else None
    for silu in (True, False):
        got_state, ref_state = state.clone(), state.clone()
        got = triton_step.conv_state_update_triton(x, got_state, weight, bias_t, silu)
        ref = conv_state_update_ref(x, ref_state, weight, bias_t, silu)
        assert torch.equal(got_state, ref_state)
        assert torch.equal(got_state[:, :, :-1], state[:, :, 1:]) and torch.equal(got_state[:, :, -1], x)
        torch.testing.assert_close(got, ref, **TOLERANCES[dtype])


def test_reference_steps_equal_the_scan_and_the_convolution():
    """Stepping the references token by token gives the parallel forms' outputs and last state."""
    batch, dim, dstate, seqlen, width = 2, 6, 4, 9, 4
    g = torch.Generator().manual_seed(0)
    u, z = torch.randn(batch, dim, seqlen, generator=g), torch.randn(batch, dim, seqlen, generator=g)
    delta = 0.5 * torch.randn(batch, dim, seqlen, generator=g)
    A = -torch.exp(0.5 * torch.randn(dim, dstate, generator=g))
    B, C = torch.randn(batch, dstate, seqlen, generator=g), torch.randn(batch, dstate, seqlen, generator=g)
    D, bias = torch.randn(dim, generator=g), torch.randn(dim, generator=g)
    weight = torch.randn(dim, width, generator=g)

    out, last = selective_scan_ref(u, delta, A, B, C, D, z, bias, delta_softplus=True, return_last_state=True)
    conv = F.conv1d(F.pad(u, (width - 1, 0)), weight[:, None], bias, groups=dim)
    state, conv_state = torch.zeros(batch, dim, dstate), torch.zeros(batch, dim, width)
    for t in range(seqlen):
        y = selective_state_update(state, u[..., t], delta[..., t], A, B[..., t], C[..., t], D, z[..., t],
                                   bias, dt_softplus=True)  # fmt: skip
        torch.testing.assert_close(y, out[..., t], rtol=1e-5, atol=1e-5)
        conv_out = conv_state_update(u[..., t], conv_state, weight, bias, silu=False)
        torch.testing.assert_close(conv_out, conv[..., t], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, last, rtol=1e-5, atol=1e-5)


def test_bad_arguments_are_named():
    inputs = ssm_inputs(2, 6, 4, torch.float32, seed=1)
    with pytest.raises(ValueError, match="B must have shape"):
        run_ssm(selective_state_update, {**inputs, "B": inputs["B"][:, :3]})
    with pytest.raises(ValueError, match="dt must have shape"):
        run_ssm(selective_state_update, {**inputs, "dt_proj_weight": torch.zeros(6, 3)})
    with pytest.raises(ValueError, match="state must be float32"):
        run_ssm(selective_state_update, {**inputs, "state": inputs["state"].bfloat16()})
    with pytest.raises(ValueError, match="weight must be"):
        conv_state_update(inputs["x"], torch.zeros(2, 6, 4), torch.zeros(6, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("batch", [1, 64])
def test_real_sizes_on_the_gpu(batch):
    """Mamba-130M / 1.4B widths in bf16, through the public entry points (compiled kernels)."""
    for dim in (1536, 4096):
        inputs = ssm_inputs(batch, dim, 16, torch.bfloat16, seed=dim)
        got = run_ssm(selective_state_update, inputs, dt_softplus=True)
        ref = run_ssm(selective_state_update_ref, inputs, dt_softplus=True)
        torch.testing.assert_close(got[1], ref[1], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got[0], ref[0], **TOLERANCES[torch.bfloat16])
        g = torch.Generator().manual_seed(batch)
        x, state, weight = rand(g, batch, dim, dtype=torch.bfloat16), rand(g, batch, dim, 4), rand(g, dim, 4)
        got_state, ref_state = state.clone(), state.clone()
        got_out = conv_state_update(x, got_state, weight, weight[:, 0])
        ref_out = conv_state_update_ref(x, ref_state, weight, weight[:, 0])
        assert torch.equal(got_state, ref_state)
        torch.testing.assert_close(got_out, ref_out, **TOLERANCES[torch.bfloat16])


def test_step_softplus_is_accurate_far_below_zero():
    """dt's softplus matches torch's (log1p(exp(x))) to fp32 accuracy from -30 to 25: with a zero state,
    unit x and B and no decay the new state is softplus(dt) itself (the reference CUDA kernel's
    log1pf(expf(x)); a plain log(1 + exp(x)) gives 0 below -16.6 and a few ulps of 1.0 above it)."""
    dt = torch.tensor([[-30.0, -20.0, -16.0, -12.0, -9.0, -4.0, 0.0, 3.0, 19.0, 25.0]], device=DEVICE)
    dim = dt.shape[1]
    ones = torch.ones(1, 1, device=DEVICE)
    state = torch.zeros(1, dim, 1, device=DEVICE)
    triton_step.selective_state_update_triton(
        state, torch.ones(1, dim, device=DEVICE), dt, torch.zeros(dim, 1, device=DEVICE), ones, ones,
        None, None, None, **_flags(True, False), block_d=4,
    )  # fmt: skip
    torch.testing.assert_close(state[0, :, 0], F.softplus(dt[0]), rtol=2e-6, atol=0.0)

"""S4D's convolution kernel K[h, l] = 2 Re(sum_n W[h, n] exp(dtA[h, n] l)): the Triton kernels against the
PyTorch reference, values and gradients; the S4D layers give the same outputs either way.

On a CPU machine the Triton kernels run in Triton's interpreter (imported so by tests/conftest.py); on a
GPU they are compiled.
"""

from __future__ import annotations

import math

import pytest
import torch
from mamba_lm.kernels import vandermonde_kernel, vandermonde_kernel_ref
from mamba_lm.kernels.ssm_kernel.triton_glue import vandermonde_kernel_triton

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def s4d_inputs(channels: int, modes: int, seed: int = 0, device: str = DEVICE):
    """dtA and W = C dB as S4D-Lin builds them: dt log-uniform in [1e-3, 1e-1], A = -1/2 + i pi n."""
    g = torch.Generator().manual_seed(seed)
    dt = torch.exp(torch.rand(channels, 1, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    A = torch.complex(-0.5 * torch.ones(channels, modes), math.pi * torch.arange(modes).repeat(channels, 1))
    dtA = (dt * A).to(torch.complex64)
    W = torch.complex(torch.randn(channels, modes, generator=g), torch.randn(channels, modes, generator=g))
    return dtA.to(device).requires_grad_(), (W * dt).to(device).requires_grad_()


def grads(kernel_fn, dtA, W, seqlen, upstream):
    K = kernel_fn(dtA, W, seqlen)
    return (K, *torch.autograd.grad(K, (dtA, W), upstream))


@pytest.mark.parametrize("channels,modes,seqlen", [(3, 4, 37), (2, 5, 1), (4, 1, 50), (2, 32, 70)])
def test_triton_kernel_and_gradients_match_the_reference(channels, modes, seqlen):
    dtA, W = s4d_inputs(channels, modes)
    upstream = torch.randn(channels, seqlen, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    ours = grads(vandermonde_kernel_triton, dtA, W, seqlen, upstream)
    reference = grads(vandermonde_kernel_ref, dtA, W, seqlen, upstream)
    for name, a, b in zip(("K", "dtA grad", "W grad"), ours, reference):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        scale = b.abs().max().item()
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale, msg=name)
    # and both against the formula in float64
    exact = vandermonde_kernel_ref(dtA.detach().to(torch.complex128), W.detach().to(torch.complex128), seqlen)
    torch.testing.assert_close(ours[0].double(), exact, rtol=1e-4, atol=1e-5 * exact.abs().max().item())


def test_high_frequencies_with_slow_decay_match_the_reference():
    """Angles b l up to ~3,000 radians with magnitudes near 1 (dt A = -1e-4 + i b, b up to 10): the
    kernels' range reduction keeps sin and cos as accurate as the fp32 product b l they start from."""
    g = torch.Generator().manual_seed(2)
    b = torch.rand(3, 8, generator=g) * 10
    dtA = torch.complex(torch.full((3, 8), -1e-4), b).to(DEVICE).requires_grad_()
    W = torch.complex(torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)).to(DEVICE)
    W.requires_grad_()
    upstream = torch.randn(3, 300, generator=g).to(DEVICE)
    ours = grads(vandermonde_kernel_triton, dtA, W, 300, upstream)
    reference = grads(vandermonde_kernel_ref, dtA, W, 300, upstream)
    for name, a, r in zip(("K", "dtA grad", "W grad"), ours, reference):
        torch.testing.assert_close(a, r, rtol=1e-3, atol=1e-4 * r.abs().max().item(), msg=name)


def test_dispatch_takes_the_reference_for_complex128_and_checks_its_inputs():
    dtA, W = s4d_inputs(2, 3, device="cpu")
    exact = vandermonde_kernel(dtA.detach().to(torch.complex128), W.detach().to(torch.complex128), 9)
    assert exact.dtype == torch.float64 and exact.shape == (2, 9)
    inputs = tuple(t.detach().to(torch.complex128).requires_grad_() for t in (dtA, W))
    assert torch.autograd.gradcheck(lambda a, w: vandermonde_kernel(a, w, 7), inputs)
    with pytest.raises(ValueError, match="complex \\(H, N\\) of one shape"):
        vandermonde_kernel(dtA, W[:, :2], 5)
    with pytest.raises(ValueError, match="seqlen must be >= 1"):
        vandermonde_kernel(dtA, W, 0)


def test_s4d_layers_give_the_same_outputs_and_gradients_with_the_triton_kernel(monkeypatch):
    """The unidirectional and the two-sided S4D layer, with the Triton kernel (interpreted on a CPU) and
    with the reference (MAMBA_LM_TRITON=0)."""
    from mamba_lm.modules.s4d import S4D
    from mamba_lm.modules.s4d_bidirectional import BidirectionalS4D

    if DEVICE == "cpu":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    for layer_class in (S4D, BidirectionalS4D):
        torch.manual_seed(0)
        layer = layer_class(8, d_state=6, init="legs", trainable_B=True).to(DEVICE)
        x = torch.randn(2, 13, 8, device=DEVICE)
        outputs = []
        for triton_on in ("0", "1"):
            monkeypatch.setenv("MAMBA_LM_TRITON", triton_on)
            layer.zero_grad()
            y = layer(x)
            y.square().sum().backward()
            outputs.append((y.detach(), [p.grad.clone() for p in layer.parameters() if p.grad is not None]))
        (y_ref, grads_ref), (y, grads) = outputs
        torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
        assert len(grads) == len(grads_ref) == len(list(layer.parameters()))  # every parameter has one
        for a, b in zip(grads, grads_ref):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5 * b.abs().max().item())


@pytest.mark.gpu
def test_lra_sized_kernels_match_the_reference_on_the_gpu():
    """ListOps S4 (v3): H 128, 32 modes, L 2,000 (and Pathfinder's 1,024)."""
    for seqlen in (2000, 1024):
        dtA, W = s4d_inputs(128, 32, seed=seqlen)
        upstream = torch.randn(128, seqlen, device="cuda")
        ours = grads(vandermonde_kernel_triton, dtA, W, seqlen, upstream)
        reference = grads(vandermonde_kernel_ref, dtA, W, seqlen, upstream)
        for a, b in zip(ours, reference):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * b.abs().max().item())


@pytest.mark.parametrize("kernel_fn", [vandermonde_kernel_triton, vandermonde_kernel_ref])
def test_stacked_output_matrices_equal_one_call_each(kernel_fn):
    """W (S, H, N): S output matrices over the same dtA (the two-sided layer's), values and gradients as S
    separate calls."""
    dtA, W1 = s4d_inputs(3, 4, seed=3)
    _, W2 = s4d_inputs(3, 4, seed=4)
    upstream = torch.randn(2, 3, 21, generator=torch.Generator().manual_seed(5)).to(DEVICE)
    stacked = grads(kernel_fn, dtA, torch.stack((W1, W2)), 21, upstream)
    K1, dA1, dW1 = grads(kernel_fn, dtA, W1, 21, upstream[0])
    K2, dA2, dW2 = grads(kernel_fn, dtA, W2, 21, upstream[1])
    assert stacked[0].shape == (2, 3, 21)
    torch.testing.assert_close(stacked[0], torch.stack((K1, K2)))
    torch.testing.assert_close(stacked[1], dA1 + dA2)
    torch.testing.assert_close(stacked[2], torch.stack((dW1, dW2)))

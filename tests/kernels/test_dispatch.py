"""The one Triton-or-PyTorch check (kernels/dispatch.py): where triton is not installed, every op takes
its PyTorch path even under ``TRITON_INTERPRET=1``, and agrees with its reference. Each op's Triton
module is made unimportable, so a call that still took the Triton path would fail."""

import sys

import pytest
import torch
from conv_testing import make_inputs as conv_inputs
from interpreted_kernels import TRITON_MODULES
from mamba_lm.kernels import dispatch
from mamba_lm.kernels.selective_state_update import (
    conv_state_update,
    conv_state_update_ref,
    selective_state_update,
    selective_state_update_ref,
)
from scan_testing import make_inputs as scan_inputs

from mamba_lm import kernels


def _scan(fn):
    return fn(**scan_inputs(batch=1, dim=3, dstate=2, seqlen=5))


def _conv(fn):
    return fn(**conv_inputs(batch=1, dim=3, seqlen=5, width=3))


def _norm(fn):
    x, weight = torch.linspace(-1, 1, 12).reshape(3, 4), torch.linspace(0.5, 1.5, 4)
    return fn(x, weight, is_rms_norm=True)


def _cross_entropy(fn):
    hidden, weight = torch.linspace(-1, 1, 12).reshape(3, 4), torch.linspace(-1, 1, 20).reshape(5, 4)
    return fn(hidden, weight, torch.tensor([0, 4, 2]))  # (loss_sum, labelled count, argmax hits)


def _state_update(fn):
    g = torch.Generator().manual_seed(0)
    batch, dim, dstate = 2, 3, 2
    x, dt, B, C = (torch.randn(batch, n, generator=g) for n in (dim, dim, dstate, dstate))
    A = -torch.rand(dim, dstate, generator=g)
    return fn(torch.zeros(batch, dim, dstate), x, dt, A, B, C, dt_softplus=True)


def _conv_step(fn):
    g = torch.Generator().manual_seed(0)
    x, conv_state, weight = (torch.randn(*shape, generator=g) for shape in ((2, 3), (2, 3, 4), (3, 4)))
    return fn(x, conv_state, weight)  # (batch, dim); conv_state (batch, dim, width) is updated in place


def _vandermonde(fn):
    dtA = torch.complex(-torch.linspace(0.1, 0.5, 6), torch.linspace(0.0, 2.0, 6)).reshape(2, 3)
    W = torch.complex(torch.linspace(-1, 1, 6), torch.linspace(1, -1, 6)).reshape(2, 3)
    return fn(dtA, W, 7)  # (H, L)


OPS = {
    "selective_scan": (_scan, kernels.selective_scan_fn, kernels.selective_scan_ref),
    "causal_conv1d": (_conv, kernels.causal_conv1d_fn, kernels.causal_conv1d_ref),
    "layer_norm": (_norm, kernels.layer_norm_fn, kernels.layer_norm_ref),
    "cross_entropy": (_cross_entropy, kernels.linear_cross_entropy, kernels.linear_cross_entropy_ref),
    "selective_state_update": (_state_update, selective_state_update, selective_state_update_ref),
    "conv_state_update": (_conv_step, conv_state_update, conv_state_update_ref),
    "vandermonde_kernel": (_vandermonde, kernels.vandermonde_kernel, kernels.vandermonde_kernel_ref),
}


@pytest.fixture
def triton_modules_blocked(monkeypatch):
    """Under the interpreter, with every kernel module's Triton file unimportable."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    for name in TRITON_MODULES:
        monkeypatch.setitem(sys.modules, name, None)


def test_triton_disabled_where_not_installed(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert dispatch.triton_enabled(torch.device("cpu"))
    monkeypatch.setattr(dispatch, "triton_installed", lambda: False)
    for device in ("cpu", "cuda"):
        assert not dispatch.triton_enabled(torch.device(device))


def test_mamba_lm_triton_0_turns_every_triton_path_off(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("MAMBA_LM_TRITON", "0")
    assert not dispatch.triton_enabled(torch.device("cpu"))
    monkeypatch.setenv("MAMBA_LM_TRITON", "1")
    assert dispatch.triton_enabled(torch.device("cpu"))


@pytest.mark.parametrize("op", OPS)
def test_ops_take_pytorch_path_without_triton(op, triton_modules_blocked, monkeypatch):
    run, fn, ref = OPS[op]
    with pytest.raises(ImportError):  # with triton installed, the call reaches a blocked Triton module
        run(fn)
    monkeypatch.setattr(dispatch, "triton_installed", lambda: False)
    torch.testing.assert_close(run(fn), run(ref), rtol=1e-5, atol=1e-5)

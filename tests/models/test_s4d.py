"""S4D: initialization, ZOH discretization, and "CNN mode = RNN mode"."""

from __future__ import annotations

import math

import pytest
import torch
from model_testing import marked_no_weight_decay, relative_error

from mamba_lm import S4D, InferenceParams, MambaConfig, MambaLMHeadModel


def explicit_recurrence(layer: S4D, u: torch.Tensor) -> torch.Tensor:
    """y before the output activation, by the textbook ZOH recurrence in complex128, one step at a time.
    u: (batch, L, H) -> (batch, L, H)."""
    copies = layer.d_model // layer.A_imag.shape[0]  # (A, B) shared by n_ssm channel groups
    A = torch.complex(-torch.exp(layer.log_A_real.double()), layer.A_imag.double()).repeat(copies, 1)
    B = 1.0 if layer.B is None else torch.view_as_complex(layer.B.double()).repeat(copies, 1)
    dt = torch.exp(layer.log_dt.double())[:, None]
    dA = torch.exp(dt * A)
    dB = (dA - 1) / A * B  # ZOH: A^-1 (exp(dt A) - I) B
    C = torch.view_as_complex(layer.C.double())
    x = torch.zeros(u.shape[0], *A.shape, dtype=torch.complex128)
    ys = []
    for t in range(u.shape[1]):
        x = dA * x + dB * u[:, t, :, None].double()
        ys.append(2 * (C * x).sum(-1).real + layer.D.double() * u[:, t].double())
    return torch.stack(ys, dim=1)


@pytest.mark.parametrize("init", ["lin", "inv"])
def test_initialization(init):
    layer = S4D(d_model=4, d_state=8, init=init)
    n = torch.arange(4.0)
    expected_imag = math.pi * n if init == "lin" else 8 / math.pi * (8 / (2 * n + 1) - 1)
    assert torch.allclose(layer.A_imag, expected_imag.expand(4, 4))
    assert torch.allclose(-torch.exp(layer.log_A_real), torch.full((4, 4), -0.5))
    dt = torch.exp(layer.log_dt)
    assert dt.min() >= 0.001 and dt.max() <= 0.1
    assert layer.C.shape == (4, 4, 2)


def test_kernel_is_the_impulse_response_of_the_recurrence():
    layer = S4D(d_model=3, d_state=6)
    impulse = torch.zeros(1, 12, 3)
    impulse[:, 0] = 1.0
    response = explicit_recurrence(layer, impulse)[0] - layer.D.double() * impulse[0].double()  # (L, H)
    assert relative_error(layer.kernel(12).T, response) < 1e-5


@pytest.mark.parametrize("init", ["lin", "inv"])
def test_convolution_mode_equals_recurrent_mode(init):
    """S4's "CNN mode = RNN mode": the FFT convolution and the step-by-step recurrence agree."""
    layer = S4D(d_model=8, d_state=16, init=init, dt_min=0.01, dt_max=0.5, layer_idx=0)
    u = torch.randn(2, 33, 8)
    conv_mode = layer(u)
    params = InferenceParams(max_seqlen=33, max_batch_size=2)
    steps = [layer(u[:, :1], inference_params=params)]
    for t in range(1, 33):
        params.seqlen_offset = t
        steps.append(layer(u[:, t : t + 1], inference_params=params))
    assert relative_error(torch.cat(steps, dim=1), conv_mode) < 1e-5
    y = explicit_recurrence(layer, u)  # and both equal the textbook recurrence
    assert relative_error(layer._output(y.float(), torch.float32), conv_mode) < 1e-5


def test_final_state_after_a_prompt_equals_the_stepped_state():
    layer = S4D(d_model=4, d_state=8, layer_idx=0)
    u = torch.randn(2, 10, 4)
    stepped = InferenceParams(max_seqlen=10, max_batch_size=2)
    layer(u[:, :1], inference_params=stepped)
    for t in range(1, 10):
        stepped.seqlen_offset = t
        layer(u[:, t : t + 1], inference_params=stepped)
    prompt = InferenceParams(max_seqlen=10, max_batch_size=2)
    layer(u, inference_params=prompt)
    assert (
        relative_error(
            torch.view_as_real(prompt.key_value_memory_dict[0]),
            torch.view_as_real(stepped.key_value_memory_dict[0]),
        )
        < 1e-5
    )


def test_gradients_flow_to_the_ssm_parameters():
    layer = S4D(d_model=4, d_state=8)
    layer(torch.randn(2, 16, 4)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_optimizer_marks():
    model = MambaLMHeadModel(
        MambaConfig(d_model=8, n_layer=1, vocab_size=16, d_state=4, ssm_cfg={"layer": "S4D", "ssm_lr": 1e-3})
    )
    mixer = model.backbone.layers[0].mixer
    assert isinstance(mixer, S4D)
    assert marked_no_weight_decay(model) == {
        f"backbone.layers.0.mixer.{p}" for p in ("log_dt", "log_A_real", "A_imag")
    }
    assert mixer.log_dt._optim == {"lr": 1e-3, "weight_decay": 0.0}


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="even"):
        S4D(4, d_state=5)
    with pytest.raises(ValueError, match="init"):
        S4D(4, init="fourier")
    with pytest.raises(ValueError, match="unknown option"):
        MambaLMHeadModel(
            MambaConfig(d_model=8, n_layer=1, vocab_size=16, ssm_cfg={"layer": "S4D", "mode": "x"})
        )


def test_legs_init_is_the_normal_part_of_hippo_legs():
    """S4D-LegS: A + P P^T = -1/2 I + skew (S4's NPLR form); the kept modes are the upper half of its
    spectrum; B = V^* B keeps (before clipping) half of |B|^2 = sum(2n+1) = N^2 in the kept modes."""
    from unittest import mock

    import numpy as np

    from mamba_lm.modules import s4d_init

    N = 8
    S, B = s4d_init.legs_normal_part(N)
    assert np.allclose(S + S.T, -np.eye(N))
    eigenvalues = np.linalg.eigvals(S)
    frequencies, _ = s4d_init.legs_modes(N)
    assert np.allclose(eigenvalues.real, -0.5)
    assert np.allclose(np.sort(eigenvalues.imag[eigenvalues.imag > 0]), frequencies)
    with mock.patch.object(s4d_init, "LEGS_B_CLIP", np.inf):
        _, unclipped = s4d_init.legs_modes(N)
    assert np.isclose(2 * np.sum(np.abs(unclipped) ** 2), np.sum(B**2))
    _, clipped = s4d_init.legs_modes(N)
    assert np.abs(clipped.imag).max() <= 2.0
    layer = S4D(d_model=3, d_state=N, init="legs")
    assert torch.allclose(layer.A_imag, torch.tensor(frequencies, dtype=torch.float32).expand(3, -1))
    assert "B" not in layer.state_dict()  # fixed B: rebuilt at init, not a parameter


def test_default_layer_has_no_B_parameter():
    """Runs and checkpoints made before trainable B keep their parameter set."""
    names = {name for name, _ in S4D(d_model=4, d_state=8).named_parameters()}
    assert names == {"log_dt", "log_A_real", "A_imag", "C", "D", "out_proj.weight", "out_proj.bias"}


@pytest.mark.parametrize("init", ["legs", "inv"])
def test_trainable_B_and_one_shared_ssm(init):
    """S4's LRA setting: (A, B) shared by every channel (n_ssm 1), B trained at the SSM lr; the
    convolution still equals the recurrence, and B gets gradients."""
    layer = S4D(d_model=6, d_state=4, init=init, trainable_B=True, n_ssm=1, ssm_lr=1e-3, layer_idx=0)
    assert layer.log_A_real.shape == layer.A_imag.shape == (1, 2) and layer.B.shape == (1, 2, 2)
    assert layer.B._optim == {"lr": 1e-3, "weight_decay": 0.0}
    with torch.no_grad():
        layer.B.add_(0.3 * torch.randn_like(layer.B))
    u = torch.randn(2, 17, 6)
    y = explicit_recurrence(layer, u)
    assert relative_error(layer._output(y.float(), torch.float32), layer(u)) < 1e-5
    layer(u).square().sum().backward()
    assert layer.B.grad is not None and layer.B.grad.abs().sum() > 0


def test_n_ssm_must_divide_the_channels():
    with pytest.raises(ValueError, match="n_ssm"):
        S4D(d_model=6, d_state=4, n_ssm=4)
    two = S4D(d_model=6, d_state=4, n_ssm=2, init="lin")
    dtA, _, _ = two.discretize()
    A = dtA / torch.exp(two.log_dt)[:, None]
    assert torch.allclose(A[0], A[2]) and torch.allclose(A[1], A[3])  # channel h uses copy h mod 2


def test_bidirectional_s4d_is_s4s_two_sided_convolution():
    """y[t] = sum_{s<=t} K_f[t-s] u[s] + sum_{s>t} K_b[s-t-1] u[s] + D u[t], then GELU and the GLU; padding
    past a row's length never reaches a real position."""
    from mamba_lm.modules.s4d_bidirectional import BidirectionalS4D

    layer = BidirectionalS4D(5, d_state=4, init="legs", trainable_B=True, n_ssm=1, dt_min=0.05, dt_max=0.5)
    u = torch.randn(2, 11, 5, dtype=torch.float64)
    forward, backward = (k.double() for k in layer.kernels(11))
    y = torch.zeros_like(u)
    for t in range(11):
        for s in range(11):
            y[:, t] += (forward[:, t - s] if s <= t else backward[:, s - t - 1]) * u[:, s]
    y += layer.D.double() * u
    assert relative_error(layer(u.float()), layer._output(y.float(), torch.float32)) < 1e-5
    lengths = torch.tensor([11, 7])
    padded = u.float().clone()
    padded[1, 7:] = 100.0  # garbage after the second row's length
    out = layer(padded, lengths=lengths)
    assert relative_error(out[1, :7], layer(u[1:, :7].float())[0]) < 1e-5
    assert relative_error(out[0], layer(u[:1].float())[0]) < 1e-5
    assert layer.C_backward.shape == layer.C.shape


def test_fft_length_is_one_power_of_two_per_octave_of_lengths():
    """Batches padded to their longest row vary in length; the FFT length only changes per octave, so
    cuFFT's plans are reused, and 2L is covered so the circular convolution never wraps."""
    from mamba_lm.modules.s4d import fft_length

    assert [fft_length(n) for n in (1, 2, 3, 16, 17, 1000, 1999, 2000, 2048)] == [
        2,
        4,
        8,
        32,
        64,
        2048,
        4096,
        4096,
        4096,
    ]
    for n in range(1, 300):
        length = fft_length(n)
        assert length >= 2 * n and length & (length - 1) == 0 and length < 4 * n


def test_convolution_at_an_awkward_length_equals_the_direct_sum():
    """L = 37: the FFT runs at 128, not 2L = 74; the result is still the causal sum."""
    layer = S4D(d_model=3, d_state=4, dt_min=0.05, dt_max=0.5)
    u = torch.randn(2, 37, 3, dtype=torch.float64)
    K = layer.kernel(37).double()
    y = torch.stack([sum(K[:, t - s] * u[:, s] for s in range(t + 1)) for t in range(37)], dim=1)
    y += layer.D.double() * u
    assert relative_error(layer(u.float()), layer._output(y.float(), torch.float32)) < 1e-5

"""The causal depthwise convolution: the Triton kernels against the windowed fp32 reference on CPU
through Triton's interpreter (tiny shapes, small tiles so that every program boundary is crossed),
the PyTorch path (float64 gradcheck, agreement with the reference), the dispatch and argument checks.
The same checks at model sizes run on a GPU in test_causal_conv1d_gpu.py (`pytest -m gpu`)."""

import dataclasses

import pytest
import torch
from conv_testing import assert_conv_close, make_inputs, run_with_grads
from interpreted_kernels import needs_interpreter
from mamba_lm.kernels import causal_conv1d_fn, causal_conv1d_ref
from mamba_lm.kernels.depthwise_conv.torch_conv import causal_conv1d_torch
from mamba_lm.kernels.depthwise_conv.triton_conv import (  # interpreted (tests/conftest.py)
    ConvConfig,
    causal_conv1d_triton,
)

# 8-step x 4-channel tiles; backward pass-1 programs walk 2 tiles (16 steps) each, so that the tiny
# shapes below cross tiles, chunks and channel blocks in every kernel.
SMALL = ConvConfig(8, 4, 1, 8, 4, 1, bwd_tiles_per_program=2, dx_block_l=8, dx_block_d=4, dx_num_warps=1)
LONG = ConvConfig(64, 4, 1, 32, 4, 1, bwd_tiles_per_program=2, dx_block_l=32, dx_block_d=4, dx_num_warps=1)


def triton_conv(config=SMALL):
    def conv(
        x, weight, bias=None, seq_idx=None, activation=None, initial_states=None, return_final_states=False
    ):
        from mamba_lm.kernels.depthwise_conv.interface import final_conv_states

        y = causal_conv1d_triton(x, weight, bias, seq_idx, activation is not None, initial_states, config)
        if not return_final_states:
            return y
        return y, final_conv_states(x, weight.shape[-1], initial_states)

    return conv


def torch_conv(
    x, weight, bias=None, seq_idx=None, activation=None, initial_states=None, return_final_states=False
):
    from mamba_lm.kernels.depthwise_conv.interface import final_conv_states

    y = causal_conv1d_torch(x, weight, bias, seq_idx, activation is not None, initial_states)
    return (y, final_conv_states(x, weight.shape[-1], initial_states)) if return_final_states else y


@needs_interpreter
@pytest.mark.parametrize("width", [2, 3, 4])
@pytest.mark.parametrize("seqlen", [1, 3, 127, 257])
def test_matches_reference_at_awkward_lengths(seqlen, width):
    """Everything on: channel-last x, bias, SiLU, packed documents, initial and final states."""
    inputs = make_inputs(
        batch=2 if seqlen < 200 else 1, dim=6, seqlen=seqlen, width=width, seed=seqlen + width,
        docs=True, initial_states=True,
    )  # fmt: skip
    got = run_with_grads(triton_conv(SMALL if seqlen < 100 else LONG), inputs)
    assert_conv_close(got, run_with_grads(causal_conv1d_ref, inputs), torch.float32, f"L={seqlen} W={width}")


@needs_interpreter
@pytest.mark.parametrize("channel_last", [True, False], ids=["channel-last", "contiguous"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("activation", [None, "silu"])
def test_layouts_and_options(channel_last, bias, activation):
    inputs = make_inputs(
        batch=2,
        dim=5,
        seqlen=21,
        width=4,
        seed=3,
        channel_last=channel_last,
        bias=bias,
        activation=activation,
    )
    got = run_with_grads(triton_conv(), inputs)
    what = f"channel_last={channel_last} bias={bias} activation={activation}"
    assert_conv_close(got, run_with_grads(causal_conv1d_ref, inputs), torch.float32, what)


@pytest.mark.parametrize("impl", [pytest.param("triton", marks=needs_interpreter), "torch"])
def test_output_and_dx_keep_the_layout_of_x(impl):
    """A (batch, dim, seqlen) view of channel-last memory gives a channel-last y and (Triton) dx, no
    copy on the way; contiguous x gives contiguous y and dx."""
    conv = triton_conv() if impl == "triton" else torch_conv
    xz = torch.randn(2, 11, 10, requires_grad=True)  # (batch, seqlen, 2 * dim), a Linear output
    for x in (xz[:, :, :5].transpose(1, 2), xz[:, :, :5].transpose(1, 2).contiguous()):
        dx = []
        x.register_hook(dx.append)
        y = conv(x, torch.randn(5, 4), torch.randn(5), activation="silu")
        y.sum().backward()
        if x.stride(1) == 1:
            assert y.stride(1) == 1, y.stride()
            assert impl == "torch" or dx[0].stride(1) == 1, dx[0].stride()
        else:
            assert y.is_contiguous() and dx[0].is_contiguous(), (y.stride(), dx[0].stride())


@pytest.mark.parametrize("impl", [pytest.param("triton", marks=needs_interpreter), "torch"])
def test_packed_documents_equal_separate_runs(impl):
    """A packed row gives each document exactly what running that document alone gives."""
    conv = triton_conv() if impl == "triton" else torch_conv
    inputs = make_inputs(batch=1, dim=4, seqlen=30, width=4, seed=5)
    inputs["seq_idx"] = torch.tensor([[0] * 9 + [1] + [2] * 11 + [5] * 9], dtype=torch.int32)
    y = conv(**inputs)
    starts = [0, 9, 10, 21, 30]
    for start, stop in zip(starts[:-1], starts[1:]):
        alone = conv(**dict(inputs, x=inputs["x"][:, :, start:stop], seq_idx=None))
        torch.testing.assert_close(y[:, :, start:stop], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", [pytest.param("triton", marks=needs_interpreter), "torch"])
def test_final_states_continue_the_sequence(impl):
    """Running a sequence in two pieces, the second from the first's final states, equals one run;
    the final states are the last width - 1 inputs (left-padded when the piece is shorter)."""
    conv = triton_conv() if impl == "triton" else torch_conv
    inputs = make_inputs(batch=2, dim=4, seqlen=12, width=4, seed=6, initial_states=True)
    whole, whole_final = conv(**inputs, return_final_states=True)
    state = inputs["initial_states"]
    for start, stop in [(0, 1), (1, 2), (2, 7), (7, 12)]:
        piece, state = conv(**dict(inputs, x=inputs["x"][:, :, start:stop], initial_states=state),
                            return_final_states=True)  # fmt: skip
        torch.testing.assert_close(piece, whole[:, :, start:stop], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state, whole_final)
    torch.testing.assert_close(whole_final, inputs["x"][:, :, -3:])


@needs_interpreter
def test_bf16_inputs_with_fp32_parameters():
    """bf16 x (a Linear output under autocast) with the fp32 weight and bias: fp32 accumulation, a
    bf16 output and dx, fp32 dweight and dbias."""
    inputs = make_inputs(batch=2, dim=5, seqlen=20, width=4, dtype=torch.bfloat16, seed=8, docs=True,
                         initial_states=True)  # fmt: skip
    got = run_with_grads(triton_conv(), inputs)
    assert got[0].dtype == torch.bfloat16 and got[2]["x"].dtype == torch.bfloat16
    assert got[2]["weight"].dtype == torch.float32 and got[2]["bias"].dtype == torch.float32
    ref = run_with_grads(causal_conv1d_ref, inputs, upcast=True)
    assert_conv_close(got, ref, torch.bfloat16, "bf16")


@needs_interpreter
@pytest.mark.parametrize("g_fp32", [False, True], ids=["g-in-x-dtype", "g-fp32"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_backward_g_precision(dtype, g_fp32):
    """g = dy * silu'(pre) travels between the backward passes in x's dtype (or fp32): either way the
    gradients stay within x's dtype's tolerance of the fp32 reference, and fp32 x loses nothing."""
    inputs = make_inputs(batch=2, dim=5, seqlen=19, width=4, dtype=dtype, seed=12, docs=True,
                         initial_states=True)  # fmt: skip
    got = run_with_grads(triton_conv(dataclasses.replace(SMALL, g_fp32=g_fp32)), inputs)
    assert_conv_close(got, run_with_grads(causal_conv1d_ref, inputs, upcast=True), dtype, f"g_fp32={g_fp32}")


@needs_interpreter
@pytest.mark.parametrize("activation", [None, "silu"])
@pytest.mark.parametrize("width", [2, 4])
def test_backward_halo_at_tile_boundaries(width, activation):
    """Documents that start exactly at, one before and width - 1 before a dx tile boundary, with
    initial states, and the two backward passes on different tilings (4-step tiles walked 3 per
    program in pass 1, 8-step tiles in pass 2): dx reads g across tile and chunk boundaries and
    drops it across document boundaries."""
    inputs = make_inputs(batch=2, dim=3, seqlen=29, width=width, seed=width, activation=activation,
                         initial_states=True)  # fmt: skip
    seq_idx = torch.zeros(2, 29, dtype=torch.int32)
    for start in (8, 15, 16 + 8 - (width - 1)):  # tile boundaries at 8, 16, 24
        seq_idx[0, start:] += 1
    seq_idx[1, 12:] = 1  # a boundary inside pass 1's third tile and at pass 1's chunk boundary (12)
    inputs["seq_idx"] = seq_idx
    cfg = dataclasses.replace(SMALL, bwd_block_l=4, bwd_tiles_per_program=3, dx_block_l=8, dx_block_d=2)
    got = run_with_grads(triton_conv(cfg), inputs)
    assert_conv_close(
        got, run_with_grads(causal_conv1d_ref, inputs), torch.float32, f"W={width} {activation}"
    )


@needs_interpreter
def test_conv1d_weight_shape_and_frozen_initial_states():
    """nn.Conv1d's (dim, 1, width) weight gives a gradient of that shape; initial states that need no
    gradient still enter the weight gradient."""
    inputs = make_inputs(batch=1, dim=3, seqlen=10, width=3, seed=9, initial_states=True)
    inputs["weight"] = inputs["weight"][:, None, :]
    x = inputs["x"].clone().requires_grad_()
    weight = inputs["weight"].clone().requires_grad_()
    args = dict(inputs, x=x, weight=weight)
    torch.autograd.grad(triton_conv()(**args).sum(), (x, weight))
    dw = torch.autograd.grad(triton_conv()(**args).sum(), weight)[0]
    dw_ref = torch.autograd.grad(causal_conv1d_ref(**args).sum(), weight)[0]
    assert dw.shape == (3, 1, 3)
    torch.testing.assert_close(dw, dw_ref, rtol=1e-4, atol=1e-4)


def test_torch_path_gradcheck():
    inputs = make_inputs(
        batch=2, dim=3, seqlen=7, width=4, dtype=torch.float64, docs=True, initial_states=True
    )
    names = ("x", "weight", "bias", "initial_states")
    tensors = tuple(inputs[n].detach().double().requires_grad_() for n in names)

    def fn(*args):
        kw = dict(inputs, **dict(zip(names, args)))
        return torch_conv(**kw, return_final_states=True)

    assert torch.autograd.gradcheck(fn, tensors)


@pytest.mark.parametrize("seqlen", [1, 3, 127])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_torch_path_matches_reference(seqlen, dtype):
    inputs = make_inputs(batch=2, dim=5, seqlen=seqlen, width=3, dtype=dtype, seed=seqlen, docs=True,
                         initial_states=True)  # fmt: skip
    got = run_with_grads(torch_conv, inputs)
    assert_conv_close(got, run_with_grads(causal_conv1d_ref, inputs, upcast=True), dtype, f"torch L={seqlen}")
    assert got[0].stride(1) == 1 and got[0].dtype == dtype


@needs_interpreter
def test_dispatch(monkeypatch):
    """On a CPU the public function takes the PyTorch path, and the Triton kernel (interpreted) when
    TRITON_INTERPRET=1; both agree with the reference."""
    inputs = make_inputs(batch=1, dim=4, seqlen=9, width=4, docs=True, initial_states=True)
    ref = causal_conv1d_ref(**inputs)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    torch.testing.assert_close(causal_conv1d_fn(**inputs), ref, rtol=1e-5, atol=1e-6)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    torch.testing.assert_close(causal_conv1d_fn(**inputs), ref, rtol=1e-5, atol=1e-6)
    y, final = causal_conv1d_fn(**dict(inputs, activation="swish"), return_final_states=True)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6)
    assert final.shape == (1, 4, 3)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(x=torch.zeros(2, 4)), "x must be a"),
        (dict(x=torch.zeros(1, 4, 8, dtype=torch.int64)), "x must be a floating"),
        (dict(weight=torch.zeros(4, 5)), "weight width must be 2 to 4"),
        (dict(weight=torch.zeros(4, 1)), "weight width"),
        (dict(weight=torch.zeros(3, 4)), "weight must have dim=4"),
        (dict(weight=torch.zeros(4, 2, 4)), "weight must be"),
        (dict(bias=torch.zeros(5)), "bias must be"),
        (dict(activation="relu"), "activation must be"),
        (dict(seq_idx=torch.zeros(1, 7, dtype=torch.int32)), "seq_idx must be"),
        (dict(seq_idx=torch.zeros(1, 8)), "seq_idx must be an integer"),
        (dict(initial_states=torch.zeros(1, 4, 4)), "initial_states must be"),
    ],
)
def test_bad_arguments_are_named(change, message):
    args = dict(x=torch.zeros(1, 4, 8), weight=torch.zeros(4, 4), bias=torch.zeros(4))
    args.update(change)
    for fn in (causal_conv1d_fn, causal_conv1d_ref):
        with pytest.raises(ValueError, match=message):
            fn(**args)

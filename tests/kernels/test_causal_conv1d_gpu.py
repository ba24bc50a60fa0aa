"""The Triton causal convolution at model sizes on a GPU (run there with `pytest -m gpu`)."""

import pytest
import torch
from conv_testing import assert_conv_close, make_inputs, run_with_grads
from mamba_lm.kernels import causal_conv1d_fn, causal_conv1d_ref
from mamba_lm.kernels.depthwise_conv.triton_conv import ConvConfig, causal_conv1d_triton

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channel_last", [True, False], ids=["channel-last", "contiguous"])
@pytest.mark.parametrize("seqlen, batch", [(2048, 2), (777, 3), (1, 4)])
def test_matches_reference(dtype, channel_last, seqlen, batch):
    inputs = make_inputs(batch=batch, dim=1536, seqlen=seqlen, width=4, dtype=dtype, device="cuda",
                         seed=seqlen, channel_last=channel_last)  # fmt: skip
    got = run_with_grads(causal_conv1d_fn, inputs)
    ref = run_with_grads(causal_conv1d_ref, inputs, upcast=True)
    assert_conv_close(got, ref, dtype, f"{dtype} L={seqlen} channel_last={channel_last}")


@pytest.mark.parametrize("width", [2, 3, 4])
@pytest.mark.parametrize("activation", [None, "silu"])
def test_packed_documents_and_states(width, activation):
    inputs = make_inputs(batch=2, dim=768, seqlen=3001, width=width, device="cuda", seed=width,
                         activation=activation, docs=True, initial_states=True)  # fmt: skip
    got = run_with_grads(causal_conv1d_fn, inputs)
    ref = run_with_grads(causal_conv1d_ref, inputs)
    assert_conv_close(got, ref, torch.float32, f"W={width} {activation}")


def test_tile_configurations_agree():
    """Other tile sizes and chunk lengths (the benchmark's variants) give the same values."""
    inputs = make_inputs(batch=3, dim=1000, seqlen=1500, width=4, dtype=torch.bfloat16, device="cuda",
                         docs=True, initial_states=True)  # fmt: skip
    ref = run_with_grads(causal_conv1d_ref, inputs, upcast=True)
    for cfg in (
        ConvConfig(64, 64, 4, 32, 64, 4, 3, dx_block_l=16, dx_block_d=256, dx_num_warps=8),
        ConvConfig(16, 256, 8, 8, 256, 4, 1, dx_block_l=64, dx_block_d=64, dx_num_warps=4, g_fp32=True),
    ):

        def conv(x, weight, bias, seq_idx, activation, initial_states, return_final_states, cfg=cfg):
            y = causal_conv1d_triton(x, weight, bias, seq_idx, activation, initial_states, cfg)
            return y, x[:, :, -3:]

        assert_conv_close(run_with_grads(conv, inputs), ref, torch.bfloat16, str(cfg))

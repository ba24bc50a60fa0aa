"""The Triton selective scan at real sizes on a GPU (run there with `pytest -m gpu`)."""

import dataclasses

import pytest
import torch
from mamba_lm.kernels import selective_scan_fn, selective_scan_ref
from mamba_lm.kernels.selective_scan import triton_scan
from mamba_lm.kernels.selective_scan.triton_scan import plan, selective_scan_triton
from scan_testing import (
    assert_scan_close,
    assert_softplus_of_delta_is_accurate,
    make_inputs,
    run_with_grads,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def model_layout(x):
    """The same values stored as (batch, seqlen, dim), as a Linear layer produces them."""
    return x.transpose(1, 2).contiguous().transpose(1, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("seqlen, batch", [(2048, 2), (777, 3), (1, 4)])
def test_matches_reference(dtype, seqlen, batch):
    inputs = make_inputs(
        batch=batch, dim=256, dstate=16, seqlen=seqlen, dtype=dtype, device="cuda", seed=seqlen
    )
    for name in ("u", "delta", "z"):
        inputs[name] = model_layout(inputs[name])
    got = run_with_grads(selective_scan_fn, inputs)
    ref = run_with_grads(selective_scan_ref, inputs, upcast=True)
    assert_scan_close(got, ref, dtype, f"{dtype} L={seqlen}")


def test_long_sequence_chunked_plan_and_groups():
    """A small batch with a long sequence takes the segment-parallel path; grouped B and C."""
    inputs = make_inputs(batch=1, dim=128, dstate=16, seqlen=20000, groups=2, device="cuda", seed=3)
    assert plan(1, 128, 2, 16, 20000, torch.device("cuda")).seg_len < 20000
    got = run_with_grads(selective_scan_fn, inputs)
    ref = run_with_grads(selective_scan_ref, inputs)
    assert_scan_close(got, ref, torch.float32, "chunked")


def test_packed_documents_and_plans_agree():
    inputs = make_inputs(batch=2, dim=64, dstate=16, seqlen=3000, device="cuda", seed=5)
    seq_idx = torch.zeros(2, 3000, dtype=torch.int32, device="cuda")
    seq_idx[0, 700:] = 1
    seq_idx[0, 2100:] = 2
    seq_idx[1, 1:] = 1
    ref = run_with_grads(selective_scan_ref, inputs, seq_idx=seq_idx)
    cfg = plan(2, 64, 1, 16, 3000, torch.device("cuda"))
    for config in (dataclasses.replace(cfg, seg_len=1 << 20), dataclasses.replace(cfg, seg_len=256)):

        def scan(return_last_state, config=config, **kw):
            names = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "delta_softplus", "initial_state")
            return selective_scan_triton(*(kw.get(n) for n in names), seq_idx=kw["seq_idx"], config=config)

        got = run_with_grads(scan, inputs, seq_idx=seq_idx)
        assert_scan_close(got, ref, torch.float32, str(config))


@pytest.mark.parametrize("variant", list(triton_scan.BWD_VARIANTS))
def test_backward_variants_match_reference(variant):
    """Every backward variant of the plan (BWD_VARIANTS), fp32 (the tight check), at a length that
    leaves partial chunks; bf16 runs in benchmarks/scan_bwd_variants.py."""
    dtype = torch.float32
    inputs = make_inputs(batch=2, dim=256, dstate=16, seqlen=1111, dtype=dtype, device="cuda", seed=7)
    for name in ("u", "delta", "z"):
        inputs[name] = model_layout(inputs[name])
    cfg = triton_scan.plan(2, 256, 1, 16, 1111, torch.device("cuda"), bwd_variant=variant)

    def scan(return_last_state, **kw):
        names = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "delta_softplus", "initial_state")
        return selective_scan_triton(*(kw.get(n) for n in names), config=cfg)

    got = run_with_grads(scan, inputs)
    ref = run_with_grads(selective_scan_ref, inputs, upcast=True)
    assert_scan_close(got, ref, dtype, f"{variant} {dtype}")


def test_delta_softplus_is_accurate_far_below_zero():
    """The compiled kernel's softplus, as the interpreter's (test_selective_scan.py)."""
    assert_softplus_of_delta_is_accurate(selective_scan_fn, device="cuda")

"""The Triton selective scan against the sequential reference, on CPU through Triton's interpreter.

Shapes are tiny (the interpreter runs each program step by step in numpy); launch plans are forced
so that every path runs: one segment, several segments joined by the combine kernel, partial
chunks, the backward kernel's switches. The same checks at real sizes run on a GPU in
test_selective_scan_gpu.py.
"""

import dataclasses

import pytest
import torch
from interpreted_kernels import needs_interpreter
from mamba_lm.kernels import selective_scan_fn, selective_scan_ref
from mamba_lm.kernels.selective_scan.triton_scan import ScanConfig, selective_scan_triton
from scan_testing import (
    assert_scan_close,
    assert_softplus_of_delta_is_accurate,
    make_inputs,
    run_with_grads,
)

# Small blocks so that a handful of channels makes several programs; short chunks and segments so
# that short sequences cross chunk and segment boundaries.
ONE_SEGMENT = ScanConfig(block_d=4, num_warps=1, chunk_len=16, seg_len=1024, bwd_block_d=4)
SEGMENTS = ScanConfig(block_d=4, num_warps=1, chunk_len=8, seg_len=16, bwd_block_d=4)


def triton_scan(config):
    def scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
             return_last_state=False, initial_state=None, seq_idx=None):  # fmt: skip
        return selective_scan_triton(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, seq_idx, config=config
        )

    return scan


@needs_interpreter
@pytest.mark.parametrize(
    "seqlen, groups, config",
    [(1, 1, SEGMENTS), (7, 2, ONE_SEGMENT), (64, 1, SEGMENTS), (130, 2, SEGMENTS), (257, 1, ONE_SEGMENT)],
)
def test_matches_reference_at_awkward_lengths(seqlen, groups, config):
    inputs = make_inputs(
        batch=2 if seqlen < 100 else 1, dim=4 * groups, seqlen=seqlen, groups=groups, seed=seqlen
    )
    got = run_with_grads(triton_scan(config), inputs)
    ref = run_with_grads(selective_scan_ref, inputs)
    assert_scan_close(got, ref, torch.float32, f"L={seqlen} groups={groups}")


@needs_interpreter
@pytest.mark.parametrize(
    "options",
    [
        dict(z=False, D=False, delta_bias=False, initial_state=False, softplus=False),
        dict(z=True, D=False, delta_bias=False, initial_state=False, softplus=False),
        dict(z=False, D=True, delta_bias=True, initial_state=True, softplus=False),
        dict(z=False, D=False, delta_bias=True, initial_state=False, softplus=True),
    ],
    ids=["bare", "z", "D-bias-h0", "softplus"],
)
def test_optional_arguments(options):
    softplus = options.pop("softplus")
    inputs = make_inputs(batch=1, dim=8, seqlen=21, seed=3, **options)
    inputs["delta_softplus"] = softplus
    if not softplus:  # without softplus, keep dt positive so the reference's decays stay below one
        inputs["delta"] = inputs["delta"].abs()
        if inputs["delta_bias"] is not None:
            inputs["delta_bias"] = inputs["delta_bias"].abs()
    got = run_with_grads(triton_scan(SEGMENTS), inputs)
    ref = run_with_grads(selective_scan_ref, inputs)
    assert_scan_close(got, ref, torch.float32, str(options))


@needs_interpreter
def test_packed_documents_equal_separate_runs():
    """seq_idx resets the state where the document changes: a packed row equals its documents run
    one by one (the first starting from initial_state, the others from zero), values and grads."""
    seqlen = 40
    inputs = make_inputs(batch=2, dim=4, seqlen=seqlen, seed=7)
    seq_idx = torch.zeros(2, seqlen, dtype=torch.int32)
    seq_idx[0, 9:] = 1
    seq_idx[0, 25:] = 4
    seq_idx[1, 17:] = 1
    got = run_with_grads(triton_scan(SEGMENTS), inputs, seq_idx=seq_idx)
    ref = run_with_grads(selective_scan_ref, inputs, seq_idx=seq_idx)
    assert_scan_close(got, ref, torch.float32, "packed vs reference")

    out, last, _ = got
    for b in range(2):
        bounds = torch.nonzero(torch.diff(seq_idx[b]), as_tuple=False).flatten().add(1).tolist()
        starts, ends = [0, *bounds], [*bounds, seqlen]
        for i, (s, e) in enumerate(zip(starts, ends)):
            doc = {
                k: (v[b : b + 1, ..., s:e] if k in ("u", "delta", "z", "B", "C") else v)
                for k, v in inputs.items()
            }
            doc["initial_state"] = inputs["initial_state"][b : b + 1] if i == 0 else None
            doc_out, doc_last = selective_scan_triton(
                doc["u"], doc["delta"], doc["A"], doc["B"], doc["C"], doc["D"], doc["z"], doc["delta_bias"],
                True, doc["initial_state"], config=ONE_SEGMENT,
            )  # fmt: skip
            torch.testing.assert_close(out[b : b + 1, :, s:e], doc_out, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(last[b : b + 1], doc_last, rtol=1e-5, atol=1e-5)


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs(dtype):
    inputs = make_inputs(batch=1, dim=8, seqlen=33, dtype=dtype, seed=11)
    got = run_with_grads(triton_scan(SEGMENTS), inputs)
    ref = run_with_grads(selective_scan_ref, inputs, upcast=True)
    assert got[0].dtype == dtype and got[2]["u"].dtype == dtype
    assert_scan_close(got, ref, dtype, str(dtype))


@needs_interpreter
@pytest.mark.parametrize("dstate", [16, 5])
def test_state_sizes(dstate):
    """16: the fast path (channel sums as a reduce-scatter); 5: not a power of two."""
    inputs = make_inputs(batch=1, dim=4, dstate=dstate, seqlen=12, seed=dstate)
    got = run_with_grads(triton_scan(ONE_SEGMENT), inputs)
    ref = run_with_grads(selective_scan_ref, inputs)
    assert_scan_close(got, ref, torch.float32, f"dstate={dstate}")


@needs_interpreter
def test_non_contiguous_inputs():
    """Strided views in every layout: channel-contiguous (a Linear's output), sliced, grouped B/C."""
    batch, dim, seqlen, dstate = 1, 4, 19, 4
    g = torch.Generator().manual_seed(5)
    xz = torch.randn(batch, seqlen, 3 * dim, generator=g)  # (batch, seqlen, channels) memory
    proj = torch.randn(batch, seqlen, 2 * dstate + 3, generator=g)
    inputs = make_inputs(batch=batch, dim=dim, seqlen=seqlen, seed=5)
    inputs.update(
        u=xz[..., :dim].transpose(1, 2),
        z=xz[..., dim : 2 * dim].transpose(1, 2),
        delta=torch.randn(batch, 2 * dim, seqlen, generator=g)[:, ::2],
        B=proj[..., 3 : 3 + dstate].transpose(1, 2),
        C=proj[..., 3 + dstate :].transpose(1, 2).unsqueeze(1),
    )
    assert not inputs["u"].is_contiguous() and inputs["u"].stride(1) == 1
    got = run_with_grads(triton_scan(SEGMENTS), inputs)
    ref = run_with_grads(selective_scan_ref, inputs)
    assert_scan_close(got, ref, torch.float32, "strided")


@needs_interpreter
def test_large_delta_times_A_stays_finite():
    """exp(dt A) underflows to 0 for large dt |A|: outputs and gradients stay finite and correct."""
    inputs = make_inputs(batch=1, dim=4, seqlen=10, seed=9)
    inputs["delta"] = inputs["delta"].abs() * 200 + 50
    inputs["A"] = inputs["A"] * 100
    got = run_with_grads(triton_scan(SEGMENTS), inputs)
    ref = run_with_grads(selective_scan_ref, inputs)
    for t in (got[0], got[1], *got[2].values()):
        assert torch.isfinite(t).all()
    assert_scan_close(got, ref, torch.float32, "large dt|A|")


@needs_interpreter
def test_plans_agree():
    """One segment per program and many segments (chunked forward and backward) give the same result."""
    inputs = make_inputs(batch=1, dim=8, seqlen=50, seed=13)
    one = run_with_grads(triton_scan(ONE_SEGMENT), inputs)
    many = run_with_grads(triton_scan(dataclasses.replace(SEGMENTS, chunk_len=4, seg_len=12)), inputs)
    torch.testing.assert_close(one[0], many[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(one[1], many[1], rtol=1e-5, atol=1e-5)
    for name in one[2]:
        torch.testing.assert_close(one[2][name], many[2][name], rtol=1e-4, atol=1e-4)


@needs_interpreter
def test_dispatch_uses_the_interpreter_only_when_asked(monkeypatch):
    inputs = make_inputs(batch=1, dim=4, seqlen=6, seed=2)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    via_triton = selective_scan_fn(**inputs)
    monkeypatch.delenv("TRITON_INTERPRET")
    via_torch, last = selective_scan_fn(**inputs, return_last_state=True)
    assert via_torch.shape == via_triton.shape == (1, 4, 6) and last.shape == (1, 4, 4)
    assert last.dtype == torch.float32
    torch.testing.assert_close(via_triton, via_torch, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(u=torch.zeros(2, 4)), "u must be a \\(batch, dim, seqlen\\)"),
        (dict(delta=torch.zeros(1, 4, 5)), "delta must have u's shape"),
        (dict(A=torch.zeros(3, 4)), "A must be \\(dim=4, dstate\\)"),
        (dict(B=torch.zeros(1, 3, 4, 6)), "dim=4 must be divisible by groups=3"),
        (dict(D=torch.zeros(5)), "D must be \\(dim,\\)"),
        (dict(seq_idx=torch.zeros(1, 6)), "seq_idx must be an integer tensor"),
        (dict(initial_state=torch.zeros(1, 4, 3)), "initial_state must be"),
    ],
)
def test_bad_arguments_are_named(change, message):
    inputs = make_inputs(batch=1, dim=4, seqlen=6)
    inputs.update(change)
    with pytest.raises(ValueError, match=message):
        selective_scan_fn(**inputs)


@needs_interpreter
def test_large_state_sizes_take_the_pytorch_path(monkeypatch):
    """Past MAX_TRITON_DSTATE states the scan runs the PyTorch path, even where Triton could run."""
    from mamba_lm.kernels.selective_scan import interface
    from mamba_lm.kernels.selective_scan.torch_scan import selective_scan_torch

    inputs = make_inputs(batch=1, dim=2, dstate=interface.MAX_TRITON_DSTATE + 8, seqlen=5, seed=6)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(
        interface, "selective_scan_torch", lambda *a: (selective_scan_torch(*a)[0] * 0 + 7, None)
    )
    out = selective_scan_fn(**inputs)
    assert torch.equal(out, torch.full_like(out, 7.0))


# The backward kernel's switches (ScanConfig, triton_bwd.py); the tests above run it without them.
# PREFETCH reads each state back one step ahead (PREFETCH_STATES); DEFER sums a step's dB and dC
# over channels during the next step (DEFER_SUMS); TILES walks each chunk in tiles (TILE).
# Chunks of 8 steps in segments of 16: partial chunks, several segments.
PREFETCH = dataclasses.replace(SEGMENTS, prefetch_states=True)
DEFER = dataclasses.replace(PREFETCH, defer_sums=True)
TILES = dataclasses.replace(DEFER, bwd_tile=3)  # 8-step chunks in tiles of 3, 3, 2
# 64 channels per program (two per thread): FOLD_SUMS adds them before the shuffle rounds.
FOLD = dataclasses.replace(SEGMENTS, bwd_block_d=64, fold_sums=True)


@needs_interpreter
@pytest.mark.parametrize("config", [PREFETCH, DEFER, TILES], ids=["pf", "defer", "tiles"])
def test_backward_switches_match_reference(config):
    inputs = make_inputs(batch=2, dim=4, seqlen=21, seed=21)
    got = run_with_grads(triton_scan(config), inputs)
    ref = run_with_grads(selective_scan_ref, inputs)
    assert_scan_close(got, ref, torch.float32, str(config))


@needs_interpreter
def test_backward_folded_channel_sums():
    inputs = make_inputs(batch=1, dim=80, seqlen=9, seed=8)  # blocks of 64 and 16 channels
    got = run_with_grads(triton_scan(FOLD), inputs)
    ref = run_with_grads(selective_scan_ref, inputs)
    assert_scan_close(got, ref, torch.float32, "folded sums")


@needs_interpreter
def test_backward_switches_packed_documents_bf16_without_z():
    seqlen = 19
    inputs = make_inputs(batch=1, dim=4, seqlen=seqlen, dtype=torch.bfloat16, z=False, seed=4)
    seq_idx = torch.zeros(1, seqlen, dtype=torch.int32)
    seq_idx[0, 5:] = 1
    seq_idx[0, 16:] = 3
    got = run_with_grads(triton_scan(TILES), inputs, seq_idx=seq_idx)
    ref = run_with_grads(selective_scan_ref, inputs, upcast=True, seq_idx=seq_idx)
    assert_scan_close(got, ref, torch.bfloat16, "tiles, packed bf16")


@needs_interpreter
def test_backward_switches_large_delta_times_A_stays_finite():
    inputs = make_inputs(batch=1, dim=4, seqlen=10, seed=9, D=False, delta_bias=False)
    inputs["delta"] = inputs["delta"].abs() * 200 + 50
    inputs["A"] = inputs["A"] * 100
    got = run_with_grads(triton_scan(DEFER), inputs)
    ref = run_with_grads(selective_scan_ref, inputs)
    assert_scan_close(got, ref, torch.float32, "defer, large dt|A|")


def test_plan_takes_the_backward_variant_constant(monkeypatch):
    from mamba_lm.kernels.selective_scan import triton_scan as module

    assert module.BWD_VARIANT in module.BWD_VARIANTS
    for fields in module.BWD_VARIANTS.values():  # every entry names ScanConfig fields only
        ScanConfig(block_d=4, num_warps=1, seg_len=fields["chunk_len"], **fields)
    monkeypatch.setattr(module, "BWD_VARIANT", "stored-pf")
    cfg = module.plan(2, 8, 1, 4, 50, torch.device("cpu"))
    assert cfg.prefetch_states and not cfg.fold_sums
    assert module.plan(2, 8, 1, 4, 50, torch.device("cpu"), bwd_variant="stored-c16-fold").fold_sums


@needs_interpreter
def test_delta_softplus_is_accurate_far_below_zero():
    assert_softplus_of_delta_is_accurate(triton_scan(ONE_SEGMENT))

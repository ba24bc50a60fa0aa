"""The fused residual add + LayerNorm / RMSNorm against its fp32 reference, on CPU through Triton's
interpreter (tiny shapes), plus the dispatch, the PyTorch path and argument checks. The same checks at
model sizes run on a GPU (`pytest -m gpu`)."""

import pytest
import torch
from mamba_lm.kernels import layer_norm_fn, layer_norm_ref, rms_norm_fn
from mamba_lm.kernels.layer_norm.triton_norm import (  # interpreted on a CPU (tests/conftest.py)
    NormConfig,
    layer_norm_triton,
)

TOLERANCES = {
    torch.float32: dict(rtol=1e-4, atol=1e-4),
    torch.bfloat16: dict(rtol=2e-2, atol=3e-2),
}
INPUT_NAMES = ("x", "weight", "bias", "residual")


def make_inputs(rows, d, dtype, residual_dtype=None, bias=True, device="cpu", seed=0):
    """x (rows, d) in dtype, residual (rows, d) in residual_dtype (None: no residual), weight and bias
    (d,) fp32 (the model's parameters), as a dict of keyword arguments."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, dt=torch.float32, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=g) * scale + shift).to(device=device, dtype=dt)

    return dict(
        x=rand(rows, d, dt=dtype, shift=0.5),
        weight=rand(d, scale=0.3, shift=1.0),
        bias=rand(d, scale=0.3) if bias else None,
        residual=rand(rows, d, dt=residual_dtype, scale=2.0) if residual_dtype is not None else None,
    )


def run_with_grads(fn, inputs, seed=1, **options):
    """fn(**inputs, **options) and the gradients of every tensor input for fixed random weights of y
    (and of new_residual with prenorm). Returns (outputs tuple, {name: grad})."""
    leaves = {n: inputs[n].detach().clone().requires_grad_() for n in INPUT_NAMES if inputs[n] is not None}
    call = {n: leaves.get(n) for n in INPUT_NAMES}
    out = fn(**call, **options)
    outs = out if isinstance(out, tuple) else (out,)
    g = torch.Generator().manual_seed(seed)
    loss = sum((o.float() * torch.randn(o.shape, generator=g).to(o.device)).sum() for o in outs)
    loss.backward()
    return outs, {n: leaf.grad for n, leaf in leaves.items()}


def assert_norm_close(got, ref, dtype, what=""):
    (outs, grads), (outs_ref, grads_ref) = got, ref
    tol = TOLERANCES[dtype]
    assert len(outs) == len(outs_ref)
    for i, (o, o_ref) in enumerate(zip(outs, outs_ref)):
        assert o.dtype == o_ref.dtype and o.shape == o_ref.shape, f"{what} output {i}"
        torch.testing.assert_close(o.float(), o_ref.float(), **tol, msg=lambda m, i=i: f"{what} out{i}: {m}")
    assert set(grads) == set(grads_ref)
    for name, grad in grads.items():
        ref_grad = grads_ref[name]
        assert grad is not None and grad.dtype == ref_grad.dtype, f"{what} d{name}"
        # dweight and dbias are sums over rows: compare relative to their size.
        atol = max(tol["atol"], tol["rtol"] * ref_grad.abs().max().item())
        torch.testing.assert_close(
            grad.float(),
            ref_grad.float(),
            rtol=tol["rtol"],
            atol=atol,
            msg=lambda m, n=name: f"{what} d{n}: {m}",
        )


@pytest.mark.skipif(torch.cuda.is_available(), reason="interpreter tests; the GPU runs the gpu ones")
@pytest.mark.parametrize("is_rms_norm", [True, False], ids=["rms", "layer"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("rows, d", [(1, 8), (257, 40), (5, 130)])
def test_prenorm_with_fp32_residual_matches_reference(is_rms_norm, dtype, rows, d):
    """The block's use: x in the compute dtype, an fp32 residual stream, y and new_residual both
    returned (so gradient arrives on both), non-power-of-two widths, 1 and 257 rows."""
    inputs = make_inputs(rows, d, dtype, residual_dtype=torch.float32, seed=rows + d)
    options = dict(prenorm=True, is_rms_norm=is_rms_norm)
    got = run_with_grads(layer_norm_triton, inputs, **options)
    ref = run_with_grads(layer_norm_ref, inputs, **options)
    assert got[0][1].dtype == torch.float32
    assert_norm_close(got, ref, dtype, f"{dtype} {rows}x{d}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="interpreter tests; the GPU runs the gpu ones")
@pytest.mark.parametrize(
    "residual, residual_in_fp32, prenorm, bias",
    [
        ("none", False, False, False),
        ("none", True, True, True),
        ("none", False, True, False),
        ("same", False, True, True),
        ("same", True, True, False),
        ("same", False, False, True),
        ("fp32", False, False, False),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_residual_and_output_options(residual, residual_in_fp32, prenorm, bias, dtype):
    residual_dtype = {"none": None, "same": dtype, "fp32": torch.float32}[residual]
    inputs = make_inputs(7, 24, dtype, residual_dtype=residual_dtype, bias=bias, seed=3)
    options = dict(prenorm=prenorm, residual_in_fp32=residual_in_fp32, is_rms_norm=residual != "same")
    got = run_with_grads(layer_norm_triton, inputs, **options)
    ref = run_with_grads(layer_norm_ref, inputs, **options)
    if prenorm:
        expected = torch.float32 if residual_in_fp32 or residual == "fp32" else dtype
        assert got[0][1].dtype == expected
    assert_norm_close(got, ref, dtype, str(options))


@pytest.mark.skipif(torch.cuda.is_available(), reason="interpreter tests; the GPU runs the gpu ones")
def test_out_dtype_half_weight_and_leading_dims():
    """y in a requested dtype; bf16 weight and bias; (batch, seqlen, d) inputs; a bf16 residual added
    to an fp32 x (new_residual stays fp32, x's dtype)."""
    inputs = make_inputs(6, 16, torch.float32, residual_dtype=torch.bfloat16, seed=4)
    inputs = {k: v.view(2, 3, 16) if v.dim() == 2 else v.bfloat16() for k, v in inputs.items()}
    options = dict(prenorm=True, out_dtype=torch.bfloat16)
    got = run_with_grads(layer_norm_triton, inputs, **options)
    ref = run_with_grads(layer_norm_ref, inputs, **options)
    assert got[0][0].dtype == torch.bfloat16 and got[0][0].shape == (2, 3, 16)
    assert got[0][1].dtype == torch.float32 and got[1]["weight"].dtype == torch.bfloat16
    assert_norm_close(got, ref, torch.bfloat16, "out_dtype")


@pytest.mark.skipif(torch.cuda.is_available(), reason="interpreter tests; the GPU runs the gpu ones")
def test_launch_plans_agree():
    """One backward program over all rows and one per row, tiles of 1 and 4 rows: same results."""
    inputs = make_inputs(11, 20, torch.float32, residual_dtype=torch.float32, seed=5)
    results = [
        run_with_grads(layer_norm_triton, inputs, prenorm=True, config=NormConfig(bm, 1, bm, 1, programs))
        for bm, programs in ((1, 1), (4, 11), (4, 3))
    ]
    for other in results[1:]:
        assert_norm_close(other, results[0], torch.float32, "plans")


@pytest.mark.skipif(torch.cuda.is_available(), reason="interpreter tests; the GPU runs the gpu ones")
def test_strided_rows():
    """x and residual as column slices of wider tensors (rows not contiguous, columns contiguous)."""
    wide = make_inputs(5, 40, torch.float32, residual_dtype=torch.float32, seed=6)
    inputs = make_inputs(5, 24, torch.float32, seed=6)
    inputs.update(x=wide["x"][:, 3:27], residual=wide["residual"][:, 10:34])
    assert not inputs["x"].is_contiguous()
    got = run_with_grads(layer_norm_triton, inputs, prenorm=True)
    ref = run_with_grads(layer_norm_ref, inputs, prenorm=True)
    assert_norm_close(got, ref, torch.float32, "strided")


def test_dispatch_uses_the_interpreter_only_when_asked(monkeypatch):
    inputs = make_inputs(3, 8, torch.float32, residual_dtype=torch.float32, seed=7)
    inputs = {k: v.requires_grad_() if v is not None else None for k, v in inputs.items()}
    via_torch = rms_norm_fn(**inputs, prenorm=True)
    assert "LayerNormTriton" not in type(via_torch[0].grad_fn).__name__
    if torch.cuda.is_available():
        return
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    via_triton = rms_norm_fn(**inputs, prenorm=True)
    assert "LayerNormTriton" in type(via_triton[0].grad_fn).__name__
    for a, b in zip(via_triton, via_torch):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_pytorch_path_matches_torch_norms():
    """The CPU path (the reference) agrees with torch's own norms after an explicit add."""
    inputs = make_inputs(4, 12, torch.float32, residual_dtype=torch.float32, seed=8)
    x, w, b, r = (inputs[n] for n in INPUT_NAMES)
    y, new_residual = layer_norm_fn(x, w, b, r, prenorm=True, eps=1e-6)
    torch.testing.assert_close(new_residual, x + r)
    torch.testing.assert_close(y, torch.nn.functional.layer_norm(x + r, (12,), w, b, eps=1e-6))
    y = rms_norm_fn(x, w, residual=r, eps=1e-6)
    torch.testing.assert_close(y, torch.nn.functional.rms_norm(x + r, (12,), w, eps=1e-6))


def test_pytorch_path_gradcheck():
    inputs = make_inputs(3, 6, torch.float64, residual_dtype=torch.float64, seed=9)
    tensors = tuple(inputs[n].double().requires_grad_() for n in INPUT_NAMES)
    for is_rms_norm in (True, False):

        def fn(x, w, b, r, is_rms_norm=is_rms_norm):
            return layer_norm_fn(x, w, b, r, prenorm=True, is_rms_norm=is_rms_norm)

        assert torch.autograd.gradcheck(fn, tensors)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(x=torch.zeros(3, 8, dtype=torch.int64)), "x must be a floating tensor"),
        (dict(weight=torch.ones(7)), "weight must be \\(d,\\) = \\(8,\\)"),
        (dict(bias=torch.ones(2, 8)), "bias must be \\(d,\\)"),
        (dict(residual=torch.zeros(3, 7)), "residual must have x's shape"),
        (dict(eps=0.0), "eps must be positive"),
        (dict(x=torch.zeros(3, 0), weight=torch.ones(0)), "must not be empty"),
    ],
)
def test_bad_arguments_are_named(change, message):
    args = dict(x=torch.zeros(3, 8), weight=torch.ones(8), bias=None, residual=None, eps=1e-5)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        layer_norm_fn(**args)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("is_rms_norm", [True, False], ids=["rms", "layer"])
@pytest.mark.parametrize("d", [768, 1024, 1536, 2048])
def test_model_sizes_on_gpu(is_rms_norm, d):
    """bf16 x, fp32 residual stream, fp32 weights, prenorm: against the fp32 reference."""
    inputs = make_inputs(4099, d, torch.bfloat16, residual_dtype=torch.float32, device="cuda", seed=d)
    options = dict(prenorm=True, is_rms_norm=is_rms_norm, residual_in_fp32=True)
    got = run_with_grads(layer_norm_fn, inputs, **options)
    ref = run_with_grads(layer_norm_ref, inputs, **options)
    assert "LayerNormTriton" in type(got[0][0].grad_fn).__name__
    assert_norm_close(got, ref, torch.bfloat16, f"d={d}")

"""The fused training path (fused add + norm, the memory-lean Mamba Function, the chunked LM loss) against
the unfused reference path (``set_fused(model, False)``): same loss, logits and gradients.

Run twice: on the PyTorch paths a CPU takes by default, and through the Triton kernels under the
interpreter (tiny shapes), where the Mamba Function calls the Triton scan's forward and backward itself.
"""

from __future__ import annotations

import copy

import pytest
import torch
from mamba_lm.kernels.selective_scan import triton_scan  # interpreted on a CPU (tests/conftest.py)
from model_testing import VOCAB, relative_error, tiny_config

from mamba_lm import MambaConfig, MambaLMHeadModel, TransformerConfig, TransformerLMHeadModel
from mamba_lm.modules.fusion import set_fused

MODELS = {"mamba": MambaLMHeadModel, "transformer": TransformerLMHeadModel}
# Worst relative error over the loss and every parameter's gradient (bf16: autocast rounding).
TOLERANCE = {torch.float32: 2e-5, torch.bfloat16: 3e-2}


def models(kind: str, config=None):
    model = MODELS[kind](config or tiny_config(kind))
    return model, set_fused(copy.deepcopy(model), False)


def batch(seqlen: int, packed: bool):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (2, seqlen), generator=g)
    labels = torch.randint(0, VOCAB, (2, seqlen), generator=g)
    labels[0, :3] = -100
    seq_idx = None
    if packed:
        cut = seqlen // 3
        seq_idx = torch.tensor([[0] * cut + [1] * (seqlen - cut), [0] * seqlen], dtype=torch.int32)
    return ids, labels, seq_idx


def loss_and_grads(model, ids, labels, seq_idx, dtype):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        sums = model(ids, seq_idx=seq_idx, labels=labels, count_correct=True)
    sums.loss_sum.backward()
    return sums, {name: p.grad for name, p in model.named_parameters()}


def assert_same_training_signal(fused, unfused, seqlen, packed, dtype):
    ids, labels, seq_idx = batch(seqlen, packed)
    got, got_grads = loss_and_grads(fused, ids, labels, seq_idx, dtype)
    want, want_grads = loss_and_grads(unfused, ids, labels, seq_idx, dtype)
    assert got.count == want.count == (labels != -100).sum()
    assert got.correct == want.correct
    assert relative_error(got.loss_sum, want.loss_sum) < TOLERANCE[dtype]
    for name, grad in want_grads.items():
        assert got_grads[name] is not None, name
        assert relative_error(got_grads[name], grad) < TOLERANCE[dtype], name


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kind,packed", [("mamba", False), ("mamba", True), ("transformer", False)])
def test_fused_path_equals_the_unfused_reference(kind, packed, dtype):
    fused, unfused = models(kind)
    assert_same_training_signal(fused, unfused, seqlen=21, packed=packed, dtype=dtype)


def test_fused_path_through_the_triton_kernels(monkeypatch):
    """Interpreted Triton kernels: the Mamba Function's own scan forward/backward calls, the conv's
    recompute, the fused norms, against autograd through the same kernels, on packed documents;
    19 steps cross two of the interpreter plan's 16-step chunks."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    fused, unfused = models("mamba", MambaConfig(d_model=8, n_layer=1, vocab_size=VOCAB, d_state=4))
    assert_same_training_signal(fused, unfused, seqlen=19, packed=True, dtype=torch.float32)


@pytest.mark.parametrize("kind", ["mamba", "transformer"])
def test_logits_and_their_gradients_agree(kind):
    config = tiny_config("mamba", rms_norm=False) if kind == "mamba" else None  # LayerNorm too
    fused, unfused = models(kind, config)
    ids, _, _ = batch(13, packed=False)
    got, want = fused(ids).logits, unfused(ids).logits
    assert relative_error(got, want) < 1e-6
    weights = torch.randn(got.shape, generator=torch.Generator().manual_seed(2))
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    for (name, p), q in zip(fused.named_parameters(), unfused.parameters()):
        assert relative_error(p.grad, q.grad) < 1e-5, name


def test_the_fused_path_keeps_the_state_dict_and_the_numbers():
    """The same weights give the same logits in both paths, and the keys are the reference's."""
    fused, unfused = models("mamba")
    assert list(fused.state_dict()) == list(unfused.state_dict())
    ids, _, _ = batch(9, packed=False)
    with torch.no_grad():
        assert torch.equal(fused(ids).logits, unfused(ids).logits)


def test_labels_must_match_the_input():
    model, _ = models("mamba")
    ids = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="labels must be"):
        model(ids, labels=torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="num_last_tokens"):
        model(ids, labels=ids, num_last_tokens=1)


@pytest.mark.gpu
@pytest.mark.parametrize("kind,packed", [("mamba", False), ("mamba", True), ("transformer", False)])
def test_fused_path_on_the_gpu(kind, packed):
    """Model-sized widths through the compiled kernels, bf16 autocast: the GPU's own plan (64-step
    chunks, 512-step segments) and the fused loss's chunking."""
    if kind == "mamba":
        config = MambaConfig(d_model=256, n_layer=2, vocab_size=1000)
    else:
        config = TransformerConfig(d_model=256, n_layer=2, n_head=4, vocab_size=1000)
    torch.manual_seed(0)
    fused = MODELS[kind](config, device="cuda")
    unfused = set_fused(copy.deepcopy(fused), False)
    seqlen, g = 1100, torch.Generator(device="cuda").manual_seed(0)
    ids = torch.randint(0, 1000, (2, seqlen), device="cuda", generator=g)
    labels = torch.randint(0, 1000, (2, seqlen), device="cuda", generator=g)
    seq_idx = None
    if packed:
        seq_idx = (torch.arange(seqlen, device="cuda") >= 700).int().expand(2, seqlen).contiguous()
    results = []
    for model in (fused, unfused):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            sums = model(ids, seq_idx=seq_idx, labels=labels)
        sums.loss_sum.backward()
        results.append((sums.loss_sum, {n: p.grad for n, p in model.named_parameters()}))
    (got, got_grads), (want, want_grads) = results
    assert relative_error(got, want) < 1e-2
    for name, grad in want_grads.items():
        assert relative_error(got_grads[name], grad) < 5e-2, name


def saved_bytes_per_token(block, d_model: int, seqlens=(64, 96)) -> float:
    """Bytes of activations a block's forward keeps for its backward (bf16 autocast), per token:
    the growth of the saved storages between two sequence lengths (parameters excluded)."""
    totals = []
    for seqlen in seqlens:
        storages = {}

        def pack(t, storages=storages):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        hidden, residual = torch.randn(1, seqlen, d_model), torch.randn(1, seqlen, d_model)
        hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        with hooks, torch.autocast("cpu", dtype=torch.bfloat16):
            block(hidden.requires_grad_(), residual.requires_grad_())
        params = {p.untyped_storage().data_ptr() for p in block.parameters()}
        totals.append(sum(n for ptr, n in storages.items() if ptr not in params))
    return (totals[1] - totals[0]) / (seqlens[1] - seqlens[0])


def scan_state_bytes_per_token(d_inner: int, d_state: int, seqlens=(64, 96)) -> float:
    """What the Triton scan's forward keeps for its backward (chunk states, per-segment sums), per token."""
    totals = []
    for seqlen in seqlens:
        u = torch.randn(1, seqlen, d_inner).transpose(1, 2)
        B = torch.randn(1, 1, d_state, seqlen)
        config = triton_scan.plan(1, d_inner, 1, d_state, seqlen, u.device)
        saved = triton_scan.scan_forward(
            u, u, -torch.ones(d_inner, d_state), B, B, None, None, None, True, None, None, config
        )[2:]
        totals.append(sum(t.untyped_storage().nbytes() for t in saved if t is not None))
    return (totals[1] - totals[0]) / (seqlens[1] - seqlens[0])


def test_the_mamba_block_saves_what_the_docstring_says(monkeypatch):
    """Per token and layer: the norm's fp32 stream 4d (+ rstd), in_proj's input 2d, xz 8d, x_dbl 2K,
    the scan's states (fp32 every 16 steps under the interpreter's plan, 64 on a GPU), out_proj's input
    4d; u and delta (4d each) only on the unfused path."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    d, d_state = 8, 4
    model = MambaLMHeadModel(MambaConfig(d_model=d, n_layer=1, vocab_size=VOCAB, d_state=d_state))
    block, mixer = model.backbone.layers[0], model.backbone.layers[0].mixer
    K = mixer.dt_rank + 2 * d_state
    states = scan_state_bytes_per_token(mixer.d_inner, d_state)
    assert states >= mixer.d_inner * d_state * 4 / 64
    expected = 4 * d + 4 + 2 * d + 8 * d + 2 * K + states + 4 * d
    assert saved_bytes_per_token(block, d) == expected
    set_fused(model, False)
    assert saved_bytes_per_token(block, d) >= expected + 8 * d

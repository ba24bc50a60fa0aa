"""The PyTorch CPU path of the selective scan: float64 gradcheck of every input, and agreement with
the sequential reference (it is what models use on CPUs)."""

import pytest
import torch
from mamba_lm.kernels import selective_scan_ref
from mamba_lm.kernels.selective_scan.torch_scan import selective_scan_torch
from scan_testing import assert_scan_close, make_inputs, run_with_grads


def torch_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
               return_last_state=False, initial_state=None, seq_idx=None):  # fmt: skip
    return selective_scan_torch(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, seq_idx)


@pytest.mark.parametrize("groups", [1, 2])
def test_gradcheck_every_input(groups):
    inputs = make_inputs(batch=2, dim=4, dstate=3, seqlen=7, groups=groups, dtype=torch.float64, seed=groups)
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias", "initial_state"]
    tensors = tuple(inputs[n].double().requires_grad_() for n in names)
    seq_idx = torch.tensor([[0, 0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 1, 1, 3]], dtype=torch.int32)

    def fn(*args):
        kw = dict(zip(names, args))
        out, last = torch_scan(**kw, delta_softplus=True, seq_idx=seq_idx)
        return out, last

    assert torch.autograd.gradcheck(fn, tensors)


@pytest.mark.parametrize("seqlen", [1, 20])
@pytest.mark.parametrize("with_seq_idx", [False, True])
def test_matches_reference(seqlen, with_seq_idx):
    inputs = make_inputs(batch=2, dim=6, dstate=5, seqlen=seqlen, groups=3, seed=seqlen)
    seq_idx = None
    if with_seq_idx:
        seq_idx = torch.zeros(2, seqlen, dtype=torch.int32)
        seq_idx[0, seqlen // 2 :] = 1
    got = run_with_grads(torch_scan, inputs, seq_idx=seq_idx)
    ref = run_with_grads(selective_scan_ref, inputs, seq_idx=seq_idx)
    assert_scan_close(got, ref, torch.float32)


def test_bf16_inputs():
    inputs = make_inputs(batch=1, dim=4, seqlen=16, dtype=torch.bfloat16, seed=4)
    got = run_with_grads(torch_scan, inputs)
    ref = run_with_grads(selective_scan_ref, inputs, upcast=True)
    assert got[0].dtype == torch.bfloat16
    assert_scan_close(got, ref, torch.bfloat16)

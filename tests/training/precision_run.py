"""One bf16 training step on 2 CPU processes, recording the dtypes each stage sees (for test_precision.py).

    accelerate launch --config_file configs/accelerate/cpu_ddp.yaml precision_run.py OUT ddp
    torchrun --nproc_per_node 2 precision_run.py OUT fsdp

``ddp``: the trainer's ``make_accelerator("bf16")`` and ``TrainStep``'s forward/backward (autocast, DDP).
``fsdp``: FSDP2 over gloo as ``make_accelerator`` arranges it on GPUs (accelerate's FSDP needs GPUs):
``shard_ssm_modules`` first, then one unit per Block and the root under ``fsdp_mixed_precision("bf16")``,
the forward under autocast. Each process writes OUT/rank{i}.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from helpers import CountingLoader, tiny_mamba  # noqa: E402

from mamba_lm.trainer.runtime import fsdp_mixed_precision, make_accelerator, shard_ssm_modules  # noqa: E402
from mamba_lm.trainer.step import forward_loss  # noqa: E402


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def record_dtypes(model, seen: dict) -> None:
    """Forward hooks noting the dtype of A_log and in_proj's weight inside the mixer, the norm's weight
    inside the block, and out_proj's output."""
    block, mixer = model.backbone.layers[0], model.backbone.layers[0].mixer

    def inside_mixer(module, args):
        seen["A_log"], seen["in_proj.weight"] = (
            dtype_name(mixer.A_log.dtype),
            dtype_name(mixer.in_proj.weight.dtype),
        )

    def inside_block(module, args):
        seen["norm.weight"] = dtype_name(block.norm.weight.dtype)

    mixer.register_forward_pre_hook(inside_mixer)
    block.register_forward_pre_hook(inside_block)
    mixer.out_proj.register_forward_hook(lambda m, a, out: seen.update(out_proj_output=dtype_name(out.dtype)))


def grad_report(model) -> dict:
    grads = {}
    for name, parameter in model.named_parameters():
        grad = parameter.grad
        local = grad.to_local() if hasattr(grad, "to_local") else grad
        grads[name] = {
            "dtype": dtype_name(grad.dtype),
            "param": dtype_name(parameter.dtype),
            "sum": local.sum().item(),
        }
    return grads


def ddp(out: Path) -> None:
    accelerator = make_accelerator("bf16", cpu=True)
    model = tiny_mamba()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    seen: dict = {}
    record_dtypes(model, seen)
    model, optimizer = accelerator.prepare(model, optimizer)
    batch = CountingLoader(4, rank=accelerator.process_index).batch_at(0)
    terms = forward_loss(model, batch, "lm")
    accelerator.backward(terms.loss_sum / terms.count)
    report = {"seen": seen, "grads": grad_report(model), "mixed_precision": accelerator.mixed_precision}
    (out / f"rank{accelerator.process_index}.json").write_text(json.dumps(report))


def fsdp(out: Path) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    model = tiny_mamba()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    seen: dict = {}
    record_dtypes(model, seen)
    units = shard_ssm_modules(model, [optimizer], mesh=mesh)
    ids = {id(p) for p in model.parameters()}
    optimizer_follows = all(id(p) in ids for group in optimizer.param_groups for p in group["params"])
    policy = fsdp_mixed_precision("bf16")
    for block in model.backbone.layers:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    batch = CountingLoader(4, rank=dist.get_rank()).batch_at(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = forward_loss(model, batch, "lm")
    (terms.loss_sum / terms.count).backward()
    report = {
        "seen": seen,
        "grads": grad_report(model),
        "units": units,
        "optimizer_follows": optimizer_follows,
    }
    (out / f"rank{dist.get_rank()}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    {"ddp": ddp, "fsdp": fsdp}[sys.argv[2]](Path(sys.argv[1]))

"""One bf16 training step on 2 CPU processes, recording the dtypes each stage sees (for test_precision.py).

    accelerate launch --config_file configs/accelerate/cpu_ddp.yaml precision_run.py OUT ddp
    torchrun --nproc_per_node 2 precision_run.py OUT fsdp

``ddp``: the trainer's ``make_accelerator("bf16")`` and ``TrainStep``'s forward/backward (autocast, DDP).
``fsdp``: FSDP2 over gloo through the prepare ``make_accelerator`` installs under FSDP2 (accelerate's FSDP
needs GPUs, so a stand-in shards the rest as accelerate does): SSM modules first as fp32 units, then one
bf16 unit per Block and the root, the forward under autocast. Each process writes OUT/rank{i}.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist
from torch.distributed.fsdp import FSDPModule

sys.path.insert(0, str(Path(__file__).parent))
from helpers import CountingLoader, tiny_mamba  # noqa: E402

from mamba_lm.trainer.runtime import (  # noqa: E402
    _prepare_with_fp32_ssm_units,
    fsdp_mixed_precision,
    make_accelerator,
    ssm_modules,
)
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


class GlooAccelerator:
    """The parts of accelerate's ``Accelerator`` (FSDP2, bf16) that ``make_accelerator``'s prepare reads,
    over a CPU mesh; its ``prepare`` shards as accelerate's does (one bf16 unit per Block, then the root)."""

    def __init__(self, mesh):
        from torch.distributed.fsdp import OffloadPolicy

        self.torch_device_mesh = {("dp_shard",): mesh}
        self.parallelism_config = SimpleNamespace(fsdp_dim_names=("dp_shard",))
        plugin = SimpleNamespace(reshard_after_forward=True, cpu_offload=OffloadPolicy())
        self.state = SimpleNamespace(fsdp_plugin=plugin)
        self.mesh = mesh

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16)

    def prepare(self, model, optimizer, device_placement=None):
        """Shards, then re-points the optimizer by the storage of each named parameter, as accelerate
        does (a KeyError: the optimizer held a parameter the model no longer has)."""
        from torch.distributed.fsdp import fully_shard

        def storage(parameter):
            return getattr(parameter, "_local_tensor", parameter).data_ptr()

        before = {name: storage(p) for name, p in model.named_parameters()}
        held = [[storage(p) for p in group["params"]] for group in optimizer.param_groups]
        policy = fsdp_mixed_precision("bf16")
        for block in model.backbone.layers:
            fully_shard(block, mesh=self.mesh, mp_policy=policy)
        fully_shard(model, mesh=self.mesh, mp_policy=policy)
        after = dict(model.named_parameters())
        by_storage = {pointer: after[name] for name, pointer in before.items()}
        for group, pointers in zip(optimizer.param_groups, held):
            group["params"] = [by_storage[pointer] for pointer in pointers]
        return model, optimizer


def fsdp(out: Path) -> None:
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo")
    accelerator = GlooAccelerator(init_device_mesh("cpu", (dist.get_world_size(),)))
    model = tiny_mamba()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    seen: dict = {}
    record_dtypes(model, seen)
    model, optimizer = _prepare_with_fp32_ssm_units(accelerator, accelerator.prepare, model, optimizer)
    units = sum(isinstance(m, FSDPModule) and m in ssm_modules(model) for m in model.modules())
    ids = {id(p) for p in model.parameters()}
    optimizer_follows = all(id(p) in ids for group in optimizer.param_groups for p in group["params"])
    batch = CountingLoader(4, rank=dist.get_rank()).batch_at(0)
    terms = forward_loss(model, batch, "lm")  # no autocast here: the prepared forward brings it
    (terms.loss_sum / terms.count).backward()
    report = {"seen": seen, "grads": grad_report(model), "units": units}
    report["optimizer_follows"] = optimizer_follows
    (out / f"rank{dist.get_rank()}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    {"ddp": ddp, "fsdp": fsdp}[sys.argv[2]](Path(sys.argv[1]))

"""Process-group set-up for torchrun and SLURM, and the few collectives the loop needs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_rank() -> int:
    """This process's global rank from the launcher's environment (0 when not launched in parallel)."""
    for var in ("RANK", "SLURM_PROCID", "SUBMITIT_LOCAL_GLOBALID"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def _export_submitit_env() -> None:
    # inside a submitit job (SLURM or local), submitit's helper maps its job environment onto the
    # variables torch.distributed reads (MASTER_ADDR, RANK, WORLD_SIZE, ...)
    if "RANK" in os.environ or "SUBMITIT_EXECUTOR" not in os.environ:
        return
    from submitit.helpers import TorchDistributedEnvironment

    env = TorchDistributedEnvironment()
    if env.world_size > 1:
        env.export(set_cuda_visible_devices=False)


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group when launched by torchrun or SLURM; a no-op for a single process."""
    _export_submitit_env()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown() -> None:
    """Leave the process group if we joined one."""
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


def seed_rank(seed: int, dist: DistInfo) -> None:
    """Give each rank its own torch RNG stream (dropout masks differ across ranks); rank 0 keeps the
    stream a single-process run has, so a 1-process run does not depend on this."""
    if dist.rank:
        torch.manual_seed(int(np.random.SeedSequence([seed, dist.rank]).generate_state(1)[0]))


def all_reduce_sum(values: torch.Tensor, dist: DistInfo) -> torch.Tensor:
    """Sum ``values`` over ranks (returns it unchanged in a single process)."""
    if dist.enabled:
        tdist.all_reduce(values, op=tdist.ReduceOp.SUM)
    return values


def any_rank(flag: bool, dist: DistInfo, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one (so all ranks stop together)."""
    if not dist.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    return bool(all_reduce_sum(t, dist).item() > 0)


def broadcast_buffers(model: torch.nn.Module, dist: DistInfo) -> None:
    """Copy rank 0's buffers (e.g. batch-norm running statistics) to every rank."""
    if dist.enabled:
        for buf in model.buffers():
            tdist.broadcast(buf, src=0)


def gather_objects(obj: Any, dist: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order (a one-element list in a single process)."""
    if not dist.enabled:
        return [obj]
    out: list[Any] = [None] * dist.world_size
    tdist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, dist: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not dist.enabled:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]

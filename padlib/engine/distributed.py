"""Process-group set-up for torchrun and SLURM, and the few collectives the loop needs.

Who starts the processes decides where their rank comes from: torchrun sets ``RANK``/``WORLD_SIZE``;
``srun -n N python train.py`` (an sbatch script's usual line) gives each task ``SLURM_PROCID`` and
``SLURM_STEP_NUM_TASKS``; submitit's jobs carry its own environment. All three become one process group.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist

from padlib.errors import PadlibError

log = logging.getLogger("padlib")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    gpu: int | None = None  # this process's CUDA device index (None: not on CUDA)
    # a CPU (gloo) group for the loop's per-step flags, so reading them never waits for the GPU
    host_group: Any = field(default=None, compare=False, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def place(self, device: torch.device) -> torch.device:
        """``device`` made this process's own: its GPU when ``device`` is CUDA without an index."""
        if device.type == "cuda" and device.index is None and self.gpu is not None:
            return torch.device("cuda", self.gpu)
        return device


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


def first_host(nodelist: str) -> str:
    """The first host of a SLURM host list: ``gpu[07-12,20],cpu1`` -> ``gpu07``, ``r[1-2]-n[3-4]`` -> ``r1-n3``."""
    first = re.split(r",(?![^\[]*\])", nodelist.strip())[0]
    return re.sub(r"\[([^\]]*)\]", lambda m: re.split(r"[,-]", m[1])[0], first)


def master_port(job_id: str, step_id: str) -> int:
    """A port every task of one SLURM job step derives alike, in [20000, 32000) (below Linux's range for
    outgoing connections); consecutive jobs and steps get different ports (7 is coprime to the range)."""
    return 20000 + (int(job_id) * 7 + int(step_id or 0)) % 12000


def _export_slurm_env() -> None:
    # srun -n N python train.py: each task is one rank. Only inside an srun step of several tasks: the
    # batch script itself also has SLURM_NTASKS, and a process there is alone.
    if "RANK" in os.environ or "SUBMITIT_EXECUTOR" in os.environ:
        return
    tasks = int(os.environ.get("SLURM_STEP_NUM_TASKS", "1"))
    if tasks <= 1 or "SLURM_PROCID" not in os.environ:
        return
    # the step's first host, always: a MASTER_ADDR the submitting shell passed on would not be this step's
    os.environ.update(RANK=os.environ["SLURM_PROCID"], WORLD_SIZE=str(tasks),
                      LOCAL_RANK=os.environ.get("SLURM_LOCALID", "0"),
                      MASTER_ADDR=first_host(os.environ.get("SLURM_STEP_NODELIST") or os.environ["SLURM_JOB_NODELIST"]))
    os.environ.setdefault("MASTER_PORT", str(master_port(os.environ["SLURM_JOB_ID"],
                                                         os.environ.get("SLURM_STEP_ID", "0"))))
    if os.environ["RANK"] == "0":
        log.info(f"srun step of {tasks} tasks: one DDP run, master {os.environ['MASTER_ADDR']}:"
                 f"{os.environ['MASTER_PORT']}")


def gpu_index(local_rank: int, visible: int) -> int:
    """This process's CUDA device among the ``visible`` ones: its local rank when every process of the node
    sees all GPUs (torchrun, SLURM's gpus_per_node), device 0 when each sees its own (gpus_per_task=1)."""
    if local_rank < visible:
        return local_rank
    if visible == 1:
        return 0
    raise PadlibError(
        f"local rank {local_rank} but only {visible} GPUs visible to it: start one process per GPU "
        "(tasks_per_node = gpus_per_node), or give each task its own GPU (hydra.launcher.gpus_per_task=1)"
    )


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group when launched by torchrun, srun or submitit; a no-op for a single process."""
    _export_submitit_env()
    _export_slurm_env()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    gpu = None
    if device_type == "cuda":
        gpu = gpu_index(local_rank, torch.cuda.device_count())
        torch.cuda.set_device(gpu)
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    # NCCL tensors live on the GPU: the loop's flags go through gloo instead (the default group on CPU)
    host_group = tdist.new_group(backend="gloo") if tdist.get_backend() != "gloo" else None
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, gpu=gpu, host_group=host_group)


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


def any_rank_flags(flags: list[bool], dist: DistInfo) -> list[bool]:
    """Each flag true on every rank when it is true on at least one, through the host group: the CPU
    waits for the other ranks, never for its GPU."""
    if not dist.enabled:
        return flags
    t = torch.tensor([float(f) for f in flags])
    tdist.all_reduce(t, op=tdist.ReduceOp.SUM, group=dist.host_group)
    return [bool(v > 0) for v in t.tolist()]


def barrier(dist: DistInfo) -> None:
    """Wait until every rank is here (host side only)."""
    if dist.enabled:
        tdist.barrier(group=dist.host_group)


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

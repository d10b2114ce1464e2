"""Steps/s of the DDP training loop with its per-step flags read from the device (as before: an all-reduce
on the GPU and a host read, which waits for the GPU to finish the previous step), from the host group (now:
gloo on CPU tensors, no GPU sync), and without any flags (the floor). All run in the same processes,
interleaved round by round; with one process the flags are exchanged anyway (a process group of one), so
their cost shows on a single GPU too.

    torchrun --nproc_per_node=2 scripts/bench_ddp_sync.py --device cpu                 # gloo on CPU
    torchrun --nproc_per_node=1 scripts/bench_ddp_sync.py --device cuda --batch 256   # NCCL, 1 GPU

On CPU "device" and "host" are expected to match (gloo either way: nothing waits for a GPU); the difference
the change makes is on a GPU, where the old read stalled the host once per step.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch
import torch.distributed as tdist
from torch import nn

from padlib.engine import loop
from padlib.engine.distributed import DistInfo, all_reduce_sum, init_distributed, shutdown
from padlib.engine.loop import StepContext, TrainMeters, train_one_epoch
from padlib.engine.progress import Progress
from padlib.models import build_model
from padlib.padding import get_padding

HOST_FLAGS = loop.any_rank_flags


def device_flags(flags: list[bool], dist: DistInfo) -> list[bool]:
    """The flags as the loop read them before: a tensor on the training device, read back each step."""
    t = all_reduce_sum(torch.tensor([float(f) for f in flags], device=DEVICE), dist)
    return [bool(v > 0) for v in t.tolist()]


def no_flags(flags: list[bool], dist: DistInfo) -> list[bool]:
    """No exchange at all: what a step costs without the flags."""
    return flags


@dataclasses.dataclass(frozen=True)
class Exchanging(DistInfo):
    """A DistInfo that exchanges the flags even in a process group of one."""

    @property
    def enabled(self) -> bool:
        return True


class Batch:
    def __init__(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        self.images, self.targets, self.skipped = images, targets, 0


def main() -> None:
    """Time the loop both ways and print steps/s with the ratio (rank 0)."""
    global DEVICE
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=16, help="per process")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20, help="steps per variant and round")
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    DEVICE = torch.device(args.device)
    dist = init_distributed(DEVICE.type)
    DEVICE = dist.place(DEVICE)
    if not tdist.is_initialized():  # one process: a group of one, so that the flags are really exchanged
        tdist.init_process_group("nccl" if DEVICE.type == "cuda" else "gloo")
        host = tdist.new_group(backend="gloo") if DEVICE.type == "cuda" else None
        dist = DistInfo(gpu=DEVICE.index, host_group=host)
    flags_dist = Exchanging(dist.rank, dist.world_size, dist.local_rank, dist.gpu, dist.host_group)
    torch.manual_seed(0)
    model = build_model("resnet18", 10, get_padding("zero")).to(DEVICE)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[DEVICE.index] if DEVICE.type == "cuda" else None) \
        if dist.enabled else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    ctx = StepContext(opt, sched, torch.amp.GradScaler(DEVICE.type, enabled=False), nn.CrossEntropyLoss(),
                      DEVICE, None, False, flags_dist)
    batches = [Batch(torch.randn(args.batch, 3, args.size, args.size), torch.randint(0, 10, (args.batch,)))
               for _ in range(args.steps)]
    rates: dict[str, list[float]] = {"device flags (before)": [], "host flags (now)": [], "no flags": []}
    for r in range(args.rounds + 1):  # round 0 warms up
        for name, flags in zip(rates, (device_flags, HOST_FLAGS, no_flags), strict=True):
            loop.any_rank_flags = flags
            if DEVICE.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            train_one_epoch(ddp, batches, ctx, TrainMeters(), Progress(args.steps, "", False), lambda: False,
                            check_every=args.steps)
            if DEVICE.type == "cuda":
                torch.cuda.synchronize()
            if r:
                rates[name].append(args.steps / (time.perf_counter() - start))
    loop.any_rank_flags = HOST_FLAGS
    if dist.is_main:
        world = dist.world_size
        print(f"{DEVICE} x{world} ({'gloo' if DEVICE.type == 'cpu' else tdist.get_backend() if world > 1 else '-'}), "
              f"resnet18 {args.size} px, batch {args.batch}/process, {args.rounds} rounds of {args.steps} steps")
        for name, values in rates.items():
            print(f"  {name:22s} {statistics.median(values):7.2f} steps/s (median over rounds)")
        before, now, floor = (statistics.median(v) for v in rates.values())
        print(f"  now / before: {now / before:.3f}; now / no flags: {now / floor:.3f}")
    shutdown()


DEVICE = torch.device("cpu")

if __name__ == "__main__":
    main()

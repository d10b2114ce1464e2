"""One training epoch and one validation pass (``validate``); nothing here knows about files or configs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from padlib.engine.amp import autocast
from padlib.engine.distributed import DistInfo, all_reduce_sum, any_rank, any_rank_flags, gather_objects
from padlib.engine.progress import Progress
from padlib.padding import fold_once


@dataclass
class TrainMeters:
    """Running sums of an epoch; plain numbers so a mid-epoch checkpoint can carry them."""

    loss_sum: float = 0.0
    correct: float = 0.0
    count: int = 0
    skipped: int = 0
    steps: int = 0

    def state_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvalResult:
    """Accuracy (percent) and loss over a whole val set, with per-sample predictions in dataset order."""

    loss: float
    top1: float
    top5: float
    count: int
    skipped: int
    pred: np.ndarray = field(repr=False)
    target: np.ndarray = field(repr=False)


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class StepContext:
    """What a training step needs besides the model and the batch."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    dist: DistInfo


def _to_device(images: torch.Tensor, ctx_device: torch.device, channels_last: bool) -> torch.Tensor:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return images.to(ctx_device, non_blocking=True, memory_format=fmt)


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    ctx: StepContext,
    meters: TrainMeters,
    progress: Progress,
    stop_requested: Callable[[], bool],
    check_every: int = 50,
) -> bool:
    """Train over ``loader``, adding to ``meters``; returns False when ``stop_requested`` interrupted it.

    The loss is accumulated on the device and read back only every ``check_every`` steps, so the GPU
    is not synchronised for it each step; that is also when a non-finite loss is detected.
    """
    model.train()
    loss_sum = torch.zeros((), device=ctx.device, dtype=torch.float64)
    correct = torch.zeros((), device=ctx.device, dtype=torch.float64)
    pending = 0  # samples in loss_sum/correct not yet added to meters

    def flush() -> None:
        nonlocal pending
        value = loss_sum.item()
        # every rank flushes at the same step, so all of them raise together
        if any_rank(not np.isfinite(value), ctx.dist, ctx.device):
            raise NonFiniteLoss(f"non-finite training loss after {meters.steps} steps of this epoch")
        meters.loss_sum += value
        meters.correct += correct.item()
        meters.count += pending
        loss_sum.zero_()
        correct.zero_()
        pending = 0

    for batch in loader:
        meters.skipped += batch.skipped
        empty, stop = len(batch.targets) == 0, stop_requested()
        # DDP ranks must skip an all-unreadable batch and stop for preemption together, or their gradient
        # all-reduces would no longer line up: one 2-flag all-reduce a step, on the host (no GPU sync)
        empty, stop = any_rank_flags([empty, stop], ctx.dist)
        n = 0
        if not empty:
            images = _to_device(batch.images, ctx.device, ctx.channels_last)
            targets = batch.targets.to(ctx.device, non_blocking=True)
            with autocast(ctx.device, ctx.amp_dtype):
                logits = model(images)
                loss = ctx.criterion(logits, targets)
            ctx.optimizer.zero_grad(set_to_none=True)
            ctx.scaler.scale(loss).backward()
            ctx.scaler.step(ctx.optimizer)
            ctx.scaler.update()
            n = len(targets)
            loss_sum += loss.detach().double() * n
            correct += (logits.detach().argmax(1) == targets).sum()
            pending += n
        # a skipped batch still counts: the schedule and the resume position follow the sampler
        ctx.scheduler.step()
        meters.steps += 1
        if meters.steps % check_every == 0:
            flush()
        shown = {"loss": meters.loss_sum / meters.count} if meters.count else {}
        progress.update(n, **shown, lr=ctx.optimizer.param_groups[0]["lr"])
        if stop:
            flush()
            return False
    flush()
    return True


def reduce_meters(meters: TrainMeters, dist: DistInfo, device: torch.device) -> TrainMeters:
    """The epoch's meters summed over ranks."""
    t = torch.tensor([meters.loss_sum, meters.correct, meters.count, meters.skipped], device=device,
                     dtype=torch.float64)
    loss_sum, correct, count, skipped = all_reduce_sum(t, dist).tolist()
    return TrainMeters(loss_sum, correct, int(count), int(skipped), meters.steps)


@torch.no_grad()
def validate(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    dist: DistInfo | None = None,
    channels_last: bool = False,
    progress: Progress | None = None,
) -> EvalResult:
    """Loss, top-1 and top-5 over the loader's whole dataset (all ranks' shards together)."""
    dist = dist or DistInfo()
    model.eval()
    with fold_once(model):  # the weights are fixed for the whole pass
        return _validate(model, loader, device, amp_dtype, dist, channels_last, progress)


def _validate(model: nn.Module, loader: DataLoader, device: torch.device, amp_dtype: torch.dtype | None,
              dist: DistInfo, channels_last: bool, progress: Progress | None) -> EvalResult:
    criterion = nn.CrossEntropyLoss(reduction="sum")
    sums = torch.zeros(5, device=device, dtype=torch.float64)  # loss, top1, top5, count, skipped
    indices, preds, targets_seen = [], [], []
    for batch in loader:
        sums[4] += batch.skipped
        if len(batch.targets) == 0:
            continue
        images = _to_device(batch.images, device, channels_last)
        targets = batch.targets.to(device, non_blocking=True)
        with autocast(device, amp_dtype):
            logits = model(images)
        logits = logits.float()
        topk = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = topk == targets[:, None]
        sums[0] += criterion(logits, targets)
        sums[1] += hits[:, 0].sum()
        sums[2] += hits.any(1).sum()
        sums[3] += len(targets)
        indices.append(batch.indices)
        preds.append(topk[:, 0].cpu())
        targets_seen.append(batch.targets)
        if progress is not None:
            progress.update(len(targets))
    loss, top1, top5, count, skipped = all_reduce_sum(sums, dist).tolist()
    # samples never seen (unreadable) keep -1 in both arrays
    pred = np.full(len(loader.dataset), -1, dtype=np.int64)
    target = pred.copy()
    for part in gather_objects([torch.cat(t).numpy() if t else np.zeros(0, np.int64)
                                for t in (indices, preds, targets_seen)], dist):
        pred[part[0]] = part[1]
        target[part[0]] = part[2]
    count = max(int(count), 1)
    return EvalResult(loss / count, 100 * top1 / count, 100 * top5 / count, int(count), int(skipped), pred, target)


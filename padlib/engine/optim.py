"""Optimizer and learning-rate schedule from the ``trainer.optim`` / ``trainer.schedule`` config."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from padlib.engine.config import OptimConfig, ScheduleConfig


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay on every parameter, as in the paper's main.py."""
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                           nesterov=cfg.nesterov)


def lr_factor(cfg: ScheduleConfig, epochs: int) -> Callable[[float], float]:
    """Multiplier of the base lr as a function of fractional epoch (0 at the start of training).

    The step schedule changes only at whole epochs (the paper's lr x0.1 at 30/60/90); cosine and the
    linear warmup move every iteration.
    """
    name, warmup, milestones, gamma = cfg.name, cfg.warmup_epochs, cfg.milestones, cfg.gamma

    def factor(t: float) -> float:
        if t < warmup:
            return (t + 1e-3) / warmup
        if name == "step":
            return gamma ** sum(math.floor(t) >= m for m in milestones)
        span = max(epochs - warmup, 1e-9)
        return 0.5 * (1 + math.cos(math.pi * min((t - warmup) / span, 1.0)))

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, epochs: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration LambdaLR: its state is just the step count, so resuming restores it exactly."""
    factor = lr_factor(cfg, epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(step / steps_per_epoch))

"""Optimizer and learning-rate schedule from the ``trainer.optim`` / ``trainer.schedule`` config."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from padlib.errors import PadlibError

SCHEDULES = ("step", "cosine")


def build_optimizer(model: nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay on every parameter, as in the paper's main.py."""
    return torch.optim.SGD(
        model.parameters(),
        lr=float(cfg["lr"]),
        momentum=float(cfg["momentum"]),
        weight_decay=float(cfg["weight_decay"]),
        nesterov=bool(cfg.get("nesterov", False)),
    )


def lr_factor(cfg: Mapping[str, Any], epochs: int) -> Callable[[float], float]:
    """Multiplier of the base lr as a function of fractional epoch (0 at the start of training).

    The step schedule changes only at whole epochs (the paper's lr x0.1 at 30/60/90); cosine and the
    linear warmup move every iteration.
    """
    name = cfg["name"]
    if name not in SCHEDULES:
        raise PadlibError(f"trainer.schedule.name={name!r} is unknown; use one of {', '.join(SCHEDULES)}")
    warmup = float(cfg.get("warmup_epochs", 0))
    milestones = sorted(int(m) for m in cfg.get("milestones", []))
    gamma = float(cfg.get("gamma", 0.1))

    def factor(t: float) -> float:
        if t < warmup:
            return (t + 1e-3) / warmup
        if name == "step":
            return gamma ** sum(math.floor(t) >= m for m in milestones)
        span = max(epochs - warmup, 1e-9)
        return 0.5 * (1 + math.cos(math.pi * min((t - warmup) / span, 1.0)))

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], epochs: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration LambdaLR: its state is just the step count, so resuming restores it exactly."""
    factor = lr_factor(cfg, epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(step / steps_per_epoch))

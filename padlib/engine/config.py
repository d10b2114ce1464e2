"""Read and check the ``trainer`` config group (and ``data.workers``): typed, in range, no unknown keys.

The trainer works only from the ``TrainerConfig`` this returns, so a bad value (``trainer.epochs=-1``,
``trainer.optim.lr=abc``) is one clear error before anything is built or written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from padlib.configcheck import boolean, choice, integer, known_keys, mapping, number
from padlib.engine.amp import AMP_MODES
from padlib.errors import PadlibError

SCHEDULES = ("step", "cosine")


@dataclass(frozen=True)
class OptimConfig:
    """SGD settings (``trainer.optim``)."""

    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule (``trainer.schedule``)."""

    name: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: float = 0.0


@dataclass(frozen=True)
class TrainerConfig:
    """A checked ``trainer`` config group."""

    epochs: int = 3
    batch_size: int = 128
    device: str = "auto"
    amp: str = "auto"
    channels_last: bool = True
    compile: bool = False
    compile_backend: str = "inductor"
    deterministic: bool = False
    label_smoothing: float = 0.0
    keep_last: int = 5
    max_unreadable_fraction: float = 0.001
    progress: bool = True
    log_every: int = 50
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()


def _optim(cfg: Any) -> OptimConfig:
    cfg, where = mapping(cfg, "trainer.optim", OptimConfig), "trainer.optim"
    d = OptimConfig()
    return OptimConfig(
        lr=number(cfg, "lr", d.lr, where, open_min=True),
        momentum=number(cfg, "momentum", d.momentum, where, maximum=1.0, open_max=True),
        weight_decay=number(cfg, "weight_decay", d.weight_decay, where),
        nesterov=boolean(cfg, "nesterov", d.nesterov, where),
    )


def _schedule(cfg: Any, epochs: int) -> ScheduleConfig:
    cfg, where = mapping(cfg, "trainer.schedule", ScheduleConfig), "trainer.schedule"
    d = ScheduleConfig()
    milestones = cfg.get("milestones", d.milestones)
    if not isinstance(milestones, list | tuple) or not all(
            isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in milestones):
        raise PadlibError(f"{where}.milestones={milestones!r} must be a list of epochs (integers >= 1)")
    warmup = number(cfg, "warmup_epochs", d.warmup_epochs, where)
    if warmup > epochs:
        raise PadlibError(f"{where}.warmup_epochs={warmup:g} must not exceed trainer.epochs={epochs}")
    return ScheduleConfig(
        name=choice(cfg, "name", d.name, SCHEDULES, where),
        milestones=tuple(sorted(milestones)),
        gamma=number(cfg, "gamma", d.gamma, where, open_min=True),
        warmup_epochs=warmup,
    )


def read_trainer_config(cfg: Mapping[str, Any]) -> TrainerConfig:
    """The checked ``TrainerConfig`` of the ``trainer`` group ``cfg``; PadlibError naming the first bad key."""
    known_keys(cfg, TrainerConfig, "trainer")
    where, d = "trainer", TrainerConfig()
    epochs = integer(cfg, "epochs", d.epochs, 1, where)
    backend = cfg.get("compile_backend", d.compile_backend)
    if not isinstance(backend, str) or not backend:
        raise PadlibError(f"trainer.compile_backend={backend!r} must be a torch.compile backend name, e.g. inductor")
    return TrainerConfig(
        epochs=epochs,
        batch_size=integer(cfg, "batch_size", d.batch_size, 1, where),
        device=_device(cfg.get("device", d.device)),
        amp=choice(cfg, "amp", d.amp, AMP_MODES, where),
        channels_last=boolean(cfg, "channels_last", d.channels_last, where),
        compile=boolean(cfg, "compile", d.compile, where),
        compile_backend=backend,
        deterministic=boolean(cfg, "deterministic", d.deterministic, where),
        label_smoothing=number(cfg, "label_smoothing", d.label_smoothing, where, maximum=1.0, open_max=True),
        keep_last=integer(cfg, "keep_last", d.keep_last, 0, where),
        max_unreadable_fraction=number(cfg, "max_unreadable_fraction", d.max_unreadable_fraction, where,
                                       maximum=1.0),
        progress=boolean(cfg, "progress", d.progress, where),
        log_every=integer(cfg, "log_every", d.log_every, 1, where),
        optim=_optim(cfg.get("optim", {})),
        schedule=_schedule(cfg.get("schedule", {}), epochs),
    )


def _device(value: Any) -> str:
    # any torch device string ("cuda:1" too): resolve_device checks that it exists
    if not isinstance(value, str) or not value:
        raise PadlibError(f"trainer.device={value!r} must be auto, cpu, cuda or cuda:N")
    return value


def read_workers(data_cfg: Mapping[str, Any]) -> int:
    """``data.workers``: DataLoader worker processes per rank, an integer >= 0."""
    return integer(data_cfg, "workers", 0, 0, "data")

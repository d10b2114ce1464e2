"""Hand-made run directories with known numbers, for the evaluator's tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from padlib.rundir import RunDir


def make_run(root: Path, arch: str, padding: str, seed: int, top1: Sequence[float], status: str = "completed",
             dataset: str = "synthetic", config: dict[str, Any] | None = None, name: str | None = None) -> RunDir:
    """A run directory whose epoch e (from 1) has val top-1 ``top1[e-1]``."""
    run = RunDir(root / (name or f"{arch}/{padding}/seed{seed}"))
    cfg = config or {"model": {"name": arch, "source": "torchvision"}, "padding": {"mode": padding},
                     "data": {"name": dataset}, "trainer": {"epochs": len(top1)}, "seed": seed}
    run.write_info({"arch": arch, "padding": padding, "seed": seed, "dataset": dataset, "epochs": len(top1),
                    "world_size": 1, "status": status, "config": cfg})
    for epoch, acc in enumerate(top1, 1):
        run.append_metrics({"epoch": epoch, "val_top1": float(acc), "val_top5": min(100.0, acc + 10),
                            "val_loss": 1.0 / epoch, "train_loss": 1.5 / epoch, "train_top1": acc - 1,
                            "lr": 0.1, "epoch_time_s": 1.0, "images_per_s": 100.0, "skipped_images": 0})
    return run


def curve(final: float, epochs: int = 6) -> list[float]:
    """A rising accuracy curve ending at ``final``: epochs ..., final-2, final-1, final."""
    return [final - (epochs - e) for e in range(1, epochs + 1)]


def make_predictions(run: RunDir, pred: Sequence[int], target: Sequence[int], epoch: int = 1) -> None:
    """Store per-sample predictions for ``run``."""
    run.write_predictions(np.asarray(pred), np.asarray(target), epoch)

"""Hand-made run directories with known numbers, for the evaluator's tests."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

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


TINY_ARCH = "test_resnet"  # timm's 0.4M-parameter ResNet: layer1..layer4 like torchvision's


def synthetic_data_cfg(data_root: Path) -> dict[str, Any]:
    """A 4-class synthetic ImageFolder config with 16 val images of 32x32."""
    return {"name": "synthetic", "root": str(data_root), "workers": 0, "image_size": 32, "resize_size": 36,
            "synthetic": {"num_classes": 4, "train_per_class": 2, "val_per_class": 4, "size": 40, "seed": 0}}


def make_model_run(root: Path, data_root: Path, padding: str, seed: int, pred: Sequence[int] | None = None,
                   arch: str = TINY_ARCH, top1: Sequence[float] = (40.0, 50.0)) -> RunDir:
    """A completed run with a real (randomly initialised) best checkpoint and, given ``pred``, predictions."""
    import torch

    from padlib.checkpoint import save_checkpoint
    from padlib.data import build_data
    from padlib.models import build_model

    data = synthetic_data_cfg(data_root)
    cfg = {"model": {"name": arch, "source": "timm" if arch == TINY_ARCH else "torchvision"},
           "padding": {"mode": padding}, "data": data, "trainer": {"epochs": len(top1)}, "seed": seed}
    run = make_run(root, arch, padding, seed, top1, config=cfg)
    torch.manual_seed(seed)
    model = build_model(arch, 4, padding, cfg["model"]["source"])
    save_checkpoint({"model": model.state_dict(), "arch": arch, "padding": padding, "config": cfg},
                    run.best_checkpoint)
    if pred is not None:
        target = build_data({k: v for k, v in data.items() if k != "workers"}).val.targets
        make_predictions(run, pred, target)
    return run


def welch_by_hand(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float]:
    """Welch's difference of means, its 95% CI and two-sided p from the textbook formulas."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    d = statistics.mean(a) - statistics.mean(b)
    q = sps.t.ppf(0.975, df)
    return d, d - q * se, d + q * se, 2 * sps.t.sf(abs(d / se), df)

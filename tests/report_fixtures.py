"""Hand-made run directories with known numbers, for the evaluator's tests."""

from __future__ import annotations

import functools
import json
import math
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from padlib.rundir import RunDir


def make_run(root: Path, arch: str, padding: str, seed: int, top1: Sequence[float], status: str = "completed",
             dataset: str = "synthetic", config: dict[str, Any] | None = None, name: str | None = None,
             epochs: int | None = None, info: dict[str, Any] | None = None) -> RunDir:
    """A run directory whose epoch e (from 1) has val top-1 ``top1[e-1]``; ``epochs`` is the planned number
    (default: as many as ``top1``), ``info`` more run.json fields (precision, device, world_size, ...)."""
    run = RunDir(root / (name or f"{arch}/{padding}/seed{seed}"))
    epochs = len(top1) if epochs is None else epochs
    cfg = config or {"model": {"name": arch, "source": "torchvision"}, "padding": {"mode": padding},
                     "data": {"name": dataset}, "trainer": {"epochs": epochs}, "seed": seed}
    run.write_info({"arch": arch, "padding": padding, "seed": seed, "dataset": dataset, "epochs": epochs,
                    "world_size": 1, "status": status, "config": cfg, **(info or {})})
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


def source_of(arch: str) -> str:
    """The model source of the test archs: timm for TINY_ARCH, torchvision for the others."""
    return "timm" if arch == TINY_ARCH else "torchvision"


# a data root holds one synthetic tree: another size regenerates it, so trained runs use their own root
TRAINED_SIZES = {"train_per_class": 32, "val_per_class": 16}


def synthetic_data_cfg(data_root: Path, train_per_class: int = 2, val_per_class: int = 4) -> dict[str, Any]:
    """A 4-class synthetic ImageFolder config of 32x32 images (by default 16 val images)."""
    return {"name": "synthetic", "root": str(data_root), "workers": 0, "image_size": 32, "resize_size": 36,
            "synthetic": {"num_classes": 4, "train_per_class": train_per_class, "val_per_class": val_per_class,
                          "size": 40, "seed": 0}}


def _save_model_run(root: Path, data: dict[str, Any], model: Any, padding: str, seed: int, arch: str,
                    top1: Sequence[float], info: dict[str, Any] | None) -> RunDir:
    """A completed run of ``model`` (its best checkpoint) with the metrics ``top1``."""
    from padlib.checkpoint import save_checkpoint

    cfg = {"model": {"name": arch, "source": source_of(arch)},
           "padding": {"mode": padding}, "data": data, "trainer": {"epochs": len(top1)}, "seed": seed}
    run = make_run(root, arch, padding, seed, top1, config=cfg, info=info)
    save_checkpoint({"model": model.state_dict(), "arch": arch, "padding": padding, "config": cfg},
                    run.best_checkpoint)
    return run


def make_model_run(root: Path, data_root: Path, padding: str, seed: int, pred: Sequence[int] | None = None,
                   arch: str = TINY_ARCH, top1: Sequence[float] = (40.0, 50.0),
                   info: dict[str, Any] | None = None) -> RunDir:
    """A completed run with a real (randomly initialised) best checkpoint and, given ``pred``, predictions."""
    import torch

    from padlib.data import build_data
    from padlib.models import build_model

    data = synthetic_data_cfg(data_root)
    torch.manual_seed(seed)
    model = build_model(arch, 4, padding, source_of(arch))
    run = _save_model_run(root, data, model, padding, seed, arch, top1, info)
    if pred is not None:
        target = build_data({k: v for k, v in data.items() if k != "workers"}).val.targets
        make_predictions(run, pred, target)
    return run


def split_tensors(data: dict[str, Any], split: str) -> tuple[Any, Any]:
    """All images of a split of the data config ``data`` as one batch, and their targets (decoded once)."""
    return _split_tensors(json.dumps(data, sort_keys=True), split)


@functools.cache
def _split_tensors(data_json: str, split: str) -> tuple[Any, Any]:
    import torch

    from padlib.data import build_data

    torch.manual_seed(0)  # the train split's random crops
    data = {k: v for k, v in json.loads(data_json).items() if k != "workers"}
    images = getattr(build_data(data), split)
    items = [images[i] for i in range(len(images))]
    return torch.stack([item[0] for item in items]), torch.tensor([int(item[1]) for item in items])


def make_trained_run(root: Path, data_root: Path, padding: str, seed: int, steps: int = 40) -> RunDir:
    """A completed run whose best checkpoint is TINY_ARCH trained by ``steps`` plain SGD steps in ``padding``
    on the synthetic train split (TRAINED_SIZES), logged honestly: its best val top-1 is these weights'
    top-1 over the whole val set in fp32 with the training padding (computed here, not by padlib.engine)."""
    import torch
    from torch.nn import functional

    from padlib.models import build_model

    data = synthetic_data_cfg(data_root, **TRAINED_SIZES)
    x, y = split_tensors(data, "train")
    torch.manual_seed(seed)
    model = build_model(TINY_ARCH, 4, padding, source_of(TINY_ARCH))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    order = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as fast for this tiny model, and many times faster on a busy machine
    try:
        model.train()
        for _ in range(steps):
            idx = torch.randint(0, len(x), (32,), generator=order)
            opt.zero_grad()
            functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        xv, yv = split_tensors(data, "val")
        with torch.no_grad():
            top1 = 100.0 * float((model.eval()(xv).argmax(1) == yv).float().mean())
    finally:
        torch.set_num_threads(threads)
    return _save_model_run(root, data, model, padding, seed, TINY_ARCH, (top1 / 2, top1), None)


def welch_by_hand(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float]:
    """Welch's difference of means, its 95% CI and two-sided p from the textbook formulas."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    d = statistics.mean(a) - statistics.mean(b)
    q = sps.t.ppf(0.975, df)
    return d, d - q * se, d + q * se, 2 * sps.t.sf(abs(d / se), df)


def welch_power_by_simulation(diff: float, sa: float, na: int, sb: float, nb: int, reps: int = 20000,
                              seed: int = 0) -> float:
    """How often scipy's Welch t-test rejects at alpha 0.05 when groups of ``na``/``nb`` normal runs
    with stds ``sa``/``sb`` truly differ by ``diff`` (fixed seed)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(diff, sa, (reps, na)), rng.normal(0.0, sb, (reps, nb))
    return float(np.mean(sps.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05))


def paired_power_by_hand(diff: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """The paired t-test's power from its definition, T = (Z + diff/se) / sqrt(V/df) with V ~ chi2(df),
    integrated numerically (not scipy's noncentral t)."""
    from scipy import integrate

    df, delta = n - 1, abs(diff) / (sd / math.sqrt(n))
    c = sps.t.ppf(1 - alpha / 2, df)

    def rejects(v: float) -> float:
        scale = c * math.sqrt(v / df)
        return (sps.norm.sf(scale - delta) + sps.norm.cdf(-scale - delta)) * sps.chi2.pdf(v, df)

    return integrate.quad(rejects, 0, np.inf, epsabs=1e-12, limit=200)[0]


def markdown_tables(text: str) -> list[list[list[str]]]:
    """The tables of a Markdown text, each a list of rows of cells (``\\|`` is a pipe inside a cell)."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif current:
            tables.append(current)
            current = []
    return tables

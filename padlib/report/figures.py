"""Figures of a sweep with matplotlib (Agg): convergence curves (the paper's Figure 3) and mean top-1
bars with std error bars (Figure 1)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on clusters or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from padlib.report.collect import Sweep, arch_key, padding_key  # noqa: E402
from padlib.report.stats import is_missing  # noqa: E402

DPI = 130
PADDING_COLORS = {"zero": "#1f77b4", "partial": "#d62728", "reflect": "#2ca02c", "replicate": "#9467bd",
                  "circular": "#8c564b"}


def padding_color(padding: str) -> str:
    """One fixed colour per padding, the same in every figure."""
    if padding in PADDING_COLORS:
        return PADDING_COLORS[padding]
    others = ["#ff7f0e", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f"]
    return others[sum(map(ord, padding)) % len(others)]


def save(fig: plt.Figure, path: Path) -> Path:
    """Save and close a figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def curve_band(curves: list[np.ndarray], band: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, low, high) over seeds at each epoch that at least one run reached.

    Runs may have different lengths (an unfinished run): each epoch averages the runs that have it.
    """
    length = max(len(c) for c in curves)
    grid = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        grid[i, : len(c)] = c
    mean = np.nanmean(grid, axis=0)
    if band == "std":
        counts = (~np.isnan(grid)).sum(axis=0)
        dev = np.where(np.isnan(grid), 0.0, grid - mean)
        std = np.sqrt((dev**2).sum(axis=0) / np.maximum(counts - 1, 1))  # 0 where a single run has the epoch
        low, high = mean - std, mean + std
    else:
        low, high = np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)
    return np.arange(1, length + 1), mean, low, high


def _val_curve(metrics: list[dict]) -> np.ndarray:
    """Val top-1 by epoch (NaN at an epoch whose metrics line was unreadable)."""
    last = int(metrics[-1]["epoch"])
    out = np.full(last, np.nan)
    for row in metrics:
        out[int(row["epoch"]) - 1] = float(row["val_top1"])
    return out


def convergence_figure(sweep: Sweep, path: Path, band: str = "minmax") -> Path:
    """Val top-1 per epoch: one panel per arch, a mean line and a band across seeds per padding."""
    groups = sweep.groups()
    archs = sorted({a for a, _ in groups}, key=arch_key)
    cols = min(3, len(archs))
    rows = -(-len(archs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    band_label = "min-max" if band == "minmax" else "±1 std"
    for ax, arch in zip(axes.flat, archs, strict=False):
        means = []
        for (a, padding), runs in groups.items():
            if a != arch:
                continue
            epochs, mean, low, high = curve_band([_val_curve(r.metrics) for r in runs], band)
            color = padding_color(padding)
            ax.plot(epochs, mean, color=color, lw=1.6, label=f"{padding} (n={len(runs)})")
            if len(runs) > 1:
                ax.fill_between(epochs, low, high, color=color, alpha=0.18, lw=0)
            means.append(mean)
        ax.set_title(arch)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("val top-1 (%)")
        ax.grid(alpha=0.3)
        _zoom_past_start(ax, means)
        ax.legend(fontsize=8, loc="lower right")
    for ax in axes.flat[len(archs):]:
        ax.set_visible(False)
    fig.suptitle(f"Validation top-1 during training, {sweep.dataset} (mean over seeds, band: {band_label})")
    fig.tight_layout()
    return save(fig, path)


def _zoom_past_start(ax: plt.Axes, means: list[np.ndarray]) -> None:
    """On long runs, leave out the first tenth of training from the y-range so the end, where the paddings
    differ, is readable (as in the paper's Figure 3); short runs are shown whole."""
    length = max((len(m) for m in means), default=0)
    if length < 10:
        return
    start = length // 10
    low = min(float(np.nanmin(m[start:])) for m in means if len(m) > start) - 2.0
    y0, y1 = ax.get_ylim()
    ax.set_ylim(max(y0, low), min(100.0, y1))


def bar_figure(rows: list[dict], path: Path, title: str) -> Path:
    """Mean top-1 per arch (groups) and padding (bars) with sample-std error bars (the paper's Figure 1)."""
    archs = sorted({r["arch"] for r in rows}, key=arch_key)
    paddings = sorted({r["padding"] for r in rows}, key=padding_key)
    width = 0.8 / len(paddings)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(archs) * len(paddings) * 0.6 + 2), 4.2))
    lows, highs = [], []
    by_key = {(r["arch"], r["padding"]): r for r in rows}
    for j, padding in enumerate(paddings):
        xs, means, errs = [], [], []
        for i, arch in enumerate(archs):
            r = by_key.get((arch, padding))
            if r is None:
                continue
            xs.append(i + (j - (len(paddings) - 1) / 2) * width)
            means.append(float(r["mean"]))
            errs.append(0.0 if is_missing(r["std"]) else float(r["std"]))
        if not xs:
            continue
        ax.bar(xs, means, width * 0.92, yerr=errs, capsize=3, color=padding_color(padding), label=padding,
               error_kw={"lw": 1})
        for x, m, e in zip(xs, means, errs, strict=True):
            ax.annotate(f"{m:.2f}", (x, m + e), xytext=(0, 3), textcoords="offset points", ha="center",
                        va="bottom", fontsize=6.5, rotation=90)
        lows += [m - e for m, e in zip(means, errs, strict=True)]
        highs += [m + e for m, e in zip(means, errs, strict=True)]
    # the differences are a few tenths of a point: a zero-based axis would hide them
    span = max(highs) - min(lows)
    ax.set_ylim(max(0.0, min(lows) - max(0.5, span)), min(100.0, max(highs) + max(0.5, 0.6 * span)))
    ax.set_xticks(range(len(archs)), archs)
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=len(paddings), loc="upper left")
    fig.tight_layout()
    return save(fig, path)

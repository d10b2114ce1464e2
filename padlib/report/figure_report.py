"""The ``figures`` report of a sweep: which figure is drawn from which runs, in what order, and what is
still drawn when a part fails (a missing val set only costs the image-based parts). The border-artifact
score (``border_score``) runs last, beside the activation maps."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from padlib.engine.device import resolve_device
from padlib.errors import PadlibError
from padlib.report.activations import activation_maps, pick_layers
from padlib.report.border_score import BorderOptions, border_score_report
from padlib.report.collect import Run, Sweep, group_order
from padlib.report.figures import bar_figure, convergence_figure, plt, save
from padlib.report.per_image import Flips, compare_runs, contact_sheet, summary_line, write_flips_csv
from padlib.report.tables import best_table
from padlib.report.weights import RunModels


@dataclass
class FigureOptions(BorderOptions):
    """What the figures report draws, from which data (``ValOptions``), and the border score's layers and images."""

    pairs: list[tuple[str, str]] = field(default_factory=lambda: [("zero", "partial")])
    band: str = "minmax"
    sheet_images: int = 24
    activation_images: int = 4
    activations: bool = True  # activation maps and the border score (these need checkpoints and the val set)


@dataclass
class FigureReport:
    """Files written, warnings, and the lines to print (per-image counts, border scores)."""

    paths: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def _attempt(report: FigureReport, what: str, fn: Callable[[], Any]) -> Any:
    """Run one part; a PadlibError (or a file-system error) becomes a warning so the other parts are still drawn."""
    try:
        return fn()
    except (PadlibError, OSError) as e:
        report.warnings.append(f"{what}: {e}")
        return None


def make_figures(sweep: Sweep, out: Path, opts: FigureOptions) -> FigureReport:
    """Draw every figure of ``sweep`` into ``out``; PadlibError only when nothing could be drawn."""
    out.mkdir(parents=True, exist_ok=True)
    report = FigureReport(warnings=list(sweep.warnings))
    models = RunModels(opts)
    report.paths.append(convergence_figure(sweep, out / "convergence.png", opts.band))
    rows = best_table(sweep).rows
    report.paths.append(bar_figure(rows, out / "best_top1_bars.png",
                                   f"Best val top-1, mean ± sample std over seeds ({sweep.dataset})"))
    groups = sweep.groups()
    for a, b in opts.pairs:
        archs = sorted({arch for arch, p in groups if p == a} & {arch for arch, p in groups if p == b},
                       key=lambda x: group_order((x,)))
        if not archs:
            report.warnings.append(f"pair {a}:{b}: no arch has runs of both paddings")
        for arch in archs:
            flips = _attempt(report, f"{arch} {a} vs {b}",
                             lambda arch=arch, a=a, b=b: _per_image(groups[(arch, a)], groups[(arch, b)],
                                                                     out, opts, models, report))
            if flips is not None and opts.activations:
                _attempt(report, f"{arch} activation maps", lambda f=flips: _activation_figure(f, out, opts, models, report))
    if opts.activations:
        _attempt(report, "border-artifact score", lambda: _border_score(sweep, out, opts, models, report))
    return report


def _border_score(sweep: Sweep, out: Path, opts: FigureOptions, models: RunModels, report: FigureReport) -> None:
    score = border_score_report(sweep, out, models, opts, report.warnings)
    report.paths += score.paths
    report.lines += score.lines


def file_stem(label: str) -> str:
    """A group label made safe for a file name (``resnet18 [epochs=3]`` -> ``resnet18_epochs=3``)."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", label).strip("_")


def _class_namer(bundle: Any | None) -> Callable[[int], str]:
    classes = list(bundle.classes) if bundle is not None else []
    return lambda k: classes[k] if 0 <= k < len(classes) else str(k)


def _per_image(a_runs: list[Run], b_runs: list[Run], out: Path, opts: FigureOptions, models: RunModels,
               report: FigureReport) -> Flips:
    """Figure 4 for one arch and pair: CSV always, contact sheet when the val images can be loaded."""
    arch, a, b = a_runs[0].label, a_runs[0].padding, b_runs[0].padding
    flips = compare_runs(arch, a, b, a_runs, b_runs, report.warnings)
    bundle = _attempt(report, f"{arch} val images (contact sheet and class names skipped)",
                      lambda: _checked_bundle(models, a_runs[0], flips))
    name = _class_namer(bundle)
    stem = f"per_image_{file_stem(arch)}_{a}_vs_{b}"
    report.paths.append(write_flips_csv(flips, out / f"{stem}.csv", name))
    report.lines.append(summary_line(flips))
    if bundle is not None:
        shown = flips.a_wrong_b_right[: opts.sheet_images]
        title = (f"{arch}: every {a} run wrong, every {b} run right ({len(flips.a_wrong_b_right)} image(s); "
                 f"{len(flips.b_wrong_a_right)} the other way). Caption: true class / {a} predictions")
        report.paths.append(contact_sheet(flips, shown, bundle.val_image, name, out / f"{stem}.png", title))
    return flips


def _checked_bundle(models: RunModels, run: Run, flips: Flips) -> Any:
    bundle = models.bundle(run)
    if len(bundle.val) != len(flips.target) or not np.array_equal(
            np.asarray(bundle.val.targets)[flips.scored], flips.target[flips.scored]):
        raise PadlibError(f"the val set rebuilt from {run.rundir.info_path} is not the one the runs predicted "
                          f"({len(bundle.val)} vs {len(flips.target)} images, or other labels); check --data-root")
    return bundle


def _images(bundle: Any, indices: np.ndarray) -> torch.Tensor:
    items = [bundle.val[int(i)] for i in indices]
    if any(item is None for item in items):
        raise PadlibError("some chosen val images are unreadable")
    return torch.stack([item[0] for item in items])


def _activation_figure(flips: Flips, out: Path, opts: FigureOptions, models: RunModels,
                       report: FigureReport) -> Path:
    """Channel-mean |activation| maps of A and B side by side at each layer, for a few Figure 4 images."""
    bundle = models.bundle(flips.a_runs[0])
    indices = flips.a_wrong_b_right[: opts.activation_images]
    chosen = f"images every {flips.a} run gets wrong and every {flips.b} run gets right"
    if len(indices) == 0:
        indices = np.flatnonzero(flips.scored)[: opts.activation_images]
        chosen = "the first val images (no image separates the two paddings)"
    device = resolve_device(opts.device, "--device")
    images = _images(bundle, indices)
    per_padding = []
    for run in (flips.a_runs[0], flips.b_runs[0]):
        _, model = models.model(run)
        per_padding.append(activation_maps(model, pick_layers(model, opts.layers), images, device))
    layers = [n for n in per_padding[0] if n in per_padding[1]]
    cols = 1 + 2 * len(layers)
    fig, axes = plt.subplots(len(indices), cols, figsize=(1.7 * cols, 1.9 * len(indices) + 0.6), squeeze=False)
    for r, i in enumerate(indices):
        ax = axes[r, 0]
        img = bundle.val_image(int(i))
        if img is not None:
            ax.imshow(img, interpolation="nearest")
        ax.set_title(f"#{int(i)}", fontsize=7)
        for c, layer in enumerate(layers):
            pair = [per_padding[0][layer][r], per_padding[1][layer][r]]
            for k, (m, padding) in enumerate(zip(pair, (flips.a, flips.b), strict=True)):
                ax = axes[r, 1 + 2 * c + k]
                # each map on its own scale: differently trained models differ in overall magnitude, and
                # what is compared here is where the activation sits (the border score compares levels)
                ax.imshow(m, cmap="viridis", vmin=0, vmax=float(m.max()) or 1.0, interpolation="nearest")
                if r == 0:
                    ax.set_title(f"{layer}\n{padding}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{flips.arch}: channel-mean |activation|, {flips.a} vs {flips.b} (seed "
                 f"{flips.a_runs[0].seed} / {flips.b_runs[0].seed}); {chosen}\n"
                 "each map scaled from 0 to its own maximum", fontsize=8)
    fig.tight_layout()
    path = save(fig, out / f"activations_{file_stem(flips.arch)}_{flips.a}_vs_{flips.b}.png")
    report.paths.append(path)
    return path

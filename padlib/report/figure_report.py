"""The ``figures`` report of a sweep: which figure is drawn from which runs, in what order, and what is
still drawn when a part fails (a missing val set only costs the image-based parts)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from padlib.engine.device import resolve_device
from padlib.errors import PadlibError
from padlib.report.activations import activation_maps, border_scores, check_layers, default_layers
from padlib.report.collect import REFERENCE_PADDING, Run, Sweep, arch_key, group_order, padding_key
from padlib.report.evaluation import ValSets, data_config, load_model, weights_of_run
from padlib.report.figures import bar_figure, convergence_figure, padding_color, plt, save
from padlib.report.per_image import Flips, compare_runs, contact_sheet, summary_line, write_flips_csv
from padlib.report.tables import RunValue, best_table, summarize_groups, summary_table
from padlib.report.writers import write_all


@dataclass
class FigureOptions:
    """What the figures report draws and from which data."""

    pairs: list[tuple[str, str]] = field(default_factory=lambda: [("zero", "partial")])
    layers: list[str] | None = None
    band: str = "minmax"
    border_images: int = 256
    sheet_images: int = 24
    activation_images: int = 4
    activations: bool = True
    data_root: str | None = None
    device: str = "auto"
    batch_size: int = 32
    workers: int = 2


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


class _Data:
    """The sweep's val set (built on first use from a run's config), or the reason it is unavailable."""

    def __init__(self, opts: FigureOptions) -> None:
        self.opts = opts
        self.valsets = ValSets(opts.batch_size, opts.workers)

    def bundle(self, run: Run) -> Any:
        w = weights_of_run(run)
        return self.valsets.get(data_config(w.data_cfg, self.opts.data_root, None))[0]


def make_figures(sweep: Sweep, out: Path, opts: FigureOptions) -> FigureReport:
    """Draw every figure of ``sweep`` into ``out``; PadlibError only when nothing could be drawn."""
    out.mkdir(parents=True, exist_ok=True)
    report = FigureReport(warnings=list(sweep.warnings))
    data = _Data(opts)
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
                                                                     out, opts, data, report))
            if flips is not None and opts.activations:
                _attempt(report, f"{arch} activation maps", lambda f=flips: _activation_figure(f, out, opts, data, report))
    if opts.activations:
        _attempt(report, "border-artifact score", lambda: _border(sweep, out, opts, data, report))
    return report


def file_stem(label: str) -> str:
    """A group label made safe for a file name (``resnet18 [trainer.epochs=3]`` -> ``resnet18_trainer.epochs=3``)."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", label).strip("_")


def _class_namer(bundle: Any | None) -> Callable[[int], str]:
    classes = list(bundle.classes) if bundle is not None else []
    return lambda k: classes[k] if 0 <= k < len(classes) else str(k)


def _per_image(a_runs: list[Run], b_runs: list[Run], out: Path, opts: FigureOptions, data: _Data,
               report: FigureReport) -> Flips:
    """Figure 4 for one arch and pair: CSV always, contact sheet when the val images can be loaded."""
    arch, a, b = a_runs[0].label, a_runs[0].padding, b_runs[0].padding
    flips = compare_runs(arch, a, b, a_runs, b_runs, report.warnings)
    bundle = _attempt(report, f"{arch} val images (contact sheet and class names skipped)",
                      lambda: _checked_bundle(data, a_runs[0], flips))
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


def _checked_bundle(data: _Data, run: Run, flips: Flips) -> Any:
    bundle = data.bundle(run)
    if len(bundle.val) != len(flips.target) or not np.array_equal(
            np.asarray(bundle.val.targets)[flips.scored], flips.target[flips.scored]):
        raise PadlibError(f"the val set rebuilt from {run.rundir.info_path} is not the one the runs predicted "
                          f"({len(bundle.val)} vs {len(flips.target)} images, or other labels); check --data-root")
    return bundle


def _model_of(run: Run, opts: FigureOptions, data: _Data) -> tuple[Any, Any, list[str]]:
    """(val DataBundle, the run's best model in its own padding, the layers to look at)."""
    from padlib.checkpoint import load_checkpoint

    w = weights_of_run(run)
    ckpt = load_checkpoint(w.checkpoint)  # first: a missing file should not cost building the val set
    bundle = data.bundle(run)
    model = load_model(w, ckpt, run.padding, bundle.num_classes)
    layers = list(opts.layers) if opts.layers else default_layers(model)
    check_layers(model, layers)
    return bundle, model, layers


def _images(bundle: Any, indices: np.ndarray) -> torch.Tensor:
    items = [bundle.val[int(i)] for i in indices]
    if any(item is None for item in items):
        raise PadlibError("some chosen val images are unreadable")
    return torch.stack([item[0] for item in items])


def _activation_figure(flips: Flips, out: Path, opts: FigureOptions, data: _Data, report: FigureReport) -> Path:
    """Channel-mean |activation| maps of A and B side by side at each layer, for a few Figure 4 images."""
    bundle = data.bundle(flips.a_runs[0])
    indices = flips.a_wrong_b_right[: opts.activation_images]
    chosen = f"images every {flips.a} run gets wrong and every {flips.b} run gets right"
    if len(indices) == 0:
        indices = np.flatnonzero(flips.scored)[: opts.activation_images]
        chosen = "the first val images (no image separates the two paddings)"
    device = resolve_device(opts.device, "--device")
    images = _images(bundle, indices)
    per_padding = []
    for run in (flips.a_runs[0], flips.b_runs[0]):
        _, model, layers = _model_of(run, opts, data)
        per_padding.append(activation_maps(model, layers, images, device))
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


def _border_batches(bundle: Any, n: int, batch_size: int):
    from padlib.data.subset import balanced_subset

    total = len(bundle.val)
    idx = np.arange(total) if n <= 0 or n >= total else balanced_subset(bundle.val.targets, n, "--border-images")
    for start in range(0, len(idx), batch_size):
        items = [bundle.val[int(i)] for i in idx[start:start + batch_size]]
        items = [it[0] for it in items if it is not None]
        if items:
            yield torch.stack(items)


def _border(sweep: Sweep, out: Path, opts: FigureOptions, data: _Data, report: FigureReport) -> None:
    """The border-artifact score of every run at each layer, summarised per (arch, padding, layer)."""
    device = resolve_device(opts.device, "--device")
    values: dict[tuple[str, str, str], list[RunValue]] = {}
    unscored: dict[tuple[str, str], int] = {}  # (arch, layer) -> runs whose maps there have no interior
    for run in tqdm(sweep.runs, desc="border score", unit="run", file=sys.stderr):
        def score(run: Run = run) -> None:
            bundle, model, layers = _model_of(run, opts, data)
            scores = border_scores(model, layers, _border_batches(bundle, opts.border_images, opts.batch_size),
                                   device)
            for layer, s in scores.items():
                if np.isfinite(s):
                    values.setdefault((run.label, run.padding, layer), []).append(RunValue(run.name, run.seed, s))
                else:
                    unscored[(run.label, layer)] = unscored.get((run.label, layer), 0) + 1
        _attempt(report, f"{run.name}: border score", score)
    for (arch, layer), n in unscored.items():
        report.warnings.append(f"{arch} {layer}: feature maps smaller than 3x3 (no interior) in {n} run(s); "
                               "no border score there (larger images would have one)")
    if not values:
        raise PadlibError("no run could be scored")
    layer_order = {}
    for (_, _, layer) in values:
        layer_order.setdefault(layer, len(layer_order))
    keys = sorted(values, key=lambda k: (arch_key(k[0]), layer_order[k[2]], padding_key(k[1])))
    rows = summarize_groups({k: values[k] for k in keys}, ("arch", "padding", "layer"),
                            lambda k: None if k[1] == REFERENCE_PADDING else (k[0], REFERENCE_PADDING, k[2]))
    n = "all" if opts.border_images <= 0 else f"up to {opts.border_images} (class-balanced)"
    table = summary_table("Border-artifact score: mean |activation| on the outermost row/column / mean in the "
                          "interior", rows, ("arch", "padding", "layer"), paper_fields=(),
                          notes=[*sweep.notes(),
                                 f"{n} val images per run, forward passes in fp32; channel-mean |activation| at "
                                 "each layer's output; 1 = no border effect, >1 = activations peak at the edges. "
                                 "diff vs zero padding (Welch's t-test over runs; so is MDE)."])
    report.paths += write_all([table], out, "border_score", ["border_score.csv"])
    report.paths.append(_border_plot(rows, out / "border_score.png"))
    report.lines += border_summary(rows)


def border_summary(rows: list[dict]) -> list[str]:
    """The border scores as plain lines, with the verdict spelled out per arch and padding."""
    lines = ["border-artifact score (border / interior mean |activation|; 1 = none, >1 = peaks at the edges):"]
    for row in rows:
        verdict = "edges STRONGER than interior" if row["mean"] > 1.05 else (
            "edges weaker than interior" if row["mean"] < 0.95 else "edges about like the interior")
        lines.append(f"  {row['arch']:>12} {row['padding']:>9} {row['layer']:>12}: {row['mean']:.3f} "
                     f"(n={row['n_runs']}) {verdict}")
    return lines


def _border_plot(rows: list[dict], path: Path) -> Path:
    archs = sorted({r["arch"] for r in rows}, key=lambda a: group_order((a,)))
    fig, axes = plt.subplots(1, len(archs), figsize=(4.6 * len(archs), 3.4), squeeze=False)
    for ax, arch in zip(axes.flat, archs, strict=True):
        sub = [r for r in rows if r["arch"] == arch]
        layers = list(dict.fromkeys(r["layer"] for r in sub))
        paddings = sorted({r["padding"] for r in sub}, key=lambda p: group_order(("", p)))
        for padding in paddings:
            pts = {r["layer"]: r for r in sub if r["padding"] == padding}
            xs = [i for i, layer in enumerate(layers) if layer in pts]
            ys = [pts[layers[i]]["mean"] for i in xs]
            errs = [0.0 if not np.isfinite(pts[layers[i]]["std"]) else pts[layers[i]]["std"] for i in xs]
            ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, color=padding_color(padding), label=padding)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(layers)), layers, rotation=30, fontsize=8)
        ax.set_ylabel("border / interior")
        ax.set_title(arch)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Border-artifact score per layer (mean ± std over runs)", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


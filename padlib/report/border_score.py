"""The border-artifact score, beyond the paper: how much stronger a layer's activations are on the
outermost row/column of its feature maps than inside them, for every run of a sweep at each layer,
summarised per (arch, padding, layer) against zero padding (``border_score.csv/.md/.tex/.png``; drawn by
``evaluate.py figures`` unless ``--no-activations``).

The score is ``mean |activation| on the border ring / mean |activation| in the interior``, over
channels and over a set of val images (ratio of the two means over all images). 1 means the border
looks like the interior; above 1, activations peak at the edges.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from padlib.engine.device import resolve_device
from padlib.errors import PadlibError
from padlib.report.activations import channel_mean_maps, pick_layers
from padlib.report.collect import Sweep, arch_key, group_order, padding_key
from padlib.report.figures import padding_color, plt, save
from padlib.report.summary import RunValue, summarize_groups, summary_table, zero_reference
from padlib.report.weights import RunModels, ValOptions
from padlib.report.writers import write_all

KEYS = ("arch", "padding", "layer")
STEM = "border_score"


@dataclass
class BorderOptions(ValOptions):
    """Where the val data is and how models run, plus which layers to score on how many val images."""

    layers: list[str] | None = None  # module names; None: each ResNet stage / VGG block output
    border_images: int = 256  # class-balanced val images per run; 0: the whole val set


@dataclass
class BorderScore:
    """The summary rows, the files written and the lines to print."""

    rows: list[dict[str, Any]]
    paths: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def border_mask(h: int, w: int) -> torch.Tensor:
    """True on the outermost row and column of an h x w map."""
    mask = torch.zeros(h, w, dtype=torch.bool)
    mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = True
    return mask


@dataclass
class BorderSums:
    """Running sums of border and interior activation over images."""

    border: float = 0.0
    border_n: int = 0
    interior: float = 0.0
    interior_n: int = 0

    def add(self, maps: torch.Tensor) -> None:
        """Add a batch of [B, H, W] maps; maps without an interior (H or W < 3) add nothing."""
        _, h, w = maps.shape
        if h < 3 or w < 3:
            return
        mask = border_mask(h, w)
        self.border += float(maps[:, mask].double().sum())
        self.border_n += int(mask.sum()) * maps.shape[0]
        self.interior += float(maps[:, ~mask].double().sum())
        self.interior_n += int((~mask).sum()) * maps.shape[0]

    @property
    def score(self) -> float:
        """Mean border activation over mean interior activation (NaN when undefined)."""
        if not self.border_n or not self.interior_n or self.interior == 0:
            return float("nan")
        return (self.border / self.border_n) / (self.interior / self.interior_n)


@torch.no_grad()
def border_scores(model: nn.Module, layers: Sequence[str], batches: Iterable[torch.Tensor],
                  device: torch.device) -> dict[str, float]:
    """The border-artifact score of each layer over the images of ``batches``."""
    sums = {name: BorderSums() for name in layers}
    model.eval().to(device)
    with channel_mean_maps(model, layers) as maps:
        for images in batches:
            maps.clear()
            model(images.to(device))
            for name in layers:
                if name in maps:
                    sums[name].add(maps[name])
    return {name: s.score for name, s in sums.items()}


def border_batches(bundle: Any, n: int, batch_size: int) -> Iterator[torch.Tensor]:
    """Batches of ``n`` class-balanced val images of ``bundle`` (all of them when ``n`` is 0), unreadable ones left out."""
    from padlib.data.subset import balanced_subset

    total = len(bundle.val)
    idx = np.arange(total) if n <= 0 or n >= total else balanced_subset(bundle.val.targets, n, "--border-images")
    for start in range(0, len(idx), batch_size):
        items = [bundle.val[int(i)] for i in idx[start:start + batch_size]]
        items = [it[0] for it in items if it is not None]
        if items:
            yield torch.stack(items)


def border_score_report(sweep: Sweep, out: Path, models: RunModels, opts: BorderOptions,
                        warnings: list[str]) -> BorderScore:
    """Score every run's best model at each layer and write the summary table and its plot; a run that cannot
    be scored is a warning in ``warnings``, PadlibError when no run could be."""
    device = resolve_device(opts.device, "--device")
    values: dict[tuple[str, str, str], list[RunValue]] = {}
    unscored: dict[tuple[str, str], int] = {}  # (arch, layer) -> runs whose maps there have no interior
    for run in tqdm(sweep.runs, desc="border score", unit="run", file=sys.stderr):
        try:
            bundle, model = models.model(run)
            layers = pick_layers(model, opts.layers)
            scores = border_scores(model, layers, border_batches(bundle, opts.border_images, opts.batch_size),
                                   device)
        except (PadlibError, OSError) as e:
            warnings.append(f"{run.name}: border score: {e}")
            continue
        for layer, s in scores.items():
            if np.isfinite(s):
                values.setdefault((run.label, run.padding, layer), []).append(RunValue(run.name, run.seed, s))
            else:
                unscored[(run.label, layer)] = unscored.get((run.label, layer), 0) + 1
    for (arch, layer), n in unscored.items():
        warnings.append(f"{arch} {layer}: feature maps smaller than 3x3 (no interior) in {n} run(s); "
                        "no border score there (larger images would have one)")
    if not values:
        raise PadlibError("no run could be scored")
    layer_order: dict[str, int] = {}
    for (_, _, layer) in values:
        layer_order.setdefault(layer, len(layer_order))
    keys = sorted(values, key=lambda k: (arch_key(k[0]), layer_order[k[2]], padding_key(k[1])))
    rows = summarize_groups({k: values[k] for k in keys}, KEYS, zero_reference)
    n = "all" if opts.border_images <= 0 else f"up to {opts.border_images} (class-balanced)"
    table = summary_table("Border-artifact score: mean |activation| on the outermost row/column / mean in the "
                          "interior", rows, KEYS, paper_fields=(),
                          notes=[*sweep.notes(),
                                 f"{n} val images per run, forward passes in fp32; channel-mean |activation| at "
                                 "each layer's output; 1 = no border effect, >1 = activations peak at the edges. "
                                 "diff vs zero padding (Welch's t-test over runs; so is MDE)."])
    paths = write_all([table], out, STEM, [f"{STEM}.csv"])
    paths.append(border_plot(rows, out / f"{STEM}.png"))
    return BorderScore(rows, paths, border_summary(rows))


def border_summary(rows: list[dict]) -> list[str]:
    """The border scores as plain lines, with the verdict spelled out per arch and padding."""
    lines = ["border-artifact score (border / interior mean |activation|; 1 = none, >1 = peaks at the edges):"]
    for row in rows:
        verdict = "edges STRONGER than interior" if row["mean"] > 1.05 else (
            "edges weaker than interior" if row["mean"] < 0.95 else "edges about like the interior")
        lines.append(f"  {row['arch']:>12} {row['padding']:>9} {row['layer']:>12}: {row['mean']:.3f} "
                     f"(n={row['n_runs']}) {verdict}")
    return lines


def border_plot(rows: list[dict], path: Path) -> Path:
    """Per arch: each padding's score per layer (mean ± std over runs), 1 (no border effect) dashed."""
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

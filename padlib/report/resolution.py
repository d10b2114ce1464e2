"""Top-1 against test image size (``evaluate.py resolution``), beyond the paper: each run's best checkpoint
re-evaluated at several test sizes, per padding, with Welch's CI of the difference to zero padding at the
same size. Padding touches a larger share of each feature map the smaller the image, so this is where
padding modes should differ most."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from padlib.errors import PadlibError
from padlib.report.checkpoint_eval import (
    CheckpointEvalOptions,
    CheckpointJob,
    CheckpointResults,
    Integrity,
    checkpoint_job,
    evaluate_checkpoints,
    integrity_check,
    val_config,
    val_description,
)
from padlib.report.collect import REFERENCE_PADDING, Sweep, arch_key, padding_key
from padlib.report.figures import padding_color, plt, save
from padlib.report.stats import is_missing
from padlib.report.summary import RunValue, summarize_groups, summary_table, zero_reference
from padlib.report.weights import precision_note
from padlib.report.writers import Table, write_all

PAPER_RATIO = 256 / 224  # the paper's Resize(256) before CenterCrop(224)
KEYS = ("arch", "padding", "size")
STEM = "resolution"


def parse_sizes(text: str) -> list[int]:
    """``--sizes`` (``24,32,48``) as sorted, distinct sizes in pixels; PadlibError naming a bad item."""
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or not all(items):
        raise PadlibError(f"--sizes {text!r}: give test sizes in pixels, comma-separated (e.g. 24,32,48)")
    sizes = []
    for item in items:
        try:
            size = int(item)
        except ValueError:
            raise PadlibError(f"--sizes {text}: {item!r} is not a whole number of pixels") from None
        if size < 1:
            raise PadlibError(f"--sizes {text}: {size} is not a size; sizes must be at least 1 pixel")
        sizes.append(size)
    return sorted(set(sizes))


def parse_ratio(text: str) -> float | None:
    """``--resize-ratio``: None for ``run`` (each run's own ratio), 256/224 for ``paper``, else a number >= 1."""
    if text == "run":
        return None
    if text == "paper":
        return PAPER_RATIO
    try:
        ratio = float(text)
    except ValueError:
        raise PadlibError(f"--resize-ratio {text}: not a number (or run, paper)") from None
    if not math.isfinite(ratio) or ratio < 1:
        raise PadlibError(f"--resize-ratio {text}: must be >= 1 (the centre crop is never larger than the "
                          "resized image: images are cropped, not padded)")
    return ratio


@dataclass
class ResolutionReport:
    """The test-size table, its rows, and how the evaluation went."""

    table: Table
    rows: list[dict[str, Any]]
    train_sizes: dict[str, list[int]]  # group label -> the crop sizes its runs trained at
    results: CheckpointResults
    integrity: Integrity
    warnings: list[str] = field(default_factory=list)


def resolution_jobs(sweep: Sweep, opts: CheckpointEvalOptions, sizes: list[int],
                    ratio: float | None) -> tuple[list[CheckpointJob], list[str]]:
    """Each run's best.pt at each size, and warnings for runs that cannot be evaluated."""
    jobs, warnings = [], []
    for run in sweep.runs:
        best = run.rundir.best_checkpoint
        if not best.is_file():
            warnings.append(f"{run.name}: no {best.name}; left out")
            continue
        try:
            jobs += [checkpoint_job(run, best, None, opts, size, ratio) for size in sizes]
        except PadlibError as e:
            warnings.append(f"{run.name}: left out ({e})")
    return jobs, warnings


def resolution_report(sweep: Sweep, opts: CheckpointEvalOptions, sizes: list[int],
                      ratio: float | None = None) -> ResolutionReport:
    """Evaluate every run's best checkpoint at each size (``ratio``: short side / crop; None: each run's own)."""
    jobs, warnings = resolution_jobs(sweep, opts, sizes, ratio)
    if not jobs:
        raise PadlibError("no best checkpoint to evaluate: " + "; ".join(warnings))
    results = evaluate_checkpoints(jobs, opts)
    warnings += results.warnings
    values: dict[tuple[str, str, int], list[RunValue]] = {}
    train_sizes: dict[str, set[int]] = {}
    done = []
    for job, record in zip(jobs, results.records, strict=True):
        train_sizes.setdefault(job.run.label, set()).add(int(val_config(job.weights.data_cfg)["image_size"]))
        if record is not None:
            done.append(job)
            values.setdefault((job.run.label, job.run.padding, job.size), []).append(
                RunValue(job.run.name, job.run.seed, record.top1))
    if not values:
        raise PadlibError("no checkpoint could be evaluated: " + "; ".join(warnings))
    integrity = integrity_check(jobs, results, opts.tolerance)
    if integrity.warning():
        warnings.append(integrity.warning())
    keys = sorted(values, key=lambda k: (arch_key(k[0]), k[2], padding_key(k[1])))
    rows = summarize_groups({k: values[k] for k in keys}, KEYS, zero_reference)
    trained = {label: sorted(s) for label, s in train_sizes.items()}
    rule = ("each run's own resize rule (data.resize_size / data.image_size)" if ratio is None
            else f"{ratio:g} x s")
    used = {job.weights.name: p for job, p, r in zip(jobs, results.precisions, results.records, strict=True) if r}
    notes = [*sweep.notes(),
             f"each run's best.pt evaluated on {val_description(done, sizes=False)} at test size s: the short side "
             f"resized to {rule}, then the centre s x s crop; trained at "
             + "; ".join(f"{label}: {', '.join(f'{s}x{s}' for s in ss)}" for label, ss in trained.items()),
             precision_note(used, [w for w in results.fell_back if w.name in used], opts.amp, "these evaluations"),
             integrity.note(),
             "diff: mean minus the zero-padding mean of the same arch (and settings) at the same test size; 95% CI, "
             "p and MDE from Welch's t-test over runs, empty with fewer than 2 runs."]
    title = f"Val top-1 (%) against test image size, {sweep.dataset} (best checkpoints)"
    table = summary_table(title, rows, KEYS, paper_fields=(), notes=notes)
    return ResolutionReport(table, rows, trained, results, integrity, warnings)


def resolution_figure(report: ResolutionReport, path: Path) -> Path:
    """Per arch: top-1 (mean ± std over runs) against test size per padding, and below it each padding's
    difference to zero padding with its 95% CI; a dotted line marks the training size."""
    archs = sorted({r["arch"] for r in report.rows}, key=arch_key)
    fig, axes = plt.subplots(2, len(archs), figsize=(4.8 * len(archs), 6.4), squeeze=False, sharex="col")
    for col, arch in enumerate(archs):
        top, bottom = axes[0, col], axes[1, col]
        rows = [r for r in report.rows if r["arch"] == arch]
        paddings = sorted({r["padding"] for r in rows}, key=padding_key)
        for padding in paddings:
            pts = sorted((r for r in rows if r["padding"] == padding), key=lambda r: r["size"])
            xs = [r["size"] for r in pts]
            color = padding_color(padding)
            top.errorbar(xs, [r["mean"] for r in pts], yerr=[_or0(r["std"]) for r in pts], marker="o", capsize=3,
                         color=color, label=f"{padding} (n={max(r['n_runs'] for r in pts)})")
            diffs = [r for r in pts if not is_missing(r.get("diff"))]
            if diffs:
                xd = [r["size"] for r in diffs]
                yd = np.array([r["diff"] for r in diffs])
                low = np.array([_or(r["diff_ci_low"], r["diff"]) for r in diffs])
                high = np.array([_or(r["diff_ci_high"], r["diff"]) for r in diffs])
                bottom.errorbar(xd, yd, yerr=[yd - low, high - yd], marker="o", capsize=3, color=color,
                                label=f"{padding} - {REFERENCE_PADDING}")
        for ax in (top, bottom):
            for size in report.train_sizes.get(arch, []):
                ax.axvline(size, color="grey", lw=0.8, ls=":")
            ax.grid(alpha=0.3)
        bottom.axhline(0.0, color=padding_color(REFERENCE_PADDING), lw=0.8, ls="--")
        sizes = sorted({r["size"] for r in rows})
        bottom.set_xticks(sizes, [str(s) for s in sizes])
        bottom.set_xlabel("test size (px); dotted: training size")
        top.set_ylabel("val top-1 (%)")
        bottom.set_ylabel("diff vs zero (points, 95% CI)")
        top.set_title(arch, fontsize=9)
        top.legend(fontsize=8)
        if bottom.get_legend_handles_labels()[0]:
            bottom.legend(fontsize=8)
    fig.suptitle("Top-1 against test size (mean ± std over runs) and the difference to zero padding", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def _or0(value: Any) -> float:
    return 0.0 if is_missing(value) else float(value)


def _or(value: Any, default: float) -> float:
    return default if is_missing(value) else float(value)


def write_resolution(report: ResolutionReport, out_dir: Path) -> list[Path]:
    """Write resolution.csv/.md/.tex and resolution.png."""
    preamble = "".join(f"- {w}\n" for w in report.warnings)
    paths = write_all([report.table], out_dir, STEM, [f"{STEM}.csv"],
                      "While evaluating:\n\n" + preamble if preamble else "")
    return [*paths, resolution_figure(report, out_dir / f"{STEM}.png")]

"""Table 1 from a sweep's own logs: what each padding cost in the training loop the runs actually ran.

Per (arch, padding): each run's train images/s and epoch time (training plus validation) as its
``metrics.jsonl`` logged them, their mean over runs, and the difference to zero padding with its 95%
CI, also as a percent of zero padding's mean. The benchmark (``timing``) times modes interleaved in one
process; this table is the loop itself, so it compares runs only as fairly as they shared a machine.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from padlib.report.collect import Run, Sweep
from padlib.report.stats import is_missing
from padlib.report.summary import Key, RunValue, summarize_groups, summary_table, zero_reference
from padlib.report.writers import Column, Table, value_with_ci, write_all

# metrics.jsonl field -> the measure's name in the table; each run's value is its median over epochs
MEASURES = {"images_per_s": "train images/s", "epoch_time_s": "epoch s"}


def run_measure(run: Run, field: str) -> float | None:
    """The median over ``run``'s epochs of a logged ``field``; None where no epoch logged it."""
    values = [float(r[field]) for r in run.metrics if isinstance(r.get(field), int | float)]
    return statistics.median(values) if values else None


def _percent(row: dict[str, Any], zero_mean: float | None, key: str) -> float | None:
    """``row[key]`` (a difference to zero padding) as a percent of zero padding's mean, plus 100."""
    value = row.get(key)
    if zero_mean is None or is_missing(value) or zero_mean == 0:
        return None
    return 100 + 100 * float(value) / zero_mean


def run_timing_table(sweep: Sweep) -> Table:
    """One row per (arch, padding, measure): per-run values, mean, and the difference to zero padding."""
    values: dict[Key, list[RunValue]] = {}
    devices: dict[str, set[str]] = {}
    for (label, padding), runs in sweep.groups().items():
        for field, measure in MEASURES.items():
            for run in runs:
                value = run_measure(run, field)
                if value is not None:
                    values.setdefault((label, padding, measure), []).append(RunValue(run.name, run.seed, value))
        devices.setdefault(label, set()).update(str(r.info.get("device", "?")) for r in runs)
    rows = summarize_groups(values, ("arch", "padding", "measure"), zero_reference)
    means = {(r["arch"], r["padding"], r["measure"]): r["mean"] for r in rows}
    for row in rows:
        ref = zero_reference((row["arch"], row["padding"], row["measure"]))
        zero_mean = means.get(ref) if ref is not None else None
        row["percent_of_zero"] = 100.0 if ref is None else _percent(row, zero_mean, "diff")
        row["percent_ci_low"] = _percent(row, zero_mean, "diff_ci_low")
        row["percent_ci_high"] = _percent(row, zero_mean, "diff_ci_high")
    notes = [
        "From each run's metrics.jsonl: train images/s is the median over epochs of the training loop's throughput; "
        "epoch s is the median epoch wall time, training and validation. % of zero: the mean over zero padding's "
        "mean, with the 95% CI of the difference (Welch) in the same percent.",
        "Runs compare fairly only when they ran on the same hardware under the same load; the benchmark "
        "(evaluate.py timing BENCH_CSV) interleaves the modes in one process instead.",
    ]
    for label, seen in devices.items():
        if len(seen) > 1:
            notes.append(f"warning: {label} runs ran on different devices ({'; '.join(sorted(seen))}): "
                         "their times do not compare")
    extra = [Column("percent_of_zero", header="% of zero [95% CI]", render=_percent_text),
             Column("percent_ci_low"), Column("percent_ci_high")]
    table = summary_table("Padding cost in the training loop (Table 1 from the runs' logs)", rows,
                          ("arch", "padding", "measure"), paper_fields=(), extra=extra[:1], notes=notes)
    # the CSV keeps the CI's ends as numbers; readers see them in the one column
    table.columns.extend(extra[1:])
    return table


def _percent_text(row: dict[str, Any]) -> str:
    return value_with_ci(row.get("percent_of_zero"), row.get("percent_ci_low"), row.get("percent_ci_high"))


def write_run_timing(sweep: Sweep, out_dir: Path) -> list[Path]:
    """Write run_timing.csv, run_timing.md and run_timing.tex for ``sweep``."""
    preamble = f"# Padding cost in the training loop: {sweep.root}\n\n{len(sweep.runs)} runs.\n"
    return write_all([run_timing_table(sweep)], out_dir, "run_timing", ["run_timing.csv"], preamble)

"""Tables 2 and 3 of the paper from a sweep: best-epoch top-1 and the mean top-1 of the last 5 epochs,
per (arch, padding), with the difference to zero padding, its 95% CI, p-value and 80%-power minimum
detectable effect, beside the paper's."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from padlib.report.collect import REFERENCE_PADDING, Run, Sweep
from padlib.report.paper import BEST_CSV, LAST5_CSV, paper_summary
from padlib.report.stats import is_missing
from padlib.report.summary import (
    Key,
    RunValue,
    add_paper_columns,
    summarize_groups,
    summary_table,
    zero_reference,
)
from padlib.report.writers import Column, Table, write_all

LAST_K = 5


def best_top1(run: Run) -> float:
    """The best epoch's val top-1 of a run (the paper's Table 2 number)."""
    return max(float(r["val_top1"]) for r in run.metrics)


@dataclass(frozen=True)
class LastK:
    """A run's mean val top-1 over the epochs of its last-``k`` window that could be read."""

    value: float  # NaN when no epoch of the window could be read
    window: tuple[int, ...]  # the epoch numbers the mean should cover
    used: tuple[int, ...]  # those with a readable metrics row
    final: int  # the window's last epoch

    @property
    def missing(self) -> tuple[int, ...]:
        """Epochs of the window without a metrics row (a corrupt line, skipped with a warning)."""
        return tuple(e for e in self.window if e not in self.used)


def final_epoch(run: Run, present: Iterable[int] | None = None) -> int:
    """The epoch a run's last-k window ends at: the planned last epoch of a completed run (so a lost
    last line shows up as missing), the last epoch ``present`` (default: with a metrics row) for an
    unfinished one."""
    last_present = max((int(e) for e in present) if present is not None else
                       (int(r["epoch"]) for r in run.metrics), default=0)
    planned = run.info.get("epochs")
    return int(planned) if run.status == "completed" and isinstance(planned, int) and planned > 0 else last_present


def last_k_of(by_epoch: Mapping[int, float], final: int, k: int = LAST_K) -> LastK:
    """The mean of ``by_epoch``'s values over epochs final-k+1 .. final, counted by epoch number."""
    window = tuple(range(max(1, final - k + 1), final + 1))
    used = tuple(e for e in window if e in by_epoch)
    value = sum(by_epoch[e] for e in used) / len(used) if used else float("nan")
    return LastK(value, window, used, final)


def last_k_top1(run: Run, k: int = LAST_K) -> LastK:
    """The mean logged val top-1 of epochs E-k+1 .. E (E: ``final_epoch``), by epoch number, not by row."""
    return last_k_of({int(r["epoch"]): float(r["val_top1"]) for r in run.metrics}, final_epoch(run), k)


@dataclass(frozen=True)
class TableSource:
    """Where Tables 2 and 3 take each run's numbers from: the accuracies logged during training (the
    default), or its checkpoints re-evaluated (``checkpoint_tables``)."""

    best: Callable[[Run], float | None] = best_top1  # None: the run is left out of Table 2
    last: Callable[[Run, int], LastK] = last_k_top1
    notes: tuple[str, ...] = ()  # said first under both tables
    missing: str = "no readable metrics"  # what an epoch of the last-k window lacks, in the notes
    title: str = ""  # appended to both titles
    stem: str = "tables"  # tables.md/.tex
    csv_names: tuple[str, str] = ("best.csv", "last5.csv")


LOGGED = TableSource()


def _group_values(sweep: Sweep, value: Callable[[Run], float | None]) -> dict[Key, list[RunValue]]:
    """Each group's runs' values; a run whose value is None is left out of its group (and a group left
    with no runs, of the table)."""
    out = {key: [RunValue(r.name, r.seed, v) for r in runs if (v := value(r)) is not None]
           for key, runs in sweep.groups().items()}
    return {key: values for key, values in out.items() if values}


def _common_notes(sweep: Sweep, rows: list[dict[str, Any]]) -> list[str]:
    notes = sweep.notes()
    incomplete = [r.name for r in sweep.runs if r.status != "completed"]
    if incomplete:
        notes.append(f"included unfinished run(s) (--include-incomplete): {', '.join(incomplete)}")
    archs_without_zero = sorted({r["arch"] for r in rows} - {r["arch"] for r in rows if r["padding"] == REFERENCE_PADDING})
    if archs_without_zero:
        notes.append(f"no zero-padding runs for {', '.join(archs_without_zero)}: no diff there")
    if any(not is_missing(r.get("paper_mean")) for r in rows):
        notes.append(f"paper columns: the paper's ImageNet-1k numbers (100 epochs, 5 runs){paper_caveat(sweep)}")
    notes.append("std: sample standard deviation (n-1). diff: mean minus the zero-padding mean of the same "
                 "arch (and settings); 95% CI, p and MDE from Welch's t-test (unequal variances), empty with "
                 "fewer than 2 runs.")
    return notes


def paper_caveat(sweep: Sweep) -> str:
    """A warning when the sweep's dataset is not the paper's."""
    return "" if sweep.dataset == "imagenet" else f"; this sweep is {sweep.dataset}, so compare trends, not values"


def best_table(sweep: Sweep, paper_dir: Path | None = None, source: TableSource = LOGGED) -> Table:
    """Table 2: the best epoch's val top-1 of each run, summarised per (arch, padding)."""
    rows = summarize_groups(_group_values(sweep, source.best), ("arch", "padding"), zero_reference)
    add_paper_columns(rows, paper_summary(paper_dir, BEST_CSV), ("arch", "padding"))
    title = f"Best val top-1 (%) over epochs, {sweep.dataset} (paper Table 2){source.title}"
    return summary_table(title, rows, ("arch", "padding"), notes=[*source.notes, *_common_notes(sweep, rows)])


def last5_table(sweep: Sweep, paper_dir: Path | None = None, k: int = LAST_K, source: TableSource = LOGGED) -> Table:
    """Table 3: each run's mean val top-1 over its last ``k`` epochs, summarised per (arch, padding)."""
    last = {r.name: source.last(r, k) for r in sweep.runs}
    values = _group_values(sweep, lambda r: last[r.name].value if last[r.name].used else None)
    rows = summarize_groups(values, ("arch", "padding"), zero_reference)
    for row in rows:
        row["epochs_averaged"] = min(len(last[v.run_id].used) for v in values[(row["arch"], row["padding"])])
    add_paper_columns(rows, paper_summary(paper_dir, LAST5_CSV), ("arch", "padding"))
    notes = [*source.notes, *last_k_notes(last, k, source.missing), *_common_notes(sweep, rows)]
    title = f"Mean val top-1 (%) of the last {k} epochs, {sweep.dataset} (paper Table 3){source.title}"
    return summary_table(title, rows, ("arch", "padding"), extra=[Column("epochs_averaged", "int", "epochs")],
                         notes=notes)


def last_k_notes(last: dict[str, LastK], k: int = LAST_K, missing: str = LOGGED.missing) -> list[str]:
    """Name the runs whose last-``k`` mean is not over ``k`` epochs: too short, or epochs ``missing`` a number."""
    notes = []
    short = [f"{name} ({len(lk.used)})" for name, lk in last.items() if len(lk.window) < k and not lk.missing]
    if short:
        notes.append(f"fewer than {k} epochs, averaged over all they have: {', '.join(short)}")
    gaps = [f"{name} (epochs {lk.window[0]}-{lk.final}: {missing} for epoch(s) "
            f"{', '.join(map(str, lk.missing))}; "
            + (f"averaged the {len(lk.used)} present)" if lk.used else "left out of this table)")
            for name, lk in last.items() if lk.missing]
    if gaps:
        notes.append(f"last-{k} window incomplete, averaged only the epochs present: {'; '.join(gaps)}")
    return notes


def write_tables(sweep: Sweep, out_dir: Path, paper_dir: Path | None = None, source: TableSource = LOGGED,
                 warnings: Sequence[str] = ()) -> list[Path]:
    """Write best.csv, last5.csv, tables.md and tables.tex for ``sweep`` (other names for another ``source``);
    ``warnings`` met on the way are listed after the sweep's."""
    tables = [best_table(sweep, paper_dir, source), last5_table(sweep, paper_dir, source=source)]
    preamble = (f"# Padding sweep {sweep.root}\n\n{len(sweep.runs)} runs, dataset {sweep.dataset}. "
                "Top-1 accuracy in percent.\n")
    if sweep.warnings or warnings:
        preamble += "\nWhile reading the sweep:\n\n" + "".join(f"- {w}\n" for w in [*sweep.warnings, *warnings])
    return write_all(tables, out_dir, source.stem, list(source.csv_names), preamble)

"""Tables 2 and 3 from the checkpoints themselves (``evaluate.py tables --from-checkpoints``): each run's
best.pt and the epoch_NNN.pt of its last five epochs re-evaluated, on its own val set or another, at a
chosen precision, then summarised exactly like the logged numbers (``tables.TableSource``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from padlib.errors import PadlibError
from padlib.report.checkpoint_eval import (
    CheckpointEvalOptions,
    CheckpointJob,
    CheckpointResults,
    Integrity,
    checkpoint_job,
    evaluate_checkpoints,
    integrity_check,
    val_description,
)
from padlib.report.collect import Run, Sweep
from padlib.report.tables import LAST_K, LastK, TableSource, final_epoch, last_k_of, write_tables
from padlib.report.weights import precision_note
from padlib.report.writers import Column, Table, write_csv

STEM = "tables_from_checkpoints"
CSV_NAMES = ("best_from_checkpoints.csv", "last5_from_checkpoints.csv")
INTEGRITY_CSV = "checkpoint_integrity.csv"


@dataclass
class CheckpointTables:
    """The re-evaluated numbers as a table source, the integrity check, and what went wrong on the way."""

    source: TableSource
    integrity: Integrity
    results: CheckpointResults
    warnings: list[str] = field(default_factory=list)


def table_jobs(sweep: Sweep, opts: CheckpointEvalOptions, k: int = LAST_K) -> tuple[list[CheckpointJob], dict[str, int],
                                                                                       list[str]]:
    """(jobs: every run's best.pt and the epoch checkpoints of its last-``k`` window that exist, each run's
    window end, warnings for runs that cannot be re-evaluated)."""
    jobs, finals, warnings = [], {}, []
    for run in sweep.runs:
        present = {int(p.stem[6:]): p for p in run.rundir.epoch_checkpoints()}
        finals[run.name] = final_epoch(run, present)
        window = range(max(1, finals[run.name] - k + 1), finals[run.name] + 1)
        files = [(None, run.rundir.best_checkpoint), *((e, present[e]) for e in window if e in present)]
        if not run.rundir.best_checkpoint.is_file():
            warnings.append(f"{run.name}: no {run.rundir.best_checkpoint.name}; left out of Table 2")
            files = files[1:]
        try:
            jobs += [checkpoint_job(run, path, epoch, opts) for epoch, path in files]
        except PadlibError as e:
            warnings.append(f"{run.name}: left out ({e})")
    return jobs, finals, warnings


def checkpoint_tables(sweep: Sweep, opts: CheckpointEvalOptions, k: int = LAST_K) -> CheckpointTables:
    """Re-evaluate the checkpoints Tables 2 and 3 need and say how (PadlibError when none could be)."""
    jobs, finals, warnings = table_jobs(sweep, opts, k)
    if not jobs:
        raise PadlibError("no checkpoint to re-evaluate: " + "; ".join(warnings))
    results = evaluate_checkpoints(jobs, opts)
    warnings += results.warnings
    if not any(r is not None for r in results.records):
        raise PadlibError("no checkpoint could be re-evaluated: " + "; ".join(warnings))
    best: dict[str, float] = {}
    by_epoch: dict[str, dict[int, float]] = {run.name: {} for run in sweep.runs}
    for job, record in zip(jobs, results.records, strict=True):
        if record is not None:
            if job.epoch is None:
                best[job.run.name] = record.top1
            else:
                by_epoch[job.run.name][job.epoch] = record.top1
    integrity = integrity_check(jobs, results, opts.tolerance)
    if integrity.warning():
        warnings.append(integrity.warning())
    done = [job for job, record in zip(jobs, results.records, strict=True) if record is not None]
    used = {job.weights.name: p for job, p, r in zip(jobs, results.precisions, results.records, strict=True) if r}
    notes = [f"from checkpoints: Table 2 re-evaluates each run's best.pt, Table 3 averages its epoch_NNN.pt of the "
             f"last {k} epochs, on {val_description(done)}; not the val top-1 logged during training",
             precision_note(used, [w for w in results.fell_back if w.name in used], opts.amp, "these evaluations"),
             integrity.note()]
    no_best = sorted({run.name for run in sweep.runs} - set(best))
    if no_best:
        notes.append(f"no re-evaluated best.pt, left out of Table 2: {', '.join(no_best)}")

    def last(run: Run, window: int) -> LastK:
        return last_k_of(by_epoch[run.name], finals[run.name], window)

    own = all(job.own_val for job in done)
    title = ", re-evaluated from checkpoints" + ("" if own else f" on {val_description(done)}")
    source = TableSource(best=lambda run: best.get(run.name), last=last, notes=tuple(notes),
                         missing="no epoch checkpoint", title=title, stem=STEM, csv_names=CSV_NAMES)
    return CheckpointTables(source, integrity, results, warnings)


def integrity_table(integrity: Integrity) -> Table:
    """One row per checked checkpoint: logged and re-evaluated val top-1."""
    columns = [Column("run", "text"), Column("checkpoint", "text"), Column("epoch", "int"), Column("logged_top1"),
               Column("top1"), Column("diff"), Column("tolerance"), Column("ok", "text")]
    return Table("Integrity: checkpoints re-evaluated against the val top-1 logged in training", columns,
                 integrity.rows, [integrity.note()])


def write_checkpoint_tables(sweep: Sweep, tables: CheckpointTables, out_dir: Path,
                            paper_dir: Path | None = None) -> list[Path]:
    """Write the checkpoint-based Tables 2 and 3 (CSV, Markdown, LaTeX) and the integrity CSV."""
    paths = write_tables(sweep, out_dir, paper_dir, tables.source, tables.warnings)
    return [*paths, write_csv(integrity_table(tables.integrity), out_dir / INTEGRITY_CSV)]

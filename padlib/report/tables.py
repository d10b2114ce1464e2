"""Tables 2 and 3 of the paper from a sweep: best-epoch top-1 and the mean top-1 of the last 5 epochs,
per (arch, padding), with the difference to zero padding, its 95% CI, p-value and 80%-power minimum
detectable effect, beside the paper's."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from padlib.report.collect import REFERENCE_PADDING, Run, Sweep, label_arch
from padlib.report.paper import BEST_CSV, LAST5_CSV, paper_runs, paper_summary
from padlib.report.power import MAX_SEEDS, mde_welch, power_welch, seeds_needed
from padlib.report.stats import describe, is_missing
from padlib.report.writers import Column, Table, ci_text, show_cell, signed, write_all

LAST_K = 5
Key = tuple[str, ...]
MDE_NOTE = ("MDE (80%): the minimum detectable effect of that test for these stds and numbers of runs "
            "(two-sided, alpha 0.05, exact power of the test used): a true difference smaller than MDE would "
            "be missed more than 20% of the time with these seeds.")


@dataclass(frozen=True)
class RunValue:
    """One run's number in a table row; ``run_id`` pairs the same run across rows (cross-testing)."""

    run_id: str
    seed: int
    value: float


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


def summarize_groups(values: dict[Key, list[RunValue]], key_names: Sequence[str],
                     reference: Callable[[Key], Key | None], paired: bool = False) -> list[dict[str, Any]]:
    """One row per key: per-run values by seed, n_runs, mean, std and the diff to the reference row.

    ``reference(key)`` names the row to compare with (None: no diff, e.g. the reference itself).
    ``paired`` compares run by run (the same runs measured twice), on the runs both rows share.
    """
    rows = []
    for key, items in values.items():
        items = sorted(items, key=lambda v: (v.seed, v.run_id))
        ref_key = reference(key)
        ref_items = values.get(ref_key) if ref_key is not None else None
        xs = [v.value for v in items]
        if ref_items is None:
            st = describe(xs)
        elif paired:
            ref_by_id = {v.run_id: v.value for v in ref_items}
            shared = [v for v in items if v.run_id in ref_by_id]
            test = describe([v.value for v in shared], [ref_by_id[v.run_id] for v in shared], paired=True)
            # the diff is of the row means, as in the paper; CI and p come from the runs both rows have
            st = describe(xs)
            st = replace(st, diff=st.mean - describe([v.value for v in ref_items]).mean,
                         ci_low=test.ci_low, ci_high=test.ci_high, p_value=test.p_value, mde80=test.mde80)
        else:
            st = describe(xs, [v.value for v in ref_items])
        row: dict[str, Any] = dict(zip(key_names, key, strict=True))
        row.update({f"run{i}": v.value for i, v in enumerate(items, 1)})
        row.update(n_runs=st.n, mean=st.mean, std=st.std, diff=st.diff, diff_ci_low=st.ci_low,
                   diff_ci_high=st.ci_high, p_value=st.p_value, mde80=st.mde80,
                   seeds=" ".join(str(v.seed) for v in items))
        rows.append(row)
    return rows


def add_paper_columns(rows: list[dict[str, Any]], paper: dict[Key, dict[str, float | None]],
                      key_names: Sequence[str], fields: Sequence[str] = ("mean", "diff", "std")) -> None:
    """Fill ``paper_<field>`` of each row whose key the paper reports (a row's "arch" may be a group label)."""
    for row in rows:
        ref = paper.get(tuple(label_arch(row[k]) if k == "arch" else row[k] for k in key_names), {})
        for f in fields:
            row[f"paper_{f}"] = ref.get(f)


def summary_table(title: str, rows: list[dict[str, Any]], key_names: Sequence[str],
                  paper_fields: Sequence[str] = ("mean", "diff", "std"), extra: Sequence[Column] = (),
                  notes: Sequence[str] = ()) -> Table:
    """The table of ``summarize_groups`` rows: CSV gets every column; readers get a compact view.

    A table with any diff gets ``MDE_NOTE`` after ``notes``.
    """
    n_runs = max((int(r["n_runs"]) for r in rows), default=0)
    keys = [Column(k, "text") for k in key_names]
    runs = [Column(f"run{i}") for i in range(1, n_runs + 1)]
    stats = [Column("n_runs", "int"), Column("mean"), Column("std"), Column("diff"), Column("diff_ci_low"),
             Column("diff_ci_high"), Column("p_value", "p"), Column("mde80")]
    paper = [Column(f"paper_{f}") for f in paper_fields]
    display = [*keys, *runs, Column("n_runs", "int", "n"), Column("mean"), Column("std"),
               Column("diff", render=lambda r: signed(r.get("diff"))),
               Column("ci", header="diff 95% CI", render=lambda r: ci_text(r.get("diff_ci_low"), r.get("diff_ci_high"))),
               Column("p_value", "p", "p"), Column("mde80", header="MDE (80%)"), *extra,
               *[Column(f"paper_{f}", header=f"paper {f}",
                        render=(lambda r, f=f: signed(r.get(f"paper_{f}")) if f == "diff"
                                else show_cell(r.get(f"paper_{f}"), "num"))) for f in paper_fields]]
    columns = [*keys, *runs, *stats, *extra, *paper, Column("seeds", "text")]
    has_diff = any(not is_missing(r.get("diff")) for r in rows)
    return Table(title, columns, rows, [*notes, *([MDE_NOTE] if has_diff else [])], display)


def zero_reference(key: Key) -> Key | None:
    """Tables 2/3 compare each padding with zero padding of the same arch."""
    arch, padding = key
    return None if padding == REFERENCE_PADDING else (arch, REFERENCE_PADDING)


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


# --- evaluate.py plan: how many seeds per padding mode a difference needs ---

PLAN_TABLES = (("Table 2", BEST_CSV), ("Table 3", LAST5_CSV))


def _seeds_cell(row: dict[str, Any]) -> str:
    if not is_missing(row.get("seeds_needed")):
        return str(row["seeds_needed"])
    stds = (row.get("std"), row.get("zero_std", row.get("std")))
    defined = not any(is_missing(v) for v in stds) and max(stds) > 0
    return f">{MAX_SEEDS}" if defined else "-"  # None also when no std could be estimated


def _power_cell(value: Any) -> str:
    return ">0.999" if not is_missing(value) and value > 0.9995 else show_cell(value, "num")


def _none_to_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def paper_plan_table(paper_dir: Path | None = None) -> Table:
    """For each non-zero row of the paper's Tables 2 and 3: the power its 5 runs had for its printed diff,
    its 80%-power MDE, and the seeds per mode 80% power needs (Welch, the observed sample stds)."""
    rows = []
    for label, name in PLAN_TABLES:
        printed, runs = paper_summary(paper_dir, name), paper_runs(paper_dir, name)
        for (arch, padding), values in runs.items():
            ref = runs.get((arch, REFERENCE_PADDING))
            if padding == REFERENCE_PADDING or not ref:
                continue
            st, zero = describe(values, ref), describe(ref)
            diff = printed.get((arch, padding), {}).get("diff")
            diff = st.diff if diff is None else diff
            rows.append({"table": label, "arch": arch, "padding": padding, "diff": diff, "std": st.std,
                         "zero_std": zero.std, "paper_n": st.n, "zero_n": zero.n,
                         "paper_power": power_welch(diff, st.std, st.n, zero.std, zero.n),
                         "paper_mde80": st.mde80,
                         "seeds_needed": seeds_needed(diff, st.std, std_ref=zero.std)})
    columns = [Column("table", "text"), Column("arch", "text"), Column("padding", "text"), Column("diff"),
               Column("std"), Column("zero_std"), Column("paper_n", "int"), Column("zero_n", "int"),
               Column("paper_power"), Column("paper_mde80"), Column("seeds_needed", "int")]
    display = [Column("table", "text"), Column("arch", "text"), Column("padding", "text"),
               Column("diff", header="diff (printed)", render=lambda r: signed(r.get("diff"))),
               Column("std"), Column("zero_std", header="zero std"),
               Column("paper_n", "int", "paper's seeds"),
               Column("paper_power", header="power with paper's seeds",
                      render=lambda r: _power_cell(r["paper_power"])),
               Column("paper_mde80", header="MDE (80%) with paper's seeds"),
               Column("seeds_needed", "int", "seeds needed (80%)", render=_seeds_cell)]
    notes = ["diff: as printed in the paper (mean minus zero padding's mean of the same arch). std, zero std: "
             "sample std (n-1) of the per-run cells of the row and of its arch's zero row; the printed stdev "
             "of the zero/partial rows is population-style, about 0.82x this (see evaluate.py audit).",
             "power: of Welch's two-sided t-test at alpha 0.05 with the paper's runs, taking the printed diff "
             "and these stds as the truth (so it is optimistic where the diff is itself a lucky draw). "
             f"seeds needed: runs per mode (the same number for zero padding) for 80% power; >{MAX_SEEDS}: more "
             "than that (empty in the CSV).",
             MDE_NOTE]
    return Table("Seeds the paper's differences need (Tables 2 and 3, ImageNet-1k)", columns, rows, notes, display)


def grid_plan_table(effects: Sequence[float], stds: Sequence[float], seeds: int) -> Table:
    """For each (effect D, seed-to-seed std S): the seeds per mode Welch's test needs for 80% power, and
    the power and 80%-power MDE with ``seeds`` runs per mode (both modes with std S)."""
    rows = [{"effect": d, "std": s, "seeds_needed": seeds_needed(d, s),
             "power_at_seeds": power_welch(d, s, seeds, s, seeds),
             "mde80_at_seeds": _none_to_nan(mde_welch(s, seeds, s, seeds))} for d in effects for s in stds]
    columns = [Column("effect"), Column("std"), Column("seeds_needed", "int"), Column("power_at_seeds"),
               Column("mde80_at_seeds")]
    display = [Column("effect"), Column("std"), Column("seeds_needed", "int", "seeds needed per mode (80%)",
                                                        render=_seeds_cell),
               Column("power_at_seeds", header=f"power with {seeds} seeds",
                      render=lambda r: _power_cell(r["power_at_seeds"])),
               Column("mde80_at_seeds", header=f"MDE (80%) with {seeds} seeds")]
    notes = ["effect: a true difference of means between two padding modes; std: the seed-to-seed standard "
             "deviation of each mode. Welch's two-sided t-test at alpha 0.05, the same number of runs per mode; "
             f">{MAX_SEEDS}: more than that (empty in the CSV).", MDE_NOTE]
    return Table(f"Seeds per padding mode to detect a difference (80% power), and what {seeds} seeds give",
                 columns, rows, notes, display)

"""``evaluate.py plan``: how many seeds per padding mode a difference needs for 80% power, for the paper's
own differences (its Tables 2 and 3) or for a grid of effects and seed-to-seed stds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from padlib.report.collect import REFERENCE_PADDING
from padlib.report.paper import BEST_CSV, LAST5_CSV, paper_runs, paper_summary
from padlib.report.power import MAX_SEEDS, mde_welch, power_welch, seeds_needed
from padlib.report.stats import describe, is_missing
from padlib.report.summary import MDE_NOTE
from padlib.report.writers import Column, Table, show_cell, signed

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

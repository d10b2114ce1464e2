"""What every results table of the evaluator shares: groups of per-run values summarised into rows (per-run
values, mean, sample std, and the difference to a reference row with its 95% CI, p-value and 80%-power
minimum detectable effect), the paper's numbers beside them, and the table those rows make. Tables 2-3,
Table 4, the test-size table and the border score are all built this way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from padlib.report.collect import REFERENCE_PADDING, label_arch
from padlib.report.stats import describe, is_missing
from padlib.report.writers import Column, Table, ci_text, show_cell, signed

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
    """Compare each row with zero padding at the same other keys: ``key`` is (arch, padding, ...), as in
    Tables 2/3, the test-size table (arch, padding, size) and the border score (arch, padding, layer)."""
    return None if key[1] == REFERENCE_PADDING else (key[0], REFERENCE_PADDING, *key[2:])

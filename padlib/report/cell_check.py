"""Check a printed results table (``evaluate.py audit``): recompute every summary cell from the per-run cells
and list the cells that disagree beyond the rounding of the printed number, with the conventions they do match.

Understood layouts (column names as in results/paper/ and in our own best.csv/last5.csv/cross.csv):
per-run columns ``run1..runN``; summary columns ``average``/``mean``, ``stdev``/``std``, ``diff``;
``diff`` is against zero padding of the same arch, or, with ``train_padding``/``test_padding``
columns (cross-testing), against the row tested with its training padding. A ``relative_percent``
column is checked against ``running_time`` relative to zero padding of the same arch (Table 1).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from padlib.errors import PadlibError
from padlib.report.paper import read_rows
from padlib.report.writers import Column, Table

RUN_COLUMN = re.compile(r"^run(\d+)$")
MEAN_COLUMNS = ("average", "mean")
STD_COLUMNS = ("stdev", "std")
KEY_COLUMNS = ("arch", "padding", "train_padding", "test_padding", "iterations")


@dataclass(frozen=True)
class Printed:
    """A number as printed: its value and how many decimals it shows."""

    value: float
    decimals: int

    @property
    def tolerance(self) -> float:
        """Half a unit of the last printed digit: the most rounding can move a value."""
        return 0.5 * 10.0**-self.decimals

    def rounds_from(self, x: float) -> bool:
        """True when ``x`` rounded to the printed decimals gives the printed value."""
        return abs(x - self.value) <= self.tolerance * (1 + 1e-9) + 1e-12

    def truncates_from(self, x: float) -> bool:
        """True when ``x`` with the extra digits cut off (not rounded) gives the printed value."""
        scale = 10.0**self.decimals
        return math.isclose(math.trunc(round(x * scale, 6)) / scale, self.value, abs_tol=1e-12)


def parse_printed(text: str | None) -> Printed | None:
    """The number in a cell and its printed decimals; None for an empty or non-numeric cell."""
    if text is None or not text.strip():
        return None
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    return Printed(float(d), max(0, -d.as_tuple().exponent))


@dataclass(frozen=True)
class Finding:
    """A summary cell that its runs do not reproduce."""

    file: str
    row: str
    column: str
    printed: str
    recomputed: float
    convention: str  # how ``recomputed`` was computed (the standard convention)
    matches: tuple[str, ...]  # other conventions that do reproduce the printed value


@dataclass
class Audit:
    """What auditing one table found."""

    file: str
    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


Candidate = tuple[str, float]
LEFT_OUT = " without run"  # marks leave-one-out candidates: plausible when rounded, noise when truncated


def _row_label(row: dict[str, str], keys: list[str]) -> str:
    return "/".join(row[k] for k in keys if row.get(k))


def _runs(row: dict[str, str], run_cols: list[str]) -> list[Printed]:
    return [p for p in (parse_printed(row.get(c)) for c in run_cols) if p is not None]


def _leave_one_out(xs: np.ndarray, stat: Callable[[np.ndarray], float], what: str) -> list[Candidate]:
    if xs.size < 3:
        return []
    return [(f"{what}{LEFT_OUT}{i + 1}", stat(np.delete(xs, i))) for i in range(xs.size)]


def mean_candidates(xs: np.ndarray) -> list[Candidate]:
    """The mean of the runs, then the other ways a printed average is commonly made."""
    cands = [("mean of the runs", float(xs.mean()))]
    cands += _leave_one_out(xs, lambda v: float(v.mean()), "mean")
    return cands


def std_candidates(xs: np.ndarray) -> list[Candidate]:
    """The sample std (n-1), then the other conventions a printed std may follow."""
    n = xs.size
    ss = float(((xs - xs.mean()) ** 2).sum())
    cands = [("sample std (n-1)", math.sqrt(ss / (n - 1))), ("population std (n)", math.sqrt(ss / n)),
             ("sqrt(sum of squares/(n+1)), e.g. a population std whose range took in the average cell",
              math.sqrt(ss / (n + 1)))]
    for d in (2, 1):
        r = np.round(xs, d)
        cands.append((f"sample std of the runs rounded to {d} decimals", float(r.std(ddof=1))))
        cands.append((f"population std of the runs rounded to {d} decimals", float(r.std())))
    cands += _leave_one_out(xs, lambda v: float(v.std(ddof=1)), "sample std")
    return cands


def diff_candidates(xs: np.ndarray, ref: np.ndarray, printed_mean: Printed | None,
                    printed_ref_mean: Printed | None) -> list[Candidate]:
    """The difference of the means, then the other ways a printed diff is commonly made."""
    cands = [("difference of the means of the runs", float(xs.mean() - ref.mean()))]
    if printed_mean is not None and printed_ref_mean is not None:
        cands.append(("difference of the printed (rounded) averages", printed_mean.value - printed_ref_mean.value))
        cands.append(("printed average minus the reference's exact mean", printed_mean.value - float(ref.mean())))
    return cands


def _judge(printed: Printed, cands: list[Candidate]) -> tuple[bool, tuple[str, ...]]:
    """(the first, standard, candidate reproduces the printed value; names of the others that do)."""
    ok = printed.rounds_from(cands[0][1])
    matches = [name for name, v in cands[1:] if printed.rounds_from(v)]
    matches += [f"{name}, truncated instead of rounded" for name, v in cands
                if LEFT_OUT not in name and printed.truncates_from(v) and not printed.rounds_from(v)]
    return ok, tuple(matches)


def _check(audit: Audit, row: str, column: str, text: str, cands: list[Candidate]) -> None:
    printed = parse_printed(text)
    if printed is None or not cands:
        return
    audit.checked += 1
    ok, matches = _judge(printed, cands)
    if not ok:
        audit.findings.append(Finding(audit.file, row, column, text.strip(), cands[0][1], cands[0][0], matches))


def _reference_finder(columns: list[str]) -> Callable[[dict[str, str]], tuple[str, ...] | None]:
    """How a row's diff reference is located, from the table's layout."""
    if "train_padding" in columns and "test_padding" in columns:
        def cross(row: dict[str, str]) -> tuple[str, ...] | None:
            if row["train_padding"] == row["test_padding"]:
                return None
            return (row["arch"], row["train_padding"], row["train_padding"])
        return cross

    def zero(row: dict[str, str]) -> tuple[str, ...] | None:
        return None if row.get("padding") == "zero" else (row.get("arch", ""), "zero")
    return zero


def _row_key(row: dict[str, str], columns: list[str]) -> tuple[str, ...]:
    if "train_padding" in columns and "test_padding" in columns:
        return (row["arch"], row["train_padding"], row["test_padding"])
    return (row.get("arch", ""), row.get("padding", ""))


def _first(columns: list[str], names: tuple[str, ...]) -> str | None:
    return next((c for c in names if c in columns), None)


def _precision_notes(audit: Audit, rows: list[dict[str, str]], run_cols: list[str], keys: list[str]) -> None:
    """Per-run cells printed with more decimals than the table's usual, and repeated values in a row."""
    decimals = [p.decimals for r in rows for p in _runs(r, run_cols)]
    if not decimals:
        return
    usual = max(set(decimals), key=decimals.count)
    for r in rows:
        label = _row_label(r, keys)
        for c in run_cols:
            p = parse_printed(r.get(c))
            if p is not None and p.decimals > usual:
                audit.notes.append(f"{label} {c}: {r[c]} has {p.decimals} decimals where the table prints {usual}")
        values = [r[c].strip() for c in run_cols if parse_printed(r.get(c)) is not None]
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            cols = [c for c in run_cols if (r.get(c) or "").strip() in repeated]
            audit.notes.append(f"{label}: {', '.join(cols)} print the same value {', '.join(repeated)} "
                               "(possible copy error)")


def _audit_runs(audit: Audit, rows: list[dict[str, str]], columns: list[str]) -> None:
    run_cols = sorted((c for c in columns if RUN_COLUMN.match(c)), key=lambda c: int(RUN_COLUMN.match(c)[1]))
    keys = [c for c in KEY_COLUMNS if c in columns]
    mean_col, std_col = _first(columns, MEAN_COLUMNS), _first(columns, STD_COLUMNS)
    diff_col = "diff" if "diff" in columns else None
    reference = _reference_finder(columns)
    by_key = {_row_key(r, columns): r for r in rows}
    for r in rows:
        label = _row_label(r, keys)
        xs = np.array([p.value for p in _runs(r, run_cols)])
        if xs.size == 0:
            continue
        if mean_col:
            _check(audit, label, mean_col, r.get(mean_col, ""), mean_candidates(xs))
        if std_col and xs.size >= 2:
            _check(audit, label, std_col, r.get(std_col, ""), std_candidates(xs))
        ref_key = reference(r)
        ref = by_key.get(ref_key) if ref_key else None
        if diff_col and ref is not None:
            ref_xs = np.array([p.value for p in _runs(ref, run_cols)])
            if ref_xs.size:
                pm = parse_printed(r.get(mean_col)) if mean_col else None
                pr = parse_printed(ref.get(mean_col)) if mean_col else None
                _check(audit, label, diff_col, r.get(diff_col, ""), diff_candidates(xs, ref_xs, pm, pr))
        elif diff_col and ref_key and parse_printed(r.get(diff_col)):
            audit.notes.append(f"{label}: diff printed but its reference row {'/'.join(ref_key)} is missing")
    _precision_notes(audit, rows, run_cols, keys)


def _audit_relative(audit: Audit, rows: list[dict[str, str]], columns: list[str]) -> None:
    keys = [c for c in KEY_COLUMNS if c in columns]
    zero = {r.get("arch"): parse_printed(r.get("running_time")) for r in rows if r.get("padding") == "zero"}
    for r in rows:
        time, base = parse_printed(r.get("running_time")), zero.get(r.get("arch"))
        if time is None or base is None or base.value == 0:
            continue
        cands = [("100 x running_time / zero padding's running_time", 100 * time.value / base.value)]
        _check(audit, _row_label(r, keys), "relative_percent", r.get("relative_percent", ""), cands)


def audit_table(path: Path | str) -> Audit:
    """Recompute each summary cell of the CSV table at ``path`` and report disagreements."""
    path = Path(path)
    rows = read_rows(path)
    columns = list(rows[0].keys())
    audit = Audit(str(path))
    if any(RUN_COLUMN.match(c) for c in columns):
        _audit_runs(audit, rows, columns)
    if "relative_percent" in columns and "running_time" in columns:
        _audit_relative(audit, rows, columns)
    if audit.checked == 0:
        raise PadlibError(
            f"{path}: nothing to audit; expected per-run columns run1..runN with average/stdev/diff, "
            "or running_time with relative_percent"
        )
    return audit


def format_audit(audit: Audit) -> str:
    """A plain-text report of one audit, one line per disagreeing cell."""
    lines = [f"{audit.file}: {audit.checked} summary cells checked, {len(audit.findings)} disagree with their runs"]
    for f in audit.findings:
        also = f"; matches: {' | '.join(f.matches)}" if f.matches else "; matches no common convention"
        shown = parse_printed(f.printed)
        digits = (shown.decimals if shown else 3) + 3  # enough digits to see which way rounding went
        lines.append(f"  {f.row} {f.column}: printed {f.printed}, recomputed {f.recomputed:.{digits}f} "
                     f"({f.convention}){also}")
    lines += [f"  note: {n}" for n in audit.notes]
    return "\n".join(lines)


def findings_table(audits: list[Audit]) -> Table:
    """All findings as one table (for --out: CSV/Markdown/LaTeX)."""
    rows = [{"file": Path(f.file).name, "row": f.row, "column": f.column, "printed": f.printed,
             "recomputed": f.recomputed, "convention": f.convention,
             "matches": " | ".join(f.matches) or "none"} for a in audits for f in a.findings]
    cols = [Column("file", "text"), Column("row", "text"), Column("column", "text"), Column("printed", "text"),
            Column("recomputed", "num"), Column("convention", "text"), Column("matches", "text")]
    notes = [f"{Path(a.file).name}: {n}" for a in audits for n in a.notes]
    checked = ", ".join(f"{Path(a.file).name}: {len(a.findings)} of {a.checked} cells" for a in audits)
    return Table(f"Audit of printed summary cells ({checked})", cols, rows, notes)

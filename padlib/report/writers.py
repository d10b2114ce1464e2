"""One table model rendered three ways: CSV (full precision, for machines), Markdown and LaTeX
(rounded, for readers)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from padlib.report.stats import is_missing

CSV_DECIMALS = 6
SHOW_DECIMALS = 3


@dataclass(frozen=True)
class Column:
    """A table column: ``kind`` is text, int, num (a value, 3 decimals shown) or p (a p-value)."""

    name: str
    kind: str = "num"
    header: str | None = None  # the label shown in Markdown/LaTeX; ``name`` when None
    render: Callable[[dict[str, Any]], str] | None = None  # a display-only cell built from the row

    @property
    def label(self) -> str:
        return self.header or self.name


@dataclass
class Table:
    """Rows of named cells plus the notes a reader needs (left-out runs, short runs, ...)."""

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    display: list[Column] | None = None  # the columns shown in Markdown/LaTeX; all when None

    @property
    def shown(self) -> list[Column]:
        return self.display if self.display is not None else self.columns


def csv_cell(value: Any, kind: str) -> str:
    """A cell as written to CSV: empty when missing, numbers at full useful precision."""
    if is_missing(value):
        return ""
    if kind == "p":
        return f"{float(value):.6g}"
    if kind == "num":
        return np.format_float_positional(round(float(value), CSV_DECIMALS), trim="-")
    return str(value)


def show_cell(value: Any, kind: str, decimals: int = SHOW_DECIMALS) -> str:
    """A cell as shown to a reader: rounded, '-' when missing, small p-values as '<0.001'."""
    if is_missing(value):
        return "-"
    if kind == "p":
        return "<0.001" if float(value) < 0.001 else f"{float(value):.3f}"
    if kind == "num":
        return f"{float(value):.{decimals}f}"
    return str(value)


def signed(value: Any, decimals: int = SHOW_DECIMALS) -> str:
    """A difference shown with its sign."""
    return "-" if is_missing(value) else f"{float(value):+.{decimals}f}"


def ci_text(low: Any, high: Any, decimals: int = SHOW_DECIMALS) -> str:
    """A confidence interval shown as [low, high]."""
    if is_missing(low) or is_missing(high):
        return "-"
    return f"[{float(low):+.{decimals}f}, {float(high):+.{decimals}f}]"


def value_with_ci(value: Any, low: Any, high: Any, decimals: int = 1, ci_decimals: int = 1) -> str:
    """A value followed by its interval as ``[low, high]`` where both ends exist; '-' without a value."""
    if is_missing(value):
        return "-"
    ci = "" if is_missing(low) or is_missing(high) else f" [{float(low):.{ci_decimals}f}, {float(high):.{ci_decimals}f}]"
    return f"{float(value):.{decimals}f}{ci}"


def _shown_cells(table: Table, row: dict[str, Any]) -> list[str]:
    return [c.render(row) if c.render else show_cell(row.get(c.name), c.kind) for c in table.shown]


def markdown_cell(text: Any) -> str:
    """Text that stays one Markdown table cell: pipes escaped, line breaks as spaces."""
    return " ".join(str(text).split("\n")).replace("|", "\\|")


def markdown_row(cells: list[Any]) -> str:
    """One Markdown table row of ``cells``."""
    return "| " + " | ".join(markdown_cell(c) for c in cells) + " |"


def write_csv(table: Table, path: Path) -> Path:
    """Write the table's CSV (every column, full precision)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([c.name for c in table.columns])
        for row in table.rows:
            w.writerow([csv_cell(row.get(c.name), c.kind) for c in table.columns])
    return path


def to_markdown(table: Table, level: int = 2) -> str:
    """The table as a Markdown section: heading, table, then its notes as a list."""
    lines = [f"{'#' * level} {table.title}", ""]
    if table.rows:
        # every row escapes its pipes, so header, delimiter and rows have one width
        lines.append(markdown_row([c.label for c in table.shown]))
        lines.append("| " + " | ".join("---" if c.kind == "text" else "---:" for c in table.shown) + " |")
        lines += [markdown_row(_shown_cells(table, r)) for r in table.rows]
    else:
        lines.append("(no rows)")
    if table.notes:
        lines.append("")
        lines += [f"- {n}" for n in table.notes]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    # backslashes first, through a placeholder, so the braces of \textbackslash{} are not escaped again
    out = str(text).replace("\\", "\0")
    for a, b in (("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"), ("{", r"\{"),
                 ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        out = out.replace(a, b)
    return out.replace("\0", r"\textbackslash{}")


def to_latex(table: Table) -> str:
    """The table as a booktabs ``table`` environment; notes go below it as a small paragraph."""
    align = "".join("l" if c.kind == "text" else "r" for c in table.shown)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        f"\\caption{{{latex_escape(table.title)}}}",
        f"\\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(latex_escape(c.label) for c in table.shown) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(latex_escape(x) for x in _shown_cells(table, r)) + r" \\" for r in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        sentences = (n if n.endswith(".") else n + "." for n in table.notes)
        lines.append(r"\par\smallskip\footnotesize " + " ".join(latex_escape(n) for n in sentences))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def write_all(tables: list[Table], out_dir: Path, stem: str, csv_names: list[str] | None = None,
              preamble: str = "") -> list[Path]:
    """Write each table's CSV (named by ``csv_names``) plus ``stem``.md and ``stem``.tex holding them all."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for table, name in zip(tables, csv_names or [], strict=False):
        written.append(write_csv(table, out_dir / name))
    md = (preamble + "\n" if preamble else "") + "\n".join(to_markdown(t) for t in tables)
    (out_dir / f"{stem}.md").write_text(md)
    (out_dir / f"{stem}.tex").write_text("\n".join(to_latex(t) for t in tables))
    return [*written, out_dir / f"{stem}.md", out_dir / f"{stem}.tex"]

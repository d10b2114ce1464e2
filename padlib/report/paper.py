"""The paper's reported numbers (results/paper/*.csv), for side-by-side columns in our tables."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from padlib.errors import PadlibError

DEFAULT_PAPER_DIR = Path(__file__).resolve().parents[2] / "results" / "paper"
BEST_CSV = "table2_best_top1.csv"
LAST5_CSV = "table3_last5_avg_top1.csv"
CROSS_CSV = "table4_cross_testing.csv"
TIMING_CSV = "table1_running_time.csv"
RUN_COLUMN = re.compile(r"^run\d+$")


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts of strings; PadlibError naming the file when unreadable."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise PadlibError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise PadlibError(f"{path}: not a readable CSV ({e})") from None
    if not rows:
        raise PadlibError(f"{path}: no rows")
    return rows


def _num(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def paper_summary(paper_dir: Path | None, name: str) -> dict[tuple[str, ...], dict[str, float | None]]:
    """The paper's mean/diff/std by (arch, padding) — or (arch, train, test) for Table 4 — from ``name``.

    A missing paper directory or file gives an empty mapping: the comparison is an extra, not a need.
    """
    path = (paper_dir or DEFAULT_PAPER_DIR) / name
    if not path.is_file():
        return {}
    return {_key(row, path): {"mean": _num(row.get("average")), "diff": _num(row.get("diff")),
                              "std": _num(row.get("stdev"))} for row in read_rows(path)}


def _key(row: dict[str, str], path: Path) -> tuple[str, ...]:
    names = ("arch", "train_padding", "test_padding") if "test_padding" in row else ("arch", "padding")
    if any(row.get(n) is None for n in names):
        raise PadlibError(f"{path}: needs the columns {', '.join(names)}")
    return tuple(row[n] for n in names)


def paper_runs(paper_dir: Path | None, name: str) -> dict[tuple[str, ...], list[float]]:
    """The paper's per-run numbers (its run1..runN cells) by the keys of ``paper_summary``.

    Unlike ``paper_summary`` a missing file is a PadlibError: here the paper's runs are the input.
    """
    path = (paper_dir or DEFAULT_PAPER_DIR) / name
    out = {}
    for row in read_rows(path):
        runs = [_num(text) for col, text in row.items() if col is not None and RUN_COLUMN.match(col)]
        out[_key(row, path)] = [v for v in runs if v is not None]
    return out


def paper_timing(paper_dir: Path | None) -> dict[tuple[str, str, str], float]:
    """The paper's Table 1 relative running time (percent of zero padding) by (arch, padding, iterations)."""
    path = (paper_dir or DEFAULT_PAPER_DIR) / TIMING_CSV
    if not path.is_file():
        return {}
    return {(r["arch"], r["padding"], r["iterations"]): float(r["relative_percent"]) for r in read_rows(path)}

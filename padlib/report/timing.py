"""Table 1 of the paper from scripts/bench_padding.py's CSV: train-step time of each padding mode
relative to zero padding, on the first step and in the steady state, beside the paper's numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from padlib.errors import PadlibError
from padlib.report.collect import group_order
from padlib.report.paper import paper_timing, read_rows
from padlib.report.writers import Column, Table, value_with_ci, write_all

SETUP = ("device", "size", "batch", "amp", "channels_last", "compile")
OPTIONAL_SETUP = ("setting", "threads", "clock")  # written by later versions of the benchmark
REQUIRED = ("arch", "mode", *SETUP, "first_step_s", "median_step_s", "first_ratio", "median_ratio")


def _optional_percent(row: dict[str, str], key: str, path: Path, line: int) -> float | None:
    """``row[key]`` as a percent, None where the CSV has no such column or cell (an older benchmark)."""
    return None if row.get(key) in (None, "") else 100 * _float(row, key, path, line)


def _float(row: dict[str, str], key: str, path: Path, line: int) -> float:
    try:
        return float(row[key])
    except (TypeError, ValueError):
        raise PadlibError(f"{path}:{line}: {key}={row.get(key)!r} is not a number") from None


def timing_table(path: Path, paper_dir: Path | None = None) -> Table:
    """One row per (setup, arch, mode): step times, percent of zero padding, and the paper's percent."""
    rows_in = read_rows(path)
    missing = [c for c in REQUIRED if c not in rows_in[0]]
    if missing:
        raise PadlibError(f"{path}: not a bench_padding.py CSV; missing columns {', '.join(missing)}")
    paper = paper_timing(paper_dir)
    setup = [*SETUP, *(k for k in OPTIONAL_SETUP if k in rows_in[0])]
    rows: list[dict[str, Any]] = []
    for line, r in enumerate(rows_in, 2):
        first, median = _float(r, "first_ratio", path, line), _float(r, "median_ratio", path, line)
        rows.append({
            **{k: r[k] for k in ("arch", "mode", *setup)},
            "first_step_s": _float(r, "first_step_s", path, line),
            "median_step_s": _float(r, "median_step_s", path, line),
            "first_percent": 100 * first,
            "median_percent": 100 * median,
            "ci_low_percent": _optional_percent(r, "median_ratio_ci_low", path, line),
            "ci_high_percent": _optional_percent(r, "median_ratio_ci_high", path, line),
            # the paper times zero padding once ("all" iterations) and partial on its first and later ones
            "paper_first_percent": paper.get((r["arch"], r["mode"], "first" if r["mode"] != "zero" else "all")),
            "paper_later_percent": paper.get((r["arch"], r["mode"], "second_to_nth" if r["mode"] != "zero" else "all")),
        })
    rows.sort(key=lambda r: (tuple(str(r[k]) for k in setup), group_order((r["arch"], r["mode"]))))
    columns = [Column("arch", "text"), Column("mode", "text"), *(Column(k, "text") for k in setup),
               Column("first_step_s"), Column("median_step_s"), Column("first_percent"), Column("median_percent"),
               Column("ci_low_percent"), Column("ci_high_percent"),
               Column("paper_first_percent"), Column("paper_later_percent")]
    display = [Column("arch", "text"), Column("mode", "text"),
               Column("setup", "text", render=lambda r: _setup(r)),
               Column("first_step_s", header="first step (s)", render=lambda r: f"{r['first_step_s']:.4f}"),
               Column("median_step_s", header="median step (s)", render=lambda r: f"{r['median_step_s']:.4f}"),
               Column("first_percent", header="first % of zero", render=lambda r: f"{r['first_percent']:.2f}"),
               Column("median_percent", header="later % of zero [95% CI]", render=_later),
               Column("paper_first_percent", header="paper first %",
                      render=lambda r: _pct(r["paper_first_percent"])),
               Column("paper_later_percent", header="paper later %",
                      render=lambda r: _pct(r["paper_later_percent"]))]
    notes = ["first: the first train step of a fresh model (partial padding computes its mask ratios then), "
             "as scripts/bench_padding.py measured it; later: the following steps, the median over rounds of the "
             "mode's step over zero padding's in the same round, with a distribution-free 95% CI of that median. "
             "Percent of zero padding's time in the same setup.",
             "paper: Table 1 (ImageNet training, its hardware; zero padding timed over all iterations)."]
    where = sorted({(r.get("device_name") or "", r.get("torch") or "", r.get("onednn") or "") for r in rows_in})
    notes += [f"measured on {name}, torch {version}" + (f", oneDNN {onednn}" if onednn else "")
              for name, version, onednn in where if name]
    return Table("Train-step time relative to zero padding (paper Table 1)", columns, rows, notes, display)


def _setup(r: dict[str, Any]) -> str:
    flags = [f"amp {r['amp']}" if r["amp"] not in ("none", "") else "fp32"]
    flags += ["channels_last"] if r["channels_last"] == "True" else []
    flags += ["compile"] if r["compile"] == "True" else []
    flags += [f"{r['threads']} threads"] if r.get("threads") else []
    named = f"{r['setting']}: " if r.get("setting") else ""
    return f"{named}{r['device']} {r['size']}px b{r['batch']} {' '.join(flags)}"


def _later(r: dict[str, Any]) -> str:
    # zero padding against itself: 100 by definition, no interval to show
    if r["mode"] == "zero":
        return f"{r['median_percent']:.2f}"
    return value_with_ci(r["median_percent"], r["ci_low_percent"], r["ci_high_percent"], decimals=2)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def write_timing(path: Path, out_dir: Path, paper_dir: Path | None = None) -> list[Path]:
    """Write timing.csv, timing.md and timing.tex from the bench CSV at ``path``."""
    return write_all([timing_table(path, paper_dir)], out_dir, "timing", ["timing.csv"])

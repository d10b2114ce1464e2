"""Tables 2 and 3 from hand-made sweeps: every cell checked against independent computations."""

import csv
import statistics

import pytest
from report_fixtures import curve, make_run, welch_by_hand

from padlib.errors import PadlibError
from padlib.report.collect import load_sweep
from padlib.report.tables import best_table, last5_table, write_tables

ZERO = [80.0, 81.0, 82.5]
PARTIAL = [82.0, 83.0, 83.5]


@pytest.fixture
def sweep_dir(tmp_path):
    root = tmp_path / "sweep"
    # seeds out of order on disk: runs must come out sorted by seed
    for seed in (2, 0, 1):
        make_run(root, "resnet18", "zero", seed, curve(ZERO[seed]))
        make_run(root, "resnet18", "partial", seed, curve(PARTIAL[seed]))
    make_run(root, "resnet18", "reflect", 0, curve(79.0))
    make_run(root, "resnet34", "partial", 0, curve(72.0))  # no zero runs for this arch
    make_run(root, "resnet18", "replicate", 0, curve(90.0, 3), status="running")
    return root


def read_csv(path):
    with open(path) as f:
        return {(r["arch"], r["padding"]): r for r in csv.DictReader(f)}


def num(cell):
    return float(cell) if cell != "" else None


def test_best_table_every_cell(sweep_dir, tmp_path):
    sweep = load_sweep(sweep_dir)
    assert sweep.left_out == [("resnet18/replicate/seed0", "status running")]
    write_tables(sweep, tmp_path / "out")
    rows = read_csv(tmp_path / "out" / "best.csv")
    assert list(rows) == [("resnet18", "zero"), ("resnet18", "partial"), ("resnet18", "reflect"),
                          ("resnet34", "partial")]
    z, p = rows[("resnet18", "zero")], rows[("resnet18", "partial")]
    assert [num(z[f"run{i}"]) for i in (1, 2, 3)] == ZERO
    assert [num(p[f"run{i}"]) for i in (1, 2, 3)] == PARTIAL
    assert z["seeds"] == "0 1 2" and z["n_runs"] == "3"
    assert num(z["mean"]) == pytest.approx(statistics.mean(ZERO), abs=1e-6)
    assert num(z["std"]) == pytest.approx(statistics.stdev(ZERO), abs=1e-6)
    assert z["diff"] == z["diff_ci_low"] == z["diff_ci_high"] == z["p_value"] == ""
    d, lo, hi, pv = welch_by_hand(PARTIAL, ZERO)
    assert num(p["diff"]) == pytest.approx(d, abs=1e-6)
    assert num(p["diff_ci_low"]) == pytest.approx(lo, abs=1e-6)
    assert num(p["diff_ci_high"]) == pytest.approx(hi, abs=1e-6)
    assert num(p["p_value"]) == pytest.approx(pv, rel=1e-5)
    r = rows[("resnet18", "reflect")]
    assert r["n_runs"] == "1" and r["std"] == "" and r["run2"] == ""
    assert num(r["diff"]) == pytest.approx(79.0 - statistics.mean(ZERO), abs=1e-6)
    assert r["diff_ci_low"] == r["p_value"] == ""  # one run: no CI
    assert rows[("resnet34", "partial")]["diff"] == ""  # no zero runs of resnet34
    md = (tmp_path / "out" / "tables.md").read_text()
    assert "resnet18/replicate/seed0 (status running)" in md
    assert "no zero-padding runs for resnet34" in md
    assert "\\begin{tabular}" in (tmp_path / "out" / "tables.tex").read_text()


def test_last5_table_every_cell(sweep_dir):
    make_run(sweep_dir, "resnet34", "partial", 1, curve(74.0, 3))  # 3 epochs only
    table = last5_table(load_sweep(sweep_dir))
    rows = {(r["arch"], r["padding"]): r for r in table.rows}
    # curve(x) ends x-4, ..., x: the last five average to x - 2
    z, p = [v - 2 for v in ZERO], [v - 2 for v in PARTIAL]
    row = rows[("resnet18", "partial")]
    assert [row[f"run{i}"] for i in (1, 2, 3)] == pytest.approx(p)
    assert row["mean"] == pytest.approx(statistics.mean(p))
    assert row["std"] == pytest.approx(statistics.stdev(p))
    d, lo, hi, pv = welch_by_hand(p, z)
    assert (row["diff"], row["diff_ci_low"], row["diff_ci_high"], row["p_value"]) == pytest.approx((d, lo, hi, pv))
    short = rows[("resnet34", "partial")]
    assert short["run2"] == pytest.approx(73.0)  # 72, 73, 74 averaged
    assert short["epochs_averaged"] == 3
    assert any("fewer than 5 epochs" in n and "resnet34/partial/seed1 (3)" in n for n in table.notes)


def test_paper_columns(tmp_path):
    root = tmp_path / "s"
    make_run(root, "resnet50", "zero", 0, curve(76.0), dataset="imagenet")
    make_run(root, "resnet50", "partial", 0, curve(76.5), dataset="imagenet")
    make_run(root, "resnet18", "partial", 0, curve(70.0), dataset="imagenet")
    rows = {(r["arch"], r["padding"]): r for r in best_table(load_sweep(root)).rows}
    assert rows[("resnet50", "partial")]["paper_mean"] == 76.611
    assert rows[("resnet50", "partial")]["paper_diff"] == 0.478
    assert rows[("resnet50", "partial")]["paper_std"] == 0.058
    assert rows[("resnet50", "zero")]["paper_diff"] is None
    assert rows[("resnet18", "partial")]["paper_mean"] is None
    # a missing paper folder leaves the columns empty
    rows = best_table(load_sweep(root), paper_dir=tmp_path / "nowhere").rows
    assert all(r["paper_mean"] is None for r in rows)


def test_include_incomplete(sweep_dir):
    sweep = load_sweep(sweep_dir, include_incomplete=True)
    assert not sweep.left_out
    rows = {(r["arch"], r["padding"]): r for r in best_table(sweep).rows}
    assert rows[("resnet18", "replicate")]["mean"] == 90.0
    assert any("included unfinished" in n for n in best_table(sweep).notes)


def test_corrupt_metrics_line_is_skipped(sweep_dir, tmp_path):
    path = sweep_dir / "resnet18" / "zero" / "seed0" / "metrics.jsonl"
    lines = path.read_text().splitlines()
    lines[-1] = lines[-1][:20]  # the best epoch's line is cut short
    lines.insert(1, "{not json")
    path.write_text("\n".join(lines) + "\n")
    sweep = load_sweep(sweep_dir)
    assert any(f"{path}:2: corrupt line" in w for w in sweep.warnings)
    assert any(f"{path}:{len(lines)}: corrupt line" in w for w in sweep.warnings)
    rows = {(r["arch"], r["padding"]): r for r in best_table(sweep).rows}
    assert rows[("resnet18", "zero")]["run1"] == ZERO[0] - 1  # best of the epochs still readable
    write_tables(sweep, tmp_path / "out")
    assert f"{path}:2: corrupt line" in (tmp_path / "out" / "tables.md").read_text()


def test_mixed_datasets(tmp_path):
    make_run(tmp_path, "resnet18", "zero", 0, curve(80), dataset="synthetic")
    make_run(tmp_path, "resnet18", "zero", 1, curve(70), dataset="fashion_mnist")
    with pytest.raises(PadlibError, match="several datasets.*--dataset"):
        load_sweep(tmp_path)
    sweep = load_sweep(tmp_path, dataset="fashion_mnist")
    assert [r.seed for r in sweep.runs] == [1]
    with pytest.raises(PadlibError, match="no runs of dataset 'imagenet'"):
        load_sweep(tmp_path, dataset="imagenet")


def test_empty_and_foreign_dirs(tmp_path):
    with pytest.raises(PadlibError, match="no runs found"):
        load_sweep(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "run.json").write_text('{"name": "someone else\'s run"}')
    with pytest.raises(PadlibError, match="none of the 1 run.json"):
        load_sweep(tmp_path)
    make_run(tmp_path, "resnet18", "zero", 0, curve(80))
    sweep = load_sweep(tmp_path)
    assert len(sweep.runs) == 1 and any("other/run.json" in w for w in sweep.warnings)


def test_only_incomplete_runs_is_an_error(tmp_path):
    make_run(tmp_path, "resnet18", "zero", 0, curve(80), status="failed")
    with pytest.raises(PadlibError, match="no usable runs.*status failed.*--include-incomplete"):
        load_sweep(tmp_path)


def test_duplicate_seeds_warned(tmp_path):
    make_run(tmp_path, "resnet18", "zero", 0, curve(80), name="a")
    make_run(tmp_path, "resnet18", "zero", 0, curve(81), name="b")
    assert any("both resnet18/zero seed 0" in w for w in load_sweep(tmp_path).warnings)

"""The evaluate.py command line: each subcommand end to end, exit codes, one-line errors."""

import csv
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

import evaluate
from tests.report_fixtures import curve, make_run, welch_power_by_simulation

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "results" / "paper"


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweep"
    for seed, final in enumerate((80.0, 81.0, 82.5)):
        make_run(root, "resnet18", "zero", seed, curve(final))
        make_run(root, "resnet18", "partial", seed, curve(final + 1.5))
    make_run(root, "resnet18", "reflect", 0, curve(70.0, 2), status="failed", epochs=6)  # failed in epoch 3 of 6
    return root


def test_tables(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    assert evaluate.main(["tables", str(sweep), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "left out 1 run(s): resnet18/reflect/seed0 (status failed)" in printed
    for name in ("best.csv", "last5.csv", "tables.md", "tables.tex"):
        assert (out / name).stat().st_size > 100
    with open(out / "best.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["padding"], r["n_runs"]) for r in rows] == [("zero", "3"), ("partial", "3")]
    assert float(rows[1]["diff"]) == pytest.approx(1.5)
    assert evaluate.main(["tables", str(sweep), "--out", str(out), "--include-incomplete"]) == 0
    with open(out / "best.csv") as f:
        assert [r["padding"] for r in csv.DictReader(f)] == ["zero", "partial", "reflect"]


@pytest.mark.parametrize("make, message", [
    (lambda root: root.mkdir(), "no runs found"),
    (lambda root: (make_run(root, "resnet18", "zero", 0, curve(80), dataset="a"),
                   make_run(root, "resnet18", "zero", 1, curve(80), dataset="b")), "--dataset NAME"),
])
def test_errors_are_one_line(tmp_path, capsys, make, message):
    root = tmp_path / "s"
    make(root)
    assert evaluate.main(["tables", str(root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_no_traceback_from_the_script(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "evaluate.py"), "tables", str(tmp_path / "missing")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip() == f"error: {tmp_path / 'missing'}: no such directory"


@pytest.mark.parametrize("command", [None, "tables", "cross", "eval", "figures", "timing", "audit", "all", "plan"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        evaluate.main([command, "--help"] if command else ["--help"])  # the top level lists every help line
    assert exc.value.code == 0 and "usage: evaluate.py" in capsys.readouterr().out


def test_audit_paper_tables(capsys, tmp_path):
    tables = [str(p) for p in sorted(PAPER.glob("table*.csv"))]
    assert evaluate.main(["audit", *tables, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "resnet50/zero stdev: printed 0.086, recomputed 0.105170" in out
    assert "table4_cross_testing.csv: 6 summary cells checked, 1 disagree" in out
    with open(tmp_path / "audit.csv") as f:
        assert len(list(csv.DictReader(f))) == 14 + 14 + 1
    assert evaluate.main(["audit", str(PAPER / "table2_best_top1.csv"), "--strict"]) == 1
    assert evaluate.main(["audit", str(PAPER / "table1_running_time.csv"), "--strict"]) == 0


def test_audit_of_our_own_table(sweep, tmp_path, capsys):
    """Our best.csv follows the standard conventions: the audit finds nothing in it."""
    evaluate.main(["tables", str(sweep), "--out", str(tmp_path)])
    capsys.readouterr()
    assert evaluate.main(["audit", str(tmp_path / "best.csv"), "--strict"]) == 0
    assert "0 disagree" in capsys.readouterr().out


def test_timing(tmp_path, capsys):
    bench = tmp_path / "bench.csv"
    bench.write_text(
        "arch,mode,device,size,batch,amp,channels_last,compile,steps,first_step_s,median_step_s,first_ratio,median_ratio\n"
        "resnet50,zero,cpu,64,2,none,False,False,5,0.2,0.1,1.0,1.0\n"
        "resnet50,partial,cpu,64,2,none,False,False,5,0.3,0.105,1.5,1.05\n"
    )
    assert evaluate.main(["timing", str(bench), "--out", str(tmp_path / "t")]) == 0
    with open(tmp_path / "t" / "timing.csv") as f:
        rows = {r["mode"]: r for r in csv.DictReader(f)}
    assert float(rows["partial"]["first_percent"]) == pytest.approx(150.0)
    assert float(rows["partial"]["median_percent"]) == pytest.approx(105.0)
    assert rows["partial"]["paper_first_percent"] == "129.71" and rows["partial"]["paper_later_percent"] == "103.39"
    assert rows["zero"]["paper_first_percent"] == "100"
    assert "| resnet50 | partial |" in (tmp_path / "t" / "timing.md").read_text()
    # the benchmark's paired-ratio CI, where the CSV has it, is shown beside the median
    with bench.open("a") as f:
        f.write("resnet50,reflect,cpu,64,2,none,False,False,5,0.2,0.11,1.0,1.08\n")
    lines = bench.read_text().splitlines()
    lines[0] += ",median_ratio_ci_low,median_ratio_ci_high"
    lines[1:] = [lines[1] + ",1.0,1.0", lines[2] + ",1.01,1.07", lines[3] + ",nan,nan"]
    bench.write_text("\n".join(lines) + "\n")
    assert evaluate.main(["timing", str(bench), "--out", str(tmp_path / "t")]) == 0
    md = (tmp_path / "t" / "timing.md").read_text()
    assert "| 105.00 [101.0, 107.0] |" in md and "| 108.00 |" in md and "[100.0, 100.0]" not in md
    bench.write_text("a,b\n1,2\n")
    assert evaluate.main(["timing", str(bench), "--out", str(tmp_path / "t")]) == 2
    assert "not a bench_padding.py CSV" in capsys.readouterr().err


def test_all_reports_what_it_can(sweep, tmp_path, capsys):
    """No checkpoints in this sweep: cross-testing fails, tables, timing and figures are still written; exit 1."""
    out = tmp_path / "all"
    code = evaluate.main(["all", str(sweep), "--out", str(out), "--no-activations", "--workers", "0"])
    captured = capsys.readouterr()
    assert code == 1
    assert "error: cross: no weights could be evaluated" in captured.err
    assert "failed: cross; written: tables, timing, figures" in captured.err
    assert {"best.csv", "last5.csv", "run_timing.csv", "convergence.png", "best_top1_bars.png"} <= {
        p.name for p in out.iterdir()}


def test_tables_name_runs_with_other_settings(sweep, tmp_path, capsys):
    make_run(sweep, "resnet18", "zero", 0, curve(60.0, 3), name="short/zero/seed0")
    assert evaluate.main(["tables", str(sweep), "--out", str(tmp_path)]) == 0
    assert "resnet18 runs differ in trainer.epochs, which change results: not pooled" in capsys.readouterr().out
    with open(tmp_path / "best.csv") as f:
        assert [(r["arch"], r["n_runs"]) for r in csv.DictReader(f)] == [
            ("resnet18 [epochs=3]", "1"), ("resnet18 [epochs=6]", "3"),
            ("resnet18 [epochs=6]", "3")]


def test_cross_evaluates_at_the_runs_precision(tmp_path, capsys):
    """Issue 9 C: by default each run is evaluated at its training precision; an fp16 run on a CPU falls
    back to fp32 with one warning line naming it, and cross.md says at what precision it ran."""
    from tests.report_fixtures import TINY_ARCH, make_model_run

    root, data, out = tmp_path / "s", tmp_path / "d", tmp_path / "o"
    make_model_run(root, data, "zero", 0, info={"precision": "fp16"})
    make_model_run(root, data, "zero", 1, info={"precision": "fp32"})
    assert evaluate.build_parser().parse_args(["cross", str(root)]).amp == "run"
    args = ["cross", str(root), "--out", str(out), "--device", "cpu", "--workers", "0", "--paddings", "zero"]
    assert evaluate.main(args) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: evaluated in fp32, not at the training precision (fp16 autocast needs CUDA; "
                        f"this is cpu): {TINY_ARCH}/zero/seed0 (fp16)"]
    assert "precision of cross-testing: fp32 for all 2 weights (each run's training precision" in \
        (out / "cross.md").read_text()
    assert evaluate.main([*args, "--amp", "none"]) == 0
    assert "warning:" not in capsys.readouterr().err
    assert "(--amp none;" in (out / "cross.md").read_text()


Z = 1.959964 + 0.841621  # z(0.975) + z(0.8)


def test_plan_for_the_papers_rows(tmp_path, capsys):
    """Default plan: every non-zero row of the paper's Tables 2 and 3; resnet50 partial (Table 2, +0.478)
    checked against the per-run cells and simulated Welch t-tests."""
    assert evaluate.main(["plan", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "| Table 2 | resnet50 | partial | +0.478 | 0.071 | 0.105 | 5 | >0.999 |" in printed
    assert "missed more than 20% of the time" in printed
    with open(tmp_path / "plan.csv") as f:
        rows = {(r["table"], r["arch"], r["padding"]): r for r in csv.DictReader(f)}
    assert len(rows) == 2 * 5 * 3  # 2 tables x 5 archs x 3 paddings other than zero
    with open(PAPER / "table2_best_top1.csv") as f:
        runs = {(r["arch"], r["padding"]): [float(r[f"run{i}"]) for i in range(1, 6)] for r in csv.DictReader(f)}
    row = rows[("Table 2", "resnet50", "partial")]
    s, s0 = statistics.stdev(runs[("resnet50", "partial")]), statistics.stdev(runs[("resnet50", "zero")])
    assert float(row["std"]) == pytest.approx(s, abs=1e-6) and float(row["zero_std"]) == pytest.approx(s0, abs=1e-6)
    assert float(row["diff"]) == 0.478 and row["paper_n"] == row["zero_n"] == "5"
    assert float(row["paper_power"]) == pytest.approx(welch_power_by_simulation(0.478, s, 5, s0, 5), abs=0.015)
    assert welch_power_by_simulation(float(row["paper_mde80"]), s, 5, s0, 5) == pytest.approx(0.8, abs=0.015)
    assert row["seeds_needed"] == "3"
    assert welch_power_by_simulation(0.478, s, 2, s0, 2) < 0.8 < welch_power_by_simulation(0.478, s, 3, s0, 3)
    assert rows[("Table 2", "resnet101", "reflect")]["seeds_needed"] == ""  # +0.02: more than 1000 seeds
    assert {"plan.csv", "plan.md", "plan.tex"} <= {p.name for p in tmp_path.iterdir()}


def test_plan_grid(tmp_path, capsys):
    args = ["plan", "--effect", "0.5", "2", "--std", "1.0", "--effect", "0.3", "--seeds", "3", "--out", str(tmp_path)]
    assert evaluate.main(args) == 0
    assert "| effect | std | seeds needed per mode (80%) | power with 3 seeds | MDE (80%) with 3 seeds |" in \
        capsys.readouterr().out
    with open(tmp_path / "plan.csv") as f:
        rows = {(float(r["effect"]), float(r["std"])): r for r in csv.DictReader(f)}
    assert list(rows) == [(0.5, 1.0), (2.0, 1.0), (0.3, 1.0)]
    for (d, s), row in rows.items():
        textbook = 2 * (Z * s / d) ** 2  # the normal approximation, a little under the t-test's need
        assert math.ceil(textbook) <= int(row["seeds_needed"]) <= math.ceil(textbook) + 3
        assert float(row["power_at_seeds"]) == pytest.approx(welch_power_by_simulation(d, s, 3, s, 3), abs=0.015)
    mde3 = float(rows[(0.5, 1.0)]["mde80_at_seeds"])
    assert mde3 > 3.0  # 3 seeds, std 1 point: only differences over 3 points are found 80% of the time
    assert welch_power_by_simulation(mde3, 1.0, 3, 1.0, 3) == pytest.approx(0.8, abs=0.015)


@pytest.mark.parametrize("args, message", [
    (["--effect", "0.5", "--std", "-1"], "--std -1: must be a number > 0"),
    (["--effect", "0.5"], "give both --effect D and --std S"),
    (["--std", "1"], "give both --effect D and --std S"),
    (["--effect", "0", "--std", "1"], "--effect 0: must be a non-zero number"),
    (["--effect", "nan", "--std", "1"], "--effect nan: must be a non-zero number"),
    (["--effect", "x", "--std", "1"], "--effect x: not a number"),
    (["--effect", "1", "--std", "1", "--seeds", "1"], "--seeds 1: needs at least 2 runs per mode"),
])
def test_plan_bad_input_is_one_line(args, message, capsys):
    assert evaluate.main(["plan", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and message in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""


def test_plan_script_end_to_end(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "evaluate.py"), "plan", "--std", "-1", "--effect", "0.5"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.strip() == "error: --std -1: must be a number > 0"
    res = subprocess.run([sys.executable, str(REPO / "evaluate.py"), "plan", "--effect", "0.5", "--std", "1"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "| 0.500 | 1.000 | 64 |" in res.stdout

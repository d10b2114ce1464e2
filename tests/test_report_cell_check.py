"""The table audit: the paper's known inconsistencies are found, consistent cells are not flagged."""

from pathlib import Path

import pytest

from padlib.errors import PadlibError
from padlib.report.cell_check import audit_table, parse_printed

PAPER = Path(__file__).resolve().parents[1] / "results" / "paper"
N_PLUS_1 = "sqrt(sum of squares/(n+1))"


def found(audit):
    return {(f.row, f.column): f for f in audit.findings}


def test_printed_precision():
    p = parse_printed("76.24")
    assert p.decimals == 2 and p.rounds_from(76.2449) and not p.rounds_from(76.2451)
    assert parse_printed("76.174").truncates_from(76.1748)
    assert parse_printed("") is None and parse_printed("n/a") is None


def test_table2_findings():
    audit = audit_table(PAPER / "table2_best_top1.csv")
    f = found(audit)
    assert audit.checked == 20 + 20 + 15
    # zero and partial rows: every printed stdev is sqrt(SS/(n+1)), not the sample std
    for arch in ("vgg16_bn", "vgg19_bn", "resnet50", "resnet101", "resnet152"):
        for padding in ("zero", "partial"):
            cell = f[(f"{arch}/{padding}", "stdev")]
            assert cell.matches[0].startswith(N_PLUS_1)
    assert f[("resnet50/zero", "stdev")].recomputed == pytest.approx(0.10517, abs=1e-5)
    assert f[("resnet50/reflect", "average")].matches == ("mean of the runs, truncated instead of rounded",)
    for row in ("vgg16_bn/reflect", "resnet50/replicate", "resnet101/replicate"):
        assert "difference of the printed (rounded) averages" in f[(row, "diff")].matches
    assert len(f) == 14
    # consistent cells are not flagged
    assert ("resnet50/partial", "average") not in f and ("resnet50/partial", "diff") not in f
    assert ("vgg16_bn/reflect", "stdev") not in f


def test_table3_findings():
    f = found(audit_table(PAPER / "table3_last5_avg_top1.csv"))
    assert f[("vgg19_bn/reflect", "diff")].matches == ()  # -0.415 printed, -0.466 from the runs
    assert f[("vgg19_bn/reflect", "diff")].recomputed == pytest.approx(-0.4658, abs=1e-4)
    assert "truncated" in f[("resnet50/partial", "diff")].matches[0]
    assert f[("vgg16_bn/reflect", "stdev")].matches == ("sample std (n-1), truncated instead of rounded",)
    assert f[("resnet50/zero", "stdev")].matches[0].startswith(N_PLUS_1)
    assert len(f) == 14


def test_table4_and_table1():
    a4 = audit_table(PAPER / "table4_cross_testing.csv")
    f = found(a4)
    assert list(f) == [("resnet50/zero/partial", "diff")]  # diff vs (zero, zero), from the printed averages
    assert "difference of the printed (rounded) averages" in f[("resnet50/zero/partial", "diff")].matches
    assert any("run1, run5 print the same value 62.364" in n for n in a4.notes)
    a1 = audit_table(PAPER / "table1_running_time.csv")
    assert a1.checked == 6 and not a1.findings


def test_deliberate_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "arch,padding,run1,run2,run3,average,diff,stdev\n"
        "a,zero,1.00,2.00,3.00,2.00,,1.00\n"
        "a,partial,2.00,3.00,4.00,3.10,1.00,0.82\n"  # average wrong; stdev is the population std
        "b,zero,1.0,1.0,1.0,1.0,,0.0\n"
    )
    f = found(audit_table(path))
    assert set(f) == {("a/partial", "average"), ("a/partial", "stdev")}
    assert f[("a/partial", "average")].recomputed == pytest.approx(3.0) and f[("a/partial", "average")].matches == ()
    assert f[("a/partial", "stdev")].matches[0] == "population std (n)"


def test_not_a_table(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(PadlibError, match="nothing to audit"):
        audit_table(path)
    with pytest.raises(PadlibError, match="no such file"):
        audit_table(tmp_path / "missing.csv")

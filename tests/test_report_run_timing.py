"""Table 1 from a sweep's own logs (``evaluate.py timing SWEEP_DIR``): per-run medians, the ratio to zero
padding and its CI, by hand."""

import csv
import json
import statistics

import pytest
from scipy import stats as sps

import evaluate
from tests.report_fixtures import curve, make_run

# per seed: images/s of each epoch, and epoch seconds
LOGS = {
    "zero": {1: ([600, 650, 640], [10.0, 10.5, 10.2]), 2: ([610, 630, 620], [10.4, 10.1, 10.3]),
             3: ([590, 640, 600], [10.6, 10.2, 10.5])},
    "reflect": {1: ([560, 600, 590], [11.0, 11.4, 11.1]), 2: ([570, 580, 600], [11.2, 11.0, 11.3]),
                3: ([550, 610, 590], [11.5, 11.1, 11.2])},
}


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweep"
    for padding, seeds in LOGS.items():
        for seed, (ips, secs) in seeds.items():
            run = make_run(root, "resnet18", padding, seed, curve(70.0, 3), info={"device": "cpu: x86_64 x2 threads"})
            rows = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
            run.metrics_path.write_text("".join(
                json.dumps({**r, "images_per_s": i, "epoch_time_s": s}) + "\n"
                for r, i, s in zip(rows, ips, secs, strict=True)))
    return root


def test_run_timing_by_hand(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    assert evaluate.main(["timing", str(sweep), "--out", str(out)]) == 0
    with open(out / "run_timing.csv") as f:
        rows = {(r["padding"], r["measure"]): r for r in csv.DictReader(f)}
    for field, measure in ((1, "epoch s"), (0, "train images/s")):
        per_run = {p: [statistics.median(LOGS[p][s][field]) for s in (1, 2, 3)] for p in LOGS}
        row = rows[("reflect", measure)]
        assert [float(row[f"run{i}"]) for i in (1, 2, 3)] == per_run["reflect"]
        zero_mean = statistics.mean(per_run["zero"])
        diff = statistics.mean(per_run["reflect"]) - zero_mean
        assert float(row["percent_of_zero"]) == pytest.approx(100 + 100 * diff / zero_mean, abs=1e-4)
        ci = sps.ttest_ind(per_run["reflect"], per_run["zero"], equal_var=False).confidence_interval()
        assert float(row["percent_ci_low"]) == pytest.approx(100 + 100 * ci.low / zero_mean, abs=1e-4)
        assert float(row["percent_ci_high"]) == pytest.approx(100 + 100 * ci.high / zero_mean, abs=1e-4)
        assert float(rows[("zero", measure)]["percent_of_zero"]) == 100
    md = (out / "run_timing.md").read_text()
    assert "| resnet18 | reflect | epoch s |" in md and "different devices" not in md


def test_runs_on_different_devices_are_named(sweep, tmp_path, capsys):
    make_run(sweep, "resnet18", "zero", 4, curve(70.0, 3), info={"device": "cpu: aarch64 x64 threads"})
    assert evaluate.main(["timing", str(sweep), "--out", str(tmp_path)]) == 0
    assert "warning: resnet18 runs ran on different devices" in (tmp_path / "run_timing.md").read_text()

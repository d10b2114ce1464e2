"""scripts/gpu_check.py at toy sizes on the CPU: every part writes its file, and a failing check fails the run."""

from __future__ import annotations

import csv
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from padlib.padding import PADDING_MODES

REPO = Path(__file__).resolve().parent.parent

# Columns each part's CSV must have besides status, settings and the device/torch columns.
PART_COLUMNS = {
    "correctness": {"check", "error", "tolerance", "detail"},
    "table1": {"arch", "mode", "compile", "first_step_s", "median_step_s", "first_ratio", "median_ratio",
               "first_target", "median_target"},
    "throughput": {"check", "images_per_s", "step_ms", "ratio", "target"},
    "pipeline": {"check", "images_per_s", "gpu_images_per_s", "workers", "jpeg_kb"},
    "train_run": {"check", "detail"},
    "cuda_paths": {"check", "images_per_s", "ratio", "detail"},
}


@pytest.fixture(scope="module")
def gpu_check():
    """The script as a module (it imports scripts/bench_padding.py as its neighbour, so scripts/ is on the
    import path while this module's tests run, as it is when the script runs)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(REPO / "scripts")
        yield importlib.import_module("gpu_check")


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open() as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.mark.slow
def test_quick_cpu_run_writes_every_part(tmp_path):
    out = tmp_path / "bench"
    res = subprocess.run([sys.executable, "scripts/gpu_check.py", "--device", "cpu", "--quick", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=420,
                         env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for name, columns in PART_COLUMNS.items():
        header, rows = read_rows(out / f"gpu_check_{name}.csv")
        assert columns | {"status", "settings", "device_name", "torch", "cuda"} <= set(header), name
        assert rows, name
        for row in rows:
            assert row["device_name"].startswith("cpu"), (name, row)
            assert row["torch"] == torch.__version__
            assert row["settings"], (name, row)
            assert row["status"] not in ("FAIL", "error"), (name, row)
        assert f"== part {list(PART_COLUMNS).index(name) + 1} {name}" in res.stdout

    _, correctness = read_rows(out / "gpu_check_correctness.csv")
    statuses = {row["check"]: row["status"] for row in correctness}
    assert sum(check.startswith("PartialConv2d") for check in statuses) == 15
    skipped = {check for check, status in statuses.items() if status != "pass"}
    assert skipped == {"fp16 autocast train steps, resnet18 partial: loss and weights finite"}
    assert statuses[next(c for c in statuses if c.startswith("fp16"))] == "skipped: needs CUDA"
    for row in correctness:
        if row["error"]:
            assert float(row["error"]) <= float(row["tolerance"]), row

    _, table1 = read_rows(out / "gpu_check_table1.csv")
    eager = [r for r in table1 if r["compile"] == "False"]
    assert {r["mode"] for r in eager} == set(PADDING_MODES)  # every registered mode of padlib
    assert all(float(r["median_ratio"]) > 0 for r in eager)
    _, pipeline = read_rows(out / "gpu_check_pipeline.csv")
    # part 4 compares with what part 3's training step consumed
    assert float(pipeline[0]["gpu_images_per_s"]) > 0 and pipeline[0]["status"] in ("met", "missed")
    _, train_run = read_rows(out / "gpu_check_train_run.csv")
    assert [r["status"] for r in train_run] == ["pass", "info", "pass", "pass", "pass", "pass"]
    assert "recompiles" in train_run[1]["detail"]
    _, paths = read_rows(out / "gpu_check_cuda_paths.csv")
    checks = {r["check"]: r for r in paths}
    # on a CPU torchvision's own pooling is deterministic too: every step passes and repeats bit for bit
    assert sum(c.startswith("deterministic step") for c in checks) == 8
    assert all(r["status"] == "pass" for c, r in checks.items() if c.startswith("deterministic step"))
    flags = [r for c, r in checks.items() if c.startswith("DDP loop")]
    assert len(flags) == 3 and all(float(r["ratio"]) > 0 for r in flags)
    evaluation = next(r for c, r in checks.items() if c.startswith("evaluate.py"))
    assert float(evaluation["images_per_s"]) > 0 and float(evaluation["ratio"]) > 0

    summary = (out / "gpu_check.md").read_text()
    assert "All checks passed" in summary and "cpu:" in summary and "quick" in summary


def test_wrong_reference_fails_the_conv_check(gpu_check, tmp_path):
    ctx = gpu_check.Context(gpu_check.parse_args(["--device", "cpu", "--quick", "--out", str(tmp_path)]),
                            torch.device("cpu"), gpu_check.QUICK, tmp_path, gpu_check.environment(torch.device("cpu")))
    right = gpu_check.check_partial_conv(ctx, "fp32", torch.contiguous_format, None, gpu_check.FP32_TOL)
    assert [r["status"] for r in right] == ["pass"] * len(gpu_check.CONV_CASES)

    def off_by_a_bit(*args):
        # the formula off by 0.1%: more than fp32 rounding, so the layer must not match it
        return gpu_check.reference_partial_conv(*args) * 1.001

    wrong = gpu_check.check_partial_conv(ctx, "fp32", torch.contiguous_format, None, gpu_check.FP32_TOL,
                                         reference=off_by_a_bit)
    assert [r["status"] for r in wrong] == ["FAIL"] * len(gpu_check.CONV_CASES)


def test_a_failed_check_or_crashed_part_makes_the_exit_status_nonzero(gpu_check, tmp_path, monkeypatch):
    def part(name, run):
        return gpu_check.Part(name, name, run, ["check", "status", "detail", *gpu_check.ENV],
                              ["check", "status", "detail"], [])

    def crash(ctx):
        raise RuntimeError("boom")

    passing = part("passing", lambda ctx: [{"check": "fine", "status": "pass"}])
    monkeypatch.setattr(gpu_check, "PARTS", {1: passing})
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(tmp_path / "ok")]) == 0

    monkeypatch.setattr(gpu_check, "PARTS", {
        1: part("failing", lambda ctx: [{"check": "wrong", "status": "FAIL"}]),
        2: part("crashing", crash),
        3: passing,
    })
    out = tmp_path / "bad"
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(out)]) == 1
    # each part still wrote its file, the crash as an error row naming it
    assert read_rows(out / "gpu_check_failing.csv")[1][0]["status"] == "FAIL"
    crashed = read_rows(out / "gpu_check_crashing.csv")[1][0]
    assert (crashed["status"], crashed["detail"]) == ("error", "RuntimeError: boom")
    assert read_rows(out / "gpu_check_passing.csv")[1][0]["status"] == "pass"
    assert "2 checks FAILED" in (out / "gpu_check.md").read_text()
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(out), "--parts", "3"]) == 0


def test_bench_ratio_is_paired_by_round(gpu_check):
    """The steady ratio is the median over rounds of mode/zero in the same round, not a ratio of medians: a
    slow round hits both, so it cancels (here the ratio of medians would say 1.47, five of six rounds say 1.1)."""
    bench = gpu_check.bench_padding
    args = bench.parse_args(["--archs", "resnet18", "--modes", "reflect", "--steps", "6"])
    zero = [1.0, 2.0, 1.0, 2.0, 2.0, 1.0]
    reflect = [1.1 * z for z in zero]
    reflect[2] = 3.0  # one outlier round
    rows = {r["mode"]: r for r in bench.summarise("resnet18", {"zero": [1.0], "reflect": [1.2]},
                                                  {"zero": zero, "reflect": reflect}, args)}
    assert rows["reflect"]["median_ratio"] == pytest.approx(1.1)
    assert rows["reflect"]["median_ratio_ci_low"] == pytest.approx(1.1)
    assert rows["reflect"]["median_ratio_ci_high"] == pytest.approx(3.0)  # n=6: the CI is min to max
    assert rows["zero"]["median_ratio"] == 1.0 and rows["reflect"]["first_ratio"] == pytest.approx(1.2)

"""Sweeps over any setting: every point of a multirun trains into its own run directory, named by what it
is, so a sweep over lr, a mode's parameter or a user mode's parameter runs to its end; launching it again
trains nothing, and an interrupted point resumes where it was."""

import re
import signal
import sys
from pathlib import Path

import pytest

from padlib.rundir import RunDir, find_runs
from tests.report_fixtures import markdown_tables
from tests.train_helpers import REPO, metrics_without_timing, run, sweep_cmd

pytestmark = pytest.mark.slow

LR_SWEEP = ("trainer.optim.lr=0.05,0.02", "trainer.progress=false")


def by_setting(sweep: Path) -> dict[str, RunDir]:
    """The runs of a sweep by their path below it."""
    return {r.path.relative_to(sweep).as_posix(): r for r in find_runs(sweep)}


@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory, data_root):
    sweep = tmp_path_factory.mktemp("lr") / "sweep"
    res = run(sweep_cmd(sweep, data_root, *LR_SWEEP), timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return sweep


def test_lr_sweep_trains_every_point_into_its_own_directory(lr_sweep):
    runs = by_setting(lr_sweep)
    assert len(runs) == 2, list(runs)
    for lr in (0.05, 0.02):
        [name] = [n for n in runs if f"trainer.optim.lr={lr}/" in n]
        assert name.startswith("resnet18/zero/") and name.endswith("/seed0")
        info = runs[name].read_info()
        assert info["status"] == "completed" and info["config"]["trainer"]["optim"]["lr"] == lr
        assert [r["epoch"] for r in runs[name].read_metrics()] == [1, 2]


def test_the_same_sweep_again_trains_nothing(lr_sweep, data_root):
    stamps = {n: r.last_checkpoint.stat().st_mtime_ns for n, r in by_setting(lr_sweep).items()}
    res = run(sweep_cmd(lr_sweep, data_root, *LR_SWEEP), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (res.stdout + res.stderr).count("run already completed") == 2
    assert {n: r.last_checkpoint.stat().st_mtime_ns for n, r in by_setting(lr_sweep).items()} == stamps


def test_interrupted_point_resumes_in_its_own_directory(lr_sweep, data_root, tmp_path):
    sweep = tmp_path / "sweep"
    # killed at step 2 of epoch 2 of the first point: the sweep stops there
    killed = run(sweep_cmd(sweep, data_root, *LR_SWEEP), timeout=300, extra_env={"PADLIB_FAULT": "SIGKILL@2:2"})
    assert killed.returncode == -signal.SIGKILL
    [name] = by_setting(sweep)
    assert by_setting(sweep)[name].read_info()["status"] == "running"
    res = run(sweep_cmd(sweep, data_root, *LR_SWEEP), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "from the end of epoch 1" in res.stdout + res.stderr
    runs, reference = by_setting(sweep), by_setting(lr_sweep)
    assert sorted(runs) == sorted(reference)
    for n in runs:
        assert metrics_without_timing(runs[n].path) == metrics_without_timing(reference[n].path), n
    assert runs[name].read_info()["resumes"] == 1


def test_padding_variant_sweep(tmp_path, data_root):
    sweep = tmp_path / "sweep"
    res = run(sweep_cmd(sweep, data_root, "padding=distribution", "padding.variant=mean_interp,mean_reflect",
                        "trainer.epochs=1"), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    labels = {n.split("/")[1]: r.read_info()["padding"] for n, r in by_setting(sweep).items()}
    assert labels == {"distribution": "distribution",
                      "distribution-variant=mean_reflect": "distribution(variant=mean_reflect)"}


def test_user_mode_parameter_sweep(tmp_path, data_root):
    sweep = tmp_path / "sweep"
    res = run(sweep_cmd(sweep, data_root, "padding=custom", "padding._target_=mypads.MeanPad",
                        "+padding.detach=false,true", "trainer.epochs=1"), timeout=300,
              extra_env={"PYTHONPATH": str(REPO / "examples" / "user_padding")})
    assert res.returncode == 0, res.stderr[-3000:]
    labels = {n.split("/")[1]: r.read_info()["padding"] for n, r in by_setting(sweep).items()}
    assert labels == {"mean": "mean", "mean-detach=True": "mean(detach=True)"}


def test_tables_show_one_row_per_setting(lr_sweep, tmp_path):
    res = run([sys.executable, "evaluate.py", "tables", str(lr_sweep), "--out", str(tmp_path)])
    assert res.returncode == 0, res.stderr
    md = (tmp_path / "tables.md").read_text()
    assert "| resnet18 [lr=0.02] | zero |" in md and "| resnet18 [lr=0.05] | zero |" in md
    assert "runs differ in trainer.optim.lr" in res.stdout


def test_every_markdown_table_the_evaluator_writes_is_well_formed(lr_sweep, tmp_path):
    """Every report over a sweep with one run per group: header, delimiter and rows of one width."""
    out = tmp_path / "out"
    for args in (["all", str(lr_sweep)],
                 ["tables", str(lr_sweep), "--from-checkpoints"],
                 ["resolution", str(lr_sweep), "--sizes", "24,32"]):
        res = run([sys.executable, "evaluate.py", *args, "--out", str(out)], timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
    files = sorted(out.glob("*.md"))
    assert {"tables.md", "cross.md", "tables_from_checkpoints.md", "resolution.md"} <= {f.name for f in files}
    for f in files:
        for table in markdown_tables(f.read_text()):
            widths = {len(row) for row in table}
            assert len(widths) == 1, f"{f.name}: rows of {sorted(widths)} cells: {table[:2]}"
            assert all(re.fullmatch(r":?-+:?", c) for c in table[1]), f"{f.name}: no delimiter row: {table[1]}"


def test_listing_shows_where_each_point_goes(lr_sweep, data_root):
    cmd = sweep_cmd(lr_sweep, data_root, *LR_SWEEP)
    res = run([sys.executable, "scripts/list_sweep.py", *cmd[2:]])
    assert res.returncode == 0, res.stderr
    listed = re.findall(r"->  (\S+)  \(completed: skipped\)", res.stdout)
    assert sorted(listed) == sorted(str(r.path) for r in find_runs(lr_sweep))
    assert "trainer.optim.lr=0.05  ->" in res.stdout and "2 jobs" in res.stdout


def test_listing_refuses_a_layout_that_puts_two_points_in_one_directory():
    res = run([sys.executable, "scripts/list_sweep.py", "trainer.optim.lr=0.1,0.02", "hydra.sweep.subdir=same"])
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: 1 job(s) share a run directory with another: set hydra.sweep.subdir so that it names every "
        "swept setting"]

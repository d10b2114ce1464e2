"""Run train.py as a user would (a subprocess), on small generated data."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from padlib.rundir import RunDir

REPO = Path(__file__).resolve().parent.parent


def train_cmd(run_dir: Path, data_root: Path, *overrides: str, folder: bool = False) -> list[str]:
    """A small training command writing to ``run_dir``: generated data under ``data_root``, or with
    ``folder`` an existing ImageFolder tree there."""
    if folder:
        data = ["data=folder", f"data.root={data_root}", "data.image_size=32", "data.resize_size=36"]
    else:
        data = [
            "data=synthetic",
            f"data.root={data_root}",
            "data.synthetic.train_per_class=48",
            "data.synthetic.val_per_class=15",
            "data.synthetic.num_classes=3",
        ]
    return [
        sys.executable,
        str(REPO / "train.py"),
        f"hydra.run.dir={run_dir}",
        *data,
        "trainer.epochs=2",
        "trainer.batch_size=16",
        "trainer.log_every=1",
        *overrides,
    ]


def sweep_cmd(sweep_dir: Path, data_root: Path, *overrides: str, launcher: str | None = None) -> list[str]:
    """``train.py -m`` over ``overrides`` into ``sweep_dir`` (Hydra's basic launcher unless ``launcher``),
    with train_cmd's small settings."""
    cmd = [c for c in train_cmd(sweep_dir, data_root, *overrides) if not c.startswith("hydra.run.dir=")]
    hydra = [f"hydra/launcher={launcher}"] if launcher else []
    return [cmd[0], cmd[1], "-m", *hydra, f"hydra.sweep.dir={sweep_dir}", *cmd[2:]]


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a training subprocess: unbuffered, 1 thread per process (2-core machine)."""
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "HYDRA_FULL_ERROR": "0",
        **(extra or {}),
    }


def run(
    cmd: list[str], timeout: float = 300, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run to the end and capture the output (``extra_env``: variables to add, e.g. PYTHONPATH)."""
    return subprocess.run(cmd, cwd=REPO, env=env(extra_env), capture_output=True, text=True, timeout=timeout)


def start(cmd: list[str], log: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start in the background, output to ``log``."""
    return subprocess.Popen(cmd, cwd=REPO, env=env(extra_env), stdout=open(log, "w"), stderr=subprocess.STDOUT)


def interrupt(cmd: list[str], fault: str, timeout: float = 300) -> int:
    """Run ``cmd`` until the signal ``fault`` names (``PADLIB_FAULT``: SIGNAL@EPOCH:STEP[/RANK], sent by
    the run itself when that step is reached) stops it; returns its exit status."""
    return run(cmd, timeout=timeout, extra_env={"PADLIB_FAULT": fault}).returncode


def wait_for(predicate, timeout: float = 120, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds."""
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def metrics_without_timing(run_dir: Path) -> list[dict]:
    """Metrics rows minus the wall-clock fields, which legitimately differ between runs."""
    timing = {"epoch_time_s", "images_per_s"}
    return [{k: v for k, v in row.items() if k not in timing} for row in RunDir(run_dir).read_metrics()]

"""The run-directory contract (padlib/rundir.py on padlib/fileio.py): run.json, metrics, predictions,
checkpoint names, file modes."""

import json
import os

import numpy as np
import pytest
import torch

from padlib.checkpoint import save_checkpoint
from padlib.errors import PadlibError
from padlib.rundir import RunDir, find_runs


def _info(**kw):
    base = dict(arch="resnet18", padding="zero", seed=0, dataset="synthetic", epochs=2, world_size=1,
                status="running")
    return {**base, **kw}


def test_rundir_roundtrip_and_corrupt_metrics(tmp_path):
    run = RunDir(tmp_path / "a" / "run1")
    run.write_info(_info())
    row = dict(epoch=1, val_top1=50.0, val_top5=90.0, val_loss=1.0, train_loss=1.2)
    run.append_metrics(row)
    with open(run.metrics_path, "a") as f:
        f.write("{broken\n")
    run.append_metrics({**row, "epoch": 2, "val_top1": 60.0})
    with pytest.raises(PadlibError, match=r"metrics.jsonl:2: corrupt"):
        run.read_metrics()
    assert [r["epoch"] for r in run.read_metrics(strict=False)] == [1, 2]
    run.truncate_metrics(1)
    assert [r["val_top1"] for r in run.read_metrics()] == [50.0]
    assert run.update_info(status="completed")["status"] == "completed"
    assert find_runs(tmp_path) == [run]
    run.write_predictions(np.array([1, -1]), np.array([1, 0]), epoch=2)
    p = run.read_predictions()
    assert p["epoch"] == 2 and p["pred"].tolist() == [1, -1]


def test_rundir_rejects_foreign_run_json(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"arch": "x"}))
    with pytest.raises(PadlibError, match="run.json"):
        RunDir(tmp_path).read_info()
    (tmp_path / "run.json").write_text("{")
    with pytest.raises(PadlibError, match="not valid JSON"):
        RunDir(tmp_path).read_info()


def test_epoch_checkpoints_sort_by_number_past_999(tmp_path):
    run = RunDir(tmp_path)
    run.checkpoint_dir.mkdir()
    for e in (1000, 999, 2):
        run.epoch_checkpoint(e).write_bytes(b"")
    (run.checkpoint_dir / "epoch_x.pt").write_bytes(b"")
    assert [p.name for p in run.epoch_checkpoints()] == ["epoch_002.pt", "epoch_999.pt", "epoch_1000.pt"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_run_files_honour_the_umask(tmp_path, umask):
    # on a shared cluster the group must be able to read a sweep's checkpoints and metrics
    old = os.umask(umask)
    try:
        rd = RunDir(tmp_path / "run")
        rd.write_info({"arch": "a", "padding": "zero", "seed": 0, "dataset": "d", "epochs": 1, "world_size": 1,
                       "status": "running"})
        save_checkpoint({"x": torch.zeros(1)}, rd.last_checkpoint)
        rd.write_predictions(np.zeros(2), np.zeros(2), 1)
        rd.append_metrics({"epoch": 1, "val_top1": 1.0, "val_top5": 1.0, "val_loss": 1.0, "train_loss": 1.0})
        rd.truncate_metrics(1)
    finally:
        os.umask(old)
    for path in (rd.info_path, rd.last_checkpoint, rd.predictions_path, rd.metrics_path):
        assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~umask), path.name

"""Fixtures shared by the end-to-end tests."""

import os

import pytest

from padlib.data import make_synthetic_imagefolder


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """The synthetic JPEG tree that tests/train_helpers.train_cmd's data.synthetic settings describe (train.py
    reuses it): 3 classes x 15 val images = 45, not a multiple of a 2-process world size. Read-only: a test
    that damages files copies it first."""
    return make_synthetic_imagefolder(tmp_path_factory.mktemp("synthetic"), num_classes=3, train_per_class=48,
                                      val_per_class=15, size=40)


# What decides a process's rank and world: one test leaving RANK=1 behind turned every later evaluate.py
# call into a rank-1 no-op and a DDP test into a hang (CI, 2026-12)
LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID",
                 "SLURM_JOB_ID", "SLURM_STEP_ID", "SUBMITIT_EXECUTOR", "SUBMITIT_LOCAL_GLOBALID",
                 "PADLIB_FAULT", "PADLIB_SAVE_DELAY_S")


@pytest.fixture(autouse=True)
def launcher_env_unchanged():
    """Fail the test that leaks a launcher variable into os.environ (and put it back for the next one)."""
    before = {k: os.environ.get(k) for k in LAUNCHER_VARS}
    yield
    leaked = {k: os.environ.get(k) for k in LAUNCHER_VARS if os.environ.get(k) != before[k]}
    for k, v in before.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    assert not leaked, f"the test changed launcher variables {leaked}: use monkeypatch, which restores them"

"""train.py end to end on small generated JPEG trees: the run directory, resume, bad input."""

import os
import shutil
import signal
import sys

import pytest
import torch

from padlib.checkpoint import load_checkpoint
from padlib.rundir import RunDir
from tests.train_helpers import interrupt, metrics_without_timing, run, train_cmd

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_root):
    """An uninterrupted 3-epoch run that the interrupted ones must reproduce exactly."""
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    res = run(train_cmd(run_dir, data_root, "trainer.epochs=3", "trainer.keep_last=2", "padding=partial"))
    assert res.returncode == 0, res.stderr[-3000:]
    return run_dir


def test_run_directory_contract(reference):
    rd = RunDir(reference)
    info = rd.read_info()
    assert info["status"] == "completed"
    assert (info["arch"], info["padding"], info["seed"], info["dataset"], info["epochs"], info["world_size"]) == (
        "resnet18", "partial", 0, "synthetic", 3, 1)
    assert {"versions", "git_commit", "device", "config"} <= info.keys()
    assert info["versions"]["torch"] == torch.__version__
    rows = rd.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert {"val_top1", "val_top5", "val_loss", "train_loss", "train_top1", "lr", "epoch_time_s",
                "images_per_s", "skipped_images", "val_images"} <= r.keys()
        assert 0 <= r["val_top1"] <= r["val_top5"] <= 100
        assert r["val_images"] == 45
    # keep_last=2: only the last two epoch checkpoints remain
    assert [p.name for p in rd.epoch_checkpoints()] == ["epoch_002.pt", "epoch_003.pt"]
    last = load_checkpoint(rd.last_checkpoint)  # weights_only=True inside
    assert last["epoch"] == 3 and last["batch"] == 0 and last["precision"] == "fp32"
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "config", "best_top1"} <= last.keys()
    best = load_checkpoint(rd.best_checkpoint)
    assert best["best_top1"] == max(r["val_top1"] for r in rows)
    pred = rd.read_predictions()
    assert pred["epoch"] == best["best_epoch"]
    assert len(pred["pred"]) == 45 and (pred["pred"] >= 0).all()
    acc = 100 * (pred["pred"] == pred["target"]).mean()
    assert acc == pytest.approx(best["best_top1"])
    assert any(rd.tensorboard_dir.iterdir())
    assert info["precision"] == "fp32"
    # files honour the umask (mkstemp alone would make them 0600): a group can read a shared sweep
    umask = os.umask(0)
    os.umask(umask)
    for path in (rd.info_path, rd.metrics_path, rd.predictions_path, rd.last_checkpoint, rd.best_checkpoint):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_completed_run_started_again_says_so(reference, data_root):
    before = reference.joinpath("metrics.jsonl").read_text()
    res = run(train_cmd(reference, data_root, "trainer.epochs=3", "trainer.keep_last=2", "padding=partial"))
    assert res.returncode == 0
    assert "already completed" in res.stdout + res.stderr
    assert reference.joinpath("metrics.jsonl").read_text() == before


def test_sigkill_mid_run_then_resume_matches_uninterrupted(reference, data_root, tmp_path):
    run_dir = tmp_path / "run"
    cmd = train_cmd(run_dir, data_root, "trainer.epochs=3", "trainer.keep_last=2", "padding=partial")
    # kill during epoch 2: after epoch 1's metrics, once a step of epoch 2 is logged
    assert interrupt(cmd, "SIGKILL@2:2") == -signal.SIGKILL
    assert RunDir(run_dir).read_info()["status"] == "running"
    assert load_checkpoint(RunDir(run_dir).last_checkpoint)["epoch"] == 1  # the last good one, intact
    res = run(cmd)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming" in res.stdout + res.stderr
    assert metrics_without_timing(run_dir) == metrics_without_timing(reference)
    assert RunDir(run_dir).read_info()["resumes"] == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_preemption_signal_saves_mid_epoch_and_resume_matches(reference, data_root, tmp_path, sig):
    run_dir = tmp_path / "run"
    cmd = train_cmd(run_dir, data_root, "trainer.epochs=3", "trainer.keep_last=2", "padding=partial")
    assert interrupt(cmd, f"{sig.name}@2:3") == 128 + sig
    last = load_checkpoint(RunDir(run_dir).last_checkpoint)
    assert (last["epoch"], last["batch"]) == (1, 3), "expected a checkpoint at step 3 of epoch 2"
    info = RunDir(run_dir).read_info()
    assert info["status"] == "interrupted"
    assert [(i["signal"], i["epoch"], i["batch"]) for i in info["interruptions"]] == [(sig.name, 2, 3)]
    res = run(cmd)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"batch {last['batch']}" in res.stdout + res.stderr
    assert metrics_without_timing(run_dir) == metrics_without_timing(reference)


def test_completed_run_started_with_other_settings_says_what_differs(reference, data_root):
    before = reference.joinpath("metrics.jsonl").read_text()
    res = run(train_cmd(reference, data_root, "trainer.epochs=4", "trainer.keep_last=2", "padding=partial"))
    _one_line_error(res, "completed run with other settings", "trainer.epochs: 3 -> 4", "hydra.run.dir")
    assert reference.joinpath("metrics.jsonl").read_text() == before
    assert RunDir(reference).read_info()["status"] == "completed"


def test_resume_with_other_settings_is_refused(reference, data_root):
    run_dir = reference.parent / "other"
    shutil.copytree(reference, run_dir)
    RunDir(run_dir).update_info(status="running")
    res = run(train_cmd(run_dir, data_root, "trainer.epochs=3", "trainer.keep_last=2", "padding=zero"))
    assert res.returncode == 2
    assert "padding.mode: 'partial' -> 'zero'" in res.stderr and "Traceback" not in res.stderr


def _one_line_error(res, *fragments):
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    assert "Traceback" not in res.stderr
    for f in fragments:
        assert f in errors[0], errors[0]


def test_bad_inputs_get_one_clear_line(tmp_path, data_root):
    base = ["hydra.run.dir=" + str(tmp_path / "r"), "trainer.epochs=1", "trainer.progress=false"]
    _one_line_error(run([sys.executable, "train.py", "data=folder", f"data.root={tmp_path / 'nope'}", *base]), "nope")
    (tmp_path / "empty").mkdir()
    _one_line_error(run([sys.executable, "train.py", "data=folder", f"data.root={tmp_path / 'empty'}", *base]), "empty")
    _one_line_error(run([sys.executable, "train.py", "data=imagenet", *base]), "data.root")
    _one_line_error(run(train_cmd(tmp_path / "r2", data_root, "model=timm", "model.name=no_such_net")),
                    "no_such_net", "resnet50")
    _one_line_error(run(train_cmd(tmp_path / "r3", data_root, "trainer.batch_size=100000")),
                    "trainer.batch_size=100000", "larger than the training set")
    res = run(train_cmd(tmp_path / "r4", data_root, "padding=mirror"))
    assert res.returncode != 0 and "zero" in res.stderr and "partial" in res.stderr  # Hydra lists the options


def test_class_folders_that_differ(tmp_path, data_root):
    tree = tmp_path / "tree"
    shutil.copytree(data_root, tree)
    val_classes = sorted(p for p in (tree / "val").iterdir() if p.is_dir())
    val_classes[0].rename(tree / "val" / "zzz_extra")
    res = run(train_cmd(tmp_path / "r", tree, folder=True))
    _one_line_error(res, "zzz_extra")


def test_non_finite_loss_fails_the_run_and_keeps_the_last_good_checkpoint(tmp_path, data_root):
    # lr jumps from 0.02 to 2e5 at epoch 2: the loss explodes there
    run_dir = tmp_path / "r"
    res = run(train_cmd(run_dir, data_root, "trainer.schedule.name=step", "trainer.schedule.milestones=[1]",
                        "trainer.schedule.gamma=1e7",
                        "trainer.epochs=3"))
    _one_line_error(res, "non-finite")
    rd = RunDir(run_dir)
    assert rd.read_info()["status"] == "failed"
    assert load_checkpoint(rd.last_checkpoint)["epoch"] == 1
    assert [r["epoch"] for r in rd.read_metrics()] == [1]


def test_unreadable_images_are_skipped_counted_and_limited(tmp_path, data_root):
    tree = tmp_path / "tree"
    shutil.copytree(data_root, tree)
    victim = sorted((tree / "train").rglob("*.jpg"))[0]
    victim.write_bytes(b"\xff\xd8 truncated garbage")
    res = run(train_cmd(tmp_path / "ok", tree, "trainer.epochs=1", "trainer.max_unreadable_fraction=0.05",
                        folder=True))
    assert res.returncode == 0, res.stderr[-3000:]
    assert victim.name in res.stdout + res.stderr
    assert RunDir(tmp_path / "ok").read_metrics()[0]["skipped_images"] == 1
    # 1 of ~189 images is more than the default 0.1%
    res = run(train_cmd(tmp_path / "bad", tree, "trainer.epochs=1", folder=True))
    _one_line_error(res, "unreadable")
    assert RunDir(tmp_path / "bad").read_info()["status"] == "failed"


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="make data installs it")
def test_fashion_mnist_learns(tmp_path):
    run_dir = tmp_path / "fm"
    res = run([sys.executable, "train.py", f"hydra.run.dir={run_dir}", "trainer.epochs=2", "data.train_subset=2000",
               "data.val_subset=1000", "trainer.batch_size=64", "trainer.progress=false"])
    assert res.returncode == 0, res.stderr[-3000:]
    rows = RunDir(run_dir).read_metrics()
    assert rows[-1]["val_images"] == 1000
    assert rows[-1]["val_top1"] > 45  # 10 classes: chance is 10%


def test_bad_trainer_values_get_one_clear_line(tmp_path, data_root):
    for override, fragment in [("trainer.epochs=-1", "trainer.epochs=-1"), ("trainer.epochs=abc", "trainer.epochs='abc'"),
                               ("trainer.optim.lr=0", "trainer.optim.lr=0"), ("trainer.amp=fp8", "trainer.amp='fp8'"),
                               ("trainer.keep_last=-1", "trainer.keep_last=-1"), ("data.workers=-2", "data.workers=-2")]:
        run_dir = tmp_path / override.replace("=", "_")
        _one_line_error(run(train_cmd(run_dir, data_root, override)), fragment)
        assert not RunDir(run_dir).exists(), f"{override} started a run"  # Hydra alone made the folder


def test_truncated_last_checkpoint_resumes_from_the_newest_readable_one(reference, data_root, tmp_path):
    run_dir = tmp_path / "run"
    cmd = train_cmd(run_dir, data_root, "trainer.epochs=3", "trainer.keep_last=2", "padding=partial")
    assert interrupt(cmd, "SIGKILL@3:2") == -signal.SIGKILL
    rd = RunDir(run_dir)
    assert [p.name for p in rd.epoch_checkpoints()] == ["epoch_001.pt", "epoch_002.pt"]
    # a full disk or a failing file system: last.pt and the newest epoch checkpoint cut short
    for path in (rd.last_checkpoint, rd.epoch_checkpoint(2)):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    res = run(cmd)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "last.pt: not a readable checkpoint" in out and "epoch_002.pt: not a readable checkpoint" in out
    assert "resuming from" in out and "epoch_001.pt" in out
    assert metrics_without_timing(run_dir) == metrics_without_timing(reference)


def test_compiled_training_matches_eager(tmp_path, data_root):
    # torch.compile before the first forward, as the trainer does: partial padding's border geometry
    # must be traced, not lost at a graph break (which once trained with zero padding's gradients)
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    common = ("trainer.epochs=1", "padding=partial", "model=timm", "model.name=test_resnet")
    res = run(train_cmd(eager, data_root, *common))
    assert res.returncode == 0, res.stderr[-3000:]
    res = run(train_cmd(compiled, data_root, *common, "trainer.compile=true", "trainer.compile_backend=aot_eager"))
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = metrics_without_timing(eager), metrics_without_timing(compiled)
    for key in ("train_loss", "val_loss", "val_top1"):
        assert b[0][key] == pytest.approx(a[0][key], rel=1e-4, abs=1e-4), key


def test_a_checkpoint_that_cannot_be_written_still_ends_the_hand_off(data_root, tmp_path):
    """A full disk at the preemption save: the run still records the interruption and exits with the signal's
    status (every rank reaches the hand-off's barriers), instead of leaving run.json "running"."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints" / "last.pt").mkdir(parents=True)  # the save's rename onto it fails
    cmd = train_cmd(run_dir, data_root, "trainer.epochs=2", "padding=zero")
    assert interrupt(cmd, "SIGUSR1@1:3") == 128 + signal.SIGUSR1
    info = RunDir(run_dir).read_info()
    assert info["status"] == "interrupted"
    [entry] = info["interruptions"]
    assert entry["checkpoint"].startswith("not written") and (entry["epoch"], entry["batch"]) == (1, 3)

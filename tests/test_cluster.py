"""Cluster paths on CPU: torchrun DDP (gloo), a submitit_local sweep, and a preempted, requeued job."""

import sys

import pytest

from padlib.rundir import RunDir, find_runs
from tests.train_helpers import run, sweep_cmd, train_cmd

pytestmark = pytest.mark.slow



def test_torchrun_two_processes_one_writer_every_val_image_once(tmp_path, data_root):
    run_dir = tmp_path / "ddp"
    # 22 images a rank per batch: rank 0's 23 val images take 2 batches, rank 1's 22 take 1
    cmd = train_cmd(run_dir, data_root, "trainer.epochs=1", "trainer.batch_size=44")
    cmd[1:2] = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", cmd[1]]
    res = run(cmd, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    rd = RunDir(run_dir)
    info = rd.read_info()
    assert info["world_size"] == 2 and info["status"] == "completed"
    row = rd.read_metrics()[0]
    assert row["val_images"] == 45
    pred = rd.read_predictions()
    assert (pred["pred"] >= 0).all() and (pred["target"] >= 0).all()
    assert 100 * (pred["pred"] == pred["target"]).mean() == pytest.approx(row["val_top1"])
    # only rank 0 wrote Hydra's files
    assert sorted(p.name for p in (run_dir / ".hydra").iterdir()) == ["config.yaml", "hydra.yaml", "overrides.yaml"]
    assert res.stdout.count("epoch 1/1 train loss") == 1


def _sweep_cmd(sweep_dir, data_root, *overrides):
    return sweep_cmd(sweep_dir, data_root, *overrides, launcher="submitit_local")


def test_submitit_local_sweep_completes_its_runs(tmp_path, data_root):
    sweep = tmp_path / "sweep"
    res = run(_sweep_cmd(sweep, data_root, "padding=zero,partial", "trainer.epochs=1"), timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    runs = find_runs(sweep)
    # the run directory is named in the job's own process (padlib's resolvers travel with Hydra's callbacks)
    names = sorted((r.path.parent.parent.relative_to(sweep).as_posix(), r.path.name) for r in runs)
    assert names == [("resnet18/partial", "seed0"), ("resnet18/zero", "seed0")]
    assert all(r.read_info()["status"] == "completed" for r in runs)


def test_preempted_submitit_job_is_requeued_and_resumes(tmp_path, data_root):
    sweep = tmp_path / "sweep"
    # SIGUSR2 (submitit's requeue signal) after step 3 of epoch 2, sent by the task to itself
    res = run(_sweep_cmd(sweep, data_root, "padding=partial", "trainer.epochs=3"), timeout=600,
              extra_env={"PADLIB_FAULT": "SIGUSR2@2:3"})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    [log] = sorted((sweep / ".submitit").glob("*/*_0_log.out"))
    text = log.read_text()
    assert "saved a mid-epoch checkpoint (epoch 2, batch 3)" in text
    assert "Requeued job" in text and "resuming" in text
    rd = find_runs(sweep)[0]
    info = rd.read_info()
    assert info["status"] == "completed" and info["resumes"] == 1
    assert [(i["signal"], i["epoch"], i["batch"], i["then"]) for i in info["interruptions"]] == [
        ("SIGUSR2", 2, 3, "handed to submitit, which requeued the job")]
    assert [r["epoch"] for r in rd.read_metrics()] == [1, 2, 3]


def test_sweep_listing_shows_what_would_be_submitted():
    res = run([sys.executable, "scripts/list_sweep.py", "experiment=paper_sweep"])
    assert res.returncode == 0, res.stderr
    jobs = [line for line in res.stdout.splitlines() if line.startswith("#")]
    assert len(jobs) == 100
    assert "model=vgg16_bn padding=zero seed=1" in jobs[0]
    assert "sweeps/paper_imagenet/vgg16_bn/zero/seed1" in res.stdout

"""Exact resume for models with random layers: the paper's vgg16_bn (dropout) with loader workers, and a
2-process DDP run with dropout. resnet18 has no random layer, so it cannot show an RNG that is one
draw off; these can."""

import signal

import pytest
import torch

from padlib.checkpoint import load_checkpoint
from padlib.rundir import RunDir
from tests.train_helpers import interrupt, metrics_without_timing, run, train_cmd

pytestmark = pytest.mark.slow

VGG = ("model=vgg16_bn", "padding=partial", "data.workers=2", "trainer.epochs=2", "trainer.keep_last=1")
# timm's 0.4M-parameter ResNet with dropout before its classifier: small enough for two processes
DDP = ("model=timm", "model.name=test_resnet", "+model.kwargs.drop_rate=0.5", "padding=partial",
       "trainer.epochs=2", "trainer.batch_size=16")



@pytest.fixture(scope="module")
def vgg_reference(tmp_path_factory, data_root):
    run_dir = tmp_path_factory.mktemp("vgg") / "run"
    res = run(train_cmd(run_dir, data_root, *VGG), timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return run_dir


def test_vgg_preempted_then_killed_resumes_exactly(vgg_reference, data_root, tmp_path):
    """Preempted in epoch 1 (a mid-epoch checkpoint), resumed and killed in epoch 2 (back to epoch 1's
    checkpoint, with fresh loader workers), resumed again: the metrics of the uninterrupted run."""
    run_dir = tmp_path / "run"
    cmd = train_cmd(run_dir, data_root, *VGG)
    assert interrupt(cmd, "SIGUSR1@1:3") == 128 + signal.SIGUSR1
    assert load_checkpoint(RunDir(run_dir).last_checkpoint)["batch"] == 3
    assert interrupt(cmd, "SIGKILL@2:2") == -signal.SIGKILL
    assert load_checkpoint(RunDir(run_dir).last_checkpoint)["epoch"] == 1
    res = run(cmd, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert metrics_without_timing(run_dir) == metrics_without_timing(vgg_reference)
    assert RunDir(run_dir).read_info()["resumes"] == 2


def _torchrun(cmd):
    return [cmd[0], "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *cmd[1:]]


def test_ddp_with_dropout_preempted_mid_epoch_resumes_exactly(data_root, tmp_path):
    reference, run_dir = tmp_path / "reference", tmp_path / "run"
    res = run(_torchrun(train_cmd(reference, data_root, *DDP)), timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    # every rank's RNG states are kept, and they differ: the ranks draw different dropout masks
    rngs = load_checkpoint(RunDir(reference).last_checkpoint)["rng"]
    assert len(rngs) == 2 and not torch.equal(rngs[0]["torch"], rngs[1]["torch"])

    cmd = _torchrun(train_cmd(run_dir, data_root, *DDP))
    # one rank (1) hears the preemption signal, after step 3 of epoch 2: both must stop there and save once
    interrupt(cmd, "SIGUSR1@2:3/1")
    last = load_checkpoint(RunDir(run_dir).last_checkpoint)
    assert (last["epoch"], last["batch"], len(last["rng"])) == (1, 3, 2)
    # rank 0 records the signal rank 1 heard
    assert [i["signal"] for i in RunDir(run_dir).read_info()["interruptions"]] == ["SIGUSR1"]
    res = run(cmd, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert metrics_without_timing(run_dir) == metrics_without_timing(reference)

"""Units of padlib/engine (no training runs here): samplers and loaders, the LR schedule, the trainer
config, one training epoch, what a resume compares, per-rank seeding."""

from pathlib import Path

import numpy as np
import pytest
import torch

from padlib.data.datasets import TensorImages
from padlib.engine.config import ScheduleConfig, read_trainer_config
from padlib.engine.distributed import DistInfo
from padlib.engine.loaders import EpochSampler, ShardSampler
from padlib.engine.optim import lr_factor
from padlib.engine.trainer import check_same_experiment
from padlib.errors import PadlibError


# --- samplers ------------------------------------------------------------------------------
def test_epoch_sampler_is_deterministic_and_shards_are_disjoint():
    world = 3
    shards = [list(EpochSampler(100, 8, seed=5, dist=DistInfo(r, world))) for r in range(world)]
    again = list(EpochSampler(100, 8, seed=5, dist=DistInfo(0, world)))
    assert shards[0] == again
    idx = [i for shard in shards for i, _ in shard]
    assert len(idx) == len(set(idx)) == 96  # 100 // (8*3) = 4 batches of 8 per rank
    assert all(len(s) == 32 for s in shards)


def test_epoch_sampler_changes_order_per_epoch_and_resumes_mid_epoch():
    s = EpochSampler(50, 5, seed=1, dist=DistInfo())
    s.set_epoch(1)
    e1 = list(s)
    s.set_epoch(2)
    e2 = list(s)
    assert [i for i, _ in e1] != [i for i, _ in e2]
    s.set_epoch(2, start_batch=3)
    assert list(s) == e2[15:]
    assert len(s) == 35


@pytest.mark.parametrize("size,world", [(10, 3), (7, 2), (1, 4), (64, 4)])
def test_shard_sampler_covers_every_index_exactly_once(size, world):
    seen = [i for r in range(world) for i in ShardSampler(size, DistInfo(r, world))]
    assert sorted(seen) == list(range(size))


# --- schedule ------------------------------------------------------------------------------
def test_step_schedule_is_the_papers():
    f = lr_factor(ScheduleConfig("step", (30, 60, 90), 0.1), epochs=100)
    assert f(0) == 1 and f(29.99) == 1
    assert f(30) == pytest.approx(0.1) and f(59.5) == pytest.approx(0.1)
    assert f(60) == pytest.approx(0.01) and f(99.9) == pytest.approx(0.001)


def test_cosine_with_warmup():
    f = lr_factor(ScheduleConfig("cosine", warmup_epochs=2), epochs=10)
    assert f(0) < 0.01 and f(1) == pytest.approx(0.5, abs=1e-3)
    assert f(2) == pytest.approx(1.0)
    assert f(6) == pytest.approx(0.5)
    assert f(10) == pytest.approx(0.0, abs=1e-12)


def test_unknown_schedule_is_a_clear_error():
    with pytest.raises(PadlibError, match="step, cosine"):
        read_trainer_config({"schedule": {"name": "linear"}})


# --- trainer config ------------------------------------------------------------------------
def test_trainer_config_defaults_match_the_shipped_yaml():
    import yaml

    shipped = yaml.safe_load(Path("configs/trainer/default.yaml").read_text())
    assert read_trainer_config(shipped) == read_trainer_config({})


@pytest.mark.parametrize(("override", "fragment"), [
    ({"epochs": -1}, "trainer.epochs=-1 must be an integer >= 1"),
    ({"epochs": 0}, "trainer.epochs=0"),
    ({"epochs": "abc"}, "trainer.epochs='abc'"),
    ({"epochs": 2.5}, "trainer.epochs=2.5"),
    ({"batch_size": 0}, "trainer.batch_size=0"),
    ({"amp": "fp8"}, "trainer.amp='fp8' is unknown"),
    ({"compile": "yes"}, "trainer.compile='yes' must be true or false"),
    ({"keep_last": -2}, "trainer.keep_last=-2"),
    ({"log_every": 0}, "trainer.log_every=0"),
    ({"label_smoothing": 1.0}, "trainer.label_smoothing=1.0"),
    ({"max_unreadable_fraction": -0.1}, "trainer.max_unreadable_fraction=-0.1"),
    ({"optim": {"lr": 0}}, "trainer.optim.lr=0"),
    ({"optim": {"lr": "fast"}}, "trainer.optim.lr='fast'"),
    ({"optim": {"momentum": 1.5}}, "trainer.optim.momentum=1.5"),
    ({"optim": {"lr": 0.1, "decay": 1}}, "trainer.optim has unknown key(s) decay"),
    ({"schedule": {"milestones": [30, "x"]}}, "trainer.schedule.milestones"),
    ({"schedule": {"milestones": None}}, "trainer.schedule.milestones=None"),
    ({"schedule": {"warmup_epochs": 5}, "epochs": 3}, "warmup_epochs=5 must not exceed trainer.epochs=3"),
    ({"epoch": 3}, "trainer has unknown key(s) epoch"),
])
def test_bad_trainer_values_are_clear_errors(override, fragment):
    with pytest.raises(PadlibError) as e:
        read_trainer_config(override)
    assert fragment in str(e.value)


# --- training loop -------------------------------------------------------------------------
def test_an_all_unreadable_batch_still_counts_as_a_step():
    from padlib.data import Batch
    from padlib.engine.amp import grad_scaler
    from padlib.engine.loop import StepContext, TrainMeters, train_one_epoch
    from padlib.engine.progress import Progress

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(64, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)

    def batch(n, skipped=0):
        return Batch(torch.randn(n, 3, 4, 4), torch.randint(0, 2, (n,)), torch.arange(n), skipped)

    empty = Batch(torch.zeros(0, 3, 0, 0), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 3)
    ctx = StepContext(opt, sched, grad_scaler(torch.device("cpu"), None), torch.nn.CrossEntropyLoss(),
                      torch.device("cpu"), None, False, DistInfo())
    meters = TrainMeters()
    done = train_one_epoch(model, [batch(2), empty, batch(2, skipped=1)], ctx, meters,
                           Progress(3, "t", enabled=False), lambda: False, check_every=1)
    assert done
    # the resume position and the schedule follow the sampler's batches, the meters the images
    assert meters.steps == 3 and sched.last_epoch == 3
    assert meters.count == 4 and meters.skipped == 4


# --- resume --------------------------------------------------------------------------------
def test_resume_refuses_another_experiment():
    stored = {"seed": 0, "trainer": {"epochs": 3, "optim": {"lr": 0.1}}, "data": {"root": "/a", "workers": 2}}
    same = {"seed": 0, "trainer": {"epochs": 3, "optim": {"lr": 0.1}}, "data": {"root": "/b", "workers": 8}}
    check_same_experiment(stored, same, "runs/x")  # root and workers may change
    other = {"seed": 0, "trainer": {"epochs": 3, "optim": {"lr": 0.2}}, "data": {"root": "/a", "workers": 2}}
    with pytest.raises(PadlibError, match=r"trainer.optim.lr: 0.1 -> 0.2"):
        check_same_experiment(stored, other, "runs/x")


def test_resume_compares_only_settings_that_change_results():
    from padlib.engine.trainer import config_diffs

    # a run started before trainer.compile_backend existed, resumed on another device with other logging
    stored = {"trainer": {"epochs": 3, "amp": "auto", "progress": True, "keep_last": 5}, "data": {"workers": 4}}
    current = {"trainer": {"epochs": 3, "amp": "bf16", "progress": False, "keep_last": 2,
                           "compile_backend": "inductor", "max_unreadable_fraction": 0.01}, "data": {"workers": 0}}
    assert config_diffs(stored, current) == ""
    assert config_diffs(stored, {**current, "trainer": {**current["trainer"], "epochs": 4}}) == "trainer.epochs: 3 -> 4"


# --- what a resumed run depends on ---------------------------------------------------------
@pytest.mark.parametrize("workers", [0, 2])
def test_starting_a_loader_leaves_the_global_rng_alone(workers):
    # dropout draws from the global RNG: if starting an iteration drew from it too, a resumed run
    # (which starts its iterators at other moments than an uninterrupted one) would get other masks
    from padlib.engine.loaders import make_train_loader, make_val_loader

    data = TensorImages(torch.zeros(12, 1, 4, 4), np.zeros(12, dtype=np.int64), _identity, _identity)
    train, sampler = make_train_loader(data, 4, workers, seed=0, dist=DistInfo())
    val = make_val_loader(data, 4, workers)
    before = torch.get_rng_state()
    for epoch in (1, 2):
        sampler.set_epoch(epoch)
        assert sum(len(b.targets) for b in train) == 12
        assert sum(len(b.targets) for b in val) == 12
    assert torch.equal(torch.get_rng_state(), before)


def _identity(x):
    return x


def test_ranks_draw_different_dropout_masks_and_rank0_keeps_the_single_process_stream():
    from padlib.engine.distributed import seed_rank

    def masks(rank):
        torch.manual_seed(7)
        seed_rank(7, DistInfo(rank, 2))
        return torch.nn.functional.dropout(torch.ones(1000), 0.5)

    torch.manual_seed(7)
    single = torch.nn.functional.dropout(torch.ones(1000), 0.5)
    assert torch.equal(masks(0), single)
    assert not torch.equal(masks(1), masks(0))
    assert torch.equal(masks(1), masks(1))

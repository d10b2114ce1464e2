"""The training run: config in, run directory out. Builds model, data and optimizer, resumes from the
run directory, runs the epochs, and writes metrics, checkpoints and predictions through ``RunDir``."""

from __future__ import annotations

import functools
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
from torch import nn

from padlib.checkpoint import (
    RESUME_KEYS,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    serialize,
    set_rng_state,
)
from padlib.configcheck import RUNTIME_KEYS, flatten
from padlib.data import DataBundle, build_data
from padlib.engine.amp import amp_dtype, grad_scaler, precision_name
from padlib.engine.config import TrainerConfig, read_trainer_config, read_workers
from padlib.engine.deterministic import deterministic_on
from padlib.engine.device import resolve_device
from padlib.engine.distributed import (
    DistInfo,
    broadcast_buffers,
    broadcast_object,
    gather_objects,
    init_distributed,
    seed_rank,
    shutdown,
)
from padlib.engine.loaders import make_train_loader, make_val_loader
from padlib.engine.loop import (
    EvalResult,
    NonFiniteLoss,
    StepContext,
    TrainMeters,
    reduce_meters,
    train_one_epoch,
    validate,
)
from padlib.engine.optim import build_optimizer, build_scheduler
from padlib.engine.preemption import Fault, PreemptionHandler, slow_storage_for_tests, slurm_job, strongest
from padlib.engine.progress import Progress
from padlib.errors import PadlibError
from padlib.models import build_model
from padlib.padding import get_padding
from padlib.provenance import provenance
from padlib.rundir import RunDir
from padlib.starting_weights import load_starting_weights

log = logging.getLogger("padlib")

# trainer.amp may change with the device (auto: bf16 on CUDA); the precision it resolves to is what must
# not change, and _check_same_precision compares that.
RESUME_IGNORED = (*RUNTIME_KEYS, "trainer.amp")
# Settings added after runs were made, with the value those runs had: a run made before is the same experiment.
ADDED_SETTINGS = {"model.weights": None, "model.pretrained": False}


def config_diffs(stored: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """The settings that differ between two run configs, as ``key: old -> new; ...`` ('' if none)."""
    a = {k: v for k, v in {**ADDED_SETTINGS, **flatten(stored)}.items() if k not in RESUME_IGNORED}
    b = {k: v for k, v in {**ADDED_SETTINGS, **flatten(current)}.items() if k not in RESUME_IGNORED}
    diffs = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
    return "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")


def check_same_experiment(stored: Mapping[str, Any], current: Mapping[str, Any], where: str) -> None:
    """Refuse to resume a run directory with settings that would make it another experiment."""
    diffs = config_diffs(stored, current)
    if diffs:
        raise PadlibError(
            f"{where} holds a run with other settings ({diffs}); resume it with the same settings "
            "or choose another hydra.run.dir"
        )


@dataclass
class Position:
    """Where training stands: epochs finished, batches done in the next one, best so far."""

    epoch: int = 0
    batch: int = 0
    best_top1: float = -math.inf
    best_epoch: int = 0


class Trainer:
    """One run of one (model, padding, data, seed) configuration."""

    def __init__(self, cfg: Mapping[str, Any], dist: DistInfo, device: torch.device,
                 tcfg: TrainerConfig | None = None, preemption: PreemptionHandler | None = None) -> None:
        self.cfg, self.dist, self.device = cfg, dist, device
        self.tcfg = tcfg or read_trainer_config(cfg["trainer"])
        self.run = RunDir(cfg["run_dir"])
        # Resolved first: an unknown or unimportable mode is an error before any data is read.
        self.padding = get_padding(dict(cfg["padding"]))
        self.preemption = preemption or PreemptionHandler()
        self.fault = Fault.from_env()
        self._handing_off = False

    # --- set-up ----------------------------------------------------------------------------
    def _batch_size(self, data: DataBundle) -> int:
        global_batch = self.tcfg.batch_size
        if global_batch % self.dist.world_size:
            raise PadlibError(
                f"trainer.batch_size={global_batch} is not divisible by the {self.dist.world_size} processes; "
                "the batch size is global, pick a multiple of the world size"
            )
        if global_batch > len(data.train):
            raise PadlibError(
                f"trainer.batch_size={global_batch} is larger than the training set ({len(data.train)} images "
                f"in {data.name}); lower trainer.batch_size"
            )
        return global_batch // self.dist.world_size

    def _build(self) -> None:
        cfg, tcfg = self.cfg, self.tcfg
        torch.manual_seed(int(cfg["seed"]))
        self.data = build_data(cfg["data"])
        per_rank_batch = self._batch_size(self.data)
        workers = read_workers(cfg["data"])
        pin = self.device.type == "cuda"
        self.train_loader, self.sampler = make_train_loader(
            self.data.train, per_rank_batch, workers, int(cfg["seed"]), self.dist, pin
        )
        self.val_loader = make_val_loader(self.data.val, per_rank_batch, workers, self.dist, pin)
        model = build_model(cfg["model"]["name"], self.data.num_classes, self.padding,
                            cfg["model"].get("source", "auto"), cfg["model"].get("kwargs"))
        # starting weights (model.weights / model.pretrained): a resumed run takes its own checkpoint instead
        if self.run.resume_candidates() and self.run.exists():
            self.init_weights = self.run.read_info().get("init_weights")
        else:
            self.init_weights = load_starting_weights(model, cfg["model"])
        # every rank starts from the same weights (above), then draws its own dropout masks
        seed_rank(int(cfg["seed"]), self.dist)
        self.channels_last = tcfg.channels_last and self.device.type == "cuda"
        model.to(self.device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        if tcfg.deterministic:
            deterministic_on(self.device, model, int(cfg["data"]["image_size"]))  # or one error, before any step
        self.model = model
        self.amp_dtype = amp_dtype(tcfg.amp, self.device)
        self.optimizer = build_optimizer(model, tcfg.optim)
        self.scheduler = build_scheduler(self.optimizer, tcfg.schedule, tcfg.epochs, self.sampler.batches_per_epoch)
        self.scaler = grad_scaler(self.device, self.amp_dtype)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=tcfg.label_smoothing)

    def _wrapped_model(self) -> nn.Module:
        model = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if self.tcfg.compile:
            model = torch.compile(model, backend=self.tcfg.compile_backend)
        return model

    # --- checkpoints -----------------------------------------------------------------------
    def _state(self, pos: Position, meters: TrainMeters, rngs: list[dict[str, Any]]) -> dict[str, Any]:
        """The checkpoint: ``rngs`` holds every rank's RNG states, in rank order."""
        return {
            "arch": self.cfg["model"]["name"],
            "padding": self.padding.label,
            "padding_spec": self.padding.spec(),
            "precision": precision_name(self.amp_dtype),  # what evaluate.py eval re-evaluates a lone file at
            "init_weights": self.init_weights,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": pos.epoch,
            "batch": pos.batch,
            "world_size": self.dist.world_size,
            "meters": meters.state_dict(),
            "best_top1": pos.best_top1,
            "best_epoch": pos.best_epoch,
            "rng": rngs,
            "config": dict(self.cfg),
        }

    def _resume_point(self) -> tuple[Path, dict[str, Any]] | None:
        """The checkpoint to resume from, the same on every rank (None: start afresh)."""
        path, ckpt, error = self._find_resume_point() if self.dist.is_main else (None, None, None)
        # rank 0 chooses: another rank could meet a passing read error and pick an older file
        path, error = broadcast_object((path, error), self.dist)
        if error:
            raise PadlibError(error)
        if path is None:
            return None
        return path, ckpt if ckpt is not None else load_checkpoint(path)

    def _find_resume_point(self) -> tuple[Path | None, dict[str, Any] | None, str | None]:
        """(path, checkpoint, error): the newest readable checkpoint, last.pt first, then the epoch
        checkpoints newest first; all None when there is none; an error when none of them loads."""
        bad: list[Path] = []
        for path in self.run.resume_candidates():
            try:
                ckpt = load_checkpoint(path)
                missing = [k for k in RESUME_KEYS if k not in ckpt]
                if missing:
                    raise PadlibError(f"{path}: not a resumable checkpoint (no {', '.join(missing)})")
            except PadlibError as e:
                # a truncated file (full disk, failing storage) must not strand the intact older ones
                log.warning(f"{e}; trying an older checkpoint")
                bad.append(path)
                continue
            if bad:
                log.warning(f"resuming from {path} instead of the unreadable {', '.join(p.name for p in bad)}")
            return path, ckpt, None
        if bad:
            return None, None, (f"no readable checkpoint in {self.run.checkpoint_dir} "
                                f"({', '.join(p.name for p in bad)}); move that folder away to start the run over")
        return None, None, None

    def _restore(self) -> tuple[Position, TrainMeters]:
        found = self._resume_point()
        if found is None:
            return Position(), TrainMeters()
        path, ckpt = found
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        pos = Position(int(ckpt["epoch"]), int(ckpt["batch"]), float(ckpt["best_top1"]), int(ckpt["best_epoch"]))
        saved_world = int(ckpt.get("world_size", 1))
        if pos.batch and saved_world != self.dist.world_size:
            # the position inside the epoch is a per-rank batch count of a sharded order
            raise PadlibError(
                f"{path} was saved mid-epoch by {saved_world} process(es); resume it "
                f"with {saved_world} (this job has {self.dist.world_size})"
            )
        self._restore_rng(ckpt["rng"], path)
        meters = TrainMeters()
        if pos.batch:
            saved = TrainMeters(**ckpt["meters"])
            meters = saved if self.dist.is_main else TrainMeters(steps=saved.steps)
        where = f"epoch {pos.epoch + 1}, batch {pos.batch}" if pos.batch else f"the end of epoch {pos.epoch}"
        log.info(f"resuming {self.run.path} from {where}")
        return pos, meters

    def _restore_rng(self, saved: dict[str, Any] | list[dict[str, Any]], path: Path) -> None:
        """This rank's RNG states from a checkpoint (one state per rank; older checkpoints hold one)."""
        states = saved if isinstance(saved, list) else [saved]
        if len(states) == self.dist.world_size:
            set_rng_state(states[self.dist.rank], self.device)
            return
        log.warning(f"{path} holds the RNG states of {len(states)} process(es), this job has "
                    f"{self.dist.world_size}: random layers (dropout) continue on other streams, so this resume "
                    "is not bit-exact")
        if self.dist.rank < len(states):
            set_rng_state(states[self.dist.rank], self.device)

    def _save_epoch(self, pos: Position, is_best: bool, rngs: list[dict[str, Any]]) -> None:
        data = serialize(self._state(pos, TrainMeters(), rngs))
        paths = [self.run.epoch_checkpoint(pos.epoch), self.run.last_checkpoint]
        if is_best:
            paths.insert(0, self.run.best_checkpoint)
        # last.pt is written last: until then the previous one stays the resume point
        save_checkpoint(data, *paths)
        keep = self.tcfg.keep_last
        for old in self.run.epoch_checkpoints()[:-keep] if keep > 0 else self.run.epoch_checkpoints():
            old.unlink(missing_ok=True)

    # --- the run ---------------------------------------------------------------------------
    def _start_run_json(self, resumed: bool) -> None:
        cfg = self.cfg
        if resumed:
            info = self.run.read_info()
            self.run.update_info(status="running", resumes=int(info.get("resumes", 0)) + 1,
                                 world_size=self.dist.world_size, updated=time.time(), **slurm_job())
            return
        self.run.write_info({
            "arch": cfg["model"]["name"],
            "padding": self.padding.label,
            "padding_spec": self.padding.spec(),
            "seed": int(cfg["seed"]),
            "dataset": self.data.name,
            "num_classes": self.data.num_classes,
            "epochs": self.tcfg.epochs,
            "world_size": self.dist.world_size,
            "precision": precision_name(self.amp_dtype),
            "init_weights": self.init_weights,
            "status": "running",
            "config": dict(cfg),
            "started": time.time(),
            "updated": time.time(),
            "resumes": 0,
            **provenance(self.device),
            **slurm_job(),
        })

    def _epoch_row(self, epoch: int, train: TrainMeters, val: EvalResult, seconds: float, images_per_s: float
                   ) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "train_loss": train.loss_sum / max(train.count, 1),
            "train_top1": 100 * train.correct / max(train.count, 1),
            "val_loss": val.loss,
            "val_top1": val.top1,
            "val_top5": val.top5,
            "val_images": val.count,
            "lr": self.optimizer.param_groups[0]["lr"],
            "epoch_time_s": seconds,
            "images_per_s": images_per_s,
            "skipped_images": train.skipped + val.skipped,
        }

    def _check_unreadable(self, train: TrainMeters, val: EvalResult) -> None:
        skipped = train.skipped + val.skipped
        seen = skipped + train.count + val.count
        limit = self.tcfg.max_unreadable_fraction
        if skipped and skipped > limit * seen:
            raise PadlibError(
                f"{skipped} of {seen} images were unreadable this epoch (more than {limit:.1%}); "
                f"fix or remove the files named in the warnings under {self.cfg['data']['root']}"
            )

    def fit(self) -> str:
        """Train to the planned number of epochs (resuming if possible); returns the final status."""
        if self.preemption.installed:  # train() installed it when the process started
            return self._fit()
        self.preemption.install()
        try:
            return self._fit()
        finally:
            self.preemption.uninstall()

    def _fit(self) -> str:
        if self.run.exists():
            info = self.run.read_info()
            if info["status"] == "completed":
                diffs = config_diffs(info.get("config", {}), self.cfg)
                if diffs:
                    # a longer or changed schedule is another experiment from its first step on
                    raise PadlibError(
                        f"{self.run.path} holds a completed run with other settings ({diffs}); it is kept as it "
                        "is: start the new settings in another directory (hydra.run.dir=...)"
                    )
                log.info(f"{self.run.path}: run already completed ({info['epochs']} epochs); nothing to do")
                return "completed"
            check_same_experiment(info.get("config", {}), self.cfg, str(self.run.path))
        self._build()
        if self.run.exists():
            self._check_same_precision(self.run.read_info())
        pos, meters = self._restore()
        if self.dist.is_main:
            self._start_run_json(resumed=self.run.exists())
            self.run.truncate_metrics(pos.epoch)
        try:
            self._epochs(pos, meters)
        except NonFiniteLoss as e:
            self._mark("failed")
            raise PadlibError(
                f"{e}; the run is marked failed and {self.run.last_checkpoint} keeps the last good state; "
                "lower trainer.optim.lr or check the data"
            ) from None
        except BaseException as e:
            # a run interrupted by a signal stays resumable, however its launcher ends the process
            if not isinstance(e, SystemExit) and not self._handing_off:
                self._mark("failed")
            raise
        self._mark("completed")
        return "completed"

    def _check_same_precision(self, info: Mapping[str, Any]) -> None:
        # trainer.amp=auto depends on the device, which may change between a run and its resumption
        stored, now = info.get("precision"), precision_name(self.amp_dtype)
        if stored is not None and stored != now:
            raise PadlibError(
                f"{self.run.path} was trained at {stored} and this job would continue at {now}; resume it with "
                f"trainer.amp={'none' if stored == 'fp32' else stored}"
            )

    def _mark(self, status: str) -> None:
        if self.dist.is_main and self.run.exists():
            self.run.update_info(status=status, updated=time.time())

    def _stop_poll(self, epoch: int, meters: TrainMeters) -> Callable[[], bool]:
        """What the loop asks before each step: has a preemption signal arrived?"""
        fault = self.fault
        if fault is None:
            return self.preemption.requested

        def poll() -> bool:
            fault.fire_at(epoch, meters.steps, self.dist.rank)
            return self.preemption.requested()

        return poll

    def _leave_mid_epoch(self, epoch: int, pos: Position, meters: TrainMeters) -> NoReturn:
        """A preemption signal stopped every rank at the same step: save where we are, record it in
        run.json, and leave once the checkpoint is on disk (``PreemptionHandler.hand_off``)."""
        pos.batch = meters.steps
        # the checkpoint keeps the sums of all ranks; on resume rank 0 carries them
        reduced = reduce_meters(meters, self.dist, self.device)
        rngs = gather_objects(rng_state(self.device), self.dist)
        # one rank's signal stopped them all: every rank records and exits with the same one
        signum = functools.reduce(strongest, gather_objects(self.preemption.received, self.dist))
        self._handing_off = True
        entry = {"signal": signal.Signals(signum).name, "epoch": epoch, "batch": pos.batch, "time": time.time(),
                 **slurm_job()}
        if self.dist.is_main:
            try:
                slow_storage_for_tests()
                save_checkpoint(self._state(pos, reduced, rngs), self.run.last_checkpoint)
                log.warning(f"saved a mid-epoch checkpoint (epoch {epoch}, batch {pos.batch})")
            except Exception as e:  # a full disk must not skip the hand-off's barriers: the other ranks wait there
                entry["checkpoint"] = f"not written ({e}); the job resumes from the one before"
                log.error(f"could not save the mid-epoch checkpoint: {e}; the job resumes from the one before")

        def record(how: str) -> None:
            info = self.run.read_info()
            self.run.update_info(status="interrupted", updated=time.time(),
                                 interruptions=[*info.get("interruptions", []), {**entry, "then": how}])

        self.preemption.hand_off(self.dist, signum, record)

    def _epochs(self, pos: Position, meters: TrainMeters) -> None:
        epochs = self.tcfg.epochs
        model = self._wrapped_model()
        writer = None
        if self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.run.tensorboard_dir))
        ctx = StepContext(self.optimizer, self.scheduler, self.scaler, self.criterion, self.device,
                          self.amp_dtype, self.channels_last, self.dist)
        show = self.dist.is_main and self.tcfg.progress
        log_every = self.tcfg.log_every
        try:
            for epoch in range(pos.epoch + 1, epochs + 1):
                self.sampler.set_epoch(epoch, pos.batch)
                start = time.perf_counter()
                progress = Progress(self.sampler.batches_per_epoch - pos.batch, f"epoch {epoch}/{epochs}", show,
                                    log_every)
                finished = train_one_epoch(model, self.train_loader, ctx, meters, progress,
                                           self._stop_poll(epoch, meters), check_every=log_every)
                progress.close()
                if not finished:
                    self._leave_mid_epoch(epoch, pos, meters)
                train_seconds = time.perf_counter() - start
                train = reduce_meters(meters, self.dist, self.device)
                # the bare model: val shards may differ in batch count, and DDP's forward is a collective;
                # rank 0's BN statistics are the ones the checkpoint keeps, so every rank uses them
                broadcast_buffers(self.model, self.dist)
                val = validate(self.model, self.val_loader, self.device, self.amp_dtype, self.dist,
                               self.channels_last)
                self._check_unreadable(train, val)
                row = self._epoch_row(epoch, train, val, time.perf_counter() - start,
                                      train.count / max(train_seconds, 1e-9))
                pos.epoch, pos.batch = epoch, 0
                is_best = val.top1 > pos.best_top1
                if is_best:
                    pos.best_top1, pos.best_epoch = val.top1, epoch
                rngs = gather_objects(rng_state(self.device), self.dist)
                if self.dist.is_main:
                    self.run.append_metrics(row)
                    for key, value in row.items():
                        if key != "epoch":
                            writer.add_scalar(key, value, epoch)
                    writer.flush()
                    if is_best:
                        self.run.write_predictions(val.pred, val.target, epoch)
                    self._save_epoch(pos, is_best, rngs)
                log.info(
                    f"epoch {epoch}/{epochs} train loss {row['train_loss']:.4f} top1 {row['train_top1']:.2f} | "
                    f"val loss {val.loss:.4f} top1 {val.top1:.2f} top5 {val.top5:.2f} | "
                    f"lr {row['lr']:.4g} {row['images_per_s']:.0f} img/s {row['epoch_time_s']:.1f}s"
                )
                meters = TrainMeters()
        finally:
            if writer is not None:
                writer.close()


def train(cfg: Mapping[str, Any]) -> str:
    """Run one training job from a resolved, plain-dict config; returns the final run status."""
    # First of all: a preemption signal while the job starts (joining the group, reading the data: minutes
    # on ImageNet) is kept, not fatal; the loop's first step then saves and leaves.
    preemption = PreemptionHandler().install()
    try:
        tcfg = read_trainer_config(cfg["trainer"])
        device = resolve_device(tcfg.device, "trainer.device")
        dist = init_distributed(device.type)
        device = dist.place(device)
        if not dist.is_main:
            logging.getLogger().setLevel(logging.WARNING)
        if tcfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to be deterministic
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        return Trainer(cfg, dist, device, tcfg, preemption).fit()
    finally:
        # SIGTERM stays ignored through the process group's teardown: after a hand-off, SLURM's or torchrun's
        # SIGTERM would otherwise turn a clean exit into 143
        shutdown()
        preemption.uninstall()

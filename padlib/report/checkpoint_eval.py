"""Re-evaluate many checkpoints of a sweep: the engine under the checkpoint-based Tables 2/3 and the
test-size report.

Results come from the cache next to each run (``eval_cache``) where they can; the others are evaluated
with the training code's own ``loop.validate`` under ``torch.inference_mode`` (channels_last and
autocast on CUDA), one progress bar over all of them. Under ``torchrun`` every rank evaluates every
checkpoint on its own shard of the val set (``loaders.ShardSampler``: each image exactly once, as in
training) and rank 0 alone reads and writes the cache.

The integrity check compares a checkpoint re-evaluated on its run's own val set at its own precision
with the val top-1 the run logged for it: equal on CPU, within a tolerance elsewhere.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from padlib.checkpoint import load_checkpoint
from padlib.engine.progress import Progress
from padlib.errors import PadlibError
from padlib.provenance import device_name
from padlib.report.collect import Run
from padlib.report.eval_cache import (
    CACHE_DIR,
    EvalRecord,
    checkpoint_key,
    file_digest,
    read_cached,
    write_cached,
)
from padlib.report.weights import (
    EvalOptions,
    ValSets,
    Weights,
    data_config,
    eval_precision,
    load_model,
    weights_of_run,
)

# Integrity on a GPU (or of numbers logged on one): cuDNN kernels and another batch split move a few
# predictions, so a re-evaluated top-1 may differ from the logged one by this much (percentage points).
GPU_TOLERANCE = 0.1


@dataclass
class CheckpointEvalOptions(EvalOptions):
    """``EvalOptions`` (``paddings`` unused: each checkpoint is tested with its training padding) plus the val
    set as a dataset name or ImageFolder root, the cache policy and the integrity tolerance off CPU."""

    amp: str = "none"  # fp32 unless asked: numbers comparable across runs trained at any precision
    data: str | None = None
    recompute: bool = False
    tolerance: float = GPU_TOLERANCE


@dataclass
class CheckpointJob:
    """One checkpoint file of a run, to be evaluated on one val set at one test size in one padding."""

    run: Run
    weights: Weights  # ``weights.checkpoint`` is the file
    epoch: int | None  # the epoch of an epoch_NNN.pt; None for best.pt (its epoch is read from the file)
    val: dict[str, Any]  # the data config of the val set, test size included
    own_val: bool  # the run's own val set and size: its logged val top-1 is comparable
    padding: str  # the test padding's label (cross-testing); the training padding's otherwise

    @property
    def own_padding(self) -> bool:
        """Tested in the padding it was trained in."""
        return self.padding == self.weights.train_padding

    @property
    def size(self) -> int:
        """The side of the test crop."""
        return int(self.val["image_size"])

    @property
    def file(self) -> str:
        """The checkpoint's path inside the run directory, for messages."""
        return str(self.weights.checkpoint.relative_to(self.run.rundir.path))


@dataclass
class CheckpointResults:
    """Every job's record (None where its checkpoint could not be evaluated) and how it went."""

    records: list[EvalRecord | None]
    precisions: list[str]  # what each job was evaluated at
    fell_back: list[Weights] = field(default_factory=list)  # asked for their training precision, got fp32
    warnings: list[str] = field(default_factory=list)
    evaluated: int = 0  # checkpoint evaluations run now (the rest came from the cache)
    cached: int = 0
    images: int = 0  # val images scored now, all ranks together
    seconds: float = 0.0
    device: str = "cpu"
    is_main: bool = True  # rank 0 (or the only process): the one that writes reports

    def summary(self) -> str:
        """One line: how many evaluations, from the cache or not, and the throughput."""
        total = len(self.records)
        if not self.evaluated:
            return f"all {total} checkpoint evaluations served from the cache (--recompute to redo them)"
        rate = self.images / max(self.seconds, 1e-9)
        return (f"{self.evaluated} checkpoint evaluation(s) on {self.device} in {self.seconds:.1f} s: {self.images} "
                f"images at {rate:.0f} images/s; {self.cached} of {total} from the cache")


def val_config(data_cfg: Mapping[str, Any], opts: CheckpointEvalOptions | None = None, size: int | None = None,
               resize_ratio: float | None = None) -> dict[str, Any]:
    """The data config of the val set to test a run on: its own (``opts`` None), or with the options' dataset,
    root and subset, at crop ``size`` with the short side resized to ``size * resize_ratio`` (default: the
    run's own ratio). Image and resize sizes are always explicit, so equal configs mean equal val sets."""
    from padlib.data import DATASETS
    from padlib.data.config import read_config

    opts = opts or CheckpointEvalOptions()
    cfg = data_config(data_cfg, opts.data_root, opts.limit)
    if opts.data:
        if opts.data in DATASETS:
            cfg["name"] = opts.data
        else:  # a path: an ImageFolder tree
            cfg["name"], cfg["root"] = "folder", opts.data
    # the train split is never used; and a missing dataset must be an error here, not generated data
    for key in ("train_subset", "fallback"):
        cfg.pop(key, None)
    c = read_config(cfg)
    if size is not None:
        ratio = c.resize_size / c.image_size if resize_ratio is None else resize_ratio
        cfg["image_size"], cfg["resize_size"] = size, max(size, round(size * ratio))
    else:
        cfg["image_size"], cfg["resize_size"] = c.image_size, c.resize_size
    return cfg


def checkpoint_job(run: Run, checkpoint: Path, epoch: int | None, opts: CheckpointEvalOptions,
                   size: int | None = None, resize_ratio: float | None = None,
                   padding: str | None = None) -> CheckpointJob:
    """The job of evaluating ``checkpoint`` of ``run`` in ``padding`` (default: its training padding);
    PadlibError when the run cannot be rebuilt."""
    weights = weights_of_run(run)
    weights = replace(weights, checkpoint=checkpoint, name=f"{run.name}/{checkpoint.name}")
    val = val_config(weights.data_cfg, opts, size, resize_ratio)
    return CheckpointJob(run, weights, epoch, val, val == val_config(weights.data_cfg),
                         padding or weights.train_padding)


def val_description(jobs: list[CheckpointJob], sizes: bool = True) -> str:
    """The val set(s) of ``jobs`` as a table note says it: each run's own, or the one given; with ``sizes``,
    the test crop(s) and resize(s)."""
    def name(val: Mapping[str, Any]) -> str:
        root = f" at {val['root']}" if val.get("root") else ""
        subset = f" ({val['val_subset']} images)" if val.get("val_subset") else ""
        return f"{val['name']}{root}{subset}"

    sizes_apart = ("image_size", "resize_size")
    own = bool(jobs) and all(_without(job.val, sizes_apart) == _without(val_config(job.weights.data_cfg), sizes_apart)
                             for job in jobs)
    text = "each run's own val set" if own else ", ".join(sorted({name(job.val) for job in jobs}))
    if sizes:
        crops = sorted({(job.size, int(job.val["resize_size"])) for job in jobs})
        text += " (" + ", ".join(f"{s}x{s} centre crop after resizing the short side to {r} px" for s, r in crops) + ")"
    return text


def _without(cfg: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k not in keys}


@contextmanager
def eval_processes(device_name: str) -> Iterator[tuple[torch.device, Any]]:
    """(device, DistInfo) for evaluating: under torchrun, this rank's GPU (or CPU with gloo) in the job's
    process group, left again at the end."""
    from padlib.engine.device import resolve_device
    from padlib.engine.distributed import init_distributed, shutdown

    device = resolve_device(device_name, "--device")
    dist = init_distributed(device.type)
    device = dist.place(device)
    try:
        yield device, dist
    finally:
        shutdown()


def _plan(jobs: list[CheckpointJob], precisions: list[str], recompute: bool, valsets: ValSets, device: str,
          warnings: list[str]) -> tuple[dict[int, EvalRecord], list[list[int]], dict[int, dict[str, Any]]]:
    """(cached records by job, groups of jobs to evaluate once each, cache keys by job). Jobs with one key
    (the same checkpoint content, padding, val set, size, precision) are one evaluation: best.pt and the
    epoch_NNN.pt it copies, or the same checkpoint asked for twice."""
    cached, keys, todo = {}, {}, []
    digests: dict[Path, str | None] = {}
    for i, job in enumerate(jobs):
        path = job.weights.checkpoint
        if path not in digests:
            try:
                digests[path] = file_digest(path, job.run.rundir.path / CACHE_DIR)
            except OSError as e:
                why = "checkpoint not found" if isinstance(e, FileNotFoundError) else (e.strerror or str(e))
                warnings.append(f"{job.weights.name}: left out ({path}: {why})")
                digests[path] = None
        if digests[path] is None:
            continue
        keys[i] = checkpoint_key(digests[path], job.val, valsets.fingerprint(job.val), job.padding, precisions[i],
                                 device, (valsets.batch_size, valsets.dist.world_size if valsets.dist else 1))
        record = None if recompute else read_cached(job.run.rundir.path, keys[i])
        if record is not None:
            cached[i] = record
        else:
            todo.append(i)
    by_key: dict[str, list[int]] = {}
    for i in sorted(todo, key=lambda i: jobs[i].epoch is None):  # an epoch file first, best.pt joins it
        by_key.setdefault(json.dumps(keys[i], sort_keys=True, default=str), []).append(i)
    groups = list(by_key.values())
    # one checkpoint load serves all its sizes and paddings: keep a file's groups together, in sweep order
    order = {id(job.run): k for k, job in reversed(list(enumerate(jobs)))}
    groups.sort(key=lambda g: (order[id(jobs[g[0]].run)], str(jobs[g[0]].weights.checkpoint), g[0]))
    return cached, groups, keys


def evaluate_checkpoints(jobs: list[CheckpointJob], opts: CheckpointEvalOptions) -> CheckpointResults:
    """Evaluate every job (or take it from the cache); a checkpoint that fails is a warning, a val set that
    fails is an error."""
    from padlib.engine.amp import PRECISION_DTYPES
    from padlib.engine.distributed import broadcast_object

    with eval_processes(opts.device) as (device, dist):
        chosen = [eval_precision(job.weights, opts.amp, device) for job in jobs]  # a bad --amp ends it here
        precisions = [p for p, _ in chosen]
        results = CheckpointResults([None] * len(jobs), precisions, device=device.type, is_main=dist.is_main)
        results.fell_back = [job.weights for job, (_, fell) in zip(jobs, chosen, strict=True) if fell]
        valsets = ValSets(opts.batch_size, opts.workers, dist, pin_memory=device.type == "cuda")
        # rank 0 decides what is cached: ranks must run the same evaluations (their collectives pair up)
        plan = (_plan(jobs, precisions, opts.recompute, valsets, device_name(device), results.warnings)
                if dist.is_main else None)
        cached, groups, keys = broadcast_object(plan, dist)
        for i, record in cached.items():
            results.records[i] = record
        results.cached = len(cached)
        for group in groups:  # first: a val set that cannot be built ends it before any checkpoint is read
            _check_val_set(jobs[group[0]], valsets)
        bar = _CheckpointBar(len(groups), dist)
        loaded: tuple[Path, dict[str, Any], bool] | None = None
        try:
            for group in groups:
                job = jobs[group[0]]
                try:
                    if loaded is None or loaded[0] != job.weights.checkpoint:
                        loaded = None  # free the previous checkpoint before reading the next
                        path = job.weights.checkpoint
                        loaded = (path, load_checkpoint(path),
                                  # rewritten since the plan hashed it: these numbers are not that key's
                                  dist.is_main and file_digest(path, job.run.rundir.path / CACHE_DIR)
                                  != keys[group[0]]["checkpoint_sha256"])
                    record = _score_job(job, loaded[1], valsets, device, dist, PRECISION_DTYPES[precisions[group[0]]],
                                       bar)
                except PadlibError as e:  # this file only: unreadable, or weights that do not fit the model
                    results.warnings.append(f"{job.weights.name}: left out ({e})")
                    bar.finish()
                    continue
                results.evaluated += 1
                results.images += record.count
                if loaded[2]:
                    results.warnings.append(f"{job.weights.checkpoint}: rewritten while being evaluated; its "
                                            "numbers are the new file's and are not cached")
                for i in group:
                    results.records[i] = record
                    if dist.is_main and not loaded[2]:
                        _store(jobs[i], keys[i], record, results.warnings)
                bar.finish()
        finally:
            bar.close()
            results.seconds = time.perf_counter() - bar.start
    return results


class _CheckpointBar(Progress):
    """The progress bar over all checkpoint evaluations (rank 0's): each val batch moves it by its share of
    the checkpoint's images, so images/s and the ETA stay live inside a long evaluation. To ``loop.validate``
    it is an engine ``Progress`` that only counts."""

    def __init__(self, total: int, dist: Any) -> None:
        super().__init__(total, "checkpoints", enabled=False)
        self.world_size, self.done, self.share, self.name = dist.world_size, 0, 0.0, ""
        self.tqdm = tqdm(total=total, desc="checkpoints", file=sys.stderr, disable=not dist.is_main or not total,
                         dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 30,
                         bar_format="{l_bar}{bar}| {n:.0f}/{total} checkpoints [{elapsed}<{remaining}{postfix}]")

    def begin(self, name: str, images: int) -> None:
        """A checkpoint of this rank's ``images`` val images starts."""
        self.share, self.name = 1 / max(images, 1), name
        self.tqdm.set_postfix_str(name, refresh=False)

    def update(self, images: int, **stats: float) -> None:
        """One val batch of ``images`` done on this rank."""
        super().update(images)
        rate = self.images_per_s * self.world_size  # the ranks' shards are alike in size and speed
        self.tqdm.set_postfix_str(f"{self.name}, {rate:.0f} img/s", refresh=False)
        self.tqdm.update(images * self.share)

    def finish(self) -> None:
        """A checkpoint is done (or left out)."""
        self.done += 1
        self.tqdm.n = self.done
        self.tqdm.refresh()

    def close(self) -> None:
        """Remove nothing: the finished bar stays as the record of the evaluation."""
        self.tqdm.close()


def _check_val_set(job: CheckpointJob, valsets: ValSets) -> None:
    """Build the job's val set; PadlibError when it cannot be, or its classes are not the run's."""
    bundle, _ = valsets.get(job.val)
    if job.weights.num_classes not in (None, bundle.num_classes):
        raise PadlibError(f"{job.val.get('root') or job.val['name']}: its val set has {bundle.num_classes} classes, "
                          f"{job.run.name} was trained on {job.weights.num_classes}; give a val set of its classes")


def _score_job(job: CheckpointJob, ckpt: Mapping[str, Any], valsets: ValSets, device: torch.device, dist: Any,
              dtype: torch.dtype | None, bar: _CheckpointBar) -> EvalRecord:
    """Score the job's weights on its val set."""
    from padlib.engine.loop import validate

    bundle, loader = valsets.get(job.val)
    shown = "" if job.own_padding else f" test={job.padding}"
    bar.begin(f"{job.weights.name} {job.size}px{shown}", len(loader.sampler))
    model = load_model(job.weights, ckpt, job.padding, bundle.num_classes)
    channels_last = device.type == "cuda"  # on CPU it changes the summation order: no longer the logged numbers
    model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            res = validate(model, loader, device, dtype, dist, channels_last, bar)
    except RuntimeError as e:  # e.g. a test size too small for the arch's pooling
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise PadlibError(f"could not be evaluated at {job.size}px ({first})") from None
    epoch = ckpt.get("epoch") if isinstance(ckpt.get("epoch"), int) else job.epoch
    return EvalRecord(res.top1, res.top5, res.loss, res.count, res.skipped, epoch, device.type,
                      time.perf_counter() - start)


def _store(job: CheckpointJob, key: dict[str, Any], record: EvalRecord, warnings: list[str]) -> None:
    """Cache ``record``; a run directory that cannot be written (a shared, read-only sweep) only costs time."""
    try:
        write_cached(job.run.rundir.path, key, record)
    except OSError as e:
        message = f"results not cached in {job.run.rundir.path} ({e.strerror or e}); a next call evaluates again"
        if message not in warnings:
            warnings.append(message)


# --- integrity -----------------------------------------------------------------------------------

def logged_top1(run: Run, epoch: int | None) -> float | None:
    """The val top-1 ``run`` logged at the end of ``epoch`` (None: not logged)."""
    return next((float(r["val_top1"]) for r in run.metrics if int(r["epoch"]) == epoch), None)


@dataclass
class Integrity:
    """Re-evaluated against logged val top-1, per checkable checkpoint, and what could not be checked."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # job names and why

    @property
    def mismatches(self) -> list[dict[str, Any]]:
        """The rows that do not reproduce their logged number."""
        return [r for r in self.rows if not r["ok"]]

    def warning(self) -> str | None:
        """The warning naming every checkpoint that does not reproduce its logged val top-1, or None."""
        bad = self.mismatches
        if not bad:
            return None
        listing = "; ".join(f"{r['run']} {r['checkpoint']} (epoch {r['epoch']}): logged {r['logged_top1']:.3f}, "
                            f"re-evaluated {r['top1']:.3f}" for r in bad)
        return (f"integrity check: {len(bad)} of {len(self.rows)} checkpoint(s) do not reproduce the val top-1 "
                f"their run logged: {listing}. A changed or corrupt file, a wrong padding or val set (shard) "
                "would do this; their table cells are the re-evaluated numbers")

    def note(self) -> str:
        """One table note: what was checked and how it came out."""
        if not self.rows:
            text = "integrity check: no checkpoint could be compared with a logged val top-1"
        else:
            exact = sum(r["tolerance"] == 0 for r in self.rows)
            how = ("exactly (on CPU)" if exact == len(self.rows) else
                   f"exactly on CPU ({exact}), within {max(r['tolerance'] for r in self.rows):g} points "
                   f"elsewhere ({len(self.rows) - exact})")
            bad = len(self.mismatches)
            text = (f"integrity check: {len(self.rows) - bad} of {len(self.rows)} checkpoints re-evaluated on their "
                    f"run's own val set at its own precision reproduce the val top-1 logged in training {how}"
                    + (f"; {bad} do not (see the warnings above)" if bad else ""))
        if self.unchecked:
            text += f"; not comparable, so not checked: {len(self.unchecked)} ({_examples(self.unchecked)})"
        return text


def _examples(items: list[str], n: int = 3) -> str:
    return "; ".join(items[:n]) + (f"; and {len(items) - n} more" if len(items) > n else "")


def integrity_check(jobs: list[CheckpointJob], results: CheckpointResults, tolerance: float) -> Integrity:
    """Compare each job evaluated on its run's own val set at the run's precision with its logged val top-1:
    exactly when both numbers were measured on a CPU, within ``tolerance`` points otherwise."""
    out = Integrity()
    for job, record, precision in zip(jobs, results.records, results.precisions, strict=True):
        if record is None:
            continue
        epoch = job.epoch if job.epoch is not None else record.epoch
        logged = logged_top1(job.run, epoch)
        why = ("another val set or test size" if not job.own_val else
               f"tested in {job.padding}, trained in {job.weights.train_padding}" if not job.own_padding else
               f"evaluated at {precision}, trained at {job.run.precision} (--amp run compares them)"
               if precision != job.run.precision else
               f"no logged val top-1 for epoch {epoch}" if logged is None else None)
        if why is not None:
            out.unchecked.append(f"{job.weights.name} at {job.size}px: {why}")
            continue
        on_cpu = record.device == "cpu" and str(job.run.info.get("device", "cpu")).startswith("cpu")
        tol = 0.0 if on_cpu else tolerance
        out.rows.append({"run": job.run.name, "checkpoint": job.file, "epoch": epoch, "logged_top1": logged,
                         "top1": record.top1, "diff": record.top1 - logged, "tolerance": tol,
                         "ok": abs(record.top1 - logged) <= tol})
    return out

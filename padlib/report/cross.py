"""Table 4 of the paper: each run's best weights evaluated under every padding mode, top-1 by
(arch, train padding, test padding), diff against testing with the training padding. A sweep's runs are
evaluated through ``checkpoint_eval`` (cached, sharded under torchrun); a single weight file directly."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from tqdm import tqdm

from padlib.engine.amp import PRECISION_DTYPES
from padlib.engine.device import resolve_device
from padlib.errors import PadlibError
from padlib.report.checkpoint_eval import CheckpointEvalOptions, checkpoint_job, evaluate_checkpoints
from padlib.report.collect import Sweep, group_order
from padlib.report.paper import CROSS_CSV, paper_summary
from padlib.report.summary import RunValue, add_paper_columns, summarize_groups, summary_table
from padlib.report.weights import (
    EvalOptions,
    ValSets,
    Weights,
    data_config,
    eval_precision,
    load_model,
    precision_note,
    test_paddings,
    weights_of_file,
)
from padlib.report.writers import Table, write_all

KEYS = ("arch", "train_padding", "test_padding")


@dataclass
class CrossResult:
    """Top-1 of every (weights, test padding) evaluated, and what went wrong on the way."""

    values: dict[tuple[str, str, str], list[RunValue]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dataset: str = ""
    is_main: bool = True  # the process that writes the reports (rank 0 under torchrun)
    summary: str = ""  # how the evaluations went: how many from the cache, images/s


def cross_evaluate(weights: list[Weights], opts: EvalOptions) -> CrossResult:
    """Evaluate each set of weights under each test padding; a file that fails is a warning, not an end."""
    from padlib.checkpoint import load_checkpoint
    from padlib.engine.loop import validate

    device = resolve_device(opts.device, "--device")
    precisions = [eval_precision(w, opts.amp, device) for w in weights]  # first: a bad --amp ends it here
    paddings = test_paddings(opts.paddings, [w.train_padding for w in weights])
    valsets = ValSets(opts.batch_size, opts.workers)
    result = CrossResult()
    used: dict[str, str] = {}
    fell_back: list[Weights] = []
    bar = tqdm(total=len(weights) * len(paddings), desc="cross-testing", unit="eval", file=sys.stderr)
    for w, (precision, fell) in zip(weights, precisions, strict=True):
        top1: dict[str, float] = {}
        dtype = PRECISION_DTYPES[precision]
        try:
            ckpt = load_checkpoint(w.checkpoint)  # first: a bad file should not cost building the val set
            bundle, loader = valsets.get(data_config(w.data_cfg, opts.data_root, opts.limit))
            for padding in paddings:
                bar.set_postfix_str(f"{w.name} test={padding}")
                model = load_model(w, ckpt, padding, bundle.num_classes).to(device)
                top1[padding] = validate(model, loader, device, dtype).top1
                bar.update(1)
        except PadlibError as e:
            result.warnings.append(f"{w.name}: left out of cross-testing: {e}")
            bar.update(len(paddings) - len(top1))
            continue
        result.dataset = result.dataset or bundle.name
        used[w.name] = precision
        if fell:
            fell_back.append(w)
        for padding, value in top1.items():
            result.values.setdefault((w.group, w.train_padding, padding), []).append(RunValue(w.name, w.seed, value))
    bar.close()
    if not result.values:
        raise PadlibError("no weights could be evaluated: " + "; ".join(result.warnings))
    if fell_back:
        result.warnings.append("evaluated in fp32, not at the training precision (fp16 autocast needs CUDA; "
                               f"this is {device}): "
                               + ", ".join(f"{w.name} ({w.precision})" for w in fell_back))
    result.notes.append(precision_note(used, fell_back, opts.amp, "cross-testing"))
    if opts.limit:
        result.notes.append(f"evaluated on a class-balanced subset of {opts.limit} val images (--limit)")
    return result


def same_padding_reference(key: tuple[str, ...]) -> tuple[str, ...] | None:
    """Table 4 compares each test padding with testing in the training padding."""
    arch, train, test = key
    return None if train == test else (arch, train, train)


def cross_table(result: CrossResult, paper_dir: Path | None = None) -> Table:
    """The cross-testing table, rows in the paper's order, same-padding testing first."""
    ordered = {k: result.values[k] for k in sorted(result.values, key=lambda k: (
        group_order(k[:2]), k[2] != k[1], group_order(k[::2])))}
    rows = summarize_groups(ordered, KEYS, same_padding_reference, paired=True)
    add_paper_columns(rows, paper_summary(paper_dir, CROSS_CSV), KEYS, ("mean", "diff"))
    notes = [*result.notes,
             "diff: mean minus the mean of the same weights tested with their training padding; 95% CI, "
             "p and MDE from the paired t-test over runs (the same weights are measured under both paddings; "
             "MDE from the sd of the paired differences and the number of pairs)."]
    if any(r.get("paper_mean") is not None for r in rows):
        notes.append("paper columns: the paper's Table 4 (resnet50, ImageNet-1k)")
    title = f"Cross-testing: val top-1 (%) with another padding at test time, {result.dataset} (paper Table 4)"
    return summary_table(title, rows, KEYS, paper_fields=("mean", "diff"), notes=notes)


def write_cross(result: CrossResult, out_dir: Path, paper_dir: Path | None = None,
                preamble: str = "") -> list[Path]:
    """Write cross.csv, cross.md and cross.tex."""
    return write_all([cross_table(result, paper_dir)], out_dir, "cross", ["cross.csv"], preamble)


def cross_test_sweep(sweep: Sweep, opts: EvalOptions, recompute: bool = False) -> CrossResult:
    """Cross-test the best checkpoint of every run of ``sweep``: through ``checkpoint_eval``, so under torchrun
    each rank scores its shard of the val set, and each result is cached with its run (the diagonal is the
    same evaluation as ``tables --from-checkpoints`` makes of best.pt, and is made once)."""
    base = CheckpointEvalOptions(**{f.name: getattr(opts, f.name) for f in fields(EvalOptions)}, recompute=recompute)
    bases, warnings = [], list(sweep.warnings)
    for run in sweep.runs:
        try:
            bases.append(checkpoint_job(run, run.rundir.best_checkpoint, None, base))
        except PadlibError as e:
            warnings.append(f"{run.name}: left out of cross-testing: {e}")
    if not bases:
        raise PadlibError("no run can be cross-tested: " + "; ".join(warnings))
    paddings = test_paddings(opts.paddings, [job.weights.train_padding for job in bases])
    jobs = [replace(job, padding=padding) for job in bases for padding in paddings]
    results = evaluate_checkpoints(jobs, base)
    result = CrossResult(warnings=[*warnings[len(sweep.warnings):], *results.warnings], dataset=sweep.dataset,
                         is_main=results.is_main, summary=results.summary())
    used: dict[str, str] = {}  # tables and messages name a run, not its best.pt
    for job, record, precision in zip(jobs, results.records, results.precisions, strict=True):
        if record is None:
            continue
        w = job.weights
        used[job.run.name] = precision
        result.values.setdefault((w.group, w.train_padding, job.padding), []).append(
            RunValue(job.run.name, w.seed, record.top1))
    if not result.values:
        raise PadlibError("no weights could be evaluated: " + "; ".join(result.warnings))
    fell_back = list({job.run.name: replace(job.weights, name=job.run.name) for job in jobs
                      if job.weights in results.fell_back and job.run.name in used}.values())
    if fell_back:
        result.warnings.append("evaluated in fp32, not at the training precision (fp16 autocast needs CUDA; "
                               f"this is {results.device}): " + ", ".join(f"{w.name} ({w.precision})" for w in fell_back))
    result.notes = [*sweep.notes(), precision_note(used, fell_back, opts.amp, "cross-testing")]
    if opts.limit:
        result.notes.append(f"evaluated on a class-balanced subset of {opts.limit} val images (--limit)")
    return result


def cross_test_checkpoint(path: Path, arch: str | None, train_padding: str | None, data: str | None,
                          opts: EvalOptions, num_classes: int | None = None, source: str = "auto") -> CrossResult:
    """Cross-test one checkpoint file under each test padding."""
    from padlib.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    weights, notes = weights_of_file(path, ckpt, arch, train_padding, data, opts.data_root, num_classes, source)
    del ckpt  # cross_evaluate reloads it; keep one copy of a large file in memory
    result = cross_evaluate([weights], opts)
    result.warnings[:0] = notes
    return result

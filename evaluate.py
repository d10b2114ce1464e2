#!/usr/bin/env python
"""Reports of a padding sweep: the paper's Tables 1-4 and Figures 1, 3 and 4, plus checks of printed tables.

    python evaluate.py tables  SWEEP_DIR [--out DIR] [--include-incomplete]   # Tables 2 and 3
    python evaluate.py tables  SWEEP_DIR --from-checkpoints [--data-root PATH] # ... from re-evaluated checkpoints
    python evaluate.py resolution SWEEP_DIR --sizes 160,224,288                # top-1 against test size
    python evaluate.py cross   SWEEP_DIR [--data-root PATH] [--paddings ...]  # Table 4
    python evaluate.py cross   --checkpoint FILE --data-root PATH [--arch NAME]  # Table 4 for one weight file
    python evaluate.py figures SWEEP_DIR [--pairs zero:partial] [--layers ...]
    python evaluate.py timing  BENCH_CSV                                       # Table 1 (the benchmark)
    python evaluate.py timing  SWEEP_DIR                                       # ... from the runs' own logs
    python evaluate.py audit   TABLE.csv [...]                                 # recompute a table's summary cells
    python evaluate.py all     SWEEP_DIR                                       # tables, timing, cross, figures
    python evaluate.py plan    [--effect D ... --std S ...] [--seeds N]        # seeds needed for 80% power

``eval FILE`` is another name for ``cross --checkpoint FILE``. Every subcommand that runs models takes the
same evaluation options (--data-root, --batch-size, --workers, --device). Reports go to --out (default
results/<name>/). Errors are one line on stderr and exit status 2; ``all`` exits 1 when some reports failed
and others were written.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from padlib.errors import PadlibError

if TYPE_CHECKING:
    from padlib.report.collect import Sweep

REPO = Path(__file__).resolve().parent


def default_out(args: argparse.Namespace, source: Path) -> Path:
    """--out, or results/<name of the sweep or file>/ in the repository."""
    return Path(args.out) if args.out else REPO / "results" / (source.stem if source.is_file() else source.resolve().name)


def warn(messages: list[str]) -> None:
    """Print warnings, one line each, on stderr (under torchrun: rank 0 only)."""
    from padlib.engine.distributed import env_rank

    for m in messages if env_rank() == 0 else []:
        print(f"warning: {m}", file=sys.stderr)


def wrote(paths: list[Path]) -> None:
    """Tell the user which files were written."""
    for p in paths:
        print(f"wrote {p}")


def load_sweep_of(args: argparse.Namespace, need_metrics: bool = True) -> Sweep:
    """SWEEP_DIR's usable runs, with its warnings and notes printed."""
    from padlib.report.collect import load_sweep

    sweep = load_sweep(args.sweep, include_incomplete=args.include_incomplete, dataset=args.dataset,
                       need_metrics=need_metrics)
    warn(sweep.warnings)
    for note in sweep.notes():
        print(note)
    print(f"{args.sweep}: {len(sweep.runs)} runs of {sweep.dataset}")
    return sweep


def options(cls: type, args: argparse.Namespace) -> Any:
    """An options dataclass of padlib.report (``EvalOptions``, ``CheckpointEvalOptions``, ``FigureOptions``)
    from the command line's options of the same names, checked first."""
    for name, low in (("batch_size", 1), ("workers", 0), ("limit", 1)):
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise PadlibError(f"--{name.replace('_', '-')} {value}: must be at least {low}")
    tolerance = getattr(args, "tolerance", 0.0)
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise PadlibError(f"--tolerance {tolerance}: must be a number >= 0 (top-1 points)")
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})


def cmd_tables(args: argparse.Namespace, sweep: Sweep | None = None) -> int:
    """Tables 2 and 3, from the logged accuracies or (--from-checkpoints) from re-evaluated checkpoints."""
    if getattr(args, "from_checkpoints", False):
        return _tables_from_checkpoints(args)
    if args.command == "tables":
        given = [name for name, value in (("--data", args.data), ("--data-root", args.data_root),
                                          ("--limit", args.limit), ("--recompute", args.recompute)) if value]
        if given:
            raise PadlibError(f"{', '.join(given)}: for re-evaluated checkpoints only; add --from-checkpoints")
    from padlib.report.tables import write_tables

    sweep = sweep or load_sweep_of(args)
    wrote(write_tables(sweep, default_out(args, Path(args.sweep)), args.paper_dir))
    return 0


def _report_evaluation(results) -> bool:
    """Print how the re-evaluation went; True on the process that writes the reports (rank 0)."""
    if results.is_main:
        warn(results.warnings)
        print(results.summary())
    return results.is_main


def _tables_from_checkpoints(args: argparse.Namespace) -> int:
    from padlib.report.checkpoint_eval import CheckpointEvalOptions
    from padlib.report.checkpoint_tables import checkpoint_tables, write_checkpoint_tables

    opts = options(CheckpointEvalOptions, args)
    sweep = load_sweep_of(args, need_metrics=False)
    tables = checkpoint_tables(sweep, opts)
    if _report_evaluation(tables.results):
        warn([w for w in tables.warnings if w not in tables.results.warnings])
        wrote(write_checkpoint_tables(sweep, tables, default_out(args, Path(args.sweep)), args.paper_dir))
    return 0


def cmd_resolution(args: argparse.Namespace) -> int:
    """Top-1 of each run's best checkpoint against the test image size."""
    from padlib.report.checkpoint_eval import CheckpointEvalOptions
    from padlib.report.resolution import parse_ratio, parse_sizes, resolution_report, write_resolution

    sizes, ratio = parse_sizes(args.sizes), parse_ratio(args.resize_ratio)
    opts = options(CheckpointEvalOptions, args)
    sweep = load_sweep_of(args, need_metrics=False)
    report = resolution_report(sweep, opts, sizes, ratio)
    if _report_evaluation(report.results):
        warn([w for w in report.warnings if w not in report.results.warnings])
        wrote(write_resolution(report, default_out(args, Path(args.sweep))))
    return 0


def cmd_cross(args: argparse.Namespace, sweep: Sweep | None = None) -> int:
    """Table 4: every run's best checkpoint (SWEEP_DIR), or one weight file (--checkpoint FILE, or ``eval FILE``:
    ours, a torchvision weight file or the paper authors'), evaluated under every test padding."""
    from padlib.report.cross import cross_test_checkpoint, cross_test_sweep, write_cross
    from padlib.report.weights import EvalOptions

    if args.checkpoint:
        source = Path(args.checkpoint)
        result = cross_test_checkpoint(source, args.arch, args.train_padding, args.data, options(EvalOptions, args),
                                       args.num_classes, args.source)
    elif args.sweep:
        source = Path(args.sweep)
        sweep = sweep or load_sweep_of(args, need_metrics=False)
        result = cross_test_sweep(sweep, options(EvalOptions, args), args.recompute)
    else:
        raise PadlibError("give SWEEP_DIR, or --checkpoint FILE to cross-test one weight file")
    if result.is_main:
        warn(result.warnings)
        if result.summary:
            print(result.summary)
        wrote(write_cross(result, default_out(args, source), args.paper_dir))
    return 0


def cmd_figures(args: argparse.Namespace, sweep: Sweep | None = None) -> int:
    """Figures 1, 3 and 4, activation maps and the border-artifact score."""
    from padlib.report.figure_report import FigureOptions, make_figures

    sweep = sweep or load_sweep_of(args)
    report = make_figures(sweep, default_out(args, Path(args.sweep)), options(FigureOptions, args))
    warn(report.warnings)
    if report.lines:
        print("\n".join(report.lines))
    wrote(report.paths)
    return 0


def cmd_timing(args: argparse.Namespace) -> int:
    """Table 1: from the padding benchmark's CSV, or from a sweep's own logs (a folder)."""
    src = Path(args.source)
    if src.is_dir():
        args.sweep = args.source
        return cmd_run_timing(args)
    from padlib.report.timing import write_timing

    wrote(write_timing(src, default_out(args, src), args.paper_dir))
    return 0


def cmd_run_timing(args: argparse.Namespace, sweep: Sweep | None = None) -> int:
    """Table 1 from the training loop's own logs: images/s and epoch time per padding, against zero."""
    from padlib.report.run_timing import write_run_timing

    sweep = sweep or load_sweep_of(args)
    wrote(write_run_timing(sweep, default_out(args, Path(args.sweep))))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Recompute the summary cells of printed tables."""
    from padlib.report.cell_check import audit_table, findings_table, format_audit
    from padlib.report.writers import write_all

    audits, failed = [], 0
    for path in args.tables:
        try:
            audits.append(audit_table(path))
        except PadlibError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    if not audits:
        return 2
    print("\n".join(format_audit(a) for a in audits))
    if args.out:
        wrote(write_all([findings_table(audits)], Path(args.out), "audit", ["audit.csv"]))
    found = sum(len(a.findings) for a in audits)
    return 1 if failed or (args.strict and found) else 0


def _plan_numbers(texts: list[str], option: str, positive: bool) -> list[float]:
    """The finite numbers given to ``option``: non-zero (an effect) or, with ``positive``, > 0 (a std)."""
    out = []
    for text in texts:
        try:
            value = float(text)
        except ValueError:
            raise PadlibError(f"{option} {text}: not a number") from None
        if not math.isfinite(value) or (value <= 0 if positive else value == 0):
            raise PadlibError(f"{option} {text}: must be {'a number > 0' if positive else 'a non-zero number'}")
        out.append(value)
    return out


def cmd_plan(args: argparse.Namespace) -> int:
    """Seeds per padding mode for 80% power: for the paper's own differences, or for a grid of D x S."""
    from padlib.report.plan import grid_plan_table, paper_plan_table
    from padlib.report.writers import to_markdown, write_all

    if args.effect or args.std:
        if not (args.effect and args.std):
            raise PadlibError("give both --effect D and --std S (the seed-to-seed std of each mode), "
                              "or neither for the paper's own differences")
        if args.seeds < 2:
            raise PadlibError(f"--seeds {args.seeds}: needs at least 2 runs per mode")
        table = grid_plan_table(_plan_numbers(args.effect, "--effect", False),
                                _plan_numbers(args.std, "--std", True), args.seeds)
    else:
        table = paper_plan_table(args.paper_dir)
    print(to_markdown(table), end="")
    if args.out:
        wrote(write_all([table], Path(args.out), "plan", ["plan.csv"]))
    return 0


def cmd_all(args: argparse.Namespace) -> int:
    """Tables, cross-testing and figures of one sweep, loaded once; a failing part does not stop the others."""
    parts: list[tuple[str, Callable[[argparse.Namespace, Sweep], int], bool]] = [
        ("tables", cmd_tables, True), ("timing", cmd_run_timing, True), ("cross", cmd_cross, False),
        ("figures", cmd_figures, True)]
    from padlib.engine.distributed import env_rank

    if env_rank() != 0:  # under torchrun the other ranks score their shards of cross-testing, nothing else
        parts = [part for part in parts if part[0] == "cross"]
    done, failed, sweep = [], [], None
    for name, fn, need_metrics in parts:
        print(f"== {name}")
        try:
            sweep = sweep or load_sweep_of(args, need_metrics)  # by the first part that can load it
            fn(args, sweep)
            done.append(name)
        except (PadlibError, OSError) as e:
            print(f"error: {name}: {e}", file=sys.stderr)
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}; written: {', '.join(done) or 'nothing'}", file=sys.stderr)
    return 0 if not failed else (1 if done else 2)


# --- the command line: option groups, each declared once, and the subcommands made of them ---

def _paddings(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        a, sep, b = item.partition(":")
        if not sep or not a.strip() or not b.strip():
            raise argparse.ArgumentTypeError(f"{item!r} is not A:B (e.g. zero:partial)")
        pairs.append((a.strip(), b.strip()))
    return pairs


def _output_args(p: argparse.ArgumentParser, out_help: str, paper: bool = True) -> None:
    p.add_argument("--out", help=out_help)
    if paper:
        p.add_argument("--paper-dir", type=Path, help="folder of the paper's tables (default: results/paper)")


def _sweep_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    p.add_argument("sweep", metavar="SWEEP_DIR", nargs="?" if optional else None,
                   help="folder holding run directories (any depth)")
    _output_args(p, "report folder (default: results/<sweep name>/)")
    p.add_argument("--include-incomplete", action="store_true",
                   help="also report runs whose status is not 'completed'")
    p.add_argument("--dataset", help="report only the runs of this dataset (needed when a sweep mixes several)")


def _eval_args(p: argparse.ArgumentParser) -> None:
    """The evaluation options: where the val data is and how models run over it (``weights.ValOptions``),
    the same for every subcommand that runs models."""
    p.add_argument("--data-root", help="root of the val data, replacing the one in each run's config")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    p.add_argument("--workers", type=int, default=2, help="data loader workers (default 2)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...; "
                   "under torchrun each process takes its own GPU and shard of the val set")


def _weights_args(p: argparse.ArgumentParser, amp: str, amp_help: str) -> None:
    """Scoring weights: a val subset and the precision (default ``amp``)."""
    from padlib.report.weights import AMP_CHOICES

    p.add_argument("--limit", type=int, default=None, help="evaluate only a class-balanced subset of N val images")
    p.add_argument("--amp", default=amp, choices=AMP_CHOICES, help=amp_help)


def _cross_args(p: argparse.ArgumentParser) -> None:
    """Cross-testing weights (``weights.EvalOptions``): which test paddings, at which precision."""
    from padlib.report.weights import RUN_PRECISION

    p.add_argument("--paddings", type=_paddings, default=None,
                   help="test paddings, comma-separated (default: zero,partial,reflect,replicate "
                        "plus any training padding of the sweep)")
    _weights_args(p, RUN_PRECISION,
                  "precision of evaluation: run (default: each run's training precision, so testing with the "
                  "training padding reproduces its logged val top-1; fp32 where the device cannot run it), or for "
                  "all weights auto (bf16 on CUDA), none (fp32), bf16, fp16")


def _checkpoint_args(p: argparse.ArgumentParser) -> None:
    """Re-evaluating a sweep's checkpoints (``checkpoint_eval.CheckpointEvalOptions``): fp32 by default, another
    val set, the cache, the integrity tolerance."""
    _weights_args(p, "none",
                  "precision of evaluation: none (default: fp32 for every run), run (each run's training precision: "
                  "what the integrity check needs for runs trained in bf16/fp16), auto (bf16 on CUDA), bf16, fp16")
    p.add_argument("--data", help="evaluate on another val set: a dataset name (imagenet, folder, fashion_mnist, "
                                  "synthetic) or the root of an ImageFolder tree (val/<class>/ images, and train/ "
                                  "with the same class folders, which may be empty)")
    _cache_args(p)
    p.add_argument("--tolerance", type=float, default=0.1,
                   help="integrity check off CPU: how far (top-1 points) a re-evaluated checkpoint may be from its "
                        "logged val top-1 (default 0.1; on CPU they must be equal)")


def _cache_args(p: argparse.ArgumentParser) -> None:
    """The evaluation cache of a sweep's runs."""
    p.add_argument("--recompute", action="store_true",
                   help="evaluate again instead of using the results cached in each run's eval_cache/")


def _file_args(p: argparse.ArgumentParser) -> None:
    """What a single weight file does not say about itself."""
    p.add_argument("--arch", help="architecture (default: the file's 'arch' field)")
    p.add_argument("--train-padding", help="padding the weights were trained with (default: from the file)")
    p.add_argument("--data", help="dataset name (imagenet, folder, fashion_mnist, synthetic) or the data root "
                                   "itself (default: the checkpoint's own config, else imagenet)")
    p.add_argument("--num-classes", type=int, help="classes of the model (default: the data's)")
    p.add_argument("--source", default="auto", choices=("auto", "torchvision", "timm"))


def _figure_args(p: argparse.ArgumentParser) -> None:
    """What the figures draw (``figure_report.FigureOptions``)."""
    p.add_argument("--pairs", type=_pairs, default=[("zero", "partial")],
                   help="padding pairs A:B for the per-image analysis and activation maps (default zero:partial)")
    p.add_argument("--layers", type=lambda s: [x.strip() for x in s.split(",") if x.strip()], default=None,
                   help="module names for activation maps and the border score (default: each ResNet "
                        "stage / VGG block output)")
    p.add_argument("--band", choices=("minmax", "std"), default="minmax",
                   help="band around the mean convergence curve (default: min-max over seeds)")
    p.add_argument("--border-images", type=int, default=256,
                   help="val images for the border-artifact score (0: the whole val set)")
    p.add_argument("--sheet-images", type=int, default=24, help="images on the per-image contact sheet")
    p.add_argument("--activation-images", type=int, default=4, help="images shown in the activation maps")
    p.add_argument("--no-activations", dest="activations", action="store_false",
                   help="skip activation maps and the border score (no checkpoints or data needed)")


def _command(sub: Any, name: str, func: Callable[..., int], help_text: str, description: str,
             *groups: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """A subcommand running ``func``, with these option groups; its own options are added by the caller."""
    p = sub.add_parser(name, help=help_text, description=description)
    for add in groups:
        add(p)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per report, made of the option groups it needs."""
    parser = argparse.ArgumentParser(prog="evaluate.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(sub, "tables", cmd_tables, "Tables 2 and 3: best and last-5-epoch top-1 per arch and padding",
                 "Best-epoch (Table 2) and last-5-epoch (Table 3) val top-1 per arch and padding: per-run values, "
                 "mean, sample std, diff vs zero padding with 95%% Welch CI and p-value, beside the paper's numbers.",
                 _sweep_args)
    p.add_argument("--from-checkpoints", action="store_true",
                   help="re-evaluate each run's best.pt and its last five epoch_NNN.pt instead of reading the logged "
                        "accuracies (writes best_from_checkpoints.csv, last5_from_checkpoints.csv, "
                        "tables_from_checkpoints.md/.tex and checkpoint_integrity.csv); results are cached per run")
    _eval_args(p)
    _checkpoint_args(p)

    p = _command(sub, "resolution", cmd_resolution, "top-1 of each best checkpoint at other test image sizes",
                 "Each run's best checkpoint evaluated at several test sizes (centre crop of the resized image); a "
                 "table and a figure of top-1 against test size per padding, with 95%% Welch CIs of the difference "
                 "to zero padding at each size.", _sweep_args)
    p.add_argument("--sizes", required=True, help="test crop sizes in pixels, comma-separated (e.g. 160,224,288)")
    p.add_argument("--resize-ratio", default="run",
                   help="resize the short side to size x R before the centre crop: run (default: each run's own "
                        "data.resize_size / data.image_size, the paper's 256/224 for ImageNet configs), paper "
                        "(256/224) or a number >= 1")
    _eval_args(p)
    _checkpoint_args(p)

    p = _command(sub, "cross", cmd_cross, "Table 4: each run's best checkpoint, or one weight file, under every padding",
                 "Cross-testing (Table 4): each completed run's best weights evaluated with every test padding; diff "
                 "vs testing with the training padding. With --checkpoint FILE instead of SWEEP_DIR: one checkpoint "
                 "(ours, a torchvision weight file, or the paper authors' pdresnet50/pdvgg16_bn files).",
                 lambda p: _sweep_args(p, optional=True), _eval_args, _cross_args, _cache_args)
    p.add_argument("--checkpoint", help="cross-test this single checkpoint file instead of SWEEP_DIR's runs "
                                        "(then give --data-root, and --arch unless the file names it)")
    _file_args(p)

    p = _command(sub, "eval", cmd_cross, "cross --checkpoint CHECKPOINT: one checkpoint file under several paddings",
                 "Evaluate one checkpoint (ours, a torchvision weight file, or the paper authors' "
                 "pdresnet50/pdvgg16_bn files) under each test padding; another name for cross --checkpoint.")
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    _output_args(p, "report folder (default: results/<checkpoint name>/)")
    _eval_args(p)
    _cross_args(p)
    _file_args(p)

    _command(sub, "figures", cmd_figures, "Figures 1, 3, 4, activation maps and the border-artifact score",
             "Convergence curves (Figure 3), mean top-1 bars (Figure 1), images one padding always gets wrong and "
             "another always right (Figure 4), activation maps and the border-artifact score.",
             _sweep_args, _figure_args, _eval_args)

    p = _command(sub, "timing", cmd_timing, "Table 1 from scripts/bench_padding.py's CSV or a sweep's logs",
                 "The padding benchmark as Table 1: step times relative to zero padding, beside the paper's relative "
                 "numbers. Given a sweep folder instead: each padding's train images/s and epoch time as its runs "
                 "logged them, against zero padding's with 95% CIs.")
    p.add_argument("source", metavar="BENCH_CSV|SWEEP_DIR")
    _output_args(p, "report folder (default: results/<csv or sweep name>/)")
    p.add_argument("--include-incomplete", action="store_true", help="(a sweep) also runs not 'completed'")
    p.add_argument("--dataset", help="(a sweep) only the runs of this dataset")

    p = _command(sub, "audit", cmd_audit, "recompute a printed table's summary cells from its runs",
                 "Recompute average/stdev/diff (and Table 1's relative_percent) from the per-run cells; list every "
                 "cell off by more than its printed rounding, with the conventions it does match.")
    p.add_argument("tables", nargs="+", metavar="TABLE.csv")
    _output_args(p, "also write audit.csv/.md/.tex here", paper=False)
    p.add_argument("--strict", action="store_true", help="exit 1 when any cell disagrees")

    p = _command(sub, "plan", cmd_plan, "seeds per padding mode needed to detect a difference with 80%% power",
                 "How many seeds per padding mode a difference D needs for 80%% power (Welch's two-sided t-test, "
                 "alpha 0.05), given a seed-to-seed std S. Without options: each non-zero row of the paper's Tables 2 "
                 "and 3 with its printed diff and the sample stds of its runs, the power its 5 runs had, and the "
                 "seeds it needs. With --effect and --std: a grid of D x S.")
    p.add_argument("--effect", nargs="+", action="extend", metavar="D",
                   help="true difference(s) of means to detect, in accuracy points (e.g. --effect 0.3 0.5)")
    p.add_argument("--std", nargs="+", action="extend", metavar="S",
                   help="seed-to-seed standard deviation(s) of each mode, in points (with --effect)")
    p.add_argument("--seeds", type=int, default=3,
                   help="with --effect: also the power and MDE with this many runs per mode (default 3)")
    _output_args(p, "also write plan.csv/.md/.tex here")

    p = _command(sub, "all", cmd_all, "tables + timing + cross + figures",
                 "Everything about a sweep: tables, the padding cost from the runs' logs, cross-testing and figures.",
                 _sweep_args, _eval_args, _cross_args, _cache_args, _figure_args)
    p.set_defaults(checkpoint=None)
    return parser


def sharded(args: argparse.Namespace) -> bool:
    """Whether a subcommand splits its work over torchrun's ranks (each val image scored once, rank 0
    writes); the others run on rank 0 alone."""
    return (args.command in ("resolution", "all") or (args.command == "tables" and args.from_checkpoints)
            or (args.command == "cross" and not args.checkpoint))


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a PadlibError becomes ``error: <msg>`` on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    from padlib.engine.distributed import env_rank

    if env_rank() != 0:
        if not sharded(args):
            return 0  # rank 0 does it alone: N ranks would repeat it and write the same files N times
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process): rank 0 reports
    try:
        return args.func(args)
    except (PadlibError, OSError) as e:  # OSError: unreadable/unwritable paths, still one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

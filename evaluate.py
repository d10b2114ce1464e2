#!/usr/bin/env python
"""Reports of a padding sweep: the paper's Tables 1-4 and Figures 1, 3 and 4, plus audits of printed tables.

    python evaluate.py tables  SWEEP_DIR [--out DIR] [--include-incomplete]   # Tables 2 and 3
    python evaluate.py tables  SWEEP_DIR --from-checkpoints [--data-root PATH] # ... from re-evaluated checkpoints
    python evaluate.py resolution SWEEP_DIR --sizes 160,224,288                # top-1 against test size
    python evaluate.py cross   SWEEP_DIR [--data-root PATH] [--paddings ...]  # Table 4
    python evaluate.py eval    CHECKPOINT --data-root PATH [--arch NAME]      # Table 4 for one weight file
    python evaluate.py figures SWEEP_DIR [--pairs zero:partial] [--layers ...]
    python evaluate.py timing  BENCH_CSV                                       # Table 1
    python evaluate.py audit   TABLE.csv [...]                                 # recompute a table's summary cells
    python evaluate.py all     SWEEP_DIR                                       # tables + cross + figures
    python evaluate.py plan    [--effect D ... --std S ...] [--seeds N]        # seeds needed for 80% power

Reports go to --out (default results/<name>/). Errors are one line on stderr and exit status 2;
``all`` exits 1 when some reports failed and others were written.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from padlib.errors import PadlibError

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


def _load_sweep(args: argparse.Namespace, need_metrics: bool = True):
    """The sweep's usable runs, loaded (and its warnings printed) once per command, ``all`` included."""
    from padlib.report.collect import load_sweep

    if getattr(args, "loaded_sweep", None) is None:
        sweep = load_sweep(args.sweep, include_incomplete=args.include_incomplete, dataset=args.dataset,
                           need_metrics=need_metrics)
        warn(sweep.warnings)
        for note in sweep.notes():
            print(note)
        print(f"{args.sweep}: {len(sweep.runs)} runs of {sweep.dataset}")
        args.loaded_sweep = sweep
    return args.loaded_sweep


def cmd_tables(args: argparse.Namespace) -> int:
    """Tables 2 and 3, from the logged accuracies or (--from-checkpoints) from re-evaluated checkpoints."""
    if getattr(args, "from_checkpoints", False):
        return _tables_from_checkpoints(args)
    if args.command == "tables":
        given = [name for name, value in (("--data", args.data), ("--data-root", args.data_root),
                                          ("--limit", args.limit), ("--recompute", args.recompute)) if value]
        if given:
            raise PadlibError(f"{', '.join(given)}: for re-evaluated checkpoints only; add --from-checkpoints")
    from padlib.report.tables import write_tables

    sweep = _load_sweep(args)
    wrote(write_tables(sweep, default_out(args, Path(args.sweep)), args.paper_dir))
    return 0


def _checkpoint_options(args: argparse.Namespace):
    """The checked options of re-evaluating checkpoints."""
    from padlib.report.checkpoint_eval import CheckpointEvalOptions

    for option, value, low in (("--batch-size", args.batch_size, 1), ("--workers", args.workers, 0),
                               ("--limit", args.limit, 1)):
        if value is not None and value < low:
            raise PadlibError(f"{option} {value}: must be at least {low}")
    if not (math.isfinite(args.tolerance) and args.tolerance >= 0):
        raise PadlibError(f"--tolerance {args.tolerance}: must be a number >= 0 (top-1 points)")
    return CheckpointEvalOptions(data_root=args.data_root, batch_size=args.batch_size, workers=args.workers,
                                 device=args.device, amp=args.amp, limit=args.limit, data=args.data,
                                 recompute=args.recompute, tolerance=args.tolerance)


def _report_evaluation(results) -> bool:
    """Print how the re-evaluation went; True on the process that writes the reports (rank 0)."""
    if results.is_main:
        warn(results.warnings)
        print(results.summary())
    return results.is_main


def _tables_from_checkpoints(args: argparse.Namespace) -> int:
    from padlib.report.checkpoint_tables import checkpoint_tables, write_checkpoint_tables

    opts = _checkpoint_options(args)
    sweep = _load_sweep(args, need_metrics=False)
    tables = checkpoint_tables(sweep, opts)
    if _report_evaluation(tables.results):
        warn([w for w in tables.warnings if w not in tables.results.warnings])
        wrote(write_checkpoint_tables(sweep, tables, default_out(args, Path(args.sweep)), args.paper_dir))
    return 0


def cmd_resolution(args: argparse.Namespace) -> int:
    """Top-1 of each run's best checkpoint against the test image size."""
    from padlib.report.resolution import parse_ratio, parse_sizes, resolution_report, write_resolution

    sizes, ratio = parse_sizes(args.sizes), parse_ratio(args.resize_ratio)
    opts = _checkpoint_options(args)
    sweep = _load_sweep(args, need_metrics=False)
    report = resolution_report(sweep, opts, sizes, ratio)
    if _report_evaluation(report.results):
        warn([w for w in report.warnings if w not in report.results.warnings])
        wrote(write_resolution(report, default_out(args, Path(args.sweep))))
    return 0


def _eval_options(args: argparse.Namespace):
    from padlib.report.evaluation import EvalOptions

    return EvalOptions(paddings=args.paddings, data_root=args.data_root, batch_size=args.batch_size,
                       workers=args.workers, device=args.device, amp=args.amp, limit=args.limit)


def cmd_cross(args: argparse.Namespace) -> int:
    """Table 4 for a sweep, or for one checkpoint with --checkpoint."""
    if args.checkpoint:
        return cmd_eval(args)
    if not args.sweep:
        raise PadlibError("give SWEEP_DIR, or --checkpoint FILE to cross-test one weight file")
    from padlib.report.cross import cross_test_sweep, write_cross

    sweep = _load_sweep(args, need_metrics=False)
    result = cross_test_sweep(sweep, _eval_options(args))
    warn(result.warnings)
    wrote(write_cross(result, default_out(args, Path(args.sweep)), args.paper_dir))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Table 4 for a single checkpoint file (ours, a torchvision weight file or the paper authors')."""
    from padlib.report.cross import cross_test_checkpoint, write_cross

    ckpt = Path(args.checkpoint)
    result = cross_test_checkpoint(ckpt, args.arch, args.train_padding, args.data, _eval_options(args),
                                   args.num_classes, args.source)
    warn(result.warnings)
    wrote(write_cross(result, default_out(args, ckpt), args.paper_dir))
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    """Figures 1, 3 and 4, activation maps and the border-artifact score."""
    from padlib.report.figure_report import FigureOptions, make_figures

    sweep = _load_sweep(args)
    opts = FigureOptions(pairs=args.pairs, layers=args.layers, band=args.band, border_images=args.border_images,
                         sheet_images=args.sheet_images, activation_images=args.activation_images,
                         activations=not args.no_activations, data_root=args.data_root, device=args.device,
                         batch_size=args.batch_size, workers=args.workers)
    report = make_figures(sweep, default_out(args, Path(args.sweep)), opts)
    warn(report.warnings)
    if report.lines:
        print("\n".join(report.lines))
    wrote(report.paths)
    return 0


def cmd_timing(args: argparse.Namespace) -> int:
    """Table 1 from the padding benchmark's CSV."""
    from padlib.report.timing import write_timing

    src = Path(args.bench_csv)
    wrote(write_timing(src, default_out(args, src), args.paper_dir))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Recompute the summary cells of printed tables."""
    from padlib.report.table_audit import audit_table, findings_table, format_audit
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
    from padlib.report.tables import grid_plan_table, paper_plan_table
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
    """Tables, cross-testing and figures; a failing part does not stop the others."""
    parts: list[tuple[str, Callable[[argparse.Namespace], int]]] = [
        ("tables", cmd_tables), ("cross", cmd_cross), ("figures", cmd_figures)]
    done, failed = [], []
    for name, fn in parts:
        print(f"== {name}")
        try:
            fn(args)
            done.append(name)
        except (PadlibError, OSError) as e:
            print(f"error: {name}: {e}", file=sys.stderr)
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}; written: {', '.join(done) or 'nothing'}", file=sys.stderr)
    return 0 if not failed else (1 if done else 2)


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


def _add_output_args(p: argparse.ArgumentParser, source: str) -> None:
    p.add_argument("--out", help=f"report folder (default: results/<{source} name>/)")
    p.add_argument("--paper-dir", type=Path, help="folder of the paper's tables (default: results/paper)")


def _add_sweep_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    p.add_argument("sweep", metavar="SWEEP_DIR", nargs="?" if optional else None,
                   help="folder holding run directories (any depth)")
    _add_output_args(p, "sweep")
    p.add_argument("--include-incomplete", action="store_true",
                   help="also report runs whose status is not 'completed'")
    p.add_argument("--dataset", help="report only the runs of this dataset (needed when a sweep mixes several)")


def _add_eval_args(p: argparse.ArgumentParser, checkpoints: bool = False) -> None:
    """Where and how to evaluate weights; ``checkpoints``: for re-evaluating a sweep's checkpoints (fp32 by
    default, another val set, cache, integrity tolerance) instead of cross-testing."""
    from padlib.report.evaluation import AMP_CHOICES, RUN_PRECISION

    if not checkpoints:
        p.add_argument("--paddings", type=_paddings, default=None,
                       help="test paddings, comma-separated (default: zero,partial,reflect,replicate "
                            "plus any training padding of the sweep)")
    p.add_argument("--data-root", help="root of the val data, replacing the one in each run's config")
    p.add_argument("--limit", type=int, default=None, help="evaluate only a class-balanced subset of N val images")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="data loader workers")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...; "
                   "under torchrun each process takes its own GPU and shard of the val set")
    if not checkpoints:
        p.add_argument("--amp", default=RUN_PRECISION, choices=AMP_CHOICES,
                       help="precision of evaluation: run (default: each run's training precision, so testing "
                            "with the training padding reproduces its logged val top-1; fp32 where the device "
                            "cannot run it), or for all weights auto (bf16 on CUDA), none (fp32), bf16, fp16")
        return
    p.add_argument("--amp", default="none", choices=AMP_CHOICES,
                   help="precision of evaluation: none (default: fp32 for every run), run (each run's training "
                        "precision: what the integrity check needs for runs trained in bf16/fp16), auto (bf16 on "
                        "CUDA), bf16, fp16")
    p.add_argument("--data", help="evaluate on another val set: a dataset name (imagenet, folder, fashion_mnist, "
                                  "synthetic) or the root of an ImageFolder tree (val/<class>/ images, and train/ "
                                  "with the same class folders, which may be empty)")
    p.add_argument("--recompute", action="store_true",
                   help="evaluate again instead of using the results cached in each run's eval_cache/")
    p.add_argument("--tolerance", type=float, default=0.1,
                   help="integrity check off CPU: how far (top-1 points) a re-evaluated checkpoint may be from its "
                        "logged val top-1 (default 0.1; on CPU they must be equal)")


def _add_figure_args(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--no-activations", action="store_true",
                   help="skip activation maps and the border score (no checkpoints or data needed)")


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per report."""
    parser = argparse.ArgumentParser(prog="evaluate.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("tables", help="Tables 2 and 3: best and last-5-epoch top-1 per arch and padding",
                       description="Best-epoch (Table 2) and last-5-epoch (Table 3) val top-1 per arch and "
                                   "padding: per-run values, mean, sample std, diff vs zero padding with "
                                   "95%% Welch CI and p-value, beside the paper's numbers.")
    _add_sweep_args(p)
    p.add_argument("--from-checkpoints", action="store_true",
                   help="re-evaluate each run's best.pt and its last five epoch_NNN.pt instead of reading the logged "
                        "accuracies (writes best_from_checkpoints.csv, last5_from_checkpoints.csv, "
                        "tables_from_checkpoints.md/.tex and checkpoint_integrity.csv); results are cached per run")
    _add_eval_args(p, checkpoints=True)
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser("resolution", help="top-1 of each best checkpoint at other test image sizes",
                       description="Each run's best checkpoint evaluated at several test sizes (centre crop of the "
                                   "resized image); a table and a figure of top-1 against test size per padding, "
                                   "with 95%% Welch CIs of the difference to zero padding at each size.")
    _add_sweep_args(p)
    p.add_argument("--sizes", required=True, help="test crop sizes in pixels, comma-separated (e.g. 160,224,288)")
    p.add_argument("--resize-ratio", default="run",
                   help="resize the short side to size x R before the centre crop: run (default: each run's own "
                        "data.resize_size / data.image_size, the paper's 256/224 for ImageNet configs), paper "
                        "(256/224) or a number >= 1")
    _add_eval_args(p, checkpoints=True)
    p.set_defaults(func=cmd_resolution)

    p = sub.add_parser("cross", help="Table 4: evaluate each run's best checkpoint under every padding",
                       description="Cross-testing (Table 4): each completed run's best weights evaluated with "
                                   "every test padding; diff vs testing with the training padding.")
    _add_sweep_args(p, optional=True)
    _add_eval_args(p)
    p.add_argument("--checkpoint", help="cross-test this single checkpoint file instead of SWEEP_DIR's runs "
                                        "(then give --data-root, and --arch unless the file names it)")
    _add_single_args(p)
    p.set_defaults(func=cmd_cross)

    p = sub.add_parser("eval", help="evaluate one checkpoint file under several paddings",
                       description="Evaluate one checkpoint (ours, a torchvision weight file, or the paper "
                                   "authors' pdresnet50/pdvgg16_bn files) under each test padding.")
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    _add_output_args(p, "checkpoint")
    _add_eval_args(p)
    _add_single_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("figures", help="Figures 1, 3, 4, activation maps and the border-artifact score",
                       description="Convergence curves (Figure 3), mean top-1 bars (Figure 1), images one "
                                   "padding always gets wrong and another always right (Figure 4), activation "
                                   "maps and the border-artifact score.")
    _add_sweep_args(p)
    _add_figure_args(p)
    p.add_argument("--data-root", help="root of the val data, replacing the one in each run's config")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("timing", help="Table 1 from scripts/bench_padding.py's CSV",
                       description="The padding benchmark as Table 1: step times relative to zero padding, "
                                   "beside the paper's relative numbers.")
    p.add_argument("bench_csv", metavar="BENCH_CSV")
    _add_output_args(p, "csv")
    p.set_defaults(func=cmd_timing)

    p = sub.add_parser("audit", help="recompute a printed table's summary cells from its runs",
                       description="Recompute average/stdev/diff (and Table 1's relative_percent) from the "
                                   "per-run cells; list every cell off by more than its printed rounding, "
                                   "with the conventions it does match.")
    p.add_argument("tables", nargs="+", metavar="TABLE.csv")
    p.add_argument("--out", help="also write audit.csv/.md/.tex here")
    p.add_argument("--strict", action="store_true", help="exit 1 when any cell disagrees")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("plan", help="seeds per padding mode needed to detect a difference with 80%% power",
                       description="How many seeds per padding mode a difference D needs for 80%% power "
                                   "(Welch's two-sided t-test, alpha 0.05), given a seed-to-seed std S. Without "
                                   "options: each non-zero row of the paper's Tables 2 and 3 with its printed "
                                   "diff and the sample stds of its runs, the power its 5 runs had, and the "
                                   "seeds it needs. With --effect and --std: a grid of D x S.")
    p.add_argument("--effect", nargs="+", action="extend", metavar="D",
                   help="true difference(s) of means to detect, in accuracy points (e.g. --effect 0.3 0.5)")
    p.add_argument("--std", nargs="+", action="extend", metavar="S",
                   help="seed-to-seed standard deviation(s) of each mode, in points (with --effect)")
    p.add_argument("--seeds", type=int, default=3,
                   help="with --effect: also the power and MDE with this many runs per mode (default 3)")
    p.add_argument("--out", help="also write plan.csv/.md/.tex here")
    p.add_argument("--paper-dir", type=Path, help="folder of the paper's tables (default: results/paper)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("all", help="tables + cross + figures",
                       description="Everything about a sweep: tables, cross-testing and figures.")
    _add_sweep_args(p)
    _add_eval_args(p)
    _add_figure_args(p)
    p.set_defaults(func=cmd_all, checkpoint=None)
    return parser


def _add_single_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", help="architecture (default: the file's 'arch' field)")
    p.add_argument("--train-padding", help="padding the weights were trained with (default: from the file)")
    p.add_argument("--data", help="dataset name (imagenet, folder, fashion_mnist, synthetic) or the data root "
                                   "itself (default: the checkpoint's own config, else imagenet)")
    p.add_argument("--num-classes", type=int, help="classes of the model (default: the data's)")
    p.add_argument("--source", default="auto", choices=("auto", "torchvision", "timm"))


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a PadlibError becomes ``error: <msg>`` on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    from padlib.engine.distributed import env_rank

    if env_rank() != 0:  # under torchrun only rank 0 reports; the others evaluate their shards quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
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

"""Train-step time of each padding mode relative to zero padding (the paper's Table 1).

Modes are interleaved in one process: every round runs each mode once (in a fresh random order),
from the same initial weights on the same batch, so drifts in machine load hit all modes alike.
A process-level warmup on throwaway copies of every mode comes first, so a mode's *first* step
measures what the mode itself pays then (partial: computing its ratios r), not library start-up.
The first step is the median over --first-repeats fresh copies per mode (one sample is too noisy);
the last copy then runs --steps steady-state steps. The steady ratio to zero padding is the median over
rounds of (mode's step / zero's step in the same round), with a distribution-free 95% CI: pairing by
round cancels the slow drifts of a shared machine, and the CI says whether a target is shown or not.

    python scripts/bench_padding.py --archs resnet50 vgg16_bn --size 224 --batch 32 --device cuda
    python scripts/bench_padding.py --setting demo        # the loop `make demo` runs, on every core
"""

from __future__ import annotations

import argparse
import copy
import csv
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from padlib.errors import PadlibError
from padlib.models import build_model
from padlib.padding import PADDING_MODES, PartialConv2d, convert_padding, get_padding
from padlib.provenance import device_name, onednn_version
from padlib.report.stats import median_ci

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
COLUMNS = (
    "arch",
    "mode",
    "setting",
    "device",
    "size",
    "batch",
    "classes",
    "amp",
    "channels_last",
    "compile",
    "threads",
    "clock",
    "first_repeats",
    "steps",
    "first_step_s",
    "median_step_s",
    "first_ratio",
    "median_ratio",
    "median_ratio_ci_low",
    "median_ratio_ci_high",
    "device_name",
    "torch",
    "onednn",
)


# The settings users train at, by name: what each sets (other options keep their own defaults).
SETTINGS = {
    # Table 1 in miniature: the paper's models, small enough for one CPU thread
    "table1-cpu": {
        "archs": ["resnet50", "vgg16_bn"],
        "size": 64,
        "batch": 8,
        "classes": 1000,
        "steps": 21,
        "threads": 1,
        "clock": "cpu",
    },
    # `make demo`: resnet18 on Fashion-MNIST at 32 px, batch 128, 10 classes, every core
    "demo": {"archs": ["resnet18"], "size": 32, "batch": 128, "classes": 10, "steps": 60},
    # the paper's models and input size at a batch a CPU can take; on a shared 2-core machine a step
    # varies by ~10%, and 40 rounds bring the ratio's 95% CI to about +-0.05
    "paper-cpu": {"archs": ["resnet50"], "size": 224, "batch": 32, "classes": 1000, "steps": 40},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--setting",
        nargs="+",
        choices=SETTINGS,
        help="named settings (archs, size, batch, classes, steps, ...), benchmarked one after the other into one "
        "CSV; flags given override them",
    )
    parser.add_argument("--archs", nargs="+", default=["resnet50", "vgg16_bn"])
    parser.add_argument("--classes", type=int, default=1000, help="classifier outputs")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=list(PADDING_MODES),
        help="registered names or import paths of your own modes (docs/PADDING.md); default: padlib's",
    )
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30, help="timed steady-state steps per mode")
    parser.add_argument(
        "--first-repeats",
        type=int,
        default=3,
        help="fresh models per mode whose first step is timed (median)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per mode on throwaway copies")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", choices=AMP_DTYPES, default="none")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="cpu: process CPU time, steadier than wall time on a CPU shared with other jobs",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="CSV path (default results/bench/padding_<device>.csv); every timed step goes to <out>_steps.csv",
    )
    if argv is None:
        argv = sys.argv[1:]
    settings = parser.parse_args(argv).setting
    if settings and len(settings) > 1:
        parser.error("parse_args takes one --setting; main() runs several one after the other")
    if settings:
        parser.set_defaults(**SETTINGS[settings[0]])
    args = parser.parse_args(argv)
    args.setting = settings[0] if settings else None
    if args.steps < 1 or args.first_repeats < 1:
        parser.error("--steps and --first-repeats must be at least 1")
    for mode in args.modes:
        try:
            get_padding(mode)
        except PadlibError as e:
            parser.error(str(e))
    if "zero" not in args.modes:
        args.modes.insert(0, "zero")
    if args.clock == "cpu" and torch.device(args.device).type != "cpu":
        parser.error("--clock cpu only measures CPU devices")
    return args


def make_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace
) -> Callable[[], None]:
    """One SGD train step (forward, backward, update) of ``model`` on the fixed batch."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    forward = torch.compile(model) if args.compile else model
    dtype = AMP_DTYPES[args.amp]
    device_type = torch.device(args.device).type

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
            loss = nn.functional.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()

    return step


def timed(step: Callable[[], None], device: torch.device, clock: str) -> float:
    """Seconds ``step`` takes on ``clock``, the device synchronised on both ends."""
    now = time.process_time if clock == "cpu" else time.perf_counter
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = now()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return now() - start


def round_order(modes: list[str], i: int) -> list[str]:
    """``modes`` in round ``i``'s order: a permutation seeded by ``i``, so no mode always runs first or
    always follows the same mode (a rotation keeps each mode's predecessor, so whatever one model's step
    leaves behind in caches and the allocator would bias the next one's time the same way every round)."""
    return random.Random(i).sample(modes, len(modes))


Times = dict[str, list[float]]


def bench_arch(arch: str, args: argparse.Namespace) -> tuple[Times, Times]:
    """First-step and steady-state step times per mode of ``arch``, modes interleaved."""
    device = torch.device(args.device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    torch.manual_seed(0)
    template = (
        build_model(arch, num_classes=args.classes, padding="zero")
        .to(device, memory_format=memory_format)
        .train()
    )
    x = torch.randn(args.batch, 3, args.size, args.size, device=device).to(memory_format=memory_format)
    y = torch.randint(0, args.classes, (args.batch,), device=device)

    def fresh_step(mode: str) -> Callable[[], None]:
        model = convert_padding(copy.deepcopy(template), mode)
        # deepcopy leaves ratio caches empty, so a fresh partial model's first step computes r.
        assert not any(m._scaling_cache for m in model.modules() if isinstance(m, PartialConv2d))
        return make_step(model, x, y, args)

    for mode in tqdm(args.modes, desc=f"{arch} warmup", leave=False):
        step = fresh_step(mode)
        for _ in range(args.warmup):
            step()
    first: Times = {mode: [] for mode in args.modes}
    steps = {}
    for i in tqdm(range(args.first_repeats), desc=f"{arch} first steps", leave=False):
        for mode in round_order(args.modes, i):
            steps[mode] = fresh_step(mode)
            first[mode].append(timed(steps[mode], device, args.clock))
    steady: Times = {mode: [] for mode in args.modes}
    for i in tqdm(range(args.steps), desc=arch):
        for mode in round_order(args.modes, i):
            steady[mode].append(timed(steps[mode], device, args.clock))
    return first, steady


def summarise(
    arch: str, first_times: Times, steady_times: Times, args: argparse.Namespace
) -> list[dict[str, object]]:
    """CSV rows of ``arch``: median first and steady step per mode and their ratios to zero padding."""
    first = {mode: statistics.median(t) for mode, t in first_times.items()}
    median = {mode: statistics.median(t) for mode, t in steady_times.items()}
    # steady_times are aligned by round: the i-th step of every mode ran in the same round
    paired = {
        mode: median_ci([m / z for m, z in zip(t, steady_times["zero"], strict=True)])
        for mode, t in steady_times.items()
    }
    return [
        {
            "arch": arch,
            "mode": get_padding(mode).label,
            "setting": args.setting or "",
            "device": args.device,
            "size": args.size,
            "batch": args.batch,
            "classes": args.classes,
            "amp": args.amp,
            "channels_last": args.channels_last,
            "compile": args.compile,
            "threads": torch.get_num_threads(),
            "clock": args.clock,
            "first_repeats": args.first_repeats,
            "steps": args.steps,
            "first_step_s": round(first[mode], 5),
            "median_step_s": round(median[mode], 5),
            "first_ratio": round(first[mode] / first["zero"], 4),
            "median_ratio": round(paired[mode][0], 4),
            "median_ratio_ci_low": round(paired[mode][1], 4),
            "median_ratio_ci_high": round(paired[mode][2], 4),
            # where it was measured: a ratio moves with the CPU's vector unit and oneDNN's kernels for it
            "device_name": device_name(torch.device(args.device)),
            "torch": torch.__version__,
            "onednn": onednn_version() or "",
        }
        for mode in args.modes
    ]


def split_settings(argv: list[str]) -> list[list[str]]:
    """One argv per ``--setting`` named in ``argv`` (each keeps every other flag); ``[argv]`` if none."""
    if "--setting" not in argv:
        return [argv]
    i = argv.index("--setting")
    j = next((k for k in range(i + 1, len(argv)) if argv[k].startswith("--")), len(argv))
    rest = argv[:i] + argv[j:]
    return [[*rest, "--setting", name] for name in argv[i + 1 : j]] or [argv]


def main(argv: list[str] | None = None) -> int:
    """Benchmark every setting and arch, print the ratios side by side and write one CSV."""
    argv = sys.argv[1:] if argv is None else argv
    runs = [parse_args(one) for one in split_settings(argv)]
    torch.backends.cudnn.benchmark = True
    all_threads = torch.get_num_threads()
    rows, step_rows = [], []
    for args in runs:
        torch.set_num_threads(args.threads or all_threads)
        for arch in args.archs:
            first, steady = bench_arch(arch, args)
            rows += summarise(arch, first, steady, args)
            step_rows += [
                {
                    "setting": args.setting or "",
                    "arch": arch,
                    "mode": get_padding(mode).label,
                    "kind": kind,
                    "round": i,
                    "seconds": round(t, 5),
                }
                for kind, times in (("first", first), ("steady", steady))
                for mode, ts in times.items()
                for i, t in enumerate(ts)
            ]
    print(
        f"{'setting':<11} {'arch':<10} {'mode':<10} {'first s':>9} {'median s':>9} {'first/zero':>11} "
        f"{'median/zero [95% CI]':>22}"
    )
    for r in rows:
        print(
            f"{r['setting'] or '-':<11} {r['arch']:<10} {r['mode']:<10} {r['first_step_s']:>9.4f} "
            f"{r['median_step_s']:>9.4f} {r['first_ratio']:>11.3f} {r['median_ratio']:>8.3f} "
            f"[{r['median_ratio_ci_low']:.3f}, {r['median_ratio_ci_high']:.3f}]"
        )
    args = runs[0]
    out = args.out or Path("results/bench") / f"padding_{torch.device(args.device).type}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    steps_out = out.with_name(f"{out.stem}_steps.csv")
    for path, fields, table in ((out, COLUMNS, rows), (steps_out, list(step_rows[0]), step_rows)):
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(table)
    print(f"wrote {out} and {steps_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

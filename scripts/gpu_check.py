#!/usr/bin/env python
"""Check and time padlib on a CUDA machine in one command (project issue 10).

    python scripts/gpu_check.py                                  # all six parts, on CUDA when available
    python scripts/gpu_check.py --parts 1,3                      # some of them
    python scripts/gpu_check.py --device cpu --quick --out /tmp/check   # toy sizes: checks this script

Parts (each writes ``<out>/gpu_check_<name>.csv``; together they write ``<out>/gpu_check.md``):

1. correctness: ``PartialConv2d`` against an independent formula (fp32, channels_last, bf16 autocast),
   cold ``torch.compile`` gradients against eager (resnet18, partial padding), bf16 and fp16 training
   steps stay finite.
2. table1: the paper's Table 1 through ``scripts/bench_padding.py``: every mode's first and steady train
   step against zero padding, eager and compiled, bf16, channels_last.
3. throughput: images/s of padlib's train step (resnet50, partial, compiled) beside an unconverted
   torchvision resnet50, on GPU-resident data.
4. pipeline: images/s of padlib's JPEG train loader, against what the GPU consumed in part 3.
5. train_run: ``train.py`` then ``evaluate.py all`` on generated data, with AMP, channels_last, compile
   (and TORCH_LOGS=recompiles,graph_breaks).
6. cuda_paths: ``trainer.deterministic`` train steps (the VGGs' pooling, every mode), the DDP loop's per-step
   flags (``scripts/bench_ddp_sync.py``), and ``evaluate.py tables --from-checkpoints``' images/s.

A check that fails is written as FAIL, a part that crashes as error; the other parts still run and the
exit status is 1. Speed targets are written as met / missed and leave the exit status alone: a slow mode
is a finding to report, not a broken build.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import functools
import gc
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# run as a script, this folder is on sys.path: bench_padding is scripts/bench_padding.py
import bench_padding
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch import Tensor, nn

from padlib.data import Batch, build_data
from padlib.engine.amp import PRECISION_DTYPES, amp_dtype, autocast, grad_scaler, precision_name
from padlib.engine.config import OptimConfig
from padlib.engine.device import resolve_device
from padlib.engine.distributed import DistInfo
from padlib.engine.loaders import make_train_loader
from padlib.engine.loop import StepContext, TrainMeters, train_one_epoch
from padlib.engine.optim import build_optimizer
from padlib.engine.progress import Progress
from padlib.errors import PadlibError
from padlib.models import build_model
from padlib.padding import PartialConv2d
from padlib.provenance import device_name, git_commit
from padlib.rundir import RunDir

REPO = Path(__file__).resolve().parent.parent

PASS, FAIL, ERROR, MET, MISSED, INFO = "pass", "FAIL", "error", "met", "missed", "info"
BAD = (FAIL, ERROR)  # statuses that make the exit status 1

# Tolerances of part 1, as a fraction of the reference's largest magnitude (see scaled_error).
# fp32 with TF32 off: weight gradients sum ~25k products in orders (and with Winograd or FFT algorithms)
# of cuDNN's choosing, ~1e-5 on a CPU; a wrong formula is off by 1e-3 or more
FP32_TOL = 1e-4
BF16_TOL = 3e-2  # bf16 keeps 8 significant bits (unit roundoff 2**-9); sums of ~1000 products drift more
COMPILE_TOL = 1e-3  # every gradient of a whole resnet: fused kernels sum in other orders over ~20 layers
# Speed targets (issue 10): partial / zero step time, and padlib's images/s over torchvision's.
EAGER_STEADY_TARGET, COMPILED_STEADY_TARGET, FIRST_STEP_TARGET = 1.02, 1.01, 1.10
THROUGHPUT_TARGET = 0.97


@dataclass(frozen=True)
class Sizes:
    """How much work each part does: the GPU sizes, or toy sizes (``--quick``) that check the script."""

    conv_batch: int = 8
    conv_size: int = 56
    conv_channels: int = 64
    compile_arch: str = "resnet18"
    compile_batch: int = 8
    compile_size: int = 64
    amp_steps: int = 5
    bench_archs: tuple[str, ...] = ("resnet50", "vgg16_bn")
    bench_size: int = 224
    bench_batch: int = 64
    bench_compiled_batch: int = 256  # part 3's batch: part 3 then finds both resnet50 graphs in inductor's cache
    bench_steps: int = 30
    bench_first_repeats: int = 3
    bench_warmup: int = 2
    train_arch: str = "resnet50"
    train_batch: int = 256
    train_size: int = 224
    train_steps: int = 10  # per timed round
    train_rounds: int = 5
    jpegs: int = 400  # distinct generated JPEGs; the loader reads them through hard links, many times
    jpeg_px: tuple[int, int] = (500, 375)  # ImageNet's typical size
    loader_batch: int = 256
    loader_image_size: int = 224
    loader_batches_per_worker: int = 4  # timed, after each worker's first batch
    run_epochs: int = 2
    run_batch: int = 64
    run_classes: int = 4
    run_per_class: int = 64
    det_arch: str = "resnet50"  # part 6: every mode's deterministic step
    det_size: int = 224
    det_batch: int = 8
    ddp_size: int = 64
    ddp_batch: int = 256
    ddp_steps: int = 20
    ddp_rounds: int = 5
    eval_arch: str = "resnet50"
    eval_size: int = 224
    eval_batch: int = 256
    eval_images: int = 2048


FULL = Sizes()
QUICK = Sizes(
    conv_batch=2, conv_size=12, conv_channels=8,
    compile_arch="resnet18", compile_batch=2, compile_size=32, amp_steps=2,
    bench_archs=("resnet18", "test_resnet"), bench_size=32, bench_batch=4, bench_compiled_batch=4, bench_steps=2,
    bench_first_repeats=1, bench_warmup=1,
    train_arch="resnet18", train_batch=4, train_size=32, train_steps=2, train_rounds=1,
    jpegs=12, jpeg_px=(64, 48), loader_batch=4, loader_image_size=32, loader_batches_per_worker=4,
    run_epochs=2, run_batch=8, run_classes=2, run_per_class=8,
    det_arch="resnet18", det_size=32, det_batch=2, ddp_size=32, ddp_batch=4, ddp_steps=2, ddp_rounds=1,
    eval_arch="resnet18", eval_size=32, eval_batch=8, eval_images=16,
)


@dataclass
class Context:
    """What every part needs: options, device, sizes, a scratch folder and earlier parts' rows."""

    args: argparse.Namespace
    device: torch.device
    sizes: Sizes
    work: Path
    env: dict[str, str]
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        """Whether the parts run on a CUDA device."""
        return self.device.type == "cuda"

    @property
    def amp(self) -> str:
        """The timed parts' precision, as the trainer's ``amp=auto`` picks it: bf16 on CUDA, fp32 on a CPU
        (whose bf16 kernels ran ~40x slower than fp32 on this project's CPU: toy runs would take minutes)."""
        return precision_name(amp_dtype("auto", self.device))


# --- shared helpers ----------------------------------------------------------------------------


def settings_text(**values: Any) -> str:
    """A row's settings as one short string, e.g. ``size=224 batch=64 amp=bf16``."""
    return " ".join(f"{k}={v}" for k, v in values.items())


def environment(device: torch.device) -> dict[str, str]:
    """The columns every row carries: which device, which torch."""
    return {"device_name": device_name(device), "torch": torch.__version__, "cuda": torch.version.cuda or "-"}


def synchronize(device: torch.device) -> None:
    """Wait for the device, so a clock read after it covers the queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def scaled_error(got: Tensor, want: Tensor) -> float:
    """max |got - want| over max |want|: one number per tensor, comparable across layers and dtypes."""
    want = want.detach().double()
    return float((got.detach().double() - want).abs().max() / want.abs().max().clamp_min(1e-30))


def guarded(name: str, check: Callable[[], list[dict[str, Any]]], **where: Any) -> list[dict[str, Any]]:
    """``check()``'s rows, or one ``error`` row naming ``name`` when it raises: the other checks of a
    part still report."""
    try:
        return check()
    except Exception as e:
        traceback.print_exc()
        return [{"check": name, **where, "status": ERROR, "detail": f"{type(e).__name__}: {e}"[:500]}]


def verdict(ok: bool) -> str:
    """``pass`` or ``FAIL``."""
    return PASS if ok else FAIL


def target_status(value: float, target: float, at_most: bool = True) -> str:
    """``met`` or ``missed`` for a measured ``value`` against its ``target`` (an upper bound by default)."""
    return MET if (value <= target if at_most else value >= target) else MISSED


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """TF32 off: by default an H100 rounds fp32 conv inputs to 10 mantissa bits, 1e-3 errors."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def step_context(model: nn.Module, device: torch.device, amp_dtype: torch.dtype | None) -> StepContext:
    """What padlib's ``train_one_epoch`` needs, with the trainer's defaults and a constant lr."""
    optimizer = build_optimizer(model, OptimConfig())
    return StepContext(
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0),
        scaler=grad_scaler(device, amp_dtype),
        criterion=nn.CrossEntropyLoss(),
        device=device,
        amp_dtype=amp_dtype,
        channels_last=True,
        dist=DistInfo(),
    )


def padlib_steps(model: nn.Module, ctx: StepContext, batch: Batch, steps: int, check_every: int = 50) -> TrainMeters:
    """``steps`` train steps of padlib's own loop on one device-resident batch; the epoch's meters."""
    meters = TrainMeters()
    train_one_epoch(model, [batch] * steps, ctx, meters, Progress(steps, "gpu_check", enabled=False),
                    stop_requested=lambda: False, check_every=check_every)
    return meters


def random_batch(batch: int, size: int, classes: int, device: torch.device) -> Batch:
    """A batch of noise images and random labels, already on ``device`` in channels_last."""
    images = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    return Batch(images, torch.randint(0, classes, (batch,), device=device), torch.arange(batch), 0)


# --- part 1: correctness -------------------------------------------------------------------------


def reference_partial_conv(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, dilation: Any,
                           groups: int, pads: tuple[int, int, int, int]) -> Tensor:
    """Partial-convolution padding from its definition, independent of padlib: convolving the image's
    mask of ones counts each window's taps inside the image, and
    ``out = conv_nobias(zero-padded x) * kh*kw / taps + bias``, 0 where no tap is inside."""
    kh, kw = weight.shape[-2:]
    raw = F.conv2d(F.pad(x, pads), weight, None, stride, 0, dilation, groups)
    mask = F.pad(x.new_ones(1, 1, *x.shape[-2:]), pads)
    taps = F.conv2d(mask, x.new_ones(1, 1, kh, kw), None, stride, 0, dilation)
    inside = taps > 0
    out = raw * torch.where(inside, kh * kw / taps.clamp(min=1), torch.zeros_like(taps))
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1) * inside
    return out


# name, nn.Conv2d arguments, extra input pixels (odd sizes make stride-2 borders asymmetric)
CONV_CASES: tuple[tuple[str, dict[str, Any], int], ...] = (
    ("7x7 s2 p3 (stem)", {"kernel_size": 7, "stride": 2, "padding": 3}, 0),
    ("3x3 s1 p1", {"kernel_size": 3, "padding": 1}, 0),
    ("3x3 s2 p1, odd input", {"kernel_size": 3, "stride": 2, "padding": 1}, 1),
    ("3x3 p2 dilation 2, groups 4", {"kernel_size": 3, "padding": 2, "dilation": 2, "groups": 4}, 0),
    ("3x5 'same', no bias", {"kernel_size": (3, 5), "padding": "same", "bias": False}, 1),
)


def check_partial_conv(ctx: Context, label: str, memory_format: torch.memory_format,
                       amp_dtype: torch.dtype | None, tolerance: float,
                       reference: Callable[..., Tensor] = reference_partial_conv) -> list[dict[str, Any]]:
    """One row per conv case: forward and input/weight/bias gradients of ``PartialConv2d`` against
    ``reference`` in fp64 on the same device."""
    with exact_fp32():  # no effect under bf16 autocast, whose convs run in bf16
        return [check_conv_case(ctx, label, case, memory_format, amp_dtype, tolerance, reference)
                for case in CONV_CASES]


def check_conv_case(ctx: Context, label: str, case: tuple[str, dict[str, Any], int],
                    memory_format: torch.memory_format, amp_dtype: torch.dtype | None, tolerance: float,
                    reference: Callable[..., Tensor]) -> dict[str, Any]:
    """One of ``CONV_CASES``: its row of ``check_partial_conv``."""
    (name, kwargs, extra), s = case, ctx.sizes
    torch.manual_seed(0)
    cin = 3 if name.endswith("(stem)") else s.conv_channels
    conv = PartialConv2d(cin, s.conv_channels, **kwargs).to(ctx.device, memory_format=memory_format)
    if conv.bias is not None:
        nn.init.normal_(conv.bias)  # the default init is tiny: make a wrong bias share visible
    size = s.conv_size + extra
    x = torch.randn(s.conv_batch, cin, size, size, device=ctx.device).contiguous(memory_format=memory_format)
    x.requires_grad_(True)
    params = [x, conv.weight] + ([conv.bias] if conv.bias is not None else [])
    with autocast(ctx.device, amp_dtype):
        out = conv(x)
    upstream = torch.randn(out.shape, device=ctx.device)
    got = [out, *torch.autograd.grad(out, params, upstream.to(out.dtype))]

    params64 = [p.detach().double().requires_grad_(True) for p in params]
    # torch's own split of the padding (for 'same', the odd pixel goes after): not padlib's geometry
    pads = tuple(nn.Conv2d(cin, s.conv_channels, **kwargs)._reversed_padding_repeated_twice)
    ref = reference(params64[0], params64[1], params64[2] if conv.bias is not None else None,
                    conv.stride, conv.dilation, conv.groups, pads)
    want = [ref, *torch.autograd.grad(ref, params64, upstream.double())]

    errors = [scaled_error(g, w) for g, w in zip(got, want, strict=True)]
    layout = "channels_last" if out.is_contiguous(memory_format=torch.channels_last) else "contiguous"
    return {
        "check": f"PartialConv2d {label}: {name}",
        "status": verdict(max(errors) <= tolerance),
        "error": max(errors),
        "tolerance": tolerance,
        "settings": settings_text(batch=s.conv_batch, size=size, channels=s.conv_channels),
        "detail": "out/dx/dw/db errors " + ", ".join(f"{e:.1e}" for e in errors) + f"; output {layout}",
    }


def loss_and_grads(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, list[Tensor]]:
    """The cross-entropy loss of ``model`` on (x, y) and its gradients for every parameter."""
    loss = F.cross_entropy(model(x), y)
    return loss, list(torch.autograd.grad(loss, list(model.parameters())))


def check_compile(ctx: Context) -> dict[str, Any]:
    """A fresh partial-padding resnet compiled before its first forward trains with eager's gradients."""
    s, backend = ctx.sizes, ctx.args.compile_backend
    torch.manual_seed(0)
    torch.compiler.reset()
    eager = build_model(s.compile_arch, 10, "partial").to(ctx.device)
    # a deepcopy of a never-run model: empty ratio caches, so the compiled model is cold
    compiled = torch.compile(copy.deepcopy(eager), backend=backend)
    x = torch.randn(s.compile_batch, 3, s.compile_size, s.compile_size, device=ctx.device)
    y = torch.randint(0, 10, (s.compile_batch,), device=ctx.device)
    with exact_fp32():
        start = time.perf_counter()
        got_loss, got = loss_and_grads(compiled, x, y)
        synchronize(ctx.device)
        compile_s = time.perf_counter() - start
        want_loss, want = loss_and_grads(eager, x, y)
    names = [n for n, _ in eager.named_parameters()]
    errors = [scaled_error(got_loss, want_loss)] + [scaled_error(g, w) for g, w in zip(got, want, strict=True)]
    worst = max(range(len(errors)), key=errors.__getitem__)
    return {
        "check": f"torch.compile ({backend}) cold, {s.compile_arch} partial: loss and gradients vs eager",
        "status": verdict(max(errors) <= COMPILE_TOL),
        "error": max(errors),
        "tolerance": COMPILE_TOL,
        "settings": settings_text(batch=s.compile_batch, size=s.compile_size, dtype="fp32", backend=backend),
        "detail": f"worst: {(['loss'] + names)[worst]}; first compiled step {compile_s:.1f} s",
    }


def check_amp_training(ctx: Context, dtype: torch.dtype) -> dict[str, Any]:
    """A few of padlib's train steps under autocast (fp16 with a GradScaler) keep loss and weights finite."""
    s, name = ctx.sizes, {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    check = f"{name} autocast train steps, {s.compile_arch} partial: loss and weights finite"
    settings = settings_text(batch=s.compile_batch, size=s.compile_size, steps=s.amp_steps, amp=name,
                            channels_last=True)
    if dtype == torch.float16 and not ctx.cuda:
        return {"check": check, "status": "skipped: needs CUDA", "settings": settings}
    torch.manual_seed(0)
    model = build_model(s.compile_arch, 10, "partial").to(ctx.device, memory_format=torch.channels_last)
    step = step_context(model, ctx.device, dtype)
    batch = random_batch(s.compile_batch, s.compile_size, 10, ctx.device)
    meters = padlib_steps(model, step, batch, s.amp_steps, check_every=1)  # NonFiniteLoss if not finite
    finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    return {
        "check": check,
        "status": verdict(finite and math.isfinite(meters.loss_sum)),
        "settings": settings,
        "detail": f"mean loss {meters.loss_sum / max(meters.count, 1):.3f}; weights finite: {finite}; "
                  f"grad scale {step.scaler.get_scale() if step.scaler.is_enabled() else 'off'}",
    }


def part_correctness(ctx: Context) -> list[dict[str, Any]]:
    """Part 1: PartialConv2d against the reference, compile against eager, AMP steps finite."""
    checks: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = [
        ("PartialConv2d fp32", lambda: check_partial_conv(ctx, "fp32", torch.contiguous_format, None, FP32_TOL)),
        ("PartialConv2d fp32 channels_last", lambda: check_partial_conv(
            ctx, "fp32 channels_last", torch.channels_last, None, FP32_TOL)),
        ("PartialConv2d bf16 autocast channels_last", lambda: check_partial_conv(
            ctx, "bf16 autocast channels_last", torch.channels_last, torch.bfloat16, BF16_TOL)),
        ("torch.compile against eager", lambda: [check_compile(ctx)]),
        ("bf16 train steps", lambda: [check_amp_training(ctx, torch.bfloat16)]),
        ("fp16 train steps", lambda: [check_amp_training(ctx, torch.float16)]),
    ]
    return [row for name, check in checks for row in guarded(name, check)]


# --- part 2: Table 1 -------------------------------------------------------------------------------


def part_table1(ctx: Context) -> list[dict[str, Any]]:
    """Part 2: scripts/bench_padding.py's interleaved timing, eager (every mode) and compiled."""
    s, rows = ctx.sizes, []
    common = ["--archs", *s.bench_archs, "--size", str(s.bench_size), "--steps", str(s.bench_steps),
              "--device", str(ctx.device), "--amp", {"fp32": "none"}.get(ctx.amp, ctx.amp), "--channels-last"]
    runs = [
        ("eager", common + ["--batch", str(s.bench_batch), "--first-repeats", str(s.bench_first_repeats),
                            "--warmup", str(s.bench_warmup)]),
        # each graph costs most of a minute to compile: only the modes with a target, one fresh copy each
        ("compiled", common + ["--batch", str(s.bench_compiled_batch), "--compile", "--modes", "zero", "partial",
                               "--first-repeats", "1", "--warmup", "1"]),
    ]
    for how, argv in runs:
        args = bench_padding.parse_args(argv)
        settings = settings_text(size=args.size, batch=args.batch, amp=args.amp, channels_last=True, compile=how)
        if how == "compiled" and ctx.args.compile_backend != "inductor":
            # bench_padding.py calls torch.compile(model): inductor, which --quick avoids on a CPU
            rows += [{"arch": arch, "mode": mode, "compile": True, "settings": settings,
                      "status": "skipped: bench_padding.py compiles with inductor only"}
                     for arch in args.archs for mode in args.modes]
            continue
        for arch in args.archs:
            print(f"  table1: {arch} {how}", flush=True)
            rows += guarded(f"{arch} {how}", functools.partial(bench_arch, arch, args, settings),
                            arch=arch, compile=args.compile, settings=settings)
    return rows


def bench_arch(arch: str, args: argparse.Namespace, settings: str) -> list[dict[str, Any]]:
    """bench_padding.py's rows of one arch beside issue 10's targets; compiled (if at all) from cold."""
    torch.compiler.reset()  # and no shape compiled earlier makes this one dynamic
    rows = bench_padding.summarise(arch, *bench_padding.bench_arch(arch, args), args)
    return [{**row, **table1_targets(row, args.compile), "settings": settings} for row in rows]


def table1_targets(row: dict[str, Any], compiled: bool) -> dict[str, Any]:
    """Issue 10's targets for partial padding's ratios to zero padding, and whether the row meets them."""
    if row["mode"] == "zero":
        return {"status": "baseline"}
    if row["mode"] != "partial":
        return {"status": INFO}
    steady = COMPILED_STEADY_TARGET if compiled else EAGER_STEADY_TARGET
    # a compiled model's first step is its compilation: no target
    first = None if compiled else FIRST_STEP_TARGET
    met = row["median_ratio"] <= steady and (first is None or row["first_ratio"] <= first)
    return {"status": MET if met else MISSED, "median_target": steady, "first_target": first}


# --- part 3: training throughput -------------------------------------------------------------------


def plain_steps(model: nn.Module, ctx: StepContext, batch: Batch, steps: int) -> None:
    """The torchvision reference recipe's train step (no meters, no scheduler), as the yardstick."""
    for _ in range(steps):
        with autocast(ctx.device, ctx.amp_dtype):
            loss = ctx.criterion(model(batch.images), batch.targets)
        ctx.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        ctx.optimizer.step()


def part_throughput(ctx: Context) -> list[dict[str, Any]]:
    """Part 3: images/s of padlib's step on a compiled partial model beside torchvision's resnet."""
    s, device, backend = ctx.sizes, ctx.device, ctx.args.compile_backend
    torch.compiler.reset()
    if ctx.cuda:
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    partial = build_model(s.train_arch, 1000, "partial").to(device, memory_format=torch.channels_last)
    plain = torchvision.models.get_model(s.train_arch, weights=None).to(device, memory_format=torch.channels_last)
    compiled = {"partial": torch.compile(partial, backend=backend), "torchvision": torch.compile(plain, backend=backend)}
    dtype = PRECISION_DTYPES[ctx.amp]
    steps = {"partial": step_context(partial, device, dtype), "torchvision": step_context(plain, device, dtype)}
    batch = random_batch(s.train_batch, s.train_size, 1000, device)
    # The padlib loop on both models splits the gap into the padding's share and the loop's own.
    runs = [(f"padlib step, {s.train_arch} partial", padlib_steps, "partial"),
            (f"padlib step, torchvision {s.train_arch}", padlib_steps, "torchvision"),
            (f"plain step, torchvision {s.train_arch}", plain_steps, "torchvision")]
    runners: dict[str, Callable[[int], Any]] = {
        name: functools.partial(loop, compiled[model], steps[model], batch) for name, loop, model in runs}
    for name, run in runners.items():
        print(f"  throughput: compiling / warming up {name}", flush=True)
        run(2)  # compilation, cuDNN autotuning, optimizer state
    rates: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(s.train_rounds):
        for name in bench_padding.round_order(names, r):  # interleaved, so drifts hit all alike
            seconds = bench_padding.timed(lambda name=name: runners[name](s.train_steps), device, "wall")
            rates[name].append(s.train_steps * s.train_batch / seconds)
    yardstick = statistics.median(rates[names[-1]])
    peak = f"; peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB" if ctx.cuda else ""
    rows = []
    for name in names:
        rate = statistics.median(rates[name])
        ratio = rate / yardstick
        rows.append({
            "check": name,
            "status": target_status(ratio, THROUGHPUT_TARGET, at_most=False) if name == names[0] else INFO,
            "images_per_s": rate,
            "step_ms": 1000 * s.train_batch / rate,
            "ratio": ratio,
            "target": THROUGHPUT_TARGET if name == names[0] else None,
            "settings": settings_text(size=s.train_size, batch=s.train_batch, amp=ctx.amp, channels_last=True,
                                     compile=backend, steps=f"{s.train_rounds}x{s.train_steps}"),
            "detail": "rounds " + ", ".join(f"{v:.0f}" for v in rates[name]) + " img/s" + peak,
        })
    return rows


# --- part 4: input pipeline ------------------------------------------------------------------------


def write_jpegs(folder: Path, count: int, width: int, height: int, seed: int = 0) -> list[Path]:
    """``count`` photo-sized JPEGs in ``folder``: a colour gradient under noise, whose strength (sigma
    20-36) makes 500x375 files of ~100-150 KB, ImageNet's typical size and so its decoding cost."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)[..., None] / max(width, height)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        img = rng.uniform(50, 200, 3) + yy * rng.uniform(-120, 120, 3) + xx * rng.uniform(-120, 120, 3)
        img += rng.normal(0, rng.uniform(20, 36), img.shape)
        paths.append(folder / f"{i:05d}.jpg")
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(paths[-1], quality=90)
    return paths


def jpeg_tree(ctx: Context, files: int, classes: int = 4, val_files: int = 4, name: str = "jpeg_tree"
              ) -> tuple[Path, float]:
    """An ImageFolder tree of ``files`` train and ``val_files`` val images, hard links to ``sizes.jpegs``
    generated JPEGs (the loader pays the same decoding per file read; the page cache serves both alike); and
    their mean KB."""
    s = ctx.sizes
    folder = ctx.work / "jpegs"
    jpegs = sorted(folder.glob("*.jpg")) if folder.is_dir() else write_jpegs(folder, s.jpegs, *s.jpeg_px)
    tree = ctx.work / name
    for split, per_class in (("train", math.ceil(files / classes)), ("val", math.ceil(val_files / classes))):
        for k in range(classes):
            (tree / split / f"class{k}").mkdir(parents=True)
            for i in range(per_class):
                src, dst = jpegs[(k * per_class + i) % len(jpegs)], tree / split / f"class{k}" / f"{i:06d}.jpg"
                try:
                    os.link(src, dst)
                except OSError:  # a file system without hard links
                    shutil.copyfile(src, dst)
    return tree, statistics.mean(p.stat().st_size for p in jpegs) / 1024


def part_pipeline(ctx: Context) -> list[dict[str, Any]]:
    """Part 4: images/s of padlib's folder train loader, against the GPU's appetite from part 3."""
    s = ctx.sizes
    workers = ctx.args.workers if ctx.args.workers is not None else max((os.cpu_count() or 2) - 1, 1)
    skip = max(workers, 1)  # every worker's first batch arrives at once: start-up, not throughput
    timed_batches = max(s.loader_batches_per_worker * workers, 4)
    tree, kb = jpeg_tree(ctx, (skip + timed_batches) * s.loader_batch)
    data = build_data({"name": "folder", "root": str(tree), "image_size": s.loader_image_size})
    loader, sampler = make_train_loader(data.train, s.loader_batch, workers, seed=0, dist=DistInfo(),
                                        pin_memory=ctx.cuda)
    sampler.set_epoch(1)
    start, images = 0.0, 0
    for i, batch in enumerate(loader):
        # the clock starts when the first wave (one batch per worker) is in, and counts the waves after it
        if i == skip - 1:
            start = time.perf_counter()
        elif i >= skip:
            images += len(batch.targets)
    rate = images / (time.perf_counter() - start)
    gpu = gpu_images_per_s(ctx)
    return [{
        "check": "padlib folder train loader",
        "status": INFO if gpu is None else target_status(rate, gpu, at_most=False),
        "images_per_s": rate,
        "gpu_images_per_s": gpu,
        "workers": workers,
        "images": images,
        "jpeg_kb": kb,
        "settings": settings_text(batch=s.loader_batch, image_size=s.loader_image_size, workers=workers,
                                 pin_memory=ctx.cuda, jpeg="x".join(map(str, s.jpeg_px))),
        "detail": ("fed: the loader keeps up with part 3's training step" if gpu and rate >= gpu else
                   "starved: the GPU would wait for images" if gpu else "no part 3 result to compare with")
                  + f"; {s.jpegs} distinct JPEGs, mean {kb:.0f} KB",
    }]


def gpu_images_per_s(ctx: Context) -> float | None:
    """What padlib's train step consumed in part 3 of this run, or of an earlier run in --out."""
    rows = ctx.rows.get("throughput")
    if rows is None:
        path = ctx.args.out / "gpu_check_throughput.csv"
        if not path.is_file():
            return None
        with path.open() as f:
            rows = [r for r in csv.DictReader(f) if r.get("device_name") == ctx.env["device_name"]]
    rates = [float(r["images_per_s"]) for r in rows if r.get("images_per_s") not in (None, "")]
    return rates[0] if rates else None


# --- part 5: a real short run ---------------------------------------------------------------------


def run_logged(cmd: list[str], log: Path, timeout: float, extra_env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess:
    """Run ``cmd`` from the repository root, appending its output to ``log``."""
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1", **(extra_env or {})})
    with log.open("a") as f:
        f.write(f"$ {' '.join(cmd)}\n{res.stdout}{res.stderr}\nexit status {res.returncode}\n\n")
    return res


def last_line(res: subprocess.CompletedProcess) -> str:
    """The last non-empty line of a command's stderr (its error), else of its stdout."""
    lines = [ln for ln in (res.stderr or res.stdout).splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def compile_log_row(text: str, settings: str) -> dict[str, Any]:
    """What TORCH_LOGS=recompiles,graph_breaks said during a compiled run, and whether inductor warned of a
    copy between devices inside the graph (partial padding's ratio and fold constants are built in-graph)."""
    lines = text.splitlines()
    recompiles = [ln for ln in lines if "Recompiling function" in ln]
    breaks = [ln for ln in lines if "Graph break" in ln]
    copies = [ln for ln in lines if "copy" in ln.lower() and ("device" in ln.lower() or "cpu" in ln.lower())
              and ("warn" in ln.lower() or "inductor" in ln.lower())]
    return {"check": "compile logs: recompiles, graph breaks, device copies", "settings": settings,
            "status": INFO, "detail": f"{len(recompiles)} recompiles, {len(breaks)} graph breaks, "
                                      f"{len(copies)} device-copy warnings"
                                      + (f"; first: {(recompiles + breaks + copies)[0].strip()[:200]}"
                                         if recompiles or breaks or copies else "")}


def run_directory_problems(rd: RunDir, epochs: int) -> list[str]:
    """What a completed run directory lacks (docs/RUN_DIRECTORY.md); empty when it is whole."""
    problems = [f"no {p.relative_to(rd.path)}" for p in
                (rd.info_path, rd.metrics_path, rd.predictions_path, rd.last_checkpoint, rd.best_checkpoint,
                 rd.epoch_checkpoint(epochs)) if not p.is_file()]
    if not rd.tensorboard_dir.is_dir() or not any(rd.tensorboard_dir.iterdir()):
        problems.append("no TensorBoard events")
    return problems


def part_train_run(ctx: Context) -> list[dict[str, Any]]:
    """Part 5: train.py on generated data with AMP, channels_last and compile, then evaluate.py all."""
    s, backend = ctx.sizes, ctx.args.compile_backend
    run_dir, log = ctx.work / "runs" / "run", ctx.args.out / "gpu_check_train_run.log"
    log.unlink(missing_ok=True)
    settings = settings_text(arch="resnet18", padding="partial", amp=ctx.amp, channels_last=True, compile=backend,
                            epochs=s.run_epochs, batch=s.run_batch)
    train = [sys.executable, str(REPO / "train.py"), f"hydra.run.dir={run_dir}", "model=resnet18", "padding=partial",
             "data=synthetic", f"data.root={ctx.work / 'synthetic'}", f"data.synthetic.num_classes={s.run_classes}",
             f"data.synthetic.train_per_class={s.run_per_class}", f"data.synthetic.val_per_class={s.run_per_class // 4}",
             f"data.workers={min(4, max((os.cpu_count() or 2) - 1, 0))}", f"trainer.device={ctx.device}",
             "trainer.amp=auto", "trainer.channels_last=true", "trainer.compile=true",
             f"trainer.compile_backend={backend}", f"trainer.epochs={s.run_epochs}",
             f"trainer.batch_size={s.run_batch}", "trainer.progress=false"]
    start = time.perf_counter()
    res = run_logged(train, log, timeout=480, extra_env={"TORCH_LOGS": "recompiles,graph_breaks"})
    rows = [{"check": "train.py completes", "status": verdict(res.returncode == 0), "settings": settings,
             "detail": f"{time.perf_counter() - start:.0f} s" + ("" if res.returncode == 0 else f"; {last_line(res)}")}]
    rows.append(compile_log_row(res.stdout + res.stderr, settings))
    if res.returncode != 0:
        return rows

    rd = RunDir(run_dir)
    info, metrics = rd.read_info(), rd.read_metrics()
    numbers = [v for row in metrics for v in row.values() if isinstance(v, int | float)]
    finite = len(metrics) == s.run_epochs and all(math.isfinite(v) for v in numbers)
    problems = run_directory_problems(rd, s.run_epochs)
    rows += [
        {"check": f"run.json says completed, at {ctx.amp}", "settings": settings,
         "status": verdict(info["status"] == "completed" and info.get("precision") == ctx.amp),
         "detail": f"status {info['status']}, precision {info.get('precision')}, device {info.get('device')}"},
        {"check": "metrics finite, one row per epoch", "status": verdict(finite), "settings": settings,
         "detail": "; ".join(f"epoch {r['epoch']}: train loss {r['train_loss']:.3f}, val top-1 {r['val_top1']:.1f}"
                             for r in metrics)},
        {"check": "run directory complete", "status": verdict(not problems), "settings": settings,
         "detail": ", ".join(problems) or "run.json, metrics.jsonl, predictions.npz, checkpoints, tb/"},
    ]
    report = ctx.work / "report"
    start = time.perf_counter()
    res = run_logged([sys.executable, str(REPO / "evaluate.py"), "all", str(run_dir.parent), "--out", str(report),
                      "--device", str(ctx.device)], log, timeout=300)
    written = sorted(p.name for p in report.glob("*")) if report.is_dir() else []
    rows.append({"check": "evaluate.py all on it", "settings": settings,
                 "status": verdict(res.returncode == 0 and "tables.md" in written),
                 "detail": f"{time.perf_counter() - start:.0f} s; wrote {len(written)} files"
                           + ("" if res.returncode == 0 else f"; {last_line(res)}")})
    return rows


# --- part 6: what only CUDA runs: deterministic mode, the DDP flags, evaluation throughput ------------


def deterministic_step(arch: str, padding: str, fixed: bool, ctx: Context) -> dict[str, Any]:
    """One train step of ``arch`` at 224 px under torch.use_deterministic_algorithms, as trainer.deterministic
    runs it (``fixed``: with padlib's deterministic pooling), twice from the same state: it must not raise, and
    both steps must give the same loss and gradients bit for bit."""
    from padlib.engine.deterministic import deterministic_on

    s = ctx.sizes
    torch.manual_seed(0)
    model = build_model(arch, 10, padding).to(ctx.device)
    if fixed:
        deterministic_on(ctx.device, model, s.det_size)
    x = torch.randn(s.det_batch, 3, s.det_size, s.det_size, device=ctx.device)
    y = torch.randint(0, 10, (s.det_batch,), device=ctx.device)
    settings = settings_text(arch=arch, size=s.det_size, batch=s.det_batch, padding=padding)
    saved = torch.are_deterministic_algorithms_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    try:
        results = []
        for _ in range(2):
            torch.manual_seed(1)  # the VGGs' dropout draws the same masks in both steps
            results.append(loss_and_grads(model, x, y))
    except RuntimeError as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        expected = not fixed and arch.startswith("vgg") and ctx.cuda
        return {"check": f"deterministic step: {arch}/{padding}" + ("" if fixed else " (torchvision's pooling)"),
                "settings": settings, "status": INFO if expected else FAIL, "detail": ("raises, as expected without the fix: " if expected
                                                                 else "raises: ") + first}
    finally:
        torch.use_deterministic_algorithms(saved)
    (loss_a, grads_a), (loss_b, grads_b) = results
    same = torch.equal(loss_a, loss_b) and all(torch.equal(a, b) for a, b in zip(grads_a, grads_b, strict=True))
    return {"check": f"deterministic step: {arch}/{padding}" + ("" if fixed else " (torchvision's pooling)"),
            "settings": settings, "status": verdict(same), "detail": "two steps bit-identical" if same else "two steps differ"}


def ddp_flag_rows(ctx: Context) -> list[dict[str, Any]]:
    """scripts/bench_ddp_sync.py under torchrun (one process, a group of one): steps/s with the loop's
    per-step flags read from the device (before), from the host (now), and without flags."""
    s = ctx.sizes
    log = ctx.args.out / "gpu_check_cuda_paths.log"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
           str(REPO / "scripts" / "bench_ddp_sync.py"), "--device", str(ctx.device), "--batch", str(s.ddp_batch),
           "--size", str(s.ddp_size), "--steps", str(s.ddp_steps), "--rounds", str(s.ddp_rounds)]
    res = run_logged(cmd, log, timeout=300)
    rates = {m[1]: float(m[2]) for m in re.finditer(r"^\s*(\w+) flags.*?([\d.]+) steps/s", res.stdout, re.M)}
    if res.returncode != 0 or len(rates) != 3:
        return [{"check": "DDP per-step flags", "status": ERROR, "detail": last_line(res)}]
    floor = rates["no"]
    return [{"check": f"DDP loop, {name} flags", "status": INFO, "images_per_s": rate * s.ddp_batch,
             "ratio": rate / floor, "settings": settings_text(arch="resnet18", size=s.ddp_size, batch=s.ddp_batch,
                                                             processes=1),
             "detail": f"{rate:.2f} steps/s; ratio to no flags"} for name, rate in rates.items()]


def eval_throughput_row(ctx: Context) -> dict[str, Any]:
    """images/s of ``evaluate.py tables --from-checkpoints`` on a resnet50 checkpoint (generated JPEGs at
    224 px), beside what part 3's train step consumed."""
    from padlib.checkpoint import save_checkpoint

    s = ctx.sizes
    tree, _ = jpeg_tree(ctx, 4, val_files=s.eval_images, name="eval_tree")
    run = RunDir(ctx.work / "eval_sweep" / s.eval_arch / "zero" / "seed0")
    run.checkpoint_dir.mkdir(parents=True)
    data = {"name": "folder", "root": str(tree), "image_size": s.eval_size, "resize_size": round(s.eval_size * 8 / 7)}
    cfg = {"model": {"name": s.eval_arch, "source": "torchvision"}, "padding": {"mode": "zero"}, "data": data,
           "trainer": {"epochs": 1}, "seed": 0}
    run.write_info({"arch": s.eval_arch, "padding": "zero", "seed": 0, "dataset": "folder", "num_classes": 4,
                    "epochs": 1, "world_size": 1, "status": "completed", "precision": ctx.amp, "config": cfg})
    run.append_metrics({"epoch": 1, "val_top1": 25.0, "val_top5": 100.0, "val_loss": 1.0, "train_loss": 1.0})
    torch.manual_seed(0)
    save_checkpoint({"model": build_model(s.eval_arch, 4, "zero").state_dict(), "epoch": 1}, run.best_checkpoint)
    res = run_logged([sys.executable, str(REPO / "evaluate.py"), "tables", str(run.path.parent.parent.parent),
                      "--from-checkpoints", "--device", str(ctx.device), "--amp", "run",
                      "--batch-size", str(s.eval_batch), "--workers", str(max((os.cpu_count() or 2) - 1, 1)),
                      "--out", str(ctx.work / "eval_report"), "--recompute"],
                     ctx.args.out / "gpu_check_cuda_paths.log", timeout=300)
    line = next((ln for ln in res.stdout.splitlines() if "images/s" in ln), "")
    rate = float(line.split(" images/s")[0].split()[-1]) if line else None
    gpu = gpu_images_per_s(ctx)
    return {"check": f"evaluate.py tables --from-checkpoints, {s.eval_arch}", "images_per_s": rate,
            "ratio": rate / gpu if rate and gpu else None, "status": INFO if rate else ERROR,
            "settings": settings_text(size=s.eval_size, batch=s.eval_batch, amp=ctx.amp),
            "detail": (line.strip() or last_line(res))[:200] + ("; ratio to part 3's train images/s" if gpu else "")}


def part_cuda_paths(ctx: Context) -> list[dict[str, Any]]:
    """Part 6: trainer.deterministic with the VGGs (and every mode), the DDP flags' cost, evaluation speed."""
    rows = [guarded(f"deterministic {arch}/{padding}",
                    lambda a=arch, p=padding, f=fixed: [deterministic_step(a, p, f, ctx)])[0]
            for arch, padding, fixed in (("vgg16_bn", "zero", False), ("vgg16_bn", "zero", True),
                                         ("vgg16_bn", "partial", True), *((ctx.sizes.det_arch, m, True) for m in
                                                                          ("reflect", "replicate", "circular",
                                                                           "symmetric", "distribution")))]
    rows += guarded("DDP per-step flags", lambda: ddp_flag_rows(ctx))
    rows += guarded("evaluation throughput", lambda: [eval_throughput_row(ctx)])
    return rows


# --- the parts, their files and the summary -------------------------------------------------------


ENV = ["device_name", "torch", "cuda"]  # columns every row carries


def cell(value: Any) -> str:
    """A value as the summary shows it: '-' when missing, tiny numbers (errors) in scientific notation."""
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.1e}" if 0 < abs(value) < 1e-3 else f"{value:.4g}"
    return str(value).replace("|", "\\|")


@dataclass(frozen=True)
class Part:
    """One part: its function, the columns of its CSV and those the summary shows, and how to read them."""

    name: str
    title: str
    run: Callable[[Context], list[dict[str, Any]]]
    columns: list[str]
    shown: list[str]
    notes: list[str]

    def write_csv(self, rows: list[dict[str, Any]], path: Path) -> Path:
        """Every column of ``rows`` (missing cells empty) as CSV at ``path``."""
        # csv, not padlib.report.writers: that imports scipy, which a bare GPU machine may lack
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        return path

    def markdown(self, rows: list[dict[str, Any]]) -> str:
        """The summary's section: a table of the ``shown`` columns, then the notes."""
        lines = [f"## {self.title}", "", "| " + " | ".join(self.shown) + " |",
                 "| " + " | ".join("---" for _ in self.shown) + " |"]
        lines += ["| " + " | ".join(cell(row.get(c)) for c in self.shown) + " |" for row in rows]
        return "\n".join(lines + [""] + [f"- {note}" for note in self.notes]) + "\n"


PARTS: dict[int, Part] = {
    1: Part("correctness", "1. Correctness on the device", part_correctness,
            ["check", "status", "error", "tolerance", "settings", "detail", *ENV],
            ["check", "status", "error", "tolerance", "detail"],
            ["error: max |got - reference| / max |reference|, the worst of the output and the input, weight "
             "and bias gradients; the reference is the formula in fp64 on the same device. fp32 checks run with "
             "TF32 off. Compile: the worst of the loss and every parameter's gradient, compiled vs eager."]),
    2: Part("table1", "2. Table 1: train-step time against zero padding", part_table1,
            ["arch", "mode", "status", *bench_padding.COLUMNS[2:], "first_target", "median_target", "settings",
             "detail", *ENV],
            ["arch", "mode", "compile", "batch", "first_step_s", "median_step_s", "first_ratio", "first_target",
             "median_ratio", "median_target", "status", "detail"],
            ["Ratios: the mode's step time over zero padding's, from scripts/bench_padding.py (modes interleaved "
             "in one process, medians). Targets for partial padding: steady <= 1.02 eager and <= 1.01 compiled, "
             "first step <= 1.10 eager (a compiled model's first step is its compilation: no target). Compiled "
             "runs time zero and partial only (each compilation costs most of a minute), at part 3's batch, so "
             "part 3 finds the resnet50 graphs in inductor's cache."]),
    3: Part("throughput", "3. Training throughput", part_throughput,
            ["check", "status", "images_per_s", "step_ms", "ratio", "target", "settings", "detail", *ENV],
            ["check", "images_per_s", "step_ms", "ratio", "target", "status", "detail"],
            ["ratio: images/s over the plain step's (the torchvision references' loop on an unconverted "
             "torchvision model); all three share precision, channels_last, compile backend and batch, and run "
             "interleaved in one process on one GPU-resident batch. Target for padlib's step on the partial "
             "model: >= 0.97. The middle row splits the gap into the padding's share and padlib's loop's."]),
    4: Part("pipeline", "4. Input pipeline", part_pipeline,
            ["check", "status", "images_per_s", "gpu_images_per_s", "workers", "images", "jpeg_kb", "settings",
             "detail", *ENV],
            ["check", "images_per_s", "gpu_images_per_s", "workers", "status", "detail"],
            ["images/s of padlib's folder train loader (JPEG decode, RandomResizedCrop, flip, normalise, "
             "collate), timed after every worker's first batch; met (fed) when it delivers at least what padlib's "
             "train step consumed in part 3."]),
    5: Part("train_run", "5. A real short run: train.py and evaluate.py", part_train_run,
            ["check", "status", "settings", "detail", *ENV],
            ["check", "status", "detail"],
            ["Both commands and their output: gpu_check_train_run.log. train.py runs with "
             "TORCH_LOGS=recompiles,graph_breaks: the compile-logs row counts what they said."]),
    6: Part("cuda_paths", "6. CUDA-only paths: deterministic mode, DDP flags, evaluation speed", part_cuda_paths,
            ["check", "status", "images_per_s", "ratio", "settings", "detail", *ENV],
            ["check", "status", "images_per_s", "ratio", "detail"],
            ["Deterministic: one train step at 224 px under torch.use_deterministic_algorithms, twice from the same "
             "state (bit-identical loss and gradients); torchvision's own VGG pooling is expected to raise on CUDA. "
             "DDP flags: scripts/bench_ddp_sync.py in a process group of one; ratio to the loop without flags. "
             "Evaluation: evaluate.py tables --from-checkpoints on one resnet50 checkpoint; ratio to part 3's "
             "train images/s. Commands and output: gpu_check_cuda_paths.log."]),
}


@dataclass
class PartResult:
    """What one part produced."""

    number: int
    rows: list[dict[str, Any]]
    seconds: float
    path: Path

    @property
    def statuses(self) -> Counter[str]:
        """How many rows have each status (``skipped: why`` counted as ``skipped``)."""
        return Counter(str(r.get("status")).split(":")[0] for r in self.rows)

    @property
    def failed(self) -> int:
        """Rows whose check failed or crashed."""
        return sum(self.statuses[status] for status in BAD)


def run_part(ctx: Context, number: int) -> PartResult:
    """Run one part, turning a crash into an ``error`` row, and write its CSV."""
    part = PARTS[number]
    print(f"== part {number} {part.name}", flush=True)
    start = time.perf_counter()
    try:
        rows = part.run(ctx)
    except Exception as e:  # one broken part must not hide the others' results
        traceback.print_exc()
        rows = [{"check": f"part {number} {part.name}", "arch": "-", "status": ERROR,
                 "detail": f"{type(e).__name__}: {e}"[:500]}]
    finally:
        gc.collect()  # the next part gets the device's memory back
        if ctx.cuda:
            torch.cuda.empty_cache()
    rows = [{**r, **ctx.env} for r in rows]
    ctx.rows[part.name] = rows
    path = part.write_csv(rows, ctx.args.out / f"gpu_check_{part.name}.csv")
    result = PartResult(number, rows, time.perf_counter() - start, path)
    print(f"   part {number} {part.name}: " + ", ".join(f"{n} {k}" for k, n in result.statuses.items())
          + f" ({result.seconds:.0f} s) -> {path}", flush=True)
    return result


def summary(ctx: Context, results: list[PartResult], argv: list[str]) -> str:
    """The Markdown summary of this invocation: where, what, and each part's table."""
    failed = sum(r.failed for r in results)
    speed = [r for res in results for r in res.rows if r.get("status") in (MET, MISSED)]
    lines = [
        "# padlib GPU check (`scripts/gpu_check.py`)",
        "",
        f"`{' '.join(['python scripts/gpu_check.py', *argv])}`",
        f"on **{ctx.env['device_name']}**, torch {ctx.env['torch']} (CUDA {ctx.env['cuda']}), "
        f"padlib {git_commit() or 'outside git'}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        + (", **quick (toy) sizes**" if ctx.args.quick else "") + ".",
        "",
        f"**{'All checks passed' if not failed else f'{failed} checks FAILED'}**; speed targets met: "
        f"{sum(r['status'] == MET for r in speed)} of {len(speed)} (targets never fail the run).",
        "",
        "| part | failed | seconds | file |",
        "| --- | ---: | ---: | --- |",
        *(f"| {res.number} {PARTS[res.number].name} | {res.failed} | {res.seconds:.0f} | {res.path.name} |"
          for res in results),
        "",
    ]
    for res in results:
        lines.append(PARTS[res.number].markdown(res.rows))
    return "\n".join(lines)


def parse_parts(value: str) -> list[int]:
    """``1,3`` or ``correctness,throughput`` as sorted part numbers."""
    numbers = {p.name: n for n, p in PARTS.items()}
    parts = set()
    for item in (v.strip() for v in value.split(",") if v.strip()):
        if item.isdigit() and int(item) in PARTS:
            parts.add(int(item))
        elif item in numbers:
            parts.add(numbers[item])
        else:
            raise argparse.ArgumentTypeError(f"{item!r} is not a part; use 1-{len(PARTS)} or {', '.join(numbers)}")
    return sorted(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="\n".join(f"part {n}: {p.name}" for n, p in PARTS.items()))
    parser.add_argument("--parts", type=parse_parts, default=sorted(PARTS), help="e.g. 1,3 (default: all)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="toy sizes (32 px, batch 4, 2 steps): checks the script")
    parser.add_argument("--compile-backend", help="torch.compile backend (default inductor; aot_eager with --quick)")
    parser.add_argument("--workers", type=int, help="loader workers in part 4 (default: all CPU cores but one)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench", help="folder for the results")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (generated data, the run)")
    args = parser.parse_args(argv)
    try:
        args.device = str(resolve_device(args.device, "--device"))
    except PadlibError as e:
        parser.error(str(e))
    args.compile_backend = args.compile_backend or ("aot_eager" if args.quick else "inductor")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts, write each one's CSV and the Markdown summary; 1 when a check failed."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True  # as bench_padding.py and a real run: autotuned convolutions
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    ctx = Context(args, device, QUICK if args.quick else FULL, work, environment(device))
    print(f"gpu_check on {ctx.env['device_name']}, torch {ctx.env['torch']}, parts {args.parts}, "
          f"compile backend {args.compile_backend}, scratch {work}", flush=True)
    md, results = args.out / "gpu_check.md", []
    try:
        for number in args.parts:
            results.append(run_part(ctx, number))
            md.write_text(summary(ctx, results, argv))  # after every part: a run cut short keeps its summary
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    failed = sum(r.failed for r in results)
    print(f"{'all checks passed' if not failed else f'{failed} checks FAILED'}; wrote {md}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

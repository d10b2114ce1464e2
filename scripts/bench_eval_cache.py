"""What padlib's in-memory caches buy in evaluation, measured side by side in one process: every padding mode's
forward pass as shipped (``validate``'s ``fold_once``: tiny-map kernels folded once per pass), without the
kernel reuse (each call folds), and without any layer cache (each call also rebuilds the fold geometry and
partial padding's border maps). Times are medians over rounds, modes and variants interleaved.

    python scripts/bench_eval_cache.py                      # the demo's setting and the paper's, on this CPU
    python scripts/bench_eval_cache.py --setting demo --rounds 20
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator

import torch
from torch import nn

from padlib.models import build_model
from padlib.padding import fold_once, get_padding
from padlib.provenance import device_name

SETTINGS = {
    # make demo's evaluation: resnet18 on 32 px Fashion-MNIST, batch 128 (its last two stages run on 2x2 and 1x1)
    "demo": {"arch": "resnet18", "size": 32, "batch": 128, "classes": 10},
    # the paper's: resnet50 at 224 px (no map is smaller than its kernel: no folding at all)
    "paper-cpu": {"arch": "resnet50", "size": 224, "batch": 32, "classes": 1000},
}
MODES = ("zero", "reflect", "replicate", "circular", "partial", "symmetric")


class _Forgetful(dict):
    """A cache that never keeps anything: what each call costs without it."""

    def __setitem__(self, key: object, value: object) -> None:
        pass


@contextlib.contextmanager
def variant(model: nn.Module, name: str) -> Iterator[None]:
    """Run ``model`` as shipped, without the kernel reuse, or without any layer cache."""
    if name == "shipped":
        with fold_once(model):
            yield
        return
    saved = []
    if name == "no layer caches":
        for m in model.modules():
            for attr in ("_fold_cache", "_scaling_cache"):
                if hasattr(m, attr):
                    saved.append((m, attr, getattr(m, attr)))
                    setattr(m, attr, _Forgetful())
    try:
        yield
    finally:
        for m, attr, cache in saved:
            setattr(m, attr, cache)


def main() -> None:
    """Print each mode's forward time relative to zero padding as shipped, per variant."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setting", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    print(f"# {device_name(torch.device('cpu'))}, torch {torch.__version__}")
    variants = ("shipped", "no kernel reuse", "no layer caches")
    for setting in args.setting:
        s = SETTINGS[setting]
        torch.manual_seed(0)
        x = torch.randn(s["batch"], 3, s["size"], s["size"])
        models = {m: build_model(s["arch"], s["classes"], get_padding(m)).eval() for m in MODES}
        times: dict[tuple[str, str], list[float]] = {(m, v): [] for m in MODES for v in variants}
        for r in range(args.rounds + 1):  # round 0 warms up
            for v in variants:
                for m, model in models.items():
                    with torch.inference_mode(), variant(model, v):
                        model(x)
                        start = time.perf_counter()
                        model(x)
                        if r:
                            times[(m, v)].append(time.perf_counter() - start)
        zero = statistics.median(times[("zero", "shipped")])
        print(f"\n{setting}: {s['arch']} {s['size']} px, batch {s['batch']}, {args.rounds} rounds; forward time / "
              f"zero padding as shipped ({zero * 1000:.1f} ms)")
        print("| variant | " + " | ".join(MODES) + " |")
        print("| --- | " + " | ".join("---:" for _ in MODES) + " |")
        for v in variants:
            print(f"| {v} | " + " | ".join(f"{statistics.median(times[(m, v)]) / zero:.3f}" for m in MODES) + " |")


if __name__ == "__main__":
    main()

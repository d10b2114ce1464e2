"""Measure how the demo's seed-to-seed std falls with data and epochs, to design it for power per CPU minute.

Runs resnet18 with zero padding on Fashion-MNIST for each design (train subset x epochs, the full 10k
test set as val) and several seeds, then writes one row per design: the std of best and last-epoch
val top-1 over seeds and the seconds per run. ``evaluate.py plan`` turns a std and a budget into a
detectable effect. Usage: ``python scripts/demo_design.py [--seeds 5] [--out results/fashion_mnist/design.csv]``
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from padlib.rundir import RunDir  # noqa: E402

# (train subset, epochs): shorter-and-more-seeds against longer-and-fewer
DESIGNS = ((2000, 2), (4000, 3), (8000, 3), (4000, 6))


def main() -> None:
    """Train every design x seed (resuming finished runs), then write the std table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--root", default="sweeps/demo_design")
    parser.add_argument("--out", default="results/fashion_mnist/design.csv")
    args = parser.parse_args()
    rows = []
    for subset, epochs in DESIGNS:
        best, last, seconds = [], [], []
        for seed in range(1, args.seeds + 1):
            run_dir = REPO / args.root / f"n{subset}_e{epochs}" / f"seed{seed}"
            start = time.perf_counter()
            cmd = [sys.executable, str(REPO / "train.py"), f"hydra.run.dir={run_dir}", f"seed={seed}",
                   "data=fashion_mnist", f"data.train_subset={subset}", "data.val_subset=null",
                   f"trainer.epochs={epochs}", "trainer.batch_size=128", "trainer.progress=false"]
            subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
            metrics = RunDir(run_dir).read_metrics()
            best.append(max(r["val_top1"] for r in metrics))
            last.append(metrics[-1]["val_top1"])
            seconds.append(sum(r["epoch_time_s"] for r in metrics))
            print(f"n{subset} e{epochs} seed {seed}: best {best[-1]:.2f} last {last[-1]:.2f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
        rows.append({"train_subset": subset, "epochs": epochs, "seeds": len(best),
                     "best_mean": statistics.mean(best), "best_std": statistics.stdev(best),
                     "last_mean": statistics.mean(last), "last_std": statistics.stdev(last),
                     "seconds_per_run": statistics.mean(seconds),
                     "best_runs": " ".join(f"{v:.2f}" for v in best)})
    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        print(row)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""The paper's Figure 4: val images that every run of padding A gets wrong and every run of padding B
gets right (and how many go the other way), as a CSV and a contact sheet."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from padlib.errors import PadlibError
from padlib.report.collect import Run
from padlib.report.figures import plt, save


@dataclass
class Flips:
    """Per-image agreement of the runs of A and of B on one arch (predictions of each run's best epoch)."""

    arch: str
    a: str
    b: str
    a_runs: list[Run]
    b_runs: list[Run]
    target: np.ndarray  # val-dataset order
    a_pred: np.ndarray  # [runs of A, images]
    b_pred: np.ndarray
    scored: np.ndarray  # bool: every run has a prediction for the image

    @property
    def a_wrong_b_right(self) -> np.ndarray:
        """Indices every A run gets wrong and every B run gets right."""
        return np.flatnonzero(self.scored & (self.a_pred != self.target).all(0) & (self.b_pred == self.target).all(0))

    @property
    def b_wrong_a_right(self) -> np.ndarray:
        """The reverse: indices every B run gets wrong and every A run gets right."""
        return np.flatnonzero(self.scored & (self.b_pred != self.target).all(0) & (self.a_pred == self.target).all(0))


def _stack(runs: list[Run], warnings: list[str]) -> tuple[list[Run], list[np.ndarray], list[np.ndarray]]:
    kept, preds, targets = [], [], []
    for run in runs:
        try:
            p = run.rundir.read_predictions()
        except PadlibError as e:
            warnings.append(f"{run.name}: left out of the per-image analysis: {e}")
            continue
        kept.append(run)
        preds.append(p["pred"])
        targets.append(p["target"])
    return kept, preds, targets


def compare_runs(arch: str, a: str, b: str, a_runs: list[Run], b_runs: list[Run], warnings: list[str]) -> Flips:
    """Line up the stored predictions of the runs of A and B; PadlibError when they cannot be compared."""
    a_runs, a_preds, a_targets = _stack(a_runs, warnings)
    b_runs, b_preds, b_targets = _stack(b_runs, warnings)
    if not a_runs or not b_runs:
        raise PadlibError(f"{arch}: no predictions for {a if not a_runs else b}; cannot compare {a} with {b}")
    sizes = {len(t) for t in a_targets + b_targets}
    if len(sizes) > 1:
        raise PadlibError(f"{arch}: the runs' predictions cover val sets of different sizes {sorted(sizes)}; "
                          "were they trained on different data?")
    targets = np.stack(a_targets + b_targets)
    known = targets >= 0
    # an image unreadable in one run is -1 there; where two runs both read it, they must agree
    ref = np.where(known, targets, -1).max(0)
    if np.any(known & (targets != ref)):
        raise PadlibError(f"{arch}: the runs' predictions disagree on the val targets; were they trained on "
                          "different data or val subsets?")
    a_pred, b_pred = np.stack(a_preds), np.stack(b_preds)
    scored = known.all(0) & (a_pred >= 0).all(0) & (b_pred >= 0).all(0)
    return Flips(arch, a, b, a_runs, b_runs, ref, a_pred, b_pred, scored)


def run_label(run: Run) -> str:
    """Short column label of a run."""
    return f"{run.padding}_seed{run.seed}"


def write_flips_csv(flips: Flips, path: Path, class_name: Callable[[int], str]) -> Path:
    """One row per A-wrong/B-right image: index, target class, what each A run predicted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "target", "target_class", *(f"pred_{run_label(r)}" for r in flips.a_runs),
                    *(f"pred_class_{run_label(r)}" for r in flips.a_runs)])
        for i in flips.a_wrong_b_right:
            preds = [int(p) for p in flips.a_pred[:, i]]
            w.writerow([int(i), int(flips.target[i]), class_name(int(flips.target[i])), *preds,
                        *(class_name(p) for p in preds)])
    return path


def contact_sheet(flips: Flips, indices: Sequence[int], image: Callable[[int], Image.Image | None],
                  class_name: Callable[[int], str], path: Path, title: str) -> Path:
    """A grid of the images, each captioned with its class and what the A runs predicted instead."""
    n = len(indices)
    cols = min(6, max(1, n))
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices, strict=False):
        img = image(int(i))
        if img is not None:
            ax.imshow(img, interpolation="nearest")
        preds = ", ".join(dict.fromkeys(class_name(int(p)) for p in flips.a_pred[:, i]))
        ax.set_title(f"#{int(i)} {class_name(int(flips.target[i]))}\n{flips.a}: {preds}", fontsize=7)
    if n == 0:
        axes.flat[0].text(0.5, 0.5, "no such images", ha="center", va="center")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def summary_line(flips: Flips) -> str:
    """How many images each padding always gets right where the other always gets wrong."""
    return (f"{flips.arch}: {len(flips.a_wrong_b_right)} val images every {flips.a} run ({len(flips.a_runs)}) "
            f"gets wrong and every {flips.b} run ({len(flips.b_runs)}) gets right; "
            f"{len(flips.b_wrong_a_right)} the other way round (of {int(flips.scored.sum())} scored)")

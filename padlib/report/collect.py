"""Find the runs of a sweep, load what the reports need, and group them by (arch, padding).

Problems with single runs (a foreign run.json, a corrupt metrics line, an unfinished run) become
warnings and the run is left out or trimmed; only a sweep with nothing usable is an error.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from padlib.errors import PadlibError
from padlib.rundir import RunDir, find_runs

# The paper's order (VGGs, then ResNets by depth), so our tables read like its tables.
FAMILY_ORDER = ("vgg", "resnet")
PADDING_ORDER = ("zero", "partial", "reflect", "replicate", "circular")
REFERENCE_PADDING = "zero"


@dataclass
class Run:
    """One run of a sweep: its directory, run.json and the metrics rows that could be read."""

    rundir: RunDir
    info: dict[str, Any]
    metrics: list[dict[str, Any]]
    name: str  # path relative to the sweep root, for messages

    @property
    def arch(self) -> str:
        return str(self.info["arch"])

    @property
    def padding(self) -> str:
        return str(self.info["padding"])

    @property
    def seed(self) -> int:
        return int(self.info["seed"])

    @property
    def dataset(self) -> str:
        return str(self.info["dataset"])

    @property
    def status(self) -> str:
        return str(self.info["status"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.info.get("config") or {})


@dataclass
class Sweep:
    """The usable runs of a sweep, what was left out and why, and the warnings met on the way."""

    root: Path
    dataset: str
    runs: list[Run]
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (run name, reason)
    warnings: list[str] = field(default_factory=list)

    def groups(self) -> dict[tuple[str, str], list[Run]]:
        """Runs by (arch, padding) in the paper's order, each group sorted by seed."""
        groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
        for run in self.runs:
            groups[(run.arch, run.padding)].append(run)
        return {k: sorted(groups[k], key=lambda r: (r.seed, r.name)) for k in sorted(groups, key=group_order)}

    def left_out_note(self) -> str | None:
        """One line naming the runs left out, or None."""
        if not self.left_out:
            return None
        return f"left out {len(self.left_out)} run(s): " + "; ".join(f"{n} ({why})" for n, why in self.left_out)


def arch_key(arch: str) -> tuple:
    """Sort key: VGGs, then ResNets (the paper's order), then other families; by depth within a family."""
    m = re.match(r"^([a-z_]*?)(\d+)(.*)$", arch)
    family, depth, rest = (m[1], int(m[2]), m[3]) if m else (arch, 0, "")
    return (FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER), family, depth, rest)


def padding_key(padding: str) -> tuple[int, str]:
    """Sort key: zero first, then the paper's order, then the rest by name."""
    return (PADDING_ORDER.index(padding), "") if padding in PADDING_ORDER else (len(PADDING_ORDER), padding)


def group_order(key: tuple[str, ...]) -> tuple:
    """Sort key of an (arch, padding, ...) tuple."""
    return (arch_key(key[0]), *(padding_key(p) for p in key[1:]))


def _read_run(rundir: RunDir, root: Path, warnings: list[str]) -> Run | None:
    """The run in ``rundir``, or None (with a warning) when its run.json is not ours."""
    name = str(rundir.path.relative_to(root)) if rundir.path != root else rundir.path.name
    try:
        info = rundir.read_info()
    except PadlibError as e:
        warnings.append(f"skipped {e}")
        return None
    metrics = []
    for item in rundir.iter_metrics():
        if isinstance(item, PadlibError):
            warnings.append(f"{item}; skipped that line")
        else:
            metrics.append(item)
    by_epoch = {int(r["epoch"]): r for r in metrics}  # a resumed run may repeat an epoch: the last wins
    return Run(rundir, info, [by_epoch[e] for e in sorted(by_epoch)], name)


def load_sweep(root: Path | str, include_incomplete: bool = False, dataset: str | None = None,
               need_metrics: bool = True) -> Sweep:
    """The runs below ``root`` that a report can use; PadlibError when there are none."""
    root = Path(root)
    warnings: list[str] = []
    found = find_runs(root)
    if not found:
        raise PadlibError(f"{root}: no runs found (no run.json below it); is this a sweep directory?")
    runs = [r for r in (_read_run(d, root, warnings) for d in found) if r is not None]
    if not runs:
        first = warnings[0].removeprefix("skipped ") if warnings else ""
        raise PadlibError(f"{root}: none of the {len(found)} run.json files below it is a padlib run (e.g. {first})")
    runs = _pick_dataset(root, runs, dataset)
    left_out: list[tuple[str, str]] = []
    kept = []
    for run in runs:
        if run.status != "completed" and not include_incomplete:
            left_out.append((run.name, f"status {run.status}"))
        elif need_metrics and not run.metrics:
            left_out.append((run.name, "no readable metrics"))
        else:
            kept.append(run)
    _warn_duplicate_seeds(kept, warnings)
    if not kept:
        reasons = "; ".join(f"{n} ({why})" for n, why in left_out)
        hint = " (use --include-incomplete to report unfinished runs)" if not include_incomplete else ""
        raise PadlibError(f"{root}: no usable runs: {reasons}{hint}")
    return Sweep(root, kept[0].dataset, kept, left_out, warnings)


def _pick_dataset(root: Path, runs: list[Run], dataset: str | None) -> list[Run]:
    """The runs of one dataset: ``dataset`` when given, else the only one present."""
    datasets = sorted({r.dataset for r in runs})
    if dataset is None:
        if len(datasets) > 1:
            counts = ", ".join(f"{d} ({sum(r.dataset == d for r in runs)} runs)" for d in datasets)
            raise PadlibError(f"{root}: runs of several datasets: {counts}; pick one with --dataset NAME")
        return runs
    picked = [r for r in runs if r.dataset == dataset]
    if not picked:
        raise PadlibError(f"{root}: no runs of dataset {dataset!r}; found {', '.join(datasets)}")
    return picked


def _warn_duplicate_seeds(runs: list[Run], warnings: list[str]) -> None:
    """Two runs of one (arch, padding, seed) would count the same experiment twice: say so."""
    seen: dict[tuple[str, str, int], str] = {}
    for run in runs:
        key = (run.arch, run.padding, run.seed)
        if key in seen:
            warnings.append(f"{run.name} and {seen[key]} are both {key[0]}/{key[1]} seed {key[2]}; both are counted")
        else:
            seen[key] = run.name

"""Find the runs of a sweep, load what the reports need, and group them by (arch, padding).

Problems with single runs (a foreign run.json, a corrupt metrics line, an unfinished run) become
warnings and the run is left out or trimmed; only a sweep with nothing usable is an error.

Runs of one arch trained with different settings (epochs, data subset, batch size, precision, ...) are
never pooled: each distinct setting gets its own group, labelled e.g. ``resnet18 [epochs=3]``,
and that label is the "arch" of every table row, so each padding is compared with zero padding at the
same settings.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from padlib.configcheck import RUNTIME_KEYS, flatten
from padlib.engine.amp import AMP_MODES, PRECISION_DTYPES
from padlib.engine.amp import amp_precision as resolve_amp
from padlib.errors import PadlibError
from padlib.rundir import RunDir, find_runs

# The paper's order (VGGs, then ResNets by depth), so our tables read like its tables.
FAMILY_ORDER = ("vgg", "resnet")
PADDING_ORDER = ("zero", "partial", "reflect", "replicate", "circular", "symmetric", "distribution")
REFERENCE_PADDING = "zero"

# Config keys that do not split a group: those that do not change results (RUNTIME_KEYS, also what the
# trainer lets a resume change) and what a table row pools over (seed) or shows as a column.
IGNORED_SETTINGS = frozenset({*RUNTIME_KEYS, "seed", "model.name"})
# trainer.amp is compared as the precision it resolved to ("auto" is bf16 on CUDA, fp32 on CPU)
PRECISION_SETTING, AMP_SETTING, WORLD_SIZE_SETTING = "precision", "trainer.amp", "world_size"
WEIGHTS_SETTINGS, INIT_SETTING = ("model.weights", "model.pretrained"), "weights"
PRECISIONS = tuple(PRECISION_DTYPES)
_LABEL_OPEN = " ["  # between the arch and its settings in a group label


@dataclass
class Run:
    """One run of a sweep: its directory, run.json and the metrics rows that could be read."""

    rundir: RunDir
    info: dict[str, Any]
    metrics: list[dict[str, Any]]
    name: str  # path relative to the sweep root, for messages
    group: str | None = None  # the arch plus the settings that set it apart; None: the arch alone

    @property
    def arch(self) -> str:
        """The architecture as the model builders know it."""
        return str(self.info["arch"])

    @property
    def label(self) -> str:
        """The run's group label: the table rows' "arch", e.g. ``resnet18 [epochs=3]``."""
        return self.group or self.arch

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

    @property
    def precision(self) -> str:
        """fp32, bf16 or fp16: what the run trained and validated at (see ``run_precision``)."""
        return run_precision(self.info, str(self.rundir.info_path))

    def settings(self) -> dict[str, str]:
        """The settings that change results, flattened (``trainer.optim.lr``) and shown as text."""
        # The padding's own parameters are in its label (the padding column), not a setting; the starting
        # weights are known by their lineage (run.json's init_weights), not by the path the config gave.
        flat = {k: v for k, v in flatten(self.config).items()
                if k not in IGNORED_SETTINGS and k != AMP_SETTING and not k.startswith("padding.")
                and k not in WEIGHTS_SETTINGS}
        flat[PRECISION_SETTING] = self.precision
        flat[WORLD_SIZE_SETTING] = self.info.get("world_size")
        init = self.info.get("init_weights")
        if isinstance(init, dict):
            flat[INIT_SETTING] = str(init.get("lineage") or init.get("sha256"))
        return {k: v if isinstance(v, str) else json.dumps(_as_numbers(v)) for k, v in flat.items()}


def _as_numbers(value: Any) -> Any:
    """Numbers written one way, inside lists too: Hydra gives ``0`` for ``=0`` where a YAML file says
    ``0.0``, so whole floats become ints (and show as ``epochs=3``, not ``3.0``)."""
    if isinstance(value, list | tuple):
        return [_as_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class Sweep:
    """The usable runs of a sweep, what was left out and why, and the warnings met on the way."""

    root: Path
    dataset: str
    runs: list[Run]
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (run name, reason)
    warnings: list[str] = field(default_factory=list)
    split_notes: list[str] = field(default_factory=list)  # archs whose runs differ in settings

    def groups(self) -> dict[tuple[str, str], list[Run]]:
        """Runs by (group label, padding) in the paper's order, each group sorted by seed."""
        groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
        for run in self.runs:
            groups[(run.label, run.padding)].append(run)
        return {k: sorted(groups[k], key=lambda r: (r.seed, r.name)) for k in sorted(groups, key=group_order)}

    def notes(self) -> list[str]:
        """What every report of the sweep should say: runs left out, and runs split by their settings."""
        left_out = self.left_out_note()
        return [*([left_out] if left_out else []), *self.split_notes]

    def left_out_note(self) -> str | None:
        """One line naming the runs left out, or None."""
        if not self.left_out:
            return None
        return f"left out {len(self.left_out)} run(s): " + "; ".join(f"{n} ({why})" for n, why in self.left_out)


def label_arch(label: str) -> str:
    """The architecture of a group label (``resnet18 [epochs=3]`` -> ``resnet18``)."""
    return label.partition(_LABEL_OPEN)[0]


def amp_precision(amp: Any, device: str | None, where: str) -> str | None:
    """The precision trainer.amp=``amp`` trains at on ``device`` (run.json's ``device``, e.g. ``cuda: NVIDIA
    H100``); None when ``amp`` is auto and the device unknown."""
    if amp not in AMP_MODES:
        raise PadlibError(f"{where}: trainer.amp={amp!r} is unknown; expected {', '.join(AMP_MODES)}")
    return resolve_amp(amp, None if device is None else str(device).split(":")[0])


def run_precision(info: dict[str, Any], where: str) -> str:
    """fp32, bf16 or fp16: run.json's ``precision``, else derived from config.trainer.amp and ``device``
    (older runs). A run.json with neither (made by hand) counts as fp32."""
    stored = info.get("precision")
    if stored is not None:
        if stored not in PRECISIONS:
            raise PadlibError(f"{where}: precision={stored!r} is unknown; expected {', '.join(PRECISIONS)}")
        return str(stored)
    trainer = (info.get("config") or {}).get("trainer") or {}
    return amp_precision(trainer.get("amp", "auto"), info.get("device"), where) or "fp32"


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
    if not kept:
        reasons = "; ".join(f"{n} ({why})" for n, why in left_out)
        hint = " (use --include-incomplete to report unfinished runs)" if not include_incomplete else ""
        raise PadlibError(f"{root}: no usable runs: {reasons}{hint}")
    split_notes = split_by_settings(kept)
    _warn_duplicate_seeds(kept, warnings)
    _warn_mixed_versions(kept, warnings)
    return Sweep(root, kept[0].dataset, kept, left_out, warnings, split_notes)


def _warn_mixed_versions(runs: list[Run], warnings: list[str]) -> None:
    """Runs made with other package versions differ by more than seeds: a new torch alone can move a
    Fashion-MNIST accuracy by a point. Say which packages differ and how many runs each version has."""
    versions = [run.info.get("versions") or {} for run in runs]
    for package in sorted(set().union(*versions)):
        counts: dict[str, int] = defaultdict(int)
        for v in versions:
            counts[str(v.get(package, "unrecorded"))] += 1
        if len(counts) > 1:
            listing = ", ".join(f"{version} ({n} runs)" for version, n in sorted(counts.items()))
            warnings.append(f"runs were made with different {package} versions: {listing}; differences between "
                            "them can come from the environment, not the padding (see requirements.lock)")


def short_names(keys: list[str]) -> dict[str, str]:
    """Each dotted key by its shortest last part that no other key ends with (``trainer.optim.lr`` -> ``lr``)."""
    parts = {k: k.split(".") for k in keys}
    short = {}
    for key, p in parts.items():
        for n in range(1, len(p) + 1):
            tail = p[-n:]
            if not any(o != key and q[-n:] == tail for o, q in parts.items()):
                break
        short[key] = ".".join(tail)
    return short


def split_by_settings(runs: list[Run]) -> list[str]:
    """Give runs of one arch that differ in a setting that changes results their own group label (set
    ``run.group``), so they are never pooled; one note per arch naming the settings and the runs."""
    by_arch: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_arch[run.arch].append(run)
    notes = []
    for arch in sorted(by_arch, key=arch_key):
        arch_runs = by_arch[arch]
        settings = [run.settings() for run in arch_runs]
        keys = sorted(set().union(*settings))
        varying = [k for k in keys if len({s.get(k) for s in settings}) > 1]
        if not varying:
            continue
        members: dict[str, int] = defaultdict(int)
        short = short_names(varying)
        for run, s in zip(arch_runs, settings, strict=True):
            run.group = arch + _LABEL_OPEN + ", ".join(f"{short[k]}={s.get(k, 'unset')}" for k in varying) + "]"
            members[run.group] += 1
        # the run directories name their settings (docs/RUN_DIRECTORY.md): counts are enough here
        listing = "; ".join(f"{label}: {n} run{'s' if n > 1 else ''}" for label, n in sorted(members.items()))
        notes.append(f"{arch} runs differ in {', '.join(varying)}, which change results: not pooled, one row "
                     f"per setting ({listing})")
    return notes


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
    """Two runs of one (group, padding, seed) would count the same experiment twice: say so."""
    seen: dict[tuple[str, str, int], str] = {}
    for run in runs:
        key = (run.label, run.padding, run.seed)
        if key in seen:
            warnings.append(f"{run.name} and {seen[key]} are both {key[0]}/{key[1]} seed {key[2]}; both are counted")
        else:
            seen[key] = run.name

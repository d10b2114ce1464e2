"""Re-evaluation results cached next to each run, one small JSON file per (checkpoint file, val set, test
size, precision, padding, versions): a second report costs nothing and an interrupted one resumes.

A checkpoint file is known by its name, size and modification time, so a checkpoint rewritten (a resumed
run, a tampered file) is evaluated again; the val set by its config and by a digest of its images and labels
(each file's name, size and modification time), so val images replaced under the same path are evaluated
again too. ``evaluate.py ... --recompute`` ignores what is cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from padlib.fileio import atomic_write_bytes

# <run dir>/eval_cache/<sha1 of the key>.json; only the evaluator reads or writes it, and deleting it
# only costs time
CACHE_DIR = "eval_cache"
FORMAT = "padlib-eval/1"


@dataclass(frozen=True)
class EvalRecord:
    """What one evaluation of one checkpoint measured."""

    top1: float
    top5: float
    loss: float
    count: int  # val images scored (every image once, across all ranks)
    skipped: int  # unreadable val images
    epoch: int | None  # epochs finished when the checkpoint was written (its ``epoch`` field)
    device: str  # cpu, cuda: where it was measured (CPU numbers are exact, GPU ones within a tolerance)
    seconds: float


def checkpoint_key(run_path: Path, checkpoint: Path, val: Mapping[str, Any], val_digest: str, padding: str,
                   precision: str) -> dict[str, Any]:
    """The cache key of evaluating ``checkpoint`` (a file of the run at ``run_path``) on the val set of
    the data config ``val`` whose images digest to ``val_digest``, in ``padding`` mode at ``precision``,
    with these package versions."""
    import torch

    import padlib

    stat = checkpoint.stat()
    try:
        name = str(checkpoint.relative_to(run_path))
    except ValueError:
        name = str(checkpoint.resolve())
    return {"format": FORMAT, "checkpoint": name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "val": dict(val), "val_digest": val_digest, "padding": padding, "precision": precision,
            "padlib": padlib.__version__, "torch": torch.__version__}


def _canonical(key: Mapping[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, default=str)


def cache_path(run_path: Path, key: Mapping[str, Any]) -> Path:
    """Where the result of ``key`` is cached."""
    digest = hashlib.sha1(_canonical(key).encode()).hexdigest()[:20]
    return run_path / CACHE_DIR / f"{digest}.json"


def read_cached(run_path: Path, key: Mapping[str, Any]) -> EvalRecord | None:
    """The cached result of ``key``, or None (nothing cached, or an unreadable or foreign entry)."""
    try:
        entry = json.loads(cache_path(run_path, key).read_text())
        if _canonical(entry["key"]) != _canonical(key):
            return None
        return EvalRecord(**entry["result"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cached(run_path: Path, key: Mapping[str, Any], record: EvalRecord) -> None:
    """Cache ``record`` as the result of ``key`` (atomically: an interrupted write leaves no half entry)."""
    text = json.dumps({"key": key, "result": asdict(record)}, sort_keys=True, indent=1, default=str)
    atomic_write_bytes(cache_path(run_path, key), text.encode())

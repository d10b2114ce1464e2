"""The run-directory contract: the only place that knows file names and formats of a run.

A run directory holds (see docs/RUN_DIRECTORY.md):

    run.json              what the run is (arch, padding, seed, dataset, epochs, status, ...)
    metrics.jsonl         one JSON object per finished epoch, ``epoch`` counted from 1
    predictions.npz       per-sample val predictions of the best epoch (pred, target, epoch)
    checkpoints/last.pt   latest state (end of an epoch, or mid-epoch after a preemption signal)
    checkpoints/best.pt   state of the best epoch by val top-1
    checkpoints/epoch_NNN.pt  the last K epochs
    tb/                   TensorBoard scalars

The training loop writes it, the evaluator reads it; neither touches these files directly.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from padlib.errors import PadlibError
from padlib.fileio import atomic_write_bytes

FORMAT = "padlib-run/1"
STATUSES = ("running", "interrupted", "completed", "failed")
REQUIRED_INFO = ("arch", "padding", "seed", "dataset", "epochs", "world_size", "status")
REQUIRED_METRICS = ("epoch", "val_top1", "val_top5", "val_loss", "train_loss")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@dataclass(frozen=True)
class RunDir:
    """Paths and readers/writers of one run directory."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # --- paths -----------------------------------------------------------------------------
    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def predictions_path(self) -> Path:
        return self.path / "predictions.npz"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint_dir / "best.pt"

    def epoch_checkpoint(self, epoch: int) -> Path:
        """Path of the checkpoint written at the end of ``epoch`` (counted from 1)."""
        return self.checkpoint_dir / f"epoch_{epoch:03d}.pt"

    def epoch_checkpoints(self) -> list[Path]:
        """The per-epoch checkpoints present, oldest first (epoch 1000 and later too)."""
        found = [p for p in self.checkpoint_dir.glob("epoch_*.pt") if p.stem[6:].isdigit()]
        return sorted(found, key=lambda p: int(p.stem[6:]))

    def resume_candidates(self) -> list[Path]:
        """The checkpoints a resume may start from, in the order it tries them: last.pt, then the epoch
        checkpoints newest first (those present)."""
        return [p for p in (self.last_checkpoint, *reversed(self.epoch_checkpoints())) if p.is_file()]

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tb"

    def exists(self) -> bool:
        """True when this directory holds a run (a run.json)."""
        return self.info_path.is_file()

    # --- run.json --------------------------------------------------------------------------
    def write_info(self, info: dict[str, Any]) -> None:
        """Write run.json atomically; ``info`` must hold the required fields."""
        missing = [k for k in REQUIRED_INFO if k not in info]
        if missing:
            raise ValueError(f"run.json needs {missing}")
        if info["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {info['status']!r}")
        payload = {"format": FORMAT, **info}
        text = json.dumps(payload, indent=2, sort_keys=True, default=_json_default) + "\n"
        atomic_write_bytes(self.info_path, text.encode())

    def read_info(self) -> dict[str, Any]:
        """Read and check run.json; a clear PadlibError names the file when it is unusable."""
        try:
            info = json.loads(self.info_path.read_text())
        except FileNotFoundError:
            raise PadlibError(f"{self.info_path}: no run.json here; is this a padlib run directory?") from None
        except json.JSONDecodeError as e:
            raise PadlibError(f"{self.info_path}: not valid JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise PadlibError(
                f"{self.info_path}: not a {FORMAT} run.json (format={info.get('format') if isinstance(info, dict) else None!r})"
            )
        missing = [k for k in REQUIRED_INFO if k not in info]
        if missing:
            raise PadlibError(f"{self.info_path}: missing fields {missing}")
        return info

    def update_info(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into run.json and write it back atomically."""
        info = self.read_info()
        info.pop("format", None)
        info.update(fields)
        self.write_info(info)
        return info

    # --- metrics.jsonl ---------------------------------------------------------------------
    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one finished epoch's metrics and flush it to disk."""
        missing = [k for k in REQUIRED_METRICS if k not in row]
        if missing:
            raise ValueError(f"metrics row needs {missing}")
        line = json.dumps(row, sort_keys=True, default=_json_default, allow_nan=True)
        with open(self.metrics_path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def iter_metrics(self) -> Iterator[dict[str, Any] | PadlibError]:
        """Yield each metrics row, or a PadlibError naming the file and line for a corrupt one."""
        if not self.metrics_path.is_file():
            return
        with open(self.metrics_path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    yield PadlibError(f"{self.metrics_path}:{lineno}: corrupt line, not JSON")
                    continue
                missing = [k for k in REQUIRED_METRICS if k not in row] if isinstance(row, dict) else ["all"]
                if missing:
                    yield PadlibError(f"{self.metrics_path}:{lineno}: missing fields {missing}")
                    continue
                yield row

    def read_metrics(self, strict: bool = True) -> list[dict[str, Any]]:
        """All metrics rows by epoch; ``strict`` raises on a corrupt line, else skips it."""
        rows = []
        for item in self.iter_metrics():
            if isinstance(item, PadlibError):
                if strict:
                    raise item
                continue
            rows.append(item)
        # a resumed run may have re-appended an epoch: the last row for an epoch wins
        by_epoch = {int(r["epoch"]): r for r in rows}
        return [by_epoch[e] for e in sorted(by_epoch)]

    def truncate_metrics(self, last_epoch: int) -> None:
        """Drop rows of epochs after ``last_epoch`` (written after the checkpoint we resume from)."""
        rows = [r for r in self.read_metrics(strict=False) if int(r["epoch"]) <= last_epoch]
        text = "".join(json.dumps(r, sort_keys=True, default=_json_default) + "\n" for r in rows)
        atomic_write_bytes(self.metrics_path, text.encode())

    # --- predictions -----------------------------------------------------------------------
    def write_predictions(self, pred: np.ndarray, target: np.ndarray, epoch: int) -> None:
        """Save per-sample val predictions (dataset order) of ``epoch`` atomically."""
        buf = io.BytesIO()
        np.savez(buf, pred=np.asarray(pred, dtype=np.int64), target=np.asarray(target, dtype=np.int64),
                 epoch=np.int64(epoch))
        atomic_write_bytes(self.predictions_path, buf.getvalue())

    def read_predictions(self) -> dict[str, np.ndarray]:
        """Per-sample val predictions: ``pred``, ``target`` (int arrays) and ``epoch``."""
        try:
            with np.load(self.predictions_path) as z:
                return {"pred": z["pred"], "target": z["target"], "epoch": int(z["epoch"])}
        except FileNotFoundError:
            raise PadlibError(f"{self.predictions_path}: missing; was the run trained by padlib?") from None
        except (ValueError, KeyError, OSError) as e:
            raise PadlibError(f"{self.predictions_path}: unreadable ({e})") from None


def find_runs(root: Path | str) -> list[RunDir]:
    """Every run directory (a folder with run.json) at or below ``root``, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise PadlibError(f"{root}: no such directory")
    found = {p.parent for p in root.rglob("run.json")}
    return [RunDir(p) for p in sorted(found)]


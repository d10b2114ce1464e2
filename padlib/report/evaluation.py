"""Evaluate saved weights on a val set with any padding mode: the shared step of cross-testing and of
the per-image/activation analyses (same weights, model rebuilt in the requested padding)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from padlib.errors import PadlibError

DEFAULT_TEST_PADDINGS = ("zero", "partial", "reflect", "replicate")


@dataclass(frozen=True)
class Weights:
    """One set of trained weights and what is needed to rebuild its model and val set."""

    name: str  # the run (relative path) or the file, for tables and messages
    arch: str
    train_padding: str
    seed: int
    checkpoint: Path
    data_cfg: Mapping[str, Any]
    num_classes: int | None = None  # None: the val set's number of classes
    source: str = "auto"


@dataclass
class EvalOptions:
    """How to evaluate: test paddings, val data location and subset, batch size, device, precision."""

    paddings: list[str] | None = None
    data_root: str | None = None
    batch_size: int = 64
    workers: int = 2
    device: str = "auto"
    amp: str = "none"
    limit: int | None = None


def test_paddings(requested: list[str] | None, trained: list[str]) -> list[str]:
    """The paddings to test with: ``requested``, or the paper's four plus any training padding."""
    from padlib.padding import PADDING_MODES

    paddings = list(requested) if requested else [*DEFAULT_TEST_PADDINGS, *(p for p in trained
                                                                            if p not in DEFAULT_TEST_PADDINGS)]
    unknown = [p for p in paddings if p not in PADDING_MODES]
    if unknown:
        raise PadlibError(f"unknown padding(s) {', '.join(unknown)}; use {', '.join(PADDING_MODES)}")
    return list(dict.fromkeys(paddings))


def data_config(cfg: Mapping[str, Any], root: str | None, limit: int | None) -> dict[str, Any]:
    """A run's data config with the val root and subset overridden as asked."""
    out = dict(cfg)
    out.pop("workers", None)  # a loader setting, not the data's: the evaluator uses its own --workers
    if root is not None:
        out["root"] = str(root)
    if limit is not None:
        out["val_subset"] = int(limit)
    return out


@dataclass
class ValSets:
    """Val datasets and loaders built once per distinct data config (runs of a sweep share one)."""

    batch_size: int
    workers: int
    _cache: dict[str, Any] = field(default_factory=dict)

    def get(self, cfg: Mapping[str, Any]) -> tuple[Any, Any]:
        """(DataBundle, val DataLoader) of ``cfg``."""
        from padlib.data import build_data
        from padlib.engine.loaders import make_val_loader

        key = json.dumps(cfg, sort_keys=True, default=str)
        if key not in self._cache:
            bundle = build_data(cfg)
            self._cache[key] = (bundle, make_val_loader(bundle.val, self.batch_size, self.workers))
        return self._cache[key]


def load_model(weights: Weights, ckpt: Mapping[str, Any], padding: str, num_classes: int) -> nn.Module:
    """``weights``' architecture in ``padding`` mode with the checkpoint's weights, in eval mode."""
    from padlib.checkpoint import load_weights
    from padlib.models import build_model

    model = build_model(weights.arch, weights.num_classes or num_classes, padding=padding, source=weights.source)
    load_weights(model, ckpt, str(weights.checkpoint))
    return model.eval()


def weights_of_run(run: Any) -> Weights:
    """The best-checkpoint ``Weights`` of a sweep run (a ``collect.Run``)."""
    cfg = run.config
    if not isinstance(cfg.get("data"), Mapping):
        raise PadlibError(f"{run.rundir.info_path}: no config.data; cannot rebuild the run's val set")
    model_cfg = cfg.get("model") if isinstance(cfg.get("model"), Mapping) else {}
    return Weights(run.name, run.arch, run.padding, run.seed, run.rundir.best_checkpoint, cfg["data"],
                   run.info.get("num_classes"), str(model_cfg.get("source", "auto")))

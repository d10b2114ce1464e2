"""Evaluate saved weights on a val set with any padding mode: the shared step of cross-testing and of
the per-image/activation analyses (same weights, model rebuilt in the requested padding)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from padlib.errors import PadlibError

DEFAULT_TEST_PADDINGS = ("zero", "partial", "reflect", "replicate")
# --amp: "run" evaluates each set of weights at the precision it trained (and was validated) at, so
# testing with the training padding reproduces the run's logged val top-1; the others override it
RUN_PRECISION = "run"
AMP_CHOICES = (RUN_PRECISION, "auto", "none", "bf16", "fp16")


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
    precision: str = "fp32"  # what the weights trained at (collect.PRECISIONS)
    label: str | None = None  # the row's "arch" in tables: the sweep group label; None: ``arch``
    model_kwargs: Mapping[str, Any] | None = None  # the run's model.kwargs (constructor arguments)

    @property
    def group(self) -> str:
        """The "arch" of this weights' table rows."""
        return self.label or self.arch


@dataclass
class EvalOptions:
    """How to evaluate: test paddings, val data location and subset, batch size, device, precision."""

    paddings: list[str] | None = None
    data_root: str | None = None
    batch_size: int = 64
    workers: int = 2
    device: str = "auto"
    amp: str = RUN_PRECISION  # or an autocast mode for all weights: auto, none, bf16, fp16
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


def eval_precision(weights: Weights, amp: str, device: torch.device) -> tuple[str, bool]:
    """(precision to evaluate ``weights`` at, whether it fell back to fp32). ``amp`` "run": the weights'
    training precision, or fp32 where ``device`` cannot run it (fp16 autocast needs CUDA; bf16 runs on a
    CPU too, as the trainer's own validation did); otherwise the autocast mode ``amp`` for every set of weights."""
    if amp == RUN_PRECISION:
        if weights.precision == "fp16" and device.type != "cuda":
            return "fp32", True
        return weights.precision, False
    from padlib.engine.amp import amp_dtype, precision_name

    return precision_name(amp_dtype(amp, device)), False


def precision_note(used: dict[str, str], fell_back: list[Weights], amp: str, what: str) -> str:
    """The table note saying at what precision ``what`` (cross-testing, ...) measured the cells of ``used``
    (weights name -> precision), and where that is not the training precision (``fell_back``: cells with the
    training padding may then differ from Table 2)."""
    from padlib.engine.amp import PRECISION_DTYPES

    order = list(PRECISION_DTYPES)
    counts = Counter(used.values())
    cells = ", ".join(f"{p} for {n} of {len(used)} weights" if len(counts) > 1 else f"{p} for all {n} weights"
                      for p, n in sorted(counts.items(), key=lambda pn: order.index(pn[0])))
    how = "each run's training precision" if amp == RUN_PRECISION else f"--amp {amp}"
    note = f"precision of {what}: {cells} ({how}; bf16/fp16: autocast, fp32: none)"
    if fell_back:
        note += (f"; in fp32 instead of the training precision (not available on the evaluation device): "
                 f"{', '.join(w.name for w in fell_back)}, whose cells tested with their training padding may "
                 "differ slightly from their logged val top-1")
    return note


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
    dist: Any = None  # engine.distributed.DistInfo: each rank loads its own shard (None: all of it)
    pin_memory: bool = False
    _cache: dict[str, Any] = field(default_factory=dict)

    def get(self, cfg: Mapping[str, Any]) -> tuple[Any, Any]:
        """(DataBundle, val DataLoader) of ``cfg``."""
        from padlib.data import build_data
        from padlib.engine.loaders import make_val_loader

        key = json.dumps(cfg, sort_keys=True, default=str)
        if key not in self._cache:
            bundle = build_data(cfg)
            self._cache[key] = (bundle, make_val_loader(bundle.val, self.batch_size, self.workers, self.dist,
                                                        self.pin_memory))
        return self._cache[key]


def load_model(weights: Weights, ckpt: Mapping[str, Any], padding: str, num_classes: int) -> nn.Module:
    """``weights``' architecture in ``padding`` mode with the checkpoint's weights, in eval mode."""
    from padlib.checkpoint import load_weights
    from padlib.models import build_model

    model = build_model(weights.arch, weights.num_classes or num_classes, padding=padding, source=weights.source,
                        kwargs=weights.model_kwargs)
    load_weights(model, ckpt, str(weights.checkpoint))
    return model.eval()


def weights_of_run(run: Any) -> Weights:
    """The best-checkpoint ``Weights`` of a sweep run (a ``collect.Run``)."""
    cfg = run.config
    if not isinstance(cfg.get("data"), Mapping):
        raise PadlibError(f"{run.rundir.info_path}: no config.data; cannot rebuild the run's val set")
    model_cfg = cfg.get("model") if isinstance(cfg.get("model"), Mapping) else {}
    return Weights(run.name, run.arch, run.padding, run.seed, run.rundir.best_checkpoint, cfg["data"],
                   run.info.get("num_classes"), str(model_cfg.get("source", "auto")), run.precision, run.label,
                   model_cfg.get("kwargs"))

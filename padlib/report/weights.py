"""Saved weights, rebuilt: where a set of weights comes from (a sweep run's best checkpoint, or a single
file: ours, torchvision's or the paper authors'), how its model is rebuilt in any padding mode, on which
val set and at which precision. The shared step under cross-testing, the re-evaluated checkpoints and
the figures; the evaluation loop itself is the trainer's own ``engine.loop.validate``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from padlib.checkpoint import split_paper_arch
from padlib.engine.amp import PRECISION_DTYPES, amp_dtype, precision_name
from padlib.errors import PadlibError
from padlib.report.collect import PRECISIONS, Run, amp_precision

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
class ValOptions:
    """Where the val data is and how models run over it: what every report that runs models takes
    (``evaluate.py``'s evaluation options; the figures use only these)."""

    data_root: str | None = None  # replaces the root in each run's data config
    batch_size: int = 64
    workers: int = 2
    device: str = "auto"


@dataclass
class EvalOptions(ValOptions):
    """``ValOptions`` plus what scoring weights needs: test paddings, precision and a val subset."""

    paddings: list[str] | None = None
    amp: str = RUN_PRECISION  # or an autocast mode for all weights: auto, none, bf16, fp16
    limit: int | None = None


def test_paddings(requested: list[str] | None, trained: list[str]) -> list[str]:
    """The labels of the paddings to test with: ``requested`` (names, labels or import paths of modes), or
    the paper's four plus any training padding."""
    from padlib.padding import get_padding

    paddings = list(requested) if requested else [*DEFAULT_TEST_PADDINGS, *(p for p in trained
                                                                            if p not in DEFAULT_TEST_PADDINGS)]
    return list(dict.fromkeys(get_padding(p).label for p in paddings))


def eval_precision(weights: Weights, amp: str, device: torch.device) -> tuple[str, bool]:
    """(precision to evaluate ``weights`` at, whether it fell back to fp32). ``amp`` "run": the weights'
    training precision, or fp32 where ``device`` cannot run it (fp16 autocast needs CUDA; bf16 runs on a
    CPU too, as the trainer's own validation did); otherwise the autocast mode ``amp`` for every set of weights."""
    if amp == RUN_PRECISION:
        if weights.precision == "fp16" and device.type != "cuda":
            return "fp32", True
        return weights.precision, False
    return precision_name(amp_dtype(amp, device)), False


def precision_note(used: dict[str, str], fell_back: list[Weights], amp: str, what: str) -> str:
    """The table note saying at what precision ``what`` (cross-testing, ...) measured the cells of ``used``
    (weights name -> precision), and where that is not the training precision (``fell_back``: cells with the
    training padding may then differ from Table 2)."""
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
    _bundles: dict[str, Any] = field(default_factory=dict)
    _loaders: dict[str, Any] = field(default_factory=dict)
    _fingerprints: dict[str, str] = field(default_factory=dict)

    def get(self, cfg: Mapping[str, Any]) -> tuple[Any, Any]:
        """(DataBundle, val DataLoader) of ``cfg``."""
        from padlib.engine.loaders import make_val_loader

        key, bundle = _cfg_key(cfg), self.bundle(cfg)
        if key not in self._loaders:
            self._loaders[key] = make_val_loader(bundle.val, self.batch_size, self.workers, self.dist,
                                                 self.pin_memory)
        return bundle, self._loaders[key]

    def bundle(self, cfg: Mapping[str, Any]) -> Any:
        """The DataBundle of ``cfg``, built once."""
        from padlib.data import build_data

        key = _cfg_key(cfg)
        if key not in self._bundles:
            self._bundles[key] = build_data(cfg)
        return self._bundles[key]

    def fingerprint(self, cfg: Mapping[str, Any]) -> str:
        """The digest of ``cfg``'s val images and labels (``LabelledImages.fingerprint``), computed once."""
        key = _cfg_key(cfg)
        if key not in self._fingerprints:
            self._fingerprints[key] = self.bundle(cfg).val.fingerprint()
        return self._fingerprints[key]


def _cfg_key(cfg: Mapping[str, Any]) -> str:
    """A data config as a dict key: equal configs, equal keys."""
    return json.dumps(cfg, sort_keys=True, default=str)


def load_model(weights: Weights, ckpt: Mapping[str, Any], padding: str, num_classes: int) -> nn.Module:
    """``weights``' architecture in ``padding`` mode (a mode's label) with the checkpoint's weights, in eval mode."""
    from padlib.checkpoint import load_weights
    from padlib.models import build_model

    model = build_model(weights.arch, weights.num_classes or num_classes, padding=padding, source=weights.source,
                        kwargs=weights.model_kwargs)
    load_weights(model, ckpt, str(weights.checkpoint))
    return model.eval()


def run_padding(run: Run) -> str:
    """The label of ``run``'s padding, its mode made known (a user's mode imported) so the label rebuilds it."""
    from padlib.padding import get_padding

    return get_padding(run.info.get("padding_spec") or run.padding).label


def weights_of_run(run: Run) -> Weights:
    """The best-checkpoint ``Weights`` of a sweep run."""
    cfg = run.config
    if not isinstance(cfg.get("data"), Mapping):
        raise PadlibError(f"{run.rundir.info_path}: no config.data; cannot rebuild the run's val set")
    model_cfg = cfg.get("model") if isinstance(cfg.get("model"), Mapping) else {}
    return Weights(run.name, run.arch, run_padding(run), run.seed, run.rundir.best_checkpoint, cfg["data"],
                   run.info.get("num_classes"), str(model_cfg.get("source", "auto")), run.precision, run.label,
                   model_cfg.get("kwargs"))


class RunModels:
    """Each run's best weights rebuilt in the run's own padding, with its val set (each data config built
    once): what the figures and the border score look inside."""

    def __init__(self, opts: ValOptions) -> None:
        self.data_root = opts.data_root
        self.valsets = ValSets(opts.batch_size, opts.workers)

    def bundle(self, run: Run) -> Any:
        """The val DataBundle of ``run``."""
        w = weights_of_run(run)
        return self.valsets.get(data_config(w.data_cfg, self.data_root, None))[0]

    def model(self, run: Run) -> tuple[Any, nn.Module]:
        """(val DataBundle, the run's best model in its own padding, in eval mode)."""
        from padlib.checkpoint import load_checkpoint

        w = weights_of_run(run)
        ckpt = load_checkpoint(w.checkpoint)  # first: a missing file should not cost building the val set
        bundle = self.bundle(run)
        return bundle, load_model(w, ckpt, w.train_padding, bundle.num_classes)


# --- single files: ours, torchvision's, or the paper authors' released checkpoints ---


def weights_of_file(path: Path, ckpt: dict[str, Any], arch: str | None, train_padding: str | None,
                    data: str | None, data_root: str | None, num_classes: int | None,
                    source: str) -> tuple[Weights, list[str]]:
    """``Weights`` for a single checkpoint file: ours, torchvision's or the paper authors'.

    The architecture and training padding come from the options, else from the file (our ``arch``/
    ``padding`` fields, or the authors' ``arch`` such as ``pdresnet50`` = resnet50 with partial padding).
    """
    notes = []
    file_arch, file_padding = split_paper_arch(ckpt["arch"]) if isinstance(ckpt.get("arch"), str) else (None, None)
    if file_padding is None and isinstance(ckpt.get("padding"), str):
        from padlib.padding import get_padding

        # The recorded spec imports a user's mode by its path, so its label rebuilds it.
        file_padding = get_padding(ckpt.get("padding_spec") or ckpt["padding"]).label
    if arch:
        arch, named_padding = split_paper_arch(arch)
        file_padding = named_padding or file_padding
    arch = arch or file_arch
    if not arch:
        raise PadlibError(f"{path}: the file does not name its architecture; give --arch (e.g. --arch resnet50)")
    if not train_padding and not file_padding:
        notes.append(f"{path}: no training padding recorded; assumed zero (torchvision's), set --train-padding")
    cfg = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    data_cfg = val_data_config(path, data, data_root, cfg.get("data"))
    seed = int(cfg.get("seed", 0)) if isinstance(cfg.get("seed", 0), int) else 0
    precision = file_precision(path, ckpt, notes)
    w = Weights(path.name, arch, train_padding or file_padding or "zero", seed, path, data_cfg, num_classes, source,
                precision)
    return w, notes


def file_precision(path: Path, ckpt: dict[str, Any], notes: list[str]) -> str:
    """The training precision a checkpoint records (its ``precision``, else its config's trainer.amp);
    fp32 for foreign files, and with a note when trainer.amp=auto leaves it to an unrecorded device."""
    if ckpt.get("precision") in PRECISIONS:
        return str(ckpt["precision"])
    cfg = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    trainer = cfg.get("trainer") if isinstance(cfg.get("trainer"), dict) else {}
    if "amp" not in trainer:
        return "fp32"
    precision = amp_precision(trainer["amp"], None, str(path))
    if precision is None:
        notes.append(f"{path}: trained with trainer.amp=auto (bf16 on CUDA, fp32 on CPU) on a device the file "
                     "does not record; evaluated in fp32 by default (give --amp bf16 if it trained on CUDA)")
        return "fp32"
    return precision


def val_data_config(path: Path, data: str | None, data_root: str | None, stored: Any) -> dict[str, Any]:
    """The data config of a single file's val set: ``data`` is a dataset name or the data root itself;
    otherwise the file's own config (ours), otherwise ImageNet. The root must then be known."""
    from padlib.data import DATASETS

    name = data if data in DATASETS else None
    if data and name is None:
        data_root = data_root or data  # a path: the ImageFolder tree holding train/ and val/
    stored = dict(stored) if isinstance(stored, dict) else {}
    cfg = stored if name is None and stored else {"name": name or "imagenet"}
    if data_root is not None:
        cfg["root"] = str(data_root)
    if cfg["name"] in ("imagenet", "folder") and cfg.get("root") in (None, "", "???"):
        raise PadlibError(f"{path}: where is the val data? give --data-root (the folder holding train/ and val/)")
    return cfg

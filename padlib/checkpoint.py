"""Checkpoints: atomic writes, safe loads (``weights_only=True``), RNG state, foreign weight files."""

from __future__ import annotations

import io
import pickle
import random
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from padlib.errors import PadlibError
from padlib.fileio import atomic_write_bytes

# What a training checkpoint must hold to resume from (the trainer writes these and more: see
# docs/RUN_DIRECTORY.md); a file without them is treated like an unreadable one.
RESUME_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "batch", "best_top1", "best_epoch", "rng")


def serialize(state: Mapping[str, Any]) -> bytes:
    """The bytes ``torch.save`` writes for ``state`` (serialise once, write to several paths)."""
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    return buf.getvalue()


def save_checkpoint(state: Mapping[str, Any] | bytes, *paths: Path) -> None:
    """Write ``state`` to each path atomically: a kill at any moment leaves the previous file loadable."""
    data = state if isinstance(state, bytes) else serialize(state)
    for path in paths:
        atomic_write_bytes(Path(path), data)


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a clear PadlibError names a missing or bad file."""
    path = Path(path)
    if not path.is_file():
        raise PadlibError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        text = str(e)
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if unsafe:  # a pickled object that is not a tensor/container: never executed
            raise PadlibError(f"{path}: refused to load, it holds a {unsafe.group(1)} object, not just weights") from None
        reason = "not a torch.save file" if "WeightsUnpickler" in text else (text.strip().splitlines() or [""])[0][:160]
        raise PadlibError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(ckpt, dict):
        raise PadlibError(f"{path}: expected a dict checkpoint, found {type(ckpt).__name__}")
    return ckpt


def model_state_dict(ckpt: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The model weights in a checkpoint of ours, the paper authors' (``state_dict`` with
    DataParallel's ``module.`` prefix) or a bare torchvision weight file."""
    if isinstance(ckpt.get("model"), Mapping):
        sd = ckpt["model"]
    elif isinstance(ckpt.get("state_dict"), Mapping):
        sd = ckpt["state_dict"]
    else:
        sd = ckpt
    out = {}
    for key, value in sd.items():
        if isinstance(value, torch.Tensor):
            # DataParallel/DDP and torch.compile wrappers, around the whole model or (pytorch/examples'
            # VGG recipe) around a part of it: features.module.0.weight
            parts = [p for p in key.split(".") if p not in ("module", "_orig_mod")]
            out[".".join(parts)] = value
    return out


# the paper authors' released checkpoints name their arch pd<torchvision arch> (partial padding)
PAPER_PREFIX = re.compile(r"^pd(?=(resnet|vgg))")


def split_paper_arch(name: str) -> tuple[str, str | None]:
    """(torchvision arch, training padding or None): the authors' ``pdresnet50`` is resnet50 with partial padding."""
    return (PAPER_PREFIX.sub("", name), "partial") if PAPER_PREFIX.match(name) else (name, None)


def weight_mismatch(own: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor]) -> tuple[list[str], ...]:
    """(missing, unexpected, of another shape): the keys of ``weights`` that do not fit a model's own state
    dict ``own``. BatchNorm's step counters may be missing: files saved before PyTorch 0.4.1 (torchvision's
    vgg16_bn/vgg19_bn weights, the paper authors' files) have none, and BatchNorm's own loader fills them in."""
    missing = [k for k in own if k not in weights and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in weights if k not in own]
    wrong = [k for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    return missing, unexpected, wrong


def describe_mismatch(own: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor], missing: list[str],
                      unexpected: list[str], wrong: list[str]) -> str:
    """The keys :func:`weight_mismatch` found, as text naming the first few of each kind."""
    parts = []
    for what, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            parts.append(f"{len(keys)} {what} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})")
    if wrong:
        parts.append(f"{len(wrong)} of another shape (" + ", ".join(
            f"{k}: {tuple(weights[k].shape)} vs {tuple(own[k].shape)}" for k in wrong[:3]) + ")")
    return "; ".join(parts)


def load_weights(model: nn.Module, ckpt: Mapping[str, Any], source: str) -> None:
    """Load a checkpoint's weights into ``model`` strictly; a mismatch is a PadlibError naming ``source``."""
    sd = model_state_dict(ckpt)
    own = model.state_dict()
    missing, unexpected, wrong = weight_mismatch(own, sd)
    if missing or unexpected or wrong:
        raise PadlibError(f"{source}: weights do not fit {type(model).__name__}: "
                          f"{describe_mismatch(own, sd, missing, unexpected, wrong)}; check the architecture and "
                          "the number of classes")
    model.load_state_dict(sd)


def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """This process's RNG states that the loop depends on, as tensors and plain values (``weights_only``-safe);
    with a CUDA ``device``, that GPU's generator too."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
    }
    if device is not None and device.type == "cuda":
        # the training device only (cuda:1 is not the current device unless set): each DDP rank keeps its own
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Mapping[str, Any], device: torch.device | None = None) -> None:
    """Restore what :func:`rng_state` captured (the GPU generator onto the CUDA ``device``)."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    np.random.set_state(
        ("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    if "cuda" in state and device is not None and device.type == "cuda":
        cuda = state["cuda"]
        if isinstance(cuda, list | tuple):  # checkpoints before per-rank states held every device's
            index = device.index if device.index is not None else torch.cuda.current_device()
            cuda = cuda[index] if index < len(cuda) else cuda[0]
        torch.cuda.set_rng_state(cuda, device)

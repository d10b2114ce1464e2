"""Starting weights for a training run: a weight file (``model.weights=PATH``) or torchvision's or timm's own
pretrained weights (``model.pretrained=true``), loaded into a freshly built model, with a record of where
they came from.

Any file ``torch.save`` or safetensors wrote: a torchvision or timm state dict (``.pth``, ``.pt``, ``.bin``,
``.safetensors``), a padlib checkpoint (``best.pt``, ``epoch_NNN.pt``, ``last.pt``) or the paper authors'
(``state_dict`` with DataParallel's ``module.``); always ``weights_only``. The keys are the same in every
padding mode, so weights trained in one mode start a run in any other. Where the classifier's shape differs
from the data's classes, the head keeps its fresh initialisation; any other missing, unexpected or
mis-shaped key is a PadlibError.

The record (run.json's and each checkpoint's ``init_weights``) names the file, its size and sha256, what
the file says of itself (arch, padding, epoch) and a ``lineage`` the evaluator groups runs by: runs that
start from different weights are never pooled, but runs that start from the same kind of weights (each
seed's best.pt of one sweep, say) are.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from padlib.checkpoint import (
    describe_mismatch,
    load_checkpoint,
    model_state_dict,
    split_paper_arch,
    weight_mismatch,
)
from padlib.configcheck import RUNTIME_KEYS, flatten
from padlib.errors import PadlibError
from padlib.fileio import sha256_file

log = logging.getLogger("padlib")

SAFETENSORS = (".safetensors",)
DOWNLOAD_TIMEOUT_S = 30  # a pretrained download on a machine without network fails this fast


def read_weight_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(the model weights, what the file says of itself: arch, padding, epoch, config) of a weight file."""
    if not path.is_file():
        raise PadlibError(f"model.weights={path}: no such file")
    if path.suffix in SAFETENSORS:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), {}
        except (SafetensorError, OSError) as e:
            raise PadlibError(f"{path}: not a readable safetensors file ({e})") from None
    ckpt = load_checkpoint(path)  # weights_only
    meta: dict[str, Any] = {}
    if isinstance(ckpt.get("arch"), str):
        meta["arch"], paper_padding = split_paper_arch(ckpt["arch"])
        meta["padding"] = ckpt.get("padding") if isinstance(ckpt.get("padding"), str) else paper_padding
    if isinstance(ckpt.get("epoch"), int):
        meta["epoch"] = ckpt["epoch"]
    if isinstance(ckpt.get("config"), Mapping):
        meta["config"] = ckpt["config"]
    weights = model_state_dict(ckpt)
    if not weights:
        raise PadlibError(f"{path}: holds no weights (no tensors, 'model' or 'state_dict')")
    return weights, meta


def head_keys(model: nn.Module) -> set[str]:
    """The state_dict keys of the classifier: timm's ``get_classifier()``, else the last ``nn.Linear``."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if not isinstance(head, nn.Module):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        head = linears[-1] if linears else None
    if head is None:
        return set()
    name = next((n for n, m in model.named_modules() if m is head), None)
    if name is None:
        return set()
    return {f"{name}.{k}" if name else k for k in head.state_dict()}


def load_into(model: nn.Module, weights: Mapping[str, torch.Tensor], where: str) -> bool:
    """Load ``weights`` into ``model``; a classifier of another shape keeps its fresh initialisation (returns
    True then). Anything else that does not fit is one PadlibError naming the first few keys."""
    own = model.state_dict()
    head = head_keys(model)
    missing, unexpected, wrong = weight_mismatch(own, weights)
    reset = bool(wrong) and set(wrong) <= head and not missing and not unexpected
    if (missing or unexpected or wrong) and not reset:
        raise PadlibError(f"{where}: weights do not fit {type(model).__name__}: "
                          f"{describe_mismatch(own, weights, missing, unexpected, wrong)}; give weights of this "
                          "architecture (model.name)")
    kept = {k: v for k, v in weights.items() if k not in wrong}
    model.load_state_dict({**own, **kept})
    return reset


def _lineage(path: Path, sha: str, meta: Mapping[str, Any]) -> str:
    """What the evaluator groups runs by: for a padlib checkpoint its source run's settings without the
    seed (each seed's best.pt of one sweep is one kind of starting point) and which file it is; for any
    other file its content."""
    config = meta.get("config")
    if not isinstance(config, Mapping):
        return f"{path.name} {sha[:10]}"
    settings = {k: v for k, v in flatten(config).items() if k not in RUNTIME_KEYS and k != "seed"}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
    which = "epoch" if path.name.startswith("epoch_") else path.stem
    return f"{meta.get('arch', '?')}/{meta.get('padding', '?')} {which} {digest}"


def _record(path: Path, meta: Mapping[str, Any], source: str, reset: bool, **extra: Any) -> dict[str, Any]:
    sha = sha256_file(path)
    record = {"source": source, "path": str(path.resolve()), "size": path.stat().st_size, "sha256": sha,
              "lineage": _lineage(path, sha, meta), "head_reset": reset, **extra}
    record.update({k: meta[k] for k in ("arch", "padding", "epoch") if k in meta})
    return record


def pretrained_file(name: str, source: str) -> tuple[Path, str]:
    """(the cached file of torchvision's or timm's default pretrained weights for ``name``, what they are),
    downloaded into the usual cache (TORCH_HOME, the Hugging Face cache) when missing and a network is there."""
    if source != "timm":
        import torchvision

        try:
            weights = torchvision.models.get_model_weights(name).DEFAULT
        except (ValueError, KeyError):
            weights = None
        if weights is not None:
            cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
            label = f"torchvision {type(weights).__name__}.{weights.name}"
            if not cached.is_file():
                _download(weights.url, cached, label)
            return cached, label
        if source == "torchvision":
            raise PadlibError(f"model.pretrained=true: torchvision has no pretrained weights for {name!r}")
    return _timm_file(name)


def _download(url: str, cached: Path, label: str) -> None:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(cached), progress=False)
    except (OSError, ValueError) as e:
        cached.unlink(missing_ok=True)
        raise PadlibError(
            f"model.pretrained=true: {label} is not in the cache and could not be downloaded ({type(e).__name__}); "
            f"put {url} at {cached} (TORCH_HOME={Path(torch.hub.get_dir()).parent}), or give model.weights=PATH"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def _timm_file(name: str) -> tuple[Path, str]:
    """timm's default pretrained weights of ``name`` from the Hugging Face cache (or the hub)."""
    import timm

    if name not in timm.list_models():
        raise PadlibError(f"model.pretrained=true: {name!r} is neither a torchvision nor a timm model")
    cfg = timm.models.get_pretrained_cfg(name)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not hub_id:
        raise PadlibError(f"model.pretrained=true: timm has no pretrained weights on the hub for {name!r}; "
                          "give model.weights=PATH")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.constants import HF_HUB_CACHE

    for filename in ("model.safetensors", "pytorch_model.bin"):
        try:
            return Path(hf_hub_download(hub_id, filename, etag_timeout=DOWNLOAD_TIMEOUT_S)), f"timm {hub_id}"
        except Exception as e:  # not cached and no network, or no such file in the repo: try the other name
            error = e
    raise PadlibError(
        f"model.pretrained=true: timm's {hub_id} is not in the Hugging Face cache ({HF_HUB_CACHE}) and could not "
        f"be downloaded ({type(error).__name__}); download it where there is a network "
        f"(huggingface-cli download {hub_id}) and copy the cache, or give model.weights=PATH"
    ) from None


def load_starting_weights(model: nn.Module, model_cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """Load what ``model.weights`` / ``model.pretrained`` name into ``model``; the provenance record, or None
    when the model starts from its random initialisation."""
    path, pretrained = model_cfg.get("weights"), model_cfg.get("pretrained")
    if pretrained not in (None, False, True):
        raise PadlibError(f"model.pretrained={pretrained!r} must be true or false")
    if path and pretrained:
        raise PadlibError("give model.weights=PATH or model.pretrained=true, not both")
    if pretrained:
        file, label = pretrained_file(str(model_cfg["name"]), str(model_cfg.get("source", "auto")))
        weights, meta = read_weight_file(file)
        reset = load_into(model, weights, label)
        record = _record(file, meta, "pretrained", reset, name=label)
    elif path:
        file = Path(str(path)).expanduser()
        weights, meta = read_weight_file(file)
        if meta.get("arch") not in (None, model_cfg["name"]):
            raise PadlibError(f"model.weights={file} holds a {meta['arch']}, this run builds a {model_cfg['name']}; "
                              f"give model.name={meta['arch']} or weights of {model_cfg['name']}")
        reset = load_into(model, weights, str(file))
        record = _record(file, meta, "file", reset)
    else:
        return None
    classes = "initialised afresh (another number of classes)" if reset else "loaded too"
    log.info(f"starting weights: {record['path']} (sha256 {record['sha256'][:12]}); the classifier {classes}")
    return record

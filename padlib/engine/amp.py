"""Mixed precision: which autocast dtype to use on a device, and the matching grad scaler."""

from __future__ import annotations

import contextlib
import logging
from contextlib import AbstractContextManager

import torch

from padlib.errors import PadlibError

log = logging.getLogger("padlib")

AMP_MODES = ("auto", "none", "bf16", "fp16")
# How run.json names the precision a run trains and validates at, and its autocast dtype.
PRECISION_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def amp_precision(mode: str, device_type: str | None) -> str | None:
    """The precision ``trainer.amp=mode`` resolves to on a device type (``auto``: bf16 on CUDA, fp32
    elsewhere; ``amp_dtype`` knows the GPU and picks fp16 where bf16 is not native); None for ``auto`` on
    an unknown device. ``mode`` must be one of AMP_MODES. run.json records what a run resolved to: this
    is for runs that predate that record."""
    if mode == "auto":
        return None if device_type is None else ("bf16" if device_type == "cuda" else "fp32")
    return {"none": "fp32", "bf16": "bf16", "fp16": "fp16"}[mode]


def native_bf16(device: torch.device) -> bool:
    """True where bf16 runs in hardware: CUDA compute capability 8.0 (Ampere) and later. Older GPUs
    emulate it, several times slower than fp16."""
    if device.type != "cuda":
        return False
    # without a GPU here (a device named in a report, say), the answer for every current data-centre GPU
    return not torch.cuda.is_available() or torch.cuda.get_device_capability(device)[0] >= 8


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``mode`` on ``device``. ``auto``: bf16 on a GPU that runs it natively, fp16
    (with loss scaling, ``grad_scaler``) on an older one, full precision on CPU."""
    if mode not in AMP_MODES:
        raise PadlibError(f"trainer.amp={mode!r} is unknown; use one of {', '.join(AMP_MODES)}")
    if mode == "fp16" and device.type != "cuda":
        raise PadlibError("trainer.amp=fp16 needs a CUDA device; use trainer.amp=bf16 or none on CPU")
    if mode == "auto" and device.type == "cuda" and not native_bf16(device):
        major, minor = torch.cuda.get_device_capability(device)
        log.info(f"trainer.amp=auto: fp16 with loss scaling ({torch.cuda.get_device_name(device)}, compute "
                 f"capability {major}.{minor}, has no native bf16)")
        return torch.float16
    return PRECISION_DTYPES[amp_precision(mode, device.type)]


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """An autocast context for ``dtype``, or a no-op for full precision."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A grad scaler that is active only for fp16 (bf16 has fp32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)



def precision_name(dtype: torch.dtype | None) -> str:
    """The run.json name of an autocast dtype (None: fp32)."""
    return next(name for name, d in PRECISION_DTYPES.items() if d == dtype)

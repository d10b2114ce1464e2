"""Which torch device a ``device`` setting names."""

from __future__ import annotations

import torch

from padlib.errors import PadlibError


def resolve_device(name: str, option: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; anything else as torch spells it. ``option`` is the
    setting's name for error messages (``trainer.device``, ``--device``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise PadlibError(f"{option}={name!r} is not a device ({e})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PadlibError(f"{option}={name} but no CUDA device is visible; use {option}=cpu")
    return device

"""Where a run came from: library versions, git commit, device, host."""

from __future__ import annotations

import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import torch


def git_commit() -> str | None:
    """The commit of the padlib checkout (with ``-dirty`` if it has local changes), or None."""
    repo = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


def device_name(device: torch.device) -> str:
    """A readable name of the device, e.g. ``cuda: NVIDIA H100 80GB HBM3``."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def provenance(device: torch.device) -> dict[str, Any]:
    """Versions, commit, device and host, for run.json."""
    import timm
    import torchvision

    import padlib

    return {
        "versions": {
            "padlib": padlib.__version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "timm": timm.__version__,
        },
        "git_commit": git_commit(),
        "device": device_name(device),
        "host": socket.gethostname(),
    }

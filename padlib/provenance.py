"""Where a run came from: library versions, git commit, device, host."""

from __future__ import annotations

import functools
import platform
import re
import socket
import subprocess
import sys
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


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """What the device is, as far as it changes numbers: ``cuda: NVIDIA H100 80GB HBM3``, or on a CPU its model,
    the vector extension torch's kernels use and the threads, e.g. ``cpu: AMD EPYC 9654 (AVX512) x2 threads``."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    capability = torch.backends.cpu.get_cpu_capability()
    return f"cpu: {cpu_model()} ({capability}) x{torch.get_num_threads()} threads"


def onednn_version() -> str | None:
    """The oneDNN (MKL-DNN) version torch's CPU convolutions come from, or None."""
    m = re.search(r"(?:MKL-DNN|oneDNN) v([\d.]+)", torch.__config__.show())
    return m.group(1) if m else None


@functools.cache
def package_versions() -> dict[str, str | None]:
    """The versions that decide a run's or an evaluation's numbers: the model code (torch, torchvision, timm),
    the image decoder and resizer (Pillow), the GPU libraries (CUDA, cuDNN), Python."""
    import PIL
    import timm
    import torchvision

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "timm": timm.__version__,
            "pillow": PIL.__version__, "cuda": torch.version.cuda, "cudnn": str(cudnn) if cudnn else None,
            "python": sys.version.split()[0]}


def provenance(device: torch.device) -> dict[str, Any]:
    """Versions, commit, device and host, for run.json."""
    import padlib

    return {
        "versions": {"padlib": padlib.__version__, **package_versions(), "onednn": onednn_version()},
        "git_commit": git_commit(),
        "device": device_name(device),
        "host": socket.gethostname(),
    }

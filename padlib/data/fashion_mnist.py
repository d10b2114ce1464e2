"""Find and read the four Fashion-MNIST IDX files into uint8 tensors."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import torch

from padlib.errors import PadlibError

CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}
# Where Debian's dataset-fashion-mnist package puts them, then repo-relative places for `make data`.
DEFAULT_ROOTS = (Path("/usr/share/datasets/fashion-mnist"), Path("data/fashion-mnist"), Path("data"))
_PROVIDERS = "`apt-get install dataset-fashion-mnist` or `make data` provides them"
_UBYTE = 0x08


def find_fashion_mnist(root: Path | None) -> dict[str, Path]:
    """The four IDX files (gzipped or not) in ``root`` or ``root/FashionMNIST/raw`` (torchvision's
    layout), or with no root in the first of ``DEFAULT_ROOTS`` that has them."""
    looked = [
        d for base in ([root] if root else DEFAULT_ROOTS) for d in (base, base / "FashionMNIST" / "raw")
    ]
    for d in looked:
        files = {key: _idx_file(d, name) for key, name in FILES.items()}
        if all(files.values()):
            return files  # type: ignore[return-value]
    raise PadlibError(
        f"Fashion-MNIST IDX files ({FILES['train_images']}[.gz] and 3 more) not found in "
        f"{', '.join(str(d.absolute()) for d in looked)}; {_PROVIDERS}, or set data.root to their folder"
    )


def _idx_file(folder: Path, name: str) -> Path | None:
    """``folder/name``, else ``folder/name.gz``, else None."""
    return next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """The uint8 array of ``ndim`` dimensions in IDX file ``path``, checked against its header."""
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            # Whole-buffer inflate: faster than streaming through gzip.open.
            data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
    except (OSError, zlib.error) as exc:
        raise PadlibError(f"{path} cannot be read ({exc}); re-install it ({_PROVIDERS})") from exc
    header = 4 + 4 * ndim
    if len(data) < header or data[:4] != bytes([0, 0, _UBYTE, ndim]):
        raise PadlibError(f"{path} is not a {ndim}-d uint8 IDX file; re-install it ({_PROVIDERS})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) != header + math.prod(dims):
        raise PadlibError(
            f"{path} is truncated or corrupt: its header promises {header + math.prod(dims)} bytes, "
            f"it has {len(data)}; re-install it ({_PROVIDERS})"
        )
    # bytearray: torch needs a writable buffer to share memory with.
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=header).view(dims)


def load_fashion_mnist(root: Path | None) -> dict[str, torch.Tensor]:
    """{"train_images": [N, 1, 28, 28], "train_labels": [N], "val_images", "val_labels"} as uint8 tensors."""
    files = find_fashion_mnist(root)
    out = {}
    for split in ("train", "val"):
        images = read_idx(files[f"{split}_images"], ndim=3)
        labels = read_idx(files[f"{split}_labels"], ndim=1)
        if len(labels) != len(images) or (len(labels) and int(labels.max()) >= len(CLASSES)):
            raise PadlibError(
                f"{files[f'{split}_labels']} does not match {files[f'{split}_images']} "
                f"({len(labels)} labels for {len(images)} images, or a label >= {len(CLASSES)}); "
                f"re-install them ({_PROVIDERS})"
            )
        out[f"{split}_images"] = images.unsqueeze(1)
        out[f"{split}_labels"] = labels
    return out

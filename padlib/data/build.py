"""Build the train and val datasets named by a ``data`` config."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from padlib.data.config import DataConfig, SyntheticConfig, read_config
from padlib.data.datasets import ImageFiles, LabelledImages, TensorImages
from padlib.data.fashion_mnist import CLASSES as FASHION_MNIST_CLASSES
from padlib.data.fashion_mnist import find_fashion_mnist, load_fashion_mnist
from padlib.data.folder import SPLITS, scan_imagefolder
from padlib.data.subset import balanced_subset
from padlib.data.synthetic import make_synthetic_imagefolder
from padlib.data.transforms import Normalize, RandomResizedCropFlip, val_geometry
from padlib.errors import PadlibError

# Where the synthetic tree goes when data.root is not set (relative to the working directory).
SYNTHETIC_ROOT = Path("data/synthetic")
# What replaces a missing Fashion-MNIST under data.fallback=synthetic: 10 classes, ~2,500 images.
FALLBACK_SYNTHETIC = SyntheticConfig(num_classes=10, train_per_class=200, val_per_class=50, size=40, seed=0)
log = logging.getLogger("padlib.data")


@dataclass(frozen=True)
class DataBundle:
    """A dataset's train and val splits, and what the evaluator needs to show its images."""

    name: str
    train: LabelledImages
    val: LabelledImages
    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def num_classes(self) -> int:
        """How many classes there are."""
        return len(self.classes)

    def val_image(self, i: int) -> Image.Image | None:
        """Val image ``i`` resized and centre-cropped as the model sees it, before normalisation
        (None when its file is unreadable)."""
        return self.val.view(i)


def build_data(cfg: Mapping[str, Any]) -> DataBundle:
    """The ``DataBundle`` of the ``data`` config ``cfg``; PadlibError on bad config or data."""
    c = read_config(cfg)
    if c.name == "fashion_mnist" and c.root is None and c.fallback == "synthetic":
        try:
            find_fashion_mnist(None)
        except PadlibError as missing:
            log.warning(f"{missing}. Training on generated data (data=synthetic) instead.")
            c = replace(c, name="synthetic", train_subset=None, val_subset=None, synthetic=FALLBACK_SYNTHETIC)
    train, val, classes = _BUILDERS[c.name](c)
    return DataBundle(c.name, train, val, classes, c.mean, c.std)


Built = tuple[LabelledImages, LabelledImages, list[str]]


def _image_folder(c: DataConfig, root: Path | None = None) -> Built:
    """Train and val from an ImageFolder tree (``imagenet``, ``folder``)."""
    root = root or c.root
    if root is None:
        raise PadlibError(
            f"data.root is not set; for data.name={c.name} point it at a folder holding train/ and val/"
        )
    classes, found = scan_imagefolder(root)
    geometry = {
        "train": RandomResizedCropFlip(c.image_size, c.crop_scale, c.hflip),
        "val": val_geometry(c.resize_size, c.image_size),
    }
    normalize = Normalize(c.mean, c.std)
    datasets = []
    for split in SPLITS:
        files, targets = found[split]
        keep = _subset(c, split, targets)
        if keep is not None:
            files, targets = [files[i] for i in keep], [targets[i] for i in keep]
        datasets.append(ImageFiles(root / split, files, targets, geometry[split], normalize))
    return datasets[0], datasets[1], classes


def _synthetic(c: DataConfig) -> Built:
    """Train and val from a generated (or reused) synthetic tree."""
    s = c.synthetic
    root = make_synthetic_imagefolder(
        c.root or SYNTHETIC_ROOT, s.num_classes, s.train_per_class, s.val_per_class, s.size, s.seed
    )
    return _image_folder(c, root)


def _fashion_mnist(c: DataConfig) -> Built:
    """Train and val (the t10k set) from the IDX files, in memory; val is resized and cropped once here."""
    arrays = load_fashion_mnist(c.root)
    normalize = Normalize(c.mean, c.std)
    datasets = []
    for split in SPLITS:
        images, targets = arrays[f"{split}_images"], arrays[f"{split}_labels"].numpy()
        keep = _subset(c, split, targets)
        if keep is not None:
            images, targets = images[torch.from_numpy(keep)], targets[keep]
        if split == "train":
            geometry = RandomResizedCropFlip(c.image_size, c.crop_scale, c.hflip)
        else:
            # Deterministic, so done for all images in one batched call; items then only normalise.
            images, geometry = val_geometry(c.resize_size, c.image_size)(images), _identity
        datasets.append(TensorImages(images, targets, geometry, normalize))
    return datasets[0], datasets[1], list(FASHION_MNIST_CLASSES)


def _identity(img: Any) -> Any:
    """``img`` unchanged (a module-level function, so DataLoader workers can pickle it)."""
    return img


def _subset(c: DataConfig, split: str, targets: Any) -> np.ndarray | None:
    """Indices of the configured subset of ``split``, or None for all of it."""
    n = c.train_subset if split == "train" else c.val_subset
    return None if n is None else balanced_subset(targets, n, f"data.{split}_subset")


_BUILDERS: dict[str, Callable[[DataConfig], Built]] = {
    "imagenet": _image_folder,
    "folder": _image_folder,
    "fashion_mnist": _fashion_mnist,
    "synthetic": _synthetic,
}

"""Datasets for padlib: ImageNet or any ImageFolder tree, Fashion-MNIST, and a synthetic tree.

``build_data(cfg)`` gives a ``DataBundle`` (train/val datasets, classes, normalisation); items are
``(image, target, index)`` or None when unreadable, and ``collate`` batches them, counting the Nones.
"""

from padlib.data.batch import Batch, collate
from padlib.data.build import DataBundle, build_data
from padlib.data.config import DATASETS
from padlib.data.synthetic import make_synthetic_imagefolder

__all__ = ["DATASETS", "Batch", "DataBundle", "build_data", "collate", "make_synthetic_imagefolder"]

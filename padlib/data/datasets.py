"""Datasets whose item ``i`` or ``(i, seed)`` is ``(normalised image, target, i)``, or None if unreadable."""

from __future__ import annotations

import hashlib
import logging
import operator
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from padlib.data.transforms import ImageLike, Normalize, to_pil, with_seed

log = logging.getLogger("padlib.data")

Item = tuple[torch.Tensor, int, int]

# Odd multiplier of the golden ratio: spreads (seed, i) over 64 bits, so that a sampler handing out one
# seed per epoch still gives every sample its own augmentation.
_MIX = 0x9E3779B97F4A7C15


class LabelledImages(Dataset):
    """Base: subclasses say how to load image ``i``; this applies ``geometry`` (seeded on request) and
    ``normalize``."""

    def __init__(
        self, targets: Sequence[int], geometry: Callable[[ImageLike], ImageLike], normalize: Normalize
    ) -> None:
        self.targets = np.asarray(targets, dtype=np.int64)
        self.geometry = geometry
        self.normalize = normalize

    def load(self, i: int) -> ImageLike | None:
        """Image ``i`` as stored, or None when it cannot be read."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A digest that changes when the images or labels do (what a cached evaluation was on)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, key: int | tuple[int, int]) -> Item | None:
        """``ds[i]`` augments with the ambient RNG; ``ds[(i, seed)]`` as a function of ``seed`` alone."""
        i, seed = self._parse(key)
        img = self.load(i)
        if img is None:
            return None
        if seed is None:
            img = self.geometry(img)
        else:
            img = with_seed(self.geometry, img, (seed * _MIX + i) % 2**64)
        return self.normalize(img), int(self.targets[i]), i

    def view(self, i: int) -> Image.Image | None:
        """Image ``i`` as the model sees it, before normalisation (deterministic for val datasets)."""
        img = self.load(i)
        return None if img is None else to_pil(self.geometry(img))

    def _parse(self, key: Any) -> tuple[int, int | None]:
        """(index, seed or None) of an ``i`` or ``(i, seed)`` key; IndexError when out of range."""
        i, seed = (key, None) if not isinstance(key, tuple) else key
        i = operator.index(i)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} is out of range for a dataset of {len(self)} images")
        return i, None if seed is None else operator.index(seed)


class ImageFiles(LabelledImages):
    """Images read from files with PIL, as RGB."""

    def __init__(
        self,
        root: Path,
        files: Sequence[str],
        targets: Sequence[int],
        geometry: Callable[[ImageLike], ImageLike],
        normalize: Normalize,
    ) -> None:
        super().__init__(targets, geometry, normalize)
        self.root = root
        # A bytes array, not a list of str: DataLoader workers would copy a list's pages as they touch
        # the refcounts, ~100 MB per worker for ImageNet.
        self.files = np.array([os.fsencode(f) for f in files])

    def path(self, i: int) -> Path:
        """The file of image ``i``."""
        return self.root / os.fsdecode(self.files[i])

    def fingerprint(self) -> str:
        """Each file's name, inode, size, modification and change times, and the labels: one stat per file, no
        reads. A file replaced even with its size and mtime kept (``cp -p``) has another inode or ctime."""
        digest = hashlib.sha1(self.targets.tobytes())
        for name in self.files:
            try:
                st = os.stat(self.root / os.fsdecode(name))
                digest.update(b"%s\0%d\0%d\0%d\0%d\0" % (name, st.st_ino, st.st_size, st.st_mtime_ns,
                                                          st.st_ctime_ns))
            except OSError:  # unreadable now: skipped when loaded, and part of what was evaluated
                digest.update(b"%s\0missing\0" % name)
        return digest.hexdigest()

    def load(self, i: int) -> Image.Image | None:
        """Image ``i`` as RGB, or None (with a warning naming the file) when PIL cannot decode it."""
        path = self.path(i)
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except (OSError, SyntaxError, ValueError) as exc:
            log.warning("skipping unreadable image %s (%s)", path, exc)
            return None


class TensorImages(LabelledImages):
    """Images held in memory as one uint8 tensor [N, C, H, W]."""

    def __init__(
        self,
        images: torch.Tensor,
        targets: Sequence[int],
        geometry: Callable[[ImageLike], ImageLike],
        normalize: Normalize,
    ) -> None:
        super().__init__(targets, geometry, normalize)
        self.images = images

    def load(self, i: int) -> torch.Tensor:
        """Image ``i``, a uint8 [C, H, W] view."""
        return self.images[i]

    def fingerprint(self) -> str:
        """The pixels and labels themselves (in memory, and small: Fashion-MNIST's val set is 10 MB)."""
        digest = hashlib.sha1(self.targets.tobytes())
        digest.update(self.images.contiguous().numpy().tobytes())
        return digest.hexdigest()

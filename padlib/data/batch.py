"""Collate dataset items into a batch, dropping (and counting) unreadable ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from padlib.data.datasets import Item


class Batch(NamedTuple):
    """Stacked items; ``skipped`` unreadable ones were dropped. Skip a batch with ``len(targets) == 0``."""

    images: torch.Tensor  # float [B, 3, H, W]; [0, 3, 0, 0] when every item was dropped
    targets: torch.Tensor  # int64 [B]
    indices: torch.Tensor  # int64 [B], each item's index in its dataset
    skipped: int


def collate(items: Sequence[Item | None]) -> Batch:
    """The batch of the readable ``items``, counting the None ones in ``skipped``."""
    kept = [item for item in items if item is not None]
    skipped = len(items) - len(kept)
    if not kept:
        # No item tells the image size; H = W = 0 keeps the tensor 4-d and empty.
        empty = torch.empty(0, dtype=torch.int64)
        return Batch(torch.empty(0, 3, 0, 0), empty, empty.clone(), skipped)
    images, targets, indices = zip(*kept, strict=True)
    return Batch(
        torch.stack(images),
        torch.tensor(targets, dtype=torch.int64),
        torch.tensor(indices, dtype=torch.int64),
        skipped,
    )

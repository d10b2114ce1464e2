"""Samplers and DataLoaders: a deterministic, resumable train order and a val split that covers every
image exactly once across ranks."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from padlib.data import collate
from padlib.engine.distributed import DistInfo


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffled train order fixed by (seed, epoch), sharded over ranks, yielding (index, augmentation seed).

    The per-sample augmentation seed is what makes a run resumed mid-epoch see exactly the samples an
    uninterrupted run would; ``start_batch`` skips the batches already trained before the interruption.
    Every rank gets the same number of whole batches (DDP needs equal step counts), so up to
    ``world_size * batch_size - 1`` images are dropped per epoch, as with ``drop_last=True``.
    """

    def __init__(self, size: int, batch_size: int, seed: int, dist: DistInfo) -> None:
        self.size, self.batch_size, self.seed, self.dist = size, batch_size, seed, dist
        self.epoch = 1
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        return self.size // (self.batch_size * self.dist.world_size)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's permutation and where in it to start."""
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=g)
        sample_seeds = torch.randint(0, 2**31 - 1, (self.size,), generator=g)
        per_rank = self.batches_per_epoch * self.batch_size
        mine = order[self.dist.rank :: self.dist.world_size][:per_rank]
        for idx in mine[self.start_batch * self.batch_size :].tolist():
            yield idx, int(sample_seeds[idx])


class ShardSampler(Sampler[int]):
    """Rank r takes indices r, r+W, r+2W, ...: every val image is seen exactly once in total."""

    def __init__(self, size: int, dist: DistInfo) -> None:
        self.size, self.dist = size, dist

    def __len__(self) -> int:
        return len(range(self.dist.rank, self.size, self.dist.world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.dist.rank, self.size, self.dist.world_size))


def _loader(dataset: Dataset, sampler: Sampler, batch_size: int, workers: int, pin_memory: bool) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        # Starting an iteration draws a worker base seed from this generator; without one it comes
        # from the global RNG, and a resumed run (which starts its iterators at other times) would draw
        # other dropout masks. Samples take their randomness from the sampler's per-sample seeds.
        generator=torch.Generator().manual_seed(0),
    )


def make_train_loader(
    dataset: Dataset, batch_size: int, workers: int, seed: int, dist: DistInfo, pin_memory: bool = False
) -> tuple[DataLoader, EpochSampler]:
    """The train loader and its sampler (call ``sampler.set_epoch`` before iterating)."""
    sampler = EpochSampler(len(dataset), batch_size, seed, dist)
    return _loader(dataset, sampler, batch_size, workers, pin_memory), sampler


def make_val_loader(
    dataset: Dataset, batch_size: int, workers: int, dist: DistInfo | None = None, pin_memory: bool = False
) -> DataLoader:
    """A val loader over this rank's shard, in dataset order."""
    return _loader(dataset, ShardSampler(len(dataset), dist or DistInfo()), batch_size, workers, pin_memory)

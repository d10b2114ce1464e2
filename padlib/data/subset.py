"""Deterministic, class-balanced subsets for fast runs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from padlib.errors import PadlibError

SUBSET_SEED = 0


def balanced_subset(targets: Sequence[int], n: int, what: str) -> np.ndarray:
    """Sorted indices of ``n`` samples, classes as equally represented as they can be, fixed for given
    targets; ``what`` names the config key in the error when ``n`` is too large."""
    targets = np.asarray(targets)
    if n > len(targets):
        raise PadlibError(f"{what}={n} asks for more than the {len(targets)} images there are; lower it")
    order = np.random.default_rng(SUBSET_SEED).permutation(len(targets))
    # Each sample's rank among its class in the shuffled order; taking ranks 0, 1, 2, ... deals the
    # classes out round-robin.
    shuffled = targets[order]
    by_class = np.argsort(shuffled, kind="stable")
    starts = np.searchsorted(shuffled[by_class], shuffled[by_class])
    rank = np.empty(len(targets), dtype=np.int64)
    rank[by_class] = np.arange(len(targets)) - starts
    return np.sort(order[np.argsort(rank, kind="stable")[:n]])

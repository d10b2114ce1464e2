"""Summary statistics of a group of runs: mean, sample std, and the difference to a reference group
with its 95% confidence interval, p-value (Welch's t-test, or the paired t-test) and the minimum
difference that test would detect with 80% power."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from padlib.report.power import mde_paired, mde_welch

NAN = float("nan")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class GroupStats:
    """What a table row reports about its runs (NaN where a value is undefined)."""

    n: int
    mean: float
    std: float  # sample standard deviation (divisor n-1); NaN for n < 2
    diff: float = NAN  # mean minus the reference group's mean
    ci_low: float = NAN  # 95% confidence interval of ``diff``
    ci_high: float = NAN
    p_value: float = NAN  # two-sided test of "no difference"
    mde80: float = NAN  # minimum detectable effect of that test at 80% power, for these stds and n


def describe(values: Sequence[float], ref: Sequence[float] | None = None, paired: bool = False) -> GroupStats:
    """Mean and sample std of ``values``; with ``ref``, the difference of means, its 95% CI and p-value.

    Independent groups (different runs) use Welch's t-test, which does not assume equal variances;
    ``paired`` (the same runs measured twice, as in cross-testing) uses the paired t-test, which needs
    ``values`` and ``ref`` aligned run by run.
    """
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    mean = float(x.mean()) if n else NAN
    std = _sample_std(x)
    if ref is None:
        return GroupStats(n, mean, std)
    r = np.asarray(ref, dtype=float)
    if n == 0 or r.size == 0:
        return GroupStats(n, mean, std)
    diff = mean - float(r.mean())
    low, high, p = _test(x, r, paired)
    return GroupStats(n, mean, std, diff, low, high, p, _mde(x, r, paired))


def _mde(x: np.ndarray, r: np.ndarray, paired: bool) -> float:
    """The 80%-power minimum detectable effect of ``_test`` for the observed spread; NaN where undefined."""
    if paired:  # _test has checked the alignment
        mde = mde_paired(float(np.std(x - r, ddof=1)), int(x.size)) if x.size >= 2 else None
    else:
        mde = mde_welch(_sample_std(x), int(x.size), _sample_std(r), int(r.size))
    return NAN if mde is None else mde


def _sample_std(x: np.ndarray) -> float:
    return float(x.std(ddof=1)) if x.size >= 2 else NAN


def _test(x: np.ndarray, r: np.ndarray, paired: bool) -> tuple[float, float, float]:
    """(CI low, CI high, p) of mean(x) - mean(r); NaN where the test is undefined."""
    if paired:
        if x.size != r.size:
            raise ValueError(f"a paired test needs aligned samples, got {x.size} and {r.size} values")
        if x.size < 2 or np.ptp(x - r) == 0:
            return NAN, NAN, NAN
    elif x.size < 2 or r.size < 2 or (np.ptp(x) == 0 and np.ptp(r) == 0):
        # no variance estimate (or none at all): the t statistic is undefined, not infinitely significant
        return NAN, NAN, NAN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-identical samples: scipy's precision warning
        res = sps.ttest_rel(x, r) if paired else sps.ttest_ind(x, r, equal_var=False)
        ci = res.confidence_interval(CONFIDENCE)
    return float(ci.low), float(ci.high), float(res.pvalue)


def median_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Median of ``values`` and its distribution-free CI (binomial order statistics); NaN bounds below 6 values."""
    x = np.sort(np.asarray(values, dtype=float))
    n = int(x.size)
    if n == 0:
        return NAN, NAN, NAN
    # k-th smallest and k-th largest bracket the median with probability >= confidence, whatever the
    # distribution: timings have long right tails (a background job), which a t interval would not model.
    k = int(sps.binom.ppf((1 - confidence) / 2, n, 0.5))
    if k < 1:
        return float(np.median(x)), NAN, NAN
    return float(np.median(x)), float(x[k - 1]), float(x[n - k])


def is_missing(value: float | None) -> bool:
    """True for None and NaN: a cell to leave empty."""
    return value is None or (isinstance(value, float) and math.isnan(value))

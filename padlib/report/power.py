"""Statistical power of the tables' tests: the minimum detectable effect (MDE) of a Welch or paired
t-test for given stds and numbers of runs, the power to find a given difference, and how many seeds
per padding mode a difference needs.

The paired (one-sample) t-test's power is exact from the noncentral t distribution. Welch's is not:
its degrees of freedom are estimated from the sample variances, and plugging the Welch–Satterthwaite
df of the true stds into the noncentral t overstates its power at a few runs (3 runs a side at the
MDE that shortcut gives: 0.80 claimed, 0.70 true). So Welch's power here is exact too: the rejection
probability given the two sample variances, integrated over their chi-square distributions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
from scipy import optimize, special
from scipy import stats as sps

POWER = 0.8
ALPHA = 0.05
MAX_SEEDS = 1000
QUAD_NODES = 64  # Gauss-Legendre nodes per sample variance: agrees with 200k-test simulations to 0.001


def _usable(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def welch_df(s1: float, n1: int, s2: float, n2: int) -> float:
    """Welch–Satterthwaite degrees of freedom of the difference of two means."""
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    return (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))


def power_t(noncentrality: float, df: float, alpha: float = ALPHA) -> float:
    """P(|T| > t_crit) for T ~ noncentral t(df, noncentrality): a two-sided one-sample t-test's power."""
    crit = sps.t.isf(alpha / 2, df)
    # both tails as upper tails (P(T < -c | d) = P(T > c | -d)): scipy's nct.cdf far in the lower
    # tail returns NaN for small df, its sf does not
    return float(sps.nct.sf(crit, df, noncentrality) + sps.nct.sf(crit, df, -noncentrality))


@functools.cache
def _variance_ratios(df: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights integrating over s²/sigma² ~ chi2(df)/df (Gauss-Legendre on its quantiles)."""
    x, w = special.roots_legendre(QUAD_NODES)
    return sps.chi2.ppf((x + 1) / 2, df) / df, w / 2


def _welch_power_curve(s1: float, n1: int, s2: float, n2: int, alpha: float) -> Callable[[float], float] | None:
    """Welch's exact two-sided power as a function of the true difference; None when the test is undefined
    (a group under 2 runs, or no variance at all)."""
    if n1 < 2 or n2 < 2 or not _usable(s1, s2) or s1 < 0 or s2 < 0 or (s1 == 0 and s2 == 0):
        return None
    r1, w1 = _variance_ratios(n1 - 1)
    r2, w2 = _variance_ratios(n2 - 1)
    q1, q2 = s1 * s1 / n1 * r1[:, None], s2 * s2 / n2 * r2[None, :]  # the estimated squared standard errors
    se_hat = np.sqrt(q1 + q2)
    # the df the test computes from these sample variances; a group with std 0 adds nothing to it
    df_hat = (q1 + q2) ** 2 / (q1 * q1 / (n1 - 1) + q2 * q2 / (n2 - 1))
    cut = sps.t.isf(alpha / 2, df_hat) * se_hat  # reject when |mean difference| > cut
    se = math.sqrt(s1 * s1 / n1 + s2 * s2 / n2)
    weights = w1[:, None] * w2[None, :]

    def power(diff: float) -> float:
        d = abs(diff)
        # the mean difference is independent of the sample variances: normal around the true diff
        return float(np.sum(weights * (sps.norm.cdf((d - cut) / se) + sps.norm.cdf((-d - cut) / se))))

    return power


def _paired_se_df(sd: float, n: int) -> tuple[float, float] | None:
    """(se, df) of the one-sample t-test on ``n`` paired differences; None when undefined."""
    if n < 2 or not _usable(sd) or sd <= 0:
        return None
    return sd / math.sqrt(n), float(n - 1)


def _solve_mde(power_of: Callable[[float], float], scale: float, power: float) -> float:
    """The difference D > 0 at which ``power_of(D) == power`` (power grows with D); ``scale``: the se."""
    def short(d: float) -> float:
        return power_of(d) - power

    high = 4.0 * scale
    while short(high) < 0:  # few runs: heavy tails need many standard errors
        high *= 2
    return float(optimize.brentq(short, 0.0, high, xtol=1e-10 * scale))


def power_welch(diff: float, s1: float, n1: int, s2: float, n2: int, alpha: float = ALPHA) -> float:
    """Power of Welch's two-sided test to find a true difference ``diff`` (NaN when undefined)."""
    curve = _welch_power_curve(s1, n1, s2, n2, alpha)
    return math.nan if curve is None or not _usable(diff) else curve(diff)


def power_paired(diff: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the paired two-sided t-test (sd of the differences, n pairs) to find ``diff``."""
    se_df = _paired_se_df(sd, n)
    return math.nan if se_df is None or not _usable(diff) else power_t(abs(diff) / se_df[0], se_df[1], alpha)


def mde_welch(s1: float, n1: int, s2: float, n2: int, power: float = POWER, alpha: float = ALPHA) -> float | None:
    """Minimum detectable effect of Welch's two-sided test (None when undefined)."""
    curve = _welch_power_curve(s1, n1, s2, n2, alpha)
    return None if curve is None else _solve_mde(curve, math.sqrt(s1 * s1 / n1 + s2 * s2 / n2), power)


def mde_paired(sd: float, n: int, power: float = POWER, alpha: float = ALPHA) -> float | None:
    """Minimum detectable effect of the paired two-sided t-test (None when undefined)."""
    se_df = _paired_se_df(sd, n)
    if se_df is None:
        return None
    se, df = se_df
    return _solve_mde(lambda d: power_t(d / se, df, alpha), se, power)


def seeds_needed(diff: float, std: float, power: float = POWER, alpha: float = ALPHA, max_n: int = MAX_SEEDS,
                 std_ref: float | None = None) -> int | None:
    """The fewest runs per group (n in both) for Welch's test to find ``diff`` with ``power``; None past ``max_n``.

    Both groups have std ``std`` unless ``std_ref`` gives the reference group's.
    """
    s2 = std if std_ref is None else std_ref
    if not _usable(diff, std, s2) or diff == 0 or max_n < 2:
        return None

    def reaches(n: int) -> bool:
        return power_welch(diff, std, n, s2, n, alpha) >= power

    if _welch_power_curve(std, 2, s2, 2, alpha) is None or not reaches(max_n):
        return None
    # power grows with n (both df and noncentrality do): bisect for the first n that reaches it
    low, high = 1, max_n  # one run has no std, so reaches(1) is False; reaches(max_n) is True
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if reaches(mid) else (mid, high)
    return high

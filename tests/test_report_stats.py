"""padlib.report.stats against hand formulas (not scipy's t-test functions)."""

import math
import statistics

import numpy as np
import pytest
from scipy import stats as sps

from padlib.report.stats import describe, is_missing, median_ci
from tests.report_fixtures import welch_by_hand


def test_mean_and_sample_std():
    st = describe([1.0, 2.0, 4.0])
    assert st.n == 3
    assert st.mean == pytest.approx(7 / 3)
    assert st.std == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert is_missing(st.diff) and is_missing(st.p_value)


def test_single_value_has_no_std():
    st = describe([5.0])
    assert st.mean == 5.0 and is_missing(st.std)


def test_welch_matches_hand_formula():
    a, b = [76.606, 76.532, 76.638, 76.562, 76.716], [76.240, 76.074, 75.988, 76.136, 76.224]
    st = describe(a, b)
    d, lo, hi, p = welch_by_hand(a, b)
    assert (st.diff, st.ci_low, st.ci_high, st.p_value) == pytest.approx((d, lo, hi, p), rel=1e-9)


def test_paired_matches_hand_formula():
    a, b = [70.0, 71.5, 69.0, 72.0], [71.0, 72.0, 70.5, 72.2]
    st = describe(a, b, paired=True)
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    q = sps.t.ppf(0.975, len(diffs) - 1)
    d = statistics.mean(diffs)
    assert st.diff == pytest.approx(d)
    assert (st.ci_low, st.ci_high) == pytest.approx((d - q * se, d + q * se))
    assert st.p_value == pytest.approx(2 * sps.t.sf(abs(d / se), len(diffs) - 1))


def test_undefined_tests_are_empty():
    assert is_missing(describe([1.0, 2.0], [3.0]).p_value)  # one reference run: no variance estimate
    st = describe([1.0, 1.0], [2.0, 2.0])  # no variance at all
    assert st.diff == -1.0 and is_missing(st.ci_low) and is_missing(st.p_value)


def test_median_ci_is_distribution_free_and_covers():
    """The order-statistic interval: exact ranks, NaN bounds below 6 values, >= 95% coverage on skewed data."""
    assert median_ci(range(30)) == (14.5, 9.0, 20.0)  # ranks 10 and 21 of 30 (coverage 95.7%)
    assert median_ci([1, 2, 3, 4, 5, 6]) == (3.5, 1.0, 6.0)  # min and max: 96.9%
    median, low, high = median_ci([1, 2, 3, 4, 5])
    assert median == 3 and math.isnan(low) and math.isnan(high)
    rng = np.random.default_rng(0)
    hits = sum(
        low <= math.log(2) <= high
        for _, low, high in (median_ci(rng.exponential(size=15)) for _ in range(2000))
    )
    assert hits / 2000 >= 0.94

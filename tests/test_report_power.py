"""padlib.report.power against independent computations: simulated t-tests (scipy's own Welch and
one-sample tests on random normal runs, fixed seeds), the paired power integrated from its definition,
and the textbook normal-approximation limit for many runs."""

import math

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as sps

from padlib.report.power import mde_paired, mde_welch, power_paired, power_welch, seeds_needed
from tests.report_fixtures import paired_power_by_hand, welch_power_by_simulation

Z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)  # 1.95996 + 0.84162
TOL = 0.015  # 20000 simulated tests: the simulated power's own standard error is 0.003


@pytest.mark.parametrize("s1, n1, s2, n2", [
    (1.0, 3, 1.0, 3),  # this project's sweeps: 3 seeds, std about 1 point
    (1.0, 2, 1.0, 2),
    (1.0, 3, 0.5, 4),  # unequal stds and sizes
    (0.071, 5, 0.105, 5),  # the paper's resnet50 partial vs zero (Table 2, sample stds)
    (1.0, 10, 1.0, 10),
])
def test_welch_mde_has_80_percent_power_in_simulation(s1, n1, s2, n2):
    mde = mde_welch(s1, n1, s2, n2)
    assert power_welch(mde, s1, n1, s2, n2) == pytest.approx(0.8, abs=1e-9)
    assert welch_power_by_simulation(mde, s1, n1, s2, n2) == pytest.approx(0.8, abs=TOL)


def test_welch_power_matches_simulation_away_from_80_percent():
    for diff in (0.0, 1.0, 2.5):
        assert power_welch(diff, 1.0, 4, 0.6, 3) == pytest.approx(welch_power_by_simulation(diff, 1.0, 4, 0.6, 3),
                                                                  abs=TOL)
    assert power_welch(-1.0, 1.0, 4, 0.6, 3) == power_welch(1.0, 1.0, 4, 0.6, 3)  # two-sided


def test_noncentral_t_shortcut_would_overstate_welch_power():
    """Why Welch's power is integrated over the sample variances: the noncentral t with the Welch df of
    the true stds gives a smaller 'MDE' at 3 runs a side, which the test really finds only ~70% of the time."""
    se, df = math.sqrt(2 / 3), 4.0  # Welch-Satterthwaite df of stds 1 and 1, 3 runs each
    crit = sps.t.isf(0.025, df)
    shortcut = se * optimize.brentq(lambda d: sps.nct.sf(crit, df, d) + sps.nct.sf(crit, df, -d) - 0.8, 0.0, 50.0)
    assert welch_power_by_simulation(shortcut, 1.0, 3, 1.0, 3) == pytest.approx(0.70, abs=TOL)
    assert mde_welch(1.0, 3, 1.0, 3) > shortcut * 1.1


@pytest.mark.parametrize("sd, n", [(1.3, 3), (1.3, 5), (0.2, 12)])
def test_paired_mde(sd, n):
    mde = mde_paired(sd, n)
    assert paired_power_by_hand(mde, sd, n) == pytest.approx(0.8, abs=1e-6)
    diffs = np.random.default_rng(1).normal(mde, sd, (20000, n))
    assert float(np.mean(sps.ttest_1samp(diffs, 0.0, axis=1).pvalue < 0.05)) == pytest.approx(0.8, abs=TOL)
    assert power_paired(mde / 2, sd, n) == pytest.approx(paired_power_by_hand(mde / 2, sd, n), abs=1e-6)


def test_many_runs_reach_the_textbook_normal_limit():
    for n in (1000, 5000):
        assert mde_welch(2.0, n, 2.0, n) == pytest.approx(Z * math.sqrt(2 / n) * 2.0, rel=2e-3)
        assert mde_paired(2.0, n) == pytest.approx(Z * 2.0 / math.sqrt(n), rel=2e-3)
    textbook = 2 * (Z * 1.0 / 0.1) ** 2  # n per group = 2 (z_a/2 + z_b)^2 S^2 / D^2 = 1569.8
    assert math.ceil(textbook) <= seeds_needed(0.1, 1.0, max_n=5000) <= math.ceil(textbook) + 3
    assert seeds_needed(0.1, 1.0) is None  # more than max_n=1000


def test_seeds_needed_is_the_first_n_with_80_percent_power():
    n = seeds_needed(2.0, 1.0)
    assert n == 6
    assert power_welch(2.0, 1.0, n - 1, 1.0, n - 1) < 0.8 <= power_welch(2.0, 1.0, n, 1.0, n)
    assert welch_power_by_simulation(2.0, 1.0, n - 1, 1.0, n - 1) < 0.8 - TOL  # 0.77 in truth
    assert welch_power_by_simulation(2.0, 1.0, n, 1.0, n) > 0.8
    # the paper's resnet50 (Table 2): partial +0.478, sample stds 0.071 (partial) and 0.105 (zero)
    assert seeds_needed(0.478, 0.071, std_ref=0.105) == 3
    assert welch_power_by_simulation(0.478, 0.071, 2, 0.105, 2) < 0.8 < welch_power_by_simulation(
        0.478, 0.071, 3, 0.105, 3)


def test_undefined_cases():
    assert mde_welch(1.0, 1, 1.0, 3) is None and mde_welch(1.0, 3, 1.0, 1) is None  # one run: no std
    assert mde_welch(0.0, 3, 0.0, 3) is None  # no variance at all
    assert mde_welch(float("nan"), 3, 1.0, 3) is None
    assert mde_welch(0.0, 3, 1.0, 3) == pytest.approx(mde_welch(1.0, 3, 0.0, 3))  # one group's spread suffices
    assert mde_paired(0.0, 5) is None and mde_paired(1.0, 1) is None
    assert math.isnan(power_welch(1.0, 1.0, 1, 1.0, 3)) and math.isnan(power_paired(1.0, 0.0, 4))
    assert seeds_needed(0.0, 1.0) is None and seeds_needed(1.0, 0.0) is None
    assert seeds_needed(1.0, float("nan")) is None

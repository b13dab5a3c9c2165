"""Chi-square helpers for the lottery tests (stdlib only, so CI needs no scipy).

Every test uses fixed seeds, so each statistic is a fixed number: a test cannot flake, it
either passes for good or shows a real defect. The significance level is strict (0.001):
a correct implementation fails a given check only with probability 1/1000 over the choice
of test seeds, while the biased samplers the tests also run fail by orders of magnitude.
"""

from __future__ import annotations

from collections.abc import Sequence

ALPHA = 0.001

# Upper 0.1% points of the chi-square distribution, scipy.stats.chi2.ppf(0.999, df), rounded
# to 3 decimals. test_critical_values_match_scipy re-derives them when scipy is installed.
CHI2_CRITICAL_999 = {
    1: 10.828,
    2: 13.816,
    3: 16.266,
    4: 18.467,
    5: 20.515,
    6: 22.458,
    9: 27.877,
    19: 43.820,
    99: 148.230,
    361: 449.763,
}


def chi2_critical(df: int) -> float:
    return CHI2_CRITICAL_999[df]


def pearson(observed: Sequence[int], expected: float) -> float:
    """Pearson's statistic sum((O - E)^2 / E) against a uniform expectation E per cell."""
    return sum((o - expected) ** 2 for o in observed) / expected

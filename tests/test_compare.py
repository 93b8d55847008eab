"""The one comparison rule (METHOD.md section 9)."""

import math

import numpy as np
import pandas as pd
import pytest

from lotterylib.read.compare import INCONCLUSIVE, ON_PAR, WORSE, compare, relative_gap_difference


def test_on_par_when_the_whole_interval_is_within_the_tolerance():
    c = compare([0.80, 0.82, 0.81, 0.79, 0.80], [0.79, 0.80, 0.81, 0.78, 0.80])
    assert c.verdict == ON_PAR and c.high <= c.tau == pytest.approx(0.0804)


def test_worse_when_the_whole_interval_is_beyond_the_tolerance():
    c = compare([0.80, 0.82, 0.81], [0.50, 0.52, 0.49])
    assert c.verdict == WORSE and c.low > c.tau


def test_inconclusive_when_the_interval_straddles_the_tolerance_or_one_seed():
    c = compare([0.80, 0.82, 0.81], [0.80, 0.50, 0.75])  # spread: one bad seed
    assert c.verdict == INCONCLUSIVE and c.label == "inconclusive at 3 seeds"
    one = compare([0.8], [0.1])
    assert one.verdict == INCONCLUSIVE and one.n == 1 and math.isnan(one.low)


def test_the_interval_is_the_t_interval_of_the_paired_gaps():
    ref, oth = np.array([0.7, 0.8, 0.75, 0.9]), np.array([0.6, 0.75, 0.7, 0.7])
    c = compare(ref, oth)
    g = ref - oth
    half = 3.182446305284263 * g.std(ddof=1) / 2  # t(0.975, 3)
    assert c.gap == pytest.approx(g.mean()) and c.high == pytest.approx(g.mean() + half)


def test_series_are_paired_by_seed_and_unpaired_seeds_dropped():
    ref = pd.Series([0.8, 0.9, 0.7], index=[1, 2, 3])
    oth = pd.Series([0.7, 0.6, np.nan, 0.5], index=[3, 2, 1, 4])
    c = compare(ref, oth)
    assert c.n == 2 and c.gap == pytest.approx(((0.9 - 0.6) + (0.7 - 0.7)) / 2)


def test_unpaired_arrays_are_refused():
    with pytest.raises(ValueError, match="pair the runs by seed"):
        compare([0.1, 0.2], [0.1])


def test_unpaired_welch_interval_for_published_means_and_stds():
    from lotterylib.read.compare import compare_unpaired

    c = compare_unpaired(0.84, 0.009, 5, 0.70, 0.014, 5)
    assert c.verdict == WORSE and c.gap == pytest.approx(0.14) and c.tau == pytest.approx(0.084)
    wide = compare_unpaired(0.50, 0.04, 5, 0.42, 0.23, 5)
    assert wide.verdict == INCONCLUSIVE and wide.low < 0 < wide.high
    assert compare_unpaired(0.5, 0.1, 0, 0.4, 0.1, 0).n == 0


def _summary(good, random):
    good, random = np.asarray(good, float), np.asarray(random, float)
    return {"good": good.mean(), "good_std": good.std(ddof=1) if good.size > 1 else np.nan, "n_good": good.size,
            "random": random.mean(), "random_std": random.std(ddof=1) if random.size > 1 else np.nan,
            "n_random": random.size}


def test_gap_difference_is_welchs_interval_when_only_random_runs_vary():
    """With good runs that do not vary and a good mean of 1, the difference of the two relative gaps is the
    difference of the random means, and its interval is Welch's two-sample interval."""
    from scipy import stats

    ours, theirs = [0.70, 0.74, 0.69, 0.72, 0.75], [0.90, 0.55, 0.80, 0.95, 0.62]
    diff, low, high = relative_gap_difference(_summary([1.0] * 5, ours), _summary([1.0] * 5, theirs))
    ci = stats.ttest_ind(theirs, ours, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(np.mean(theirs) - np.mean(ours))
    assert (low, high) == pytest.approx((ci.low, ci.high))


def test_gap_difference_tells_a_different_effect_from_a_wider_spread():
    ours = _summary([0.84, 0.85, 0.83, 0.84, 0.85], [0.60, 0.62, 0.58, 0.61, 0.59])   # gap/good 0.29
    near = _summary([0.80, 0.82, 0.79, 0.81, 0.80], [0.80, 0.81, 0.79, 0.80, 0.82])   # gap/good 0.00, tight
    noisy = _summary([0.80, 0.82, 0.79, 0.81, 0.80], [0.95, 0.40, 0.90, 0.35, 0.85])  # gap/good 0.14, wide
    _, low, _ = relative_gap_difference(ours, near)
    assert low > 0  # the effects differ
    _, low, high = relative_gap_difference(ours, noisy)
    assert low < 0 < high  # 0.15 apart, but this spread cannot tell
    assert all(math.isnan(x) for x in relative_gap_difference(_summary([0.8], [0.7]), near)[1:])
    assert all(math.isnan(x) for x in relative_gap_difference(_summary([0.0, 0.0], [0.1, 0.2]), near))

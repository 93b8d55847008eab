"""The one comparison rule (METHOD.md section 9)."""

import math

import numpy as np
import pandas as pd
import pytest

from lotterylib.read.compare import INCONCLUSIVE, ON_PAR, WORSE, compare


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

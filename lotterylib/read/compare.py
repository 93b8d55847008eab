"""The one comparison rule of METHOD.md section 9, for every "X is on par with Y" and "X beats Y".

Per task, the runs are paired by seed; the gap per seed is ``g = score(reference) - score(other)``; its mean
and 95 % t-interval over the seeds (``n - 1`` degrees of freedom) are compared with the tolerance
``tau = 0.1 x mean score(reference)``, the paper's own 90 % tolerance:

- **on par**: the interval's upper end is at most ``tau`` (the other is at most 10 % below the reference);
- **worse**: the interval's lower end exceeds ``tau`` (the other is more than 10 % below the reference);
- **inconclusive at n seeds**: otherwise, or with fewer than two paired seeds.

"X beats Y" is "Y is worse than X". The same function judges the paper's published runs and ours.
This module imports no torch (numpy, scipy and pandas only).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

ON_PAR, WORSE, INCONCLUSIVE = "on par", "worse", "inconclusive"
VERDICTS = (ON_PAR, WORSE, INCONCLUSIVE)
TOLERANCE = 0.1  # tau = TOLERANCE x mean score of the reference
LEVEL = 0.95


@dataclass(frozen=True)
class Comparison:
    """One paired comparison: ``gap`` = mean of score(reference) - score(other) over ``n`` paired seeds."""

    n: int
    reference_mean: float
    other_mean: float
    gap: float
    low: float
    high: float
    tau: float
    verdict: str

    @property
    def label(self) -> str:
        """The verdict as a reader sees it: "on par", "worse" or "inconclusive at 3 seeds"."""
        return (f"{INCONCLUSIVE} at {self.n} seed{'' if self.n == 1 else 's'}" if self.verdict == INCONCLUSIVE
                else self.verdict)

    def as_dict(self) -> dict:
        return {**asdict(self), "label": self.label}


def compare(reference, other, tolerance: float = TOLERANCE, level: float = LEVEL) -> Comparison:
    """Judge ``other`` against ``reference`` from scores paired by seed (equal-length sequences, or two
    Series aligned on their index: only seeds present in both, with finite scores, count).

    >>> compare([0.80, 0.82, 0.81], [0.79, 0.80, 0.80]).verdict
    'on par'
    >>> compare([0.80, 0.82, 0.81], [0.50, 0.52, 0.49]).verdict
    'worse'
    """
    if isinstance(reference, pd.Series) and isinstance(other, pd.Series):
        both = pd.concat([reference.rename("ref"), other.rename("other")], axis=1, join="inner")
        ref, oth = both["ref"].to_numpy(float), both["other"].to_numpy(float)
    else:
        ref, oth = np.asarray(reference, dtype=float), np.asarray(other, dtype=float)
        if ref.shape != oth.shape:
            raise ValueError(f"paired comparison needs one score per seed on both sides, got {ref.shape} and "
                             f"{oth.shape}: pair the runs by seed first")
    keep = np.isfinite(ref) & np.isfinite(oth)
    ref, oth = ref[keep], oth[keep]
    n = int(ref.size)
    if n == 0:
        nan = float("nan")
        return Comparison(0, nan, nan, nan, nan, nan, nan, INCONCLUSIVE)
    gaps = ref - oth
    gap = float(gaps.mean())
    tau = tolerance * float(ref.mean())
    if n < 2:
        low = high = float("nan")
    else:
        half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * float(gaps.std(ddof=1)) / math.sqrt(n)
        low, high = gap - half, gap + half
    if n >= 2 and high <= tau:
        verdict = ON_PAR
    elif n >= 2 and low > tau:
        verdict = WORSE
    else:
        verdict = INCONCLUSIVE
    return Comparison(n, float(ref.mean()), float(oth.mean()), gap, low, high, tau, verdict)


def compare_unpaired(reference_mean: float, reference_std: float, reference_n: int, other_mean: float,
                     other_std: float, other_n: int, tolerance: float = TOLERANCE, level: float = LEVEL) -> Comparison:
    """The same rule where the runs cannot be paired by seed: the authors published only each cell's mean and
    sample std over its seeds. The gap's interval is then the Welch t-interval of the difference of means
    (runs that share a seed usually correlate, so a paired interval would be narrower: this one leans towards
    "inconclusive"). Tolerance and verdicts as in :func:`compare`; ``n`` is the smaller side's.

    >>> compare_unpaired(0.80, 0.01, 5, 0.79, 0.01, 5).verdict
    'on par'
    >>> compare_unpaired(0.50, 0.04, 5, 0.42, 0.23, 5).verdict   # the paper's CoLA: the spread decides
    'inconclusive'
    """
    n = int(min(reference_n, other_n))
    if n == 0 or not np.isfinite([reference_mean, other_mean]).all():
        nan = float("nan")
        return Comparison(0, nan, nan, nan, nan, nan, nan, INCONCLUSIVE)
    gap = float(reference_mean - other_mean)
    tau = tolerance * float(reference_mean)
    low = high = float("nan")
    if n >= 2 and np.isfinite([reference_std, other_std]).all():
        low, high = _welch_interval(gap, [(reference_std ** 2 / reference_n, reference_n),
                                          (other_std ** 2 / other_n, other_n)], level)
    verdict = INCONCLUSIVE
    if np.isfinite(high) and high <= tau:
        verdict = ON_PAR
    elif np.isfinite(low) and low > tau:
        verdict = WORSE
    return Comparison(n, float(reference_mean), float(other_mean), gap, low, high, tau, verdict)


def relative_gap_difference(ours: dict, theirs: dict, level: float = LEVEL) -> tuple[float, float, float]:
    """How far two relative gaps differ: ``(difference, low, high)`` for ``ours - theirs``, where each side's
    relative gap is ``(good mean - random mean) / good mean`` computed from summaries (keys ``good``,
    ``good_std``, ``n_good``, ``random``, ``random_std``, ``n_random``; sample stds).

    The interval is Welch's, over the four independent groups (each side's good and random runs), each side's good
    mean taken as the fixed scale of its gap; degrees of freedom by Welch-Satterthwaite. It answers whether the two
    effects differ beyond what both sides' spreads allow: an interval that holds 0 means they may be one effect,
    seen through runs of different spread. NaN where a side has fewer than two runs in a group.

    >>> a = {"good": 0.8, "good_std": 0.01, "n_good": 5, "random": 0.6, "random_std": 0.01, "n_random": 5}
    >>> b = {"good": 0.8, "good_std": 0.01, "n_good": 5, "random": 0.8, "random_std": 0.01, "n_random": 5}
    >>> d, low, high = relative_gap_difference(a, b)
    >>> round(d, 3), low > 0
    (0.25, True)
    >>> wide = {**b, "random_std": 0.3}
    >>> relative_gap_difference(a, wide)[1] < 0   # the same difference, too much spread to tell
    True
    """
    nan = float("nan")
    parts, rel = [], []
    for side in (ours, theirs):
        scale = float(side["good"])
        if not (np.isfinite(scale) and scale > 0):
            return nan, nan, nan
        rel.append((scale - float(side["random"])) / scale)
        for std, n in ((side["good_std"], side["n_good"]), (side["random_std"], side["n_random"])):
            parts.append((float(std) ** 2 / int(n) / scale ** 2 if int(n) >= 2 else nan, int(n)))
    diff = rel[0] - rel[1]
    if not (np.isfinite(diff) and all(np.isfinite(v) for v, _ in parts)):
        return diff, nan, nan
    return (diff, *_welch_interval(diff, parts, level))


def _welch_interval(estimate: float, parts, level: float) -> tuple[float, float]:
    """The t-interval of a sum or difference of independent group means: ``parts`` holds each group's
    ``(variance of its mean, n)``; degrees of freedom by Welch-Satterthwaite. No spread at all: the estimate."""
    var = sum(v for v, _ in parts)
    if var == 0:
        return estimate, estimate
    df = var ** 2 / sum(v ** 2 / (n - 1) for v, n in parts if v > 0)
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(var)
    return estimate - half, estimate + half

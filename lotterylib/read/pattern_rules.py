"""Attention patterns of heads (paper section 5.2): a transparent, rule-based classifier.

Following Kovaleva et al. (2019), the paper sorts attention maps into five types: *vertical* (mass on
[CLS]/[SEP]), *diagonal* (on the neighbouring tokens), *vertical+diagonal*, *block* (within one sentence of
a sentence pair) and *heterogeneous* (none of these). The authors classified maps with a small CNN trained on
about 400 hand-labelled maps; neither labels nor weights are public. Here every rule is written down
(:class:`PatternRules`) and works on the statistics that :mod:`lotterylib.method.attention` records for every head
and example (or that :func:`map_stats` computes from one raw map), so the classification needs no model.

The rules live here; the rest of the pipeline is split by job:

- classification: :func:`pattern_scores`, :func:`classify` (any leading shape), :func:`map_stats` (raw
  maps -> the same statistics, through :func:`lotterylib.method.map_statistics.example_statistics`), :func:`head_summary`
  (one type per head from many examples);
- loading: :func:`lotterylib.read.pattern_data.read_attention`, :func:`load_attention`, :func:`load_masks`, :func:`load_super`,
  :func:`head_table`, :func:`load_gallery` (missing runs are skipped; a file lacking a key is refused);
- analysis: :func:`type_shares`, :func:`association`, :func:`association_by_seed`, :func:`c10`,
  :func:`c10_summary`, :func:`association_sentence`, and two figures (:func:`plot_type_shares`,
  :func:`plot_gallery`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from lotterylib.method.map_statistics import STATS, example_statistics

TYPES = ("vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous")

"""The five pattern types; an integer type code is an index into this tuple."""

PRECEDENCE = ("vertical+diagonal", "vertical", "diagonal", "block", "heterogeneous")

"""The order in which the rules are tried: the first that holds names the map."""

HETEROGENEOUS = TYPES.index("heterogeneous")

WEIGHTS = ("finetuned", "pretrained")

AGGREGATES = ("mean", "vote")

GROUPS = ("all heads", "survivors", "pruned", "super-survivors")

# Comparisons are ">= threshold" up to this rounding slack, so that a mass of exactly 0.6 over 10 tokens
# (chance-corrected score (0.6 - 0.2) / 0.8, which floating point makes 0.4999...) meets a threshold of 0.5.
_TOLERANCE = 1e-9

# What the rules read; ``self`` only when the diagonal band includes the main diagonal.
_NEEDED = ("cls", "sep", "diag_prev", "diag_next", "within", "max_entropy")

_FIX = ("compute them with lotterylib.method.map_statistics.example_statistics (recorded per run by "
        "lotterylib.run.experiment.record_attention) or from raw maps with lotterylib.read.pattern_rules.map_stats")

@dataclass(frozen=True)
class PatternRules:
    """The classifier's rules, as named thresholds. Tried in this order (:data:`PRECEDENCE`):

    1. **vertical+diagonal** if the vertical score >= ``both_vertical`` *and* the diagonal score >=
       ``both_diagonal``;
    2. **vertical** if the vertical score >= ``vertical``;
    3. **diagonal** if the diagonal score >= ``diagonal``;
    4. **block** (sentence pairs only: ``within`` is recorded) if the share of the content attention that
       stays in the query's own sentence (``within``) >= ``block`` and at least ``block_min_content`` of the
       mass is on ordinary tokens (not [CLS]/[SEP]);
    5. **heterogeneous** otherwise.

    Every comparison is ``>=`` (up to a rounding slack of 1e-9). Definitions, from the recorded statistics
    (:mod:`lotterylib.method.attention`; means over query rows):

    - special mass ``s = cls + sep`` (attention on [CLS] and [SEP]);
    - band mass ``d = diag_prev + diag_next (+ self)``: the -1 and +1 diagonals, and the main diagonal when
      ``diagonal_includes_self`` (default). On a heatmap, which is what the human labellers of Kovaleva et al.
      saw, a line on the main diagonal and one beside it look the same; without it, a head that attends to
      the token itself would be heterogeneous on single sentences and "block" on pairs (all its mass stays
      in the query's sentence);
    - the scores are chance-corrected (``chance_corrected``, default): ``score = (m - u) / (1 - u)``, where
      ``u`` is what *uniform* attention over the same ``n`` tokens puts there: ``u_s = (1 + n_sep) / n``
      (``n_sep`` = 2 for pairs, 1 otherwise) and ``u_d = (3n - 2) / n**2`` (``2(n - 1) / n**2`` without the
      main diagonal). A score is 0 for uniform attention and 1 when all the mass is on the pattern; a
      threshold ``t`` thus asks for the mass to be at least a share ``t`` of the way from uniform to
      perfect, i.e. ``m >= u + t (1 - u)``. For long inputs ``u`` is small and the score is close to the
      raw mass; for short ones (the gallery's maps are the shortest examples) it keeps uniform attention
      from passing: uniform attention over 5 tokens already puts 0.4 on [CLS]+[SEP] and 0.52 on the band.
      ``n`` is ``exp(max_entropy)``. With ``chance_corrected=False`` the scores are the raw masses.

    Why these defaults (chosen before looking at any survivors, and not tuned on them): a pattern names a
    map when it holds at least *half* of the attention above chance (0.5); the combined type asks for the
    same total, split so that each part holds at least a quarter (0.25 + 0.25), and is tried first so that
    a head clearly showing both is not called by one of them. ``block``: 0.8 of the content attention
    inside the query's sentence; uniform attention keeps ``(a^2 + b^2) / (a + b)^2`` there (0.5 for two
    sentences of equal length) and reaches 0.8 only when one sentence is about 8 times longer than the
    other. The block rule is not chance-corrected because the statistics do not record the sentence
    lengths. ``block_min_content`` = 0.5: the within-sentence share describes the map only if most of the
    mass is on ordinary tokens. Note that "vertical" means a stripe on [CLS]/[SEP], as in the paper; a
    stripe on an ordinary token (a full stop, say) is heterogeneous under these rules.
    """

    vertical: float = 0.5
    diagonal: float = 0.5
    both_vertical: float = 0.25
    both_diagonal: float = 0.25
    block: float = 0.8
    block_min_content: float = 0.5
    chance_corrected: bool = True
    diagonal_includes_self: bool = True

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in (bool, "bool"):
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError(f"PatternRules.{f.name} must be True or False, got {value!r}")
            elif not isinstance(value, (int, float, np.number)) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"PatternRules.{f.name} must be a number in [0, 1] (a share of the attention "
                                 f"mass), got {value!r}")
        if self.both_vertical > self.vertical or self.both_diagonal > self.diagonal:
            raise ValueError("PatternRules: the vertical+diagonal thresholds (both_vertical, both_diagonal) must "
                             "not exceed the single-pattern thresholds (vertical, diagonal): the combined type "
                             "asks for each part at a lower level")

    def table(self) -> pd.DataFrame:
        """The rules in words with their numbers, in order of precedence (for the book)."""
        score = "chance-corrected " if self.chance_corrected else ""
        band = "previous, next and same token" if self.diagonal_includes_self else "previous and next token"
        rules = {
            "vertical+diagonal": f"{score}[CLS]+[SEP] mass >= {self.both_vertical:g} and {score}mass on the "
                                 f"{band} >= {self.both_diagonal:g}",
            "vertical": f"{score}mass on [CLS]+[SEP] >= {self.vertical:g}",
            "diagonal": f"{score}mass on the {band} >= {self.diagonal:g}",
            "block": f"sentence pairs only: share of the content attention staying in the query's sentence >= "
                     f"{self.block:g}, with >= {self.block_min_content:g} of the mass on ordinary tokens",
            "heterogeneous": "none of the above",
        }
        return pd.DataFrame({"order": range(1, len(PRECEDENCE) + 1), "type": list(PRECEDENCE),
                             "rule": [rules[t] for t in PRECEDENCE]})

    def thresholds(self) -> pd.DataFrame:
        """Every setting, its value and its meaning."""
        meaning = {
            "vertical": "min. score on [CLS]+[SEP] for vertical",
            "diagonal": "min. score on the diagonal band for diagonal",
            "both_vertical": "min. score on [CLS]+[SEP] for vertical+diagonal",
            "both_diagonal": "min. score on the diagonal band for vertical+diagonal",
            "block": "min. within-sentence share of the content attention for block",
            "block_min_content": "min. mass on ordinary tokens for block",
            "chance_corrected": "scores measured from uniform attention: (mass - uniform) / (1 - uniform)",
            "diagonal_includes_self": "the diagonal band includes the main diagonal (the token itself)",
        }
        return pd.DataFrame([{"setting": k, "value": v, "meaning": meaning[k]} for k, v in asdict(self).items()])

DEFAULT_RULES = PatternRules()

def type_codes(names) -> np.ndarray:
    """Type names (any shape) -> integer codes (indices into :data:`TYPES`)."""
    arr = np.asarray(names, dtype=object)
    unknown = sorted({str(n) for n in arr.ravel()} - set(TYPES))
    if unknown:
        raise ValueError(f"unknown attention pattern type(s) {unknown}: use one of {list(TYPES)}")
    lookup = {t: i for i, t in enumerate(TYPES)}
    return np.vectorize(lookup.__getitem__, otypes=[np.int64])(arr) if arr.size else arr.astype(np.int64)

def type_names(codes) -> np.ndarray:
    """Integer codes (any shape) -> type names."""
    arr = np.asarray(codes)
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= len(TYPES)):
        raise ValueError(f"type codes must be integers 0..{len(TYPES) - 1} (indices into {list(TYPES)}), "
                         f"got {np.unique(arr)[:5].tolist()}")
    return np.asarray(TYPES, dtype=object)[arr.astype(np.int64)]

def check_rules(rules) -> PatternRules:
    if not isinstance(rules, PatternRules):
        raise ValueError(f"rules must be a lotterylib.read.pattern_rules.PatternRules, got {type(rules).__name__}")
    return rules

def check_aggregate(aggregate: str) -> str:
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate={aggregate!r} is unknown: use 'mean' (classify the per-head mean statistics) "
                         "or 'vote' (majority of the per-example types)")
    return aggregate

def check_weights(weights: str) -> str:
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r} is unknown: use one of {list(WEIGHTS)}")
    return weights

def _stats_arrays(stats: Mapping, rules: PatternRules) -> dict[str, np.ndarray]:
    if not isinstance(stats, Mapping):
        raise ValueError(f"stats must be a mapping of statistic name -> array, got {type(stats).__name__}: {_FIX}")
    needed = _NEEDED + (("self",) if rules.diagonal_includes_self else ())
    missing = [k for k in needed if k not in stats]
    if missing:
        raise ValueError(f"attention statistics lack {missing} (have {sorted(stats)}): {_FIX}")
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in stats.items() if k in set(STATS) | {
        "uniform_special", "uniform_band"}}
    shapes = {k: v.shape for k, v in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"attention statistics must all have one shape, got {shapes}")
    for key in needed:
        if key != "within" and np.isnan(arrays[key]).any():
            raise ValueError(f"attention statistic {key!r} holds NaN (only 'within' may, for single sentences): "
                             f"{_FIX}")
    return arrays

def uniform_levels(stats: Mapping, rules: PatternRules = DEFAULT_RULES) -> dict[str, np.ndarray]:
    """What uniform attention over the same tokens would give: ``uniform_special``, ``uniform_band``."""
    s = _stats_arrays(stats, check_rules(rules))
    n = np.maximum(np.rint(np.exp(s["max_entropy"])), 1.0)
    n_sep = np.where(np.isfinite(s["within"]), 2.0, 1.0)
    band = (3 * n - 2) / n ** 2 if rules.diagonal_includes_self else 2 * (n - 1) / n ** 2
    return {"uniform_special": np.minimum((1 + n_sep) / n, 1.0), "uniform_band": np.minimum(band, 1.0)}

def pattern_scores(stats: Mapping, rules: PatternRules = DEFAULT_RULES) -> dict[str, np.ndarray]:
    """The quantities the rules compare, each of the statistics' shape.

    ``special`` (mass on [CLS]+[SEP]), ``band`` (mass on the diagonal band), ``content`` (1 - special),
    ``within``, ``uniform_special`` / ``uniform_band`` (taken from ``stats`` when present, as in
    :func:`head_summary`'s averages, else computed from ``max_entropy``), ``vertical_score`` and
    ``diagonal_score`` (chance-corrected unless the rules say otherwise).
    """
    rules = check_rules(rules)
    s = _stats_arrays(stats, rules)
    special = s["cls"] + s["sep"]
    band = s["diag_prev"] + s["diag_next"] + (s["self"] if rules.diagonal_includes_self else 0.0)
    if "uniform_special" in s and "uniform_band" in s:
        u_s, u_b = s["uniform_special"], s["uniform_band"]
    else:
        levels = uniform_levels(s, rules)
        u_s, u_b = levels["uniform_special"], levels["uniform_band"]
    if rules.chance_corrected:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(u_s < 1, (special - u_s) / (1 - u_s), 0.0)
            d = np.where(u_b < 1, (band - u_b) / (1 - u_b), 0.0)
    else:
        v, d = special, band
    return {"special": special, "band": band, "content": 1.0 - special, "within": s["within"],
            "uniform_special": u_s, "uniform_band": u_b, "vertical_score": v, "diagonal_score": d}

def classify(stats: Mapping, rules: PatternRules = DEFAULT_RULES, names: bool = False) -> np.ndarray:
    """Type codes (or names with ``names=True``) of attention statistics of any leading shape.

    ``stats`` maps the names of :data:`lotterylib.method.map_statistics.STATS` to arrays of one shape, e.g. (N, L, H)
    as recorded, (L, H) per-head means, or scalars. The rules are :class:`PatternRules`.
    """
    p = pattern_scores(stats, rules)
    v, d, within = p["vertical_score"], p["diagonal_score"], p["within"]
    is_pair = np.isfinite(within)
    tol = _TOLERANCE
    tests = {
        "vertical+diagonal": (v >= rules.both_vertical - tol) & (d >= rules.both_diagonal - tol),
        "vertical": v >= rules.vertical - tol,
        "diagonal": d >= rules.diagonal - tol,
        "block": is_pair & (np.where(is_pair, within, 0.0) >= rules.block - tol)
        & (p["content"] >= rules.block_min_content - tol),
    }
    codes = np.full(v.shape, HETEROGENEOUS, dtype=np.int64)
    decided = np.zeros(v.shape, dtype=bool)
    for kind in PRECEDENCE[:-1]:
        hit = tests[kind] & ~decided
        codes[hit] = TYPES.index(kind)
        decided |= hit
    return type_names(codes) if names else codes

def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    """Mean over the finite values (NaN where there are none), without numpy's empty-slice warning."""
    finite = np.isfinite(x)
    count = finite.sum(axis)
    total = np.where(finite, x, 0.0).sum(axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)

def head_summary(stats: Mapping, rules: PatternRules = DEFAULT_RULES, aggregate: str = "mean") -> dict[str, np.ndarray]:
    """One type per head from per-example statistics ``(N, L, H)``: every array returned is ``(L, H)``.

    ``aggregate='mean'`` (default) averages the statistics over the examples -- and the uniform-attention
    levels with them, example by example -- and applies the rules once. ``'vote'`` classifies every example's
    map and takes the most frequent type (ties go to the type earlier in :data:`PRECEDENCE`).

    Why the mean by default: a head's type is a property of the head, and averaging 64 maps removes the
    example-to-example noise that would flip single maps across a threshold (a vertical head whose [CLS]+[SEP]
    mass is 0.52 on one example and 0.48 on the next is vertical on average, but splits a vote). The vote is
    closer to what the paper's CNN did (it labelled single maps) and is offered for that comparison.
    ``agreement`` is the share of the examples whose own type is the head's type, either way.
    Returned: the mean statistics, :func:`pattern_scores` of the means, ``type`` (codes) and ``agreement``.
    """
    rules = check_rules(rules)
    check_aggregate(aggregate)
    s = _stats_arrays(stats, rules)
    if next(iter(s.values())).ndim != 3:
        raise ValueError(f"head_summary needs per-example statistics of shape (N examples, L layers, H heads), got "
                         f"{next(iter(s.values())).shape}: {_FIX}")
    per_example = classify(s, rules)  # (N, L, H)
    levels = uniform_levels(s, rules)
    means = {k: _nanmean(v, 0) for k, v in {**s, **levels}.items()}
    scores = pattern_scores(means, rules)
    if aggregate == "mean":
        types = classify(means, rules)
    else:
        counts = np.stack([(per_example == TYPES.index(t)).sum(0) for t in PRECEDENCE])  # (5, L, H) by precedence
        types = np.asarray([TYPES.index(t) for t in PRECEDENCE])[counts.argmax(0)]
    agreement = (per_example == types[None]).mean(0)
    return {**means, **scores, "type": types, "agreement": agreement}

def _segments_from_sep(is_sep: np.ndarray) -> np.ndarray:
    """Segment of every position: the number of [SEP] tokens before it (0 for the first sentence)."""
    return np.concatenate([[0], np.cumsum(is_sep)[:-1]]).astype(np.int64)

def map_stats(maps, tokens: Sequence, sep_token: str = "[SEP]") -> dict[str, np.ndarray]:
    """The statistics of :mod:`lotterylib.method.attention` from raw maps, so a gallery map can be classified.

    ``maps``: one map ``(T, T)`` (rows: queries, columns: keys; rows sum to 1) or a stack ``(..., T, T)``;
    ``tokens``: the ``T`` token strings (``'[CLS]'`` first, ``sep_token`` closing each sentence). Segments
    are derived from the [SEP] positions (a token after the first [SEP] is in the second sentence), as BERT's
    token types are. Computed by :func:`lotterylib.method.map_statistics.example_statistics`, so the numbers are the ones
    the pipeline records. Returns each statistic with the leading shape of ``maps`` (a float for one map).
    """

    arr = np.asarray(maps, dtype=np.float64)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"an attention map must be square (T, T) or a stack (..., T, T), got shape {arr.shape}")
    tokens = [str(t) for t in tokens]
    n = arr.shape[-1]
    if len(tokens) != n:
        raise ValueError(f"the map is {n} x {n} but {len(tokens)} tokens were given: pass the map's own tokens "
                         "(one per row)")
    if n == 0:
        raise ValueError("an attention map needs at least one token")
    if not np.isfinite(arr).all() or (arr < -1e-6).any() or np.abs(arr.sum(-1) - 1).max() > 2e-2:
        raise ValueError("attention maps must be finite, non-negative and row-stochastic (every row sums to 1, "
                         "within 0.02 for float16 maps): pass attention probabilities, not scores")
    lead = arr.shape[:-2]
    is_sep = np.asarray([t == sep_token for t in tokens])
    ids = is_sep.astype(np.int64)  # 1 at [SEP]: example_statistics only compares ids with sep_id
    segments = _segments_from_sep(is_sep)
    out = example_statistics(arr.reshape(-1, 1, n, n), ids, segments, n, sep_id=1)
    return {k: (v.reshape(lead) if lead else float(v.ravel()[0])) for k, v in out.items()}


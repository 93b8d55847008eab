"""Attention patterns of heads (paper section 5.2): a transparent, rule-based classifier.

Following Kovaleva et al. (2019), the paper sorts attention maps into five types: *vertical* (mass on
[CLS]/[SEP]), *diagonal* (on the neighbouring tokens), *vertical+diagonal*, *block* (within one sentence of
a sentence pair) and *heterogeneous* (none of these). The authors classified maps with a small CNN trained on
about 400 hand-labelled maps; neither labels nor weights are public. Here every rule is written down
(:class:`PatternRules`) and works on the statistics that :mod:`lotterylib.method.attention` records for every head
and example (or that :func:`map_stats` computes from one raw map), so the classification needs no model.

Three layers:

- classification: :func:`pattern_scores`, :func:`classify` (any leading shape), :func:`map_stats` (raw
  maps -> the same statistics, through :func:`lotterylib.method.attention.example_stats`), :func:`head_summary`
  (one type per head from many examples);
- loading: :func:`read_attention`, :func:`load_attention`, :func:`load_masks`, :func:`load_super`,
  :func:`head_table`, :func:`load_gallery` (missing runs are skipped; a file lacking a key is refused);
- analysis: :func:`type_shares`, :func:`association`, :func:`association_by_seed`, :func:`c10`,
  :func:`c10_summary`, :func:`association_sentence`, and two figures (:func:`plot_type_shares`,
  :func:`plot_gallery`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from lotterylib.method.attention import STATS

TYPES = ("vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous")
"""The five pattern types; an integer type code is an index into this tuple."""

PRECEDENCE = ("vertical+diagonal", "vertical", "diagonal", "block", "heterogeneous")
"""The order in which the rules are tried: the first that holds names the map."""

HETEROGENEOUS = TYPES.index("heterogeneous")
WEIGHTS = ("finetuned", "pretrained")
AGGREGATES = ("mean", "vote")
GROUPS = ("all heads", "survivors", "pruned", "super-survivors")
TYPE_COLORS = {"vertical": "#457b9d", "diagonal": "#e9c46a", "vertical+diagonal": "#2a9d8f",
               "block": "#e76f51", "heterogeneous": "#adb5bd"}

# Comparisons are ">= threshold" up to this rounding slack, so that a mass of exactly 0.6 over 10 tokens
# (chance-corrected score (0.6 - 0.2) / 0.8, which floating point makes 0.4999...) meets a threshold of 0.5.
_TOLERANCE = 1e-9

# What the rules read; ``self`` only when the diagonal band includes the main diagonal.
_NEEDED = ("cls", "sep", "diag_prev", "diag_next", "within", "max_entropy")
_FIX = ("compute them with lotterylib.method.attention.example_stats (recorded per run by "
        "lotterylib.run.experiment.record_attention) or from raw maps with lotterylib.read.patterns.map_stats")


# --- the rules ----------------------------------------------------------------------------------

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


# --- type names and codes -----------------------------------------------------------------------

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


def _check_rules(rules) -> PatternRules:
    if not isinstance(rules, PatternRules):
        raise ValueError(f"rules must be a lotterylib.read.patterns.PatternRules, got {type(rules).__name__}")
    return rules


def _check_aggregate(aggregate: str) -> str:
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate={aggregate!r} is unknown: use 'mean' (classify the per-head mean statistics) "
                         "or 'vote' (majority of the per-example types)")
    return aggregate


def _check_weights(weights: str) -> str:
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r} is unknown: use one of {list(WEIGHTS)}")
    return weights


# --- classification -------------------------------------------------------------------------------

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
    s = _stats_arrays(stats, _check_rules(rules))
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
    rules = _check_rules(rules)
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

    ``stats`` maps the names of :data:`lotterylib.method.attention.STATS` to arrays of one shape, e.g. (N, L, H)
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
    rules = _check_rules(rules)
    _check_aggregate(aggregate)
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
    token types are. Computed by :func:`lotterylib.method.attention.example_stats`, so the numbers are the ones
    the pipeline records. Returns each statistic with the leading shape of ``maps`` (a float for one map).
    """
    import torch

    from lotterylib.method.attention import example_stats

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
    ids = torch.as_tensor(is_sep.astype(np.int64))  # 1 at [SEP]: example_stats only compares ids with sep_id
    segments = torch.as_tensor(_segments_from_sep(is_sep))
    flat = torch.as_tensor(arr.reshape(-1, 1, n, n))
    out = example_stats(flat, ids, segments, n, sep_id=1)
    return {k: (v.reshape(lead) if lead else float(v.ravel()[0])) for k, v in out.items()}


# --- loading a plan's result files ---------------------------------------------------------------

def _plan(plan):
    from lotterylib.config.plans import Plan

    return plan if isinstance(plan, Plan) else Plan.load(plan)


def read_attention(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """``finetune/attention.npz`` -> ``{"finetuned": stats, "pretrained": stats}``, each stat (N, L, H)."""
    from lotterylib.store.files import read_npz

    path = Path(path)
    arrays = read_npz(path)
    out = {}
    for weights in WEIGHTS:
        missing = [f"{weights}_{s}" for s in STATS if f"{weights}_{s}" not in arrays]
        if missing:
            raise ValueError(f"{path} lacks {missing}: it was not written by this version of "
                             "lotterylib.run.experiment.record_attention; re-run the run's finetune stage (or "
                             "record_attention on its checkpoint) to rewrite it")
        stats = {s: arrays[f"{weights}_{s}"] for s in STATS}
        shapes = {k: v.shape for k, v in stats.items()}
        if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 3:
            raise ValueError(f"{path}: the {weights} statistics must all be (N examples, L layers, H heads), got "
                             f"{shapes}; re-run the run's finetune stage to rewrite the file")
        out[weights] = stats
    return out


def _runs(plan, name: str):
    """``(task, seed, path)`` for every run of the plan that has ``finetune/<name>``; the rest are skipped."""
    from lotterylib.store.files import run_dir

    for task in plan.tasks:
        for seed in plan.seeds:
            path = run_dir(plan.name, task, seed) / "finetune" / name
            if path.exists():
                yield task, seed, path


def _grid_frame(arrays: Mapping[str, np.ndarray]) -> pd.DataFrame:
    layers, heads = next(iter(arrays.values())).shape
    frame = pd.DataFrame({"layer": np.repeat(np.arange(layers), heads), "head": np.tile(np.arange(heads), layers)})
    for key, value in arrays.items():
        frame[key] = np.asarray(value).ravel()
    return frame


def load_attention(plan, rules: PatternRules = DEFAULT_RULES, aggregate: str = "mean",
                   per_example: bool = False) -> pd.DataFrame:
    """A plan's attention statistics as one tidy table; runs without ``attention.npz`` are skipped.

    One row per (task, seed, weights, layer, head) -- ``weights`` is ``finetuned`` or ``pretrained`` -- with
    the per-head mean statistics, the rules' scores, ``type`` (name; :func:`head_summary` with
    ``aggregate``) and ``agreement``. With ``per_example=True``: one row per example too (column
    ``example``, the dev index), each map typed on its own.
    """
    plan, rules = _plan(plan), _check_rules(rules)
    _check_aggregate(aggregate)
    frames = []
    for task, seed, path in _runs(plan, "attention.npz"):
        index = None
        for weights, stats in read_attention(path).items():
            if per_example:
                if index is None:
                    from lotterylib.store.files import read_npz
                    arrays = read_npz(path)
                    n = next(iter(stats.values())).shape[0]
                    index = arrays.get("example_index", np.arange(n))
                scores = pattern_scores(stats, rules)
                codes = classify(stats, rules)
                for i, example in enumerate(index):
                    frame = _grid_frame({**{k: v[i] for k, v in stats.items()},
                                         **{k: v[i] for k, v in scores.items() if k not in stats}})
                    frame["type"] = type_names(codes[i].ravel())
                    frame.insert(0, "example", int(example))
                    frame.insert(0, "weights", weights)
                    frame.insert(0, "seed", seed)
                    frame.insert(0, "task", task)
                    frames.append(frame)
            else:
                summary = head_summary(stats, rules, aggregate)
                frame = _grid_frame({k: v for k, v in summary.items() if k != "type"})
                frame["type"] = type_names(summary["type"].ravel())
                frame.insert(0, "weights", weights)
                frame.insert(0, "seed", seed)
                frame.insert(0, "task", task)
                frames.append(frame)
    columns = ["task", "seed", "weights"] + (["example"] if per_example else []) + ["layer", "head", "type"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def load_masks(plan, subnetwork: str = "good") -> pd.DataFrame:
    """s-pruning head masks as a table: (task, seed, layer, head, kept); seeds without a mask are absent."""
    from lotterylib.read.collect import s_masks

    plan = _plan(plan)
    frames = []
    for task, masks in s_masks(plan, subnetwork).items():
        heads = np.asarray(masks["head_mask"])
        if heads.ndim != 3:
            raise ValueError(f"{task}: head masks must be (seeds, layers, heads), got {heads.shape}")
        for seed, mask in zip(masks.get("seeds", plan.seeds), heads):
            frame = _grid_frame({"kept": mask > 0.5})
            frame.insert(0, "seed", seed)
            frame.insert(0, "task", task)
            frames.append(frame)
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame({"task": [], "seed": [], "layer": [], "head": [], "kept": []}))


def load_super(plan, subnetwork: str = "good") -> pd.DataFrame:
    """Super-survivor head masks (kept in every seed) where they exist: (task, layer, head, super)."""
    from lotterylib.run.experiment import super_dir
    from lotterylib.store.masks import load_mask

    plan = _plan(plan)
    frames = []
    for task in plan.tasks:
        stem = super_dir(plan.name, task) / "masks" / subnetwork
        if not (stem.with_suffix(".npz").exists() and stem.with_suffix(".json").exists()):
            continue
        heads = np.asarray(load_mask(stem).arrays["head_mask"])
        frame = _grid_frame({"super": heads > 0.5})
        frame.insert(0, "task", task)
        frames.append(frame)
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame({"task": [], "layer": [], "head": [], "super": []}))


def attach_masks(heads: pd.DataFrame, masks: pd.DataFrame, supers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Add ``kept`` (the seed's good mask; <NA> where the run has none) and ``super`` to a head table."""
    for name, frame, keys in (("masks", masks, ["task", "seed", "layer", "head"]),
                              ("super-survivors", supers, ["task", "layer", "head"])):
        if frame is None or frame.empty or heads.empty:
            continue
        shape_h = heads.groupby("task")[["layer", "head"]].max()
        shape_m = frame.groupby("task")[["layer", "head"]].max()
        common = shape_h.index.intersection(shape_m.index)
        if not shape_h.loc[common].equals(shape_m.loc[common]):
            raise ValueError(f"the {name} and the attention statistics disagree on the number of layers/heads "
                             f"({shape_m.loc[common].to_dict()} vs {shape_h.loc[common].to_dict()}): they come "
                             "from different models; re-run the plan's stages with one model")
    out = heads.copy()
    if not masks.empty and not out.empty:
        out = out.merge(masks.astype({"seed": out["seed"].dtype}), on=["task", "seed", "layer", "head"], how="left")
        out["kept"] = out["kept"].astype("boolean")
    else:
        out["kept"] = pd.array([pd.NA] * len(out), dtype="boolean")
    if supers is not None and not supers.empty and not out.empty:
        out = out.merge(supers, on=["task", "layer", "head"], how="left")
        out["super"] = out["super"].astype("boolean")
    else:
        out["super"] = pd.array([pd.NA] * len(out), dtype="boolean")
    return out


def head_table(plan, rules: PatternRules = DEFAULT_RULES, aggregate: str = "mean",
               subnetwork: str = "good") -> pd.DataFrame:
    """Every head of every run with its type and survival: :func:`load_attention` + ``kept`` + ``super``."""
    return attach_masks(load_attention(plan, rules, aggregate), load_masks(plan, subnetwork),
                        load_super(plan, subnetwork))


# --- gallery of raw maps ------------------------------------------------------------------------------

@dataclass
class Gallery:
    """Raw maps of a plan and their types.

    ``table``: one row per (task, seed, weights, example, layer, head) with ``length``, the statistics of
    :func:`map_stats`, the rules' scores and ``type``; ``maps[(task, seed, weights, example)]`` is
    ``(maps (L, H, T, T), tokens)``; :meth:`map` gives one row's map and tokens.
    """

    table: pd.DataFrame
    maps: dict

    def map(self, row) -> tuple[np.ndarray, list[str]]:
        maps, tokens = self.maps[(row["task"], row["seed"], row["weights"], row["example"])]
        return maps[int(row["layer"]), int(row["head"])], tokens


def read_gallery(path: str | Path) -> list[tuple[str, int, np.ndarray, np.ndarray]]:
    """``finetune/gallery.npz`` -> ``[(weights, i, maps (L, H, T, T), tokens (T,)), ...]``."""
    from lotterylib.store.files import read_npz

    path = Path(path)
    arrays = read_npz(path)
    out = []
    for key in sorted(arrays):
        if not key.endswith("_maps"):
            continue
        weights, _, index = key[: -len("_maps")].rpartition("_")
        token_key = f"{weights}_{index}_tokens"
        if weights not in WEIGHTS or not index.isdigit():
            raise ValueError(f"{path} has an unexpected key {key!r}: gallery keys are <finetuned|pretrained>_<i>_maps "
                             "and _tokens, written by lotterylib.run.experiment.record_attention")
        if token_key not in arrays:
            raise ValueError(f"{path} lacks {token_key!r} for {key!r}: re-run the run's finetune stage to rewrite it")
        maps, tokens = arrays[key], arrays[token_key]
        if maps.ndim != 4 or maps.shape[-1] != maps.shape[-2] or maps.shape[-1] != len(tokens):
            raise ValueError(f"{path}: {key} must be (L, H, T, T) with T = len({token_key}) = {len(tokens)}, "
                             f"got {maps.shape}")
        out.append((weights, int(index), maps, tokens))
    return out


def load_gallery(plan, rules: PatternRules = DEFAULT_RULES, tokenizer=None) -> Gallery:
    """Every gallery map of a plan, typed by the rules; runs without ``gallery.npz`` are skipped.

    Tokens stored as ids are turned into strings with ``tokenizer`` (default: the plan model's tokenizer,
    :func:`lotterylib.model.models.load_tokenizer`, loaded only if needed); tokens stored as strings are used
    as they are, with ``'[SEP]'`` as the separator.
    """
    plan, rules = _plan(plan), _check_rules(rules)
    frames, maps = [], {}
    for task, seed, path in _runs(plan, "gallery.npz"):
        for weights, index, stack, tokens in read_gallery(path):
            sep = "[SEP]"
            if np.issubdtype(tokens.dtype, np.integer):
                if tokenizer is None:
                    from lotterylib.model.models import load_tokenizer
                    tokenizer = load_tokenizer(plan.model)
                words = list(tokenizer.convert_ids_to_tokens([int(t) for t in tokens]))
                sep = tokenizer.sep_token
            else:
                words = [str(t) for t in tokens]
            stats = map_stats(stack, words, sep_token=sep)
            scores = pattern_scores(stats, rules)
            frame = _grid_frame({**stats, **{k: v for k, v in scores.items() if k not in stats}})
            frame["type"] = classify(stats, rules, names=True).ravel()
            for col, value in (("length", len(words)), ("example", index), ("weights", weights), ("seed", seed),
                               ("task", task)):
                frame.insert(0, col, value)
            frames.append(frame)
            maps[(task, seed, weights, index)] = (np.asarray(stack, dtype=np.float32), words)
    columns = ["task", "seed", "weights", "example", "length", "layer", "head", "type"]
    return Gallery(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns), maps)


def gallery_picks(table: pd.DataFrame, per_type: int = 4, seed: int = 0) -> pd.DataFrame:
    """Up to ``per_type`` maps of each type, drawn at random (seeded) rather than the clearest ones: the
    gallery should show what the rules call each type, typical cases included. Draws spread over tasks."""
    rng = np.random.default_rng(seed)
    picks = []
    for kind in TYPES:
        rows = table[table["type"] == kind]
        if rows.empty:
            continue
        order = rng.permutation(len(rows))
        shuffled = rows.iloc[order]
        # round-robin over tasks, so one task does not fill the row
        by_task = [g for _, g in shuffled.groupby("task", sort=True)]
        chosen, i = [], 0
        while len(chosen) < min(per_type, len(rows)):
            group = by_task[i % len(by_task)]
            k = i // len(by_task)
            if k < len(group):
                chosen.append(group.iloc[k])
            i += 1
            if i > per_type * len(by_task) * 2 + len(rows):
                break
        picks += chosen
    return pd.DataFrame(picks).reset_index(drop=True) if picks else table.iloc[:0]


# --- shares and the association with survival ------------------------------------------------------

def _groups(heads: pd.DataFrame) -> dict[str, pd.Series]:
    kept = heads["kept"] if "kept" in heads else pd.Series(pd.NA, index=heads.index, dtype="boolean")
    sup = heads["super"] if "super" in heads else pd.Series(pd.NA, index=heads.index, dtype="boolean")
    return {"all heads": pd.Series(True, index=heads.index),
            "survivors": kept.fillna(False).astype(bool),
            "pruned": (~kept.astype("boolean")).fillna(False).astype(bool),
            "super-survivors": sup.fillna(False).astype(bool)}


def type_shares(heads: pd.DataFrame, by: Sequence[str] = ("task", "weights")) -> pd.DataFrame:
    """Share of each type among all heads, survivors, pruned heads and super-survivors, per ``by`` group.

    Units are (seed, head) pairs pooled over the seeds. ``all heads``: every head of every run with
    attention statistics; ``survivors`` / ``pruned``: heads kept / removed by their seed's good mask (runs
    with a mask only); ``super-survivors``: heads in the task's super-survivor mask, in every seed. Long
    format: ``by...``, ``group``, ``type``, ``count``, ``n``, ``share``; every type appears (count 0 if
    absent), so the shares of a (group, by) sum to 1; groups with no heads are left out.
    """
    by = list(by)
    missing = [c for c in by + ["type"] if c not in heads.columns]
    if missing:
        raise ValueError(f"the head table lacks columns {missing}: build it with lotterylib.read.patterns.head_table")
    type_codes(heads["type"].unique())  # refuses unknown type names
    rows = []
    for group, member in _groups(heads).items():
        sub = heads[member]
        if sub.empty:
            continue
        for key, part in (sub.groupby(by, sort=False) if by else [((), sub)]):
            key = key if isinstance(key, tuple) else (key,)
            counts = part["type"].value_counts()
            for kind in TYPES:
                count = int(counts.get(kind, 0))
                rows.append({**dict(zip(by, key)), "group": group, "type": kind, "count": count,
                             "n": len(part), "share": count / len(part)})
    return pd.DataFrame(rows, columns=by + ["group", "type", "count", "n", "share"])


def share_table(shares: pd.DataFrame, index: Sequence[str] = ("task", "weights", "group")) -> pd.DataFrame:
    """:func:`type_shares` as a wide table: one row per (task, weights, group), one column per type, plus n."""
    index = list(index)
    wide = shares.pivot_table(index=index, columns="type", values="share", sort=False, observed=True)
    wide = wide[[t for t in TYPES if t in wide.columns]]
    wide["n"] = shares.groupby(index, sort=False)["n"].first()
    return wide


def _table2x2(kept: np.ndarray, het: np.ndarray) -> np.ndarray:
    """[[survivor & heterogeneous, survivor & other], [pruned & heterogeneous, pruned & other]]."""
    kept, het = np.asarray(kept, dtype=bool), np.asarray(het, dtype=bool)
    return np.array([[np.sum(kept & het), np.sum(kept & ~het)], [np.sum(~kept & het), np.sum(~kept & ~het)]],
                    dtype=np.int64)


def _informative(table: np.ndarray) -> bool:
    return bool(table.sum(0).all() and table.sum(1).all())


def _cmh(tables: list[np.ndarray]) -> dict:
    """Mantel-Haenszel pooled odds ratio (95% CI) and the Cochran-Mantel-Haenszel test over 2x2 strata.

    Strata where every head survived, every head was pruned, every head is heterogeneous or none is carry no
    information about the association (they add nothing to the statistic or its variance) and are left out.
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    used = [t for t in tables if _informative(t)]
    out = {"strata": len(tables), "informative_strata": len(used), "odds_ratio": np.nan, "ci_low": np.nan,
           "ci_high": np.nan, "p_value": np.nan}
    if not used:
        return out
    n = np.array([t.sum() for t in used], dtype=float)
    r = sum(t[0, 0] * t[1, 1] / m for t, m in zip(used, n))
    s = sum(t[0, 1] * t[1, 0] / m for t, m in zip(used, n))
    strat = StratifiedTable([t.astype(np.float64) for t in used])
    out["p_value"] = float(strat.test_null_odds(correction=True).pvalue)
    if r > 0 and s > 0:
        out["odds_ratio"] = float(strat.oddsratio_pooled)
        low, high = strat.oddsratio_pooled_confint()
        out["ci_low"], out["ci_high"] = float(low), float(high)
    else:
        out["odds_ratio"] = float(np.inf) if s == 0 else 0.0
    return out


def _why_untestable(part: pd.DataFrame) -> str:
    if part.empty:
        return "no run has both attention statistics and a good mask"
    if part["kept"].all():
        return "every head survived"
    if not part["kept"].any():
        return "every head was pruned"
    if part["het"].all():
        return "every head is heterogeneous"
    if not part["het"].any():
        return "no head is heterogeneous"
    return "no seed has survivors and pruned heads of both kinds"


def association(heads: pd.DataFrame, weights: str = "finetuned") -> pd.DataFrame:
    """Is surviving s-pruning (kept in the seed's good mask) associated with being heterogeneous?

    Test: Cochran-Mantel-Haenszel (statsmodels ``StratifiedTable.test_null_odds``, continuity corrected),
    one 2x2 table (survived x heterogeneous) per seed: per task the strata are its seeds, in the pooled
    row every (task, seed). Stratifying keeps seeds and tasks with different survivor counts or type mixes
    from creating an association that no single run shows. The effect is the Mantel-Haenszel common odds
    ratio of being heterogeneous for survivors versus pruned heads (> 1: survivors are more often
    heterogeneous) with its 95% CI. Types are those of ``weights`` (each seed's fine-tuned model by default).

    One row per task with runs that have a mask, plus ``pooled``: ``runs`` ((task, seed) runs with
    attention statistics and a good mask), ``heads`` ((seed, head) pairs),
    ``survivors``, ``pruned``, ``het_survivors`` / ``het_pruned`` (counts), ``het_share_survivors``,
    ``het_share_pruned``, ``het_share_all`` (all heads of the runs with a mask), ``odds_ratio``, ``ci_low``,
    ``ci_high``, ``p_value``, ``informative_strata``, ``test`` (its name) and ``note`` (why a row cannot be
    tested).
    """
    _check_weights(weights)
    needed = [c for c in ("task", "seed", "weights", "type", "kept") if c not in heads.columns]
    if needed:
        raise ValueError(f"the head table lacks columns {needed}: build it with lotterylib.read.patterns.head_table "
                         "(or attach_masks)")
    type_codes(heads["type"].unique())
    data = heads[(heads["weights"] == weights) & heads["kept"].notna()].copy()
    data["kept"] = data["kept"].astype(bool)
    data["het"] = data["type"] == "heterogeneous"
    columns = ["task", "runs", "heads", "survivors", "pruned", "het_survivors", "het_pruned",
               "het_share_survivors", "het_share_pruned", "het_share_all", "odds_ratio", "ci_low", "ci_high",
               "p_value", "informative_strata", "test", "note"]
    rows = []
    parts = [(task, part) for task, part in data.groupby("task", sort=False)] + [("pooled", data)]
    for task, part in parts:
        tables = [_table2x2(g["kept"], g["het"]) for _, g in part.groupby(["task", "seed"], sort=False)]
        result = _cmh(tables) if tables else _cmh([])
        surv, pruned = part[part["kept"]], part[~part["kept"]]
        rows.append({
            "task": task, "runs": part.groupby(["task", "seed"]).ngroups, "heads": len(part),
            "survivors": len(surv), "pruned": len(pruned), "het_survivors": int(surv["het"].sum()),
            "het_pruned": int(pruned["het"].sum()),
            "het_share_survivors": surv["het"].mean() if len(surv) else np.nan,
            "het_share_pruned": pruned["het"].mean() if len(pruned) else np.nan,
            "het_share_all": part["het"].mean() if len(part) else np.nan,
            "odds_ratio": result["odds_ratio"], "ci_low": result["ci_low"], "ci_high": result["ci_high"],
            "p_value": result["p_value"], "informative_strata": result["informative_strata"],
            "test": "Cochran-Mantel-Haenszel, strata = " + ("task x seed" if task == "pooled" else "seeds"),
            "note": "" if result["informative_strata"] else "not testable: " + _why_untestable(part),
        })
    return pd.DataFrame(rows, columns=columns)


def association_by_seed(heads: pd.DataFrame, weights: str = "finetuned") -> pd.DataFrame:
    """Fisher's exact test (two-sided) for each (task, seed) alone: sample odds ratio and p-value."""
    from scipy.stats import fisher_exact

    _check_weights(weights)
    data = heads[(heads["weights"] == weights) & heads["kept"].notna()]
    rows = []
    for (task, seed), g in data.groupby(["task", "seed"], sort=False):
        table = _table2x2(g["kept"].astype(bool), g["type"] == "heterogeneous")
        row = {"task": task, "seed": seed, "survivors": int(table[0].sum()), "pruned": int(table[1].sum()),
               "het_survivors": int(table[0, 0]), "het_pruned": int(table[1, 0]), "odds_ratio": np.nan,
               "p_value": np.nan}
        if _informative(table):
            result = fisher_exact(table)
            row["odds_ratio"], row["p_value"] = float(result.statistic), float(result.pvalue)
        rows.append(row)
    return pd.DataFrame(rows, columns=["task", "seed", "survivors", "pruned", "het_survivors", "het_pruned",
                                       "odds_ratio", "p_value"])


def c10(plan, rules: PatternRules = DEFAULT_RULES, aggregate: str = "mean", weights: str = "finetuned") -> pd.DataFrame:
    """Claim C10 from a plan's result files: :func:`association` of :func:`head_table` (per task + pooled)."""
    return association(head_table(plan, rules, aggregate), weights)


def verdict(row: Mapping, alpha: float = 0.05) -> str:
    """One association row in words: 'not testable', 'no significant association', or the direction."""
    p, odds = row["p_value"], row["odds_ratio"]
    if not np.isfinite(p):
        return "not testable"
    if p >= alpha:
        return "no significant association"
    return "survivors more often heterogeneous" if odds > 1 else "survivors less often heterogeneous"


def c10_summary(plan, alpha: float = 0.05, **kwargs) -> dict:
    """The pooled row of :func:`c10` as a dict, plus ``verdict`` and ``agrees_with_paper`` (the paper reports
    no association: True when the pooled test is not significant at ``alpha``, None when not testable)."""
    return pooled_summary(c10(plan, **kwargs), alpha)


def pooled_summary(table: pd.DataFrame, alpha: float = 0.05) -> dict:
    """:func:`c10_summary` of a table :func:`c10` already computed."""
    pooled = {k: (v.item() if isinstance(v, np.generic) else v)
              for k, v in table[table["task"] == "pooled"].iloc[0].to_dict().items()}
    pooled["verdict"] = verdict(pooled, alpha)
    pooled["agrees_with_paper"] = None if pooled["verdict"] == "not testable" else \
        pooled["verdict"] == "no significant association"
    pooled["alpha"] = alpha
    return pooled


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.0f}%"


def p_text(p: float) -> str:
    """A p-value as text: "0.032", "3.2e-06", or "< 1e-16" where a double cannot tell it from 0."""
    if not np.isfinite(p):
        return "n/a"
    if p < 1e-16:
        return "< 1e-16"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def format_p(p: float) -> str:
    """"p = 0.032" (or "p < 1e-16") for prose."""
    text = p_text(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def association_sentence(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """A sentence on the pooled row of :func:`association` and how many tasks agree, from the numbers."""
    if table.empty or "pooled" not in set(table["task"]) or not table.loc[table["task"] == "pooled", "heads"].iloc[0]:
        return ("The association between survival and heterogeneous patterns cannot be computed: no run has both "
                "attention statistics and an s-pruning mask yet.")
    pooled = table[table["task"] == "pooled"].iloc[0]
    tasks = table[table["task"] != "pooled"]
    verdicts = [verdict(r, alpha) for _, r in tasks.iterrows()]
    what = verdict(pooled, alpha)

    def part(label: str, none: str, count: int, share: float) -> str:
        return none if not count else f"{_pct(share)} of the {count} {label} heads are heterogeneous"

    runs = int(pooled["runs"])
    shares = (f"({runs} run{'s' if runs != 1 else ''}; heads counted once per run), "
              f"{part('surviving', 'no head survived', int(pooled['survivors']), pooled['het_share_survivors'])} and "
              f"{part('pruned', 'no head was pruned', int(pooled['pruned']), pooled['het_share_pruned'])}")
    if what == "not testable":
        why = pooled["note"][len("not testable: "):]
        return (f"Pooled over the tasks {shares}; the association cannot be tested ({why}), "
                "so these results neither support nor contradict the paper's claim (C10) that survivors are not "
                "more often heterogeneous.")
    ci = (f", 95% CI {pooled['ci_low']:.2f} to {pooled['ci_high']:.2f}" if np.isfinite(pooled["ci_low"]) else "")
    effect = f"Mantel-Haenszel odds ratio {pooled['odds_ratio']:.2f}{ci}, CMH {format_p(pooled['p_value'])}"
    n_sig = sum(v.startswith("survivors") for v in verdicts)
    n_test = sum(v != "not testable" for v in verdicts)
    per_task = f" Per task, {n_sig} of {n_test} testable tasks show a significant association at {alpha:g}."
    if what == "no significant association":
        text = (f"Pooled over the tasks {shares} ({effect}): survivors are **not** significantly more (or less) "
                f"often heterogeneous at {alpha:g}, in line with the paper, which reports no association (C10).")
        ci_excludes_one = pooled["ci_low"] > 1 or pooled["ci_high"] < 1
        if np.isfinite(pooled["ci_low"]) and abs(alpha - 0.05) < 1e-12 and ci_excludes_one:
            text += (" The evidence is borderline, though: the 95% CI of the odds ratio (a Wald interval) excludes 1 "
                     "while the continuity-corrected test does not reach 0.05.")
        elif np.isfinite(pooled["ci_low"]):
            text += (f" A test that is not significant does not show that there is no association: the data are "
                     f"compatible with odds ratios from {pooled['ci_low']:.2f} to {pooled['ci_high']:.2f}.")
        return text + per_task
    direction = "more" if what.startswith("survivors more") else "less"
    return (f"Pooled over the tasks {shares} ({effect}): survivors are significantly **{direction}** often "
            f"heterogeneous at {alpha:g}, " + ("unlike the paper, which reports no such association (C10)."
                                               if direction == "more" else
                                               "which the paper does not report (it reports no association, C10).")
            + per_task)


# --- figures ------------------------------------------------------------------------------------------

def plot_type_shares(shares: pd.DataFrame, ncols: int = 3, title: str | None = None):
    """Stacked bars of type shares: one panel per task; bars = groups (all, surv[ivors], pruned, super), the
    fine-tuned model's types ('ft') then the pre-trained model's ('pre'); n = (seed, head) pairs."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    tasks = list(dict.fromkeys(shares["task"]))
    ncols = max(1, min(ncols, len(tasks)))
    nrows = int(np.ceil(len(tasks) / ncols)) if tasks else 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(tasks):]:
        ax.set_visible(False)
    short = {"all heads": "all", "survivors": "surv.", "pruned": "pruned", "super-survivors": "super"}
    for ax, task in zip(axes, tasks):
        sub = shares[shares["task"] == task]
        x, ticks, labels = 0.0, [], []
        for weights in WEIGHTS:
            for group in GROUPS:
                part = sub[(sub["weights"] == weights) & (sub["group"] == group)].set_index("type")
                if part.empty:
                    continue
                bottom = 0.0
                for kind in TYPES:
                    value = float(part.loc[kind, "share"]) if kind in part.index else 0.0
                    ax.bar(x, value, bottom=bottom, color=TYPE_COLORS[kind], width=0.8, edgecolor="white", lw=0.4)
                    bottom += value
                ticks.append(x)
                which = "ft" if weights == "finetuned" else "pre"
                labels.append(f"{which}\n{short[group]}\nn={int(part['n'].iloc[0])}")
                x += 1
            x += 0.6
        ax.set_xticks(ticks, labels, fontsize=6.5)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of heads")
        ax.set_title(task, fontsize=10)
        ax.grid(axis="x", visible=False)
    handles = [Patch(color=TYPE_COLORS[k], label=k) for k in TYPES]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(TYPES), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_gallery(gallery: Gallery, picks: pd.DataFrame, per_type: int = 4, label_max: int = 16):
    """One row per type, up to ``per_type`` maps each; token labels when a map has at most ``label_max``
    tokens. Titles: task, layer/head, weights, seed."""
    import matplotlib.pyplot as plt

    kinds = [k for k in TYPES if k in set(picks["type"])] if len(picks) else []
    if not kinds:
        raise ValueError("no maps to draw: the picks are empty (see lotterylib.read.patterns.gallery_picks)")
    fig, axes = plt.subplots(len(kinds), per_type, figsize=(2.6 * per_type, 2.75 * len(kinds)), squeeze=False)
    for r, kind in enumerate(kinds):
        rows = picks[picks["type"] == kind]
        for c in range(per_type):
            ax = axes[r, c]
            ax.grid(False)
            if c >= len(rows):
                ax.set_axis_off()
                if c == len(rows):
                    ax.text(0.5, 0.5, f"only {len(rows)} map(s)\nof this type", ha="center", va="center",
                            fontsize=8, color="grey", transform=ax.transAxes)
                continue
            row = rows.iloc[c]
            attention, tokens = gallery.map(row)
            ax.imshow(attention, cmap="Blues", vmin=0, vmax=max(float(attention.max()), 1e-6),
                      interpolation="nearest")
            if len(tokens) <= label_max:
                ticks = np.arange(len(tokens))
                ax.set_xticks(ticks, tokens, rotation=90, fontsize=5.5)
                ax.set_yticks(ticks, tokens, fontsize=5.5)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
            ax.set_title(f"{row['task']} L{int(row['layer'])} H{int(row['head'])} "
                         f"({'ft' if row['weights'] == 'finetuned' else 'pre'}, seed {row['seed']})\n{kind}",
                         fontsize=7.5)
    return fig

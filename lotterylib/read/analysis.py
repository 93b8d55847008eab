"""The paper's mask analyses: survival, stability across seeds, overlap across tasks, importance.

Works on any mask size: our 6 x 12 MiniLM masks, the authors' 12 x 12 bert-base masks, 2 x 4 test masks.
Conventions: 1 = kept, 0 = pruned. A single head mask is (n_layers, n_heads), an MLP mask (n_layers,);
a stack over seeds adds a leading seed axis: (n_seeds, n_layers, n_heads), (n_seeds, n_layers).
"Components" are the flattened units of one seed's mask(s): heads, MLPs, or both (:func:`components`).

Stability statistics (paper section 5.1): subjects are components, raters/treatments are seeds.
Fleiss' kappa comes from ``statsmodels.stats.inter_rater.fleiss_kappa`` and Cochran's Q from
``statsmodels.stats.contingency_tables.cochrans_q``. Degenerate inputs are handled, not crashed on:

- kappa is nan when every component of every seed falls in one category (all kept or all pruned):
  chance agreement is then 1 and kappa is 0/0;
- Cochran's Q is statistic 0.0, p-value 1.0 when no component differs between seeds (e.g. identical
  masks): no evidence that the seeds keep different proportions (statsmodels would return 0/0 = nan).

Note that Cochran's Q tests only whether seeds keep the same *proportion* of components (marginal
homogeneity); two seeds keeping equally many but entirely different components count as "similar".
"""

from __future__ import annotations

import hashlib
from itertools import combinations
from typing import NamedTuple

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import cochrans_q
from statsmodels.stats.inter_rater import fleiss_kappa


OVERLAP_KINDS = ("count", "jaccard", "min")


class CochranQResult(NamedTuple):
    """Cochran's Q over seeds: chi-square statistic, its p-value and degrees of freedom (n_seeds - 1)."""

    statistic: float
    pvalue: float
    df: int


# --- validation -------------------------------------------------------------------------------

def _to_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be a numeric array of 0/1 values, got dtype {arr.dtype}")
    return arr


def _binary(x, name: str = "mask") -> np.ndarray:
    """``x`` as a bool array (True = kept), after checking it only holds 0 and 1."""
    arr = _to_numpy(x, name)
    if arr.size and not np.isin(arr, (0, 1)).all():
        bad = np.unique(arr[~np.isin(arr, (0, 1))])[:5]
        raise ValueError(f"{name} must hold only 0 (pruned) and 1 (kept), found {bad.tolist()}: "
                         "binarise scores first, e.g. (scores > threshold).astype(float)")
    return arr.astype(bool)


def _stack(masks, name: str = "masks", min_seeds: int = 1) -> np.ndarray:
    """Validated bool stack of shape (n_seeds, ...) with at least one axis after the seed axis."""
    arr = _binary(masks, name)
    if arr.ndim < 2:
        raise ValueError(f"{name} has shape {arr.shape}; expected a stack over seeds (n_seeds, ...) with "
                         "n_seeds first: stack masks with np.stack, or add a seed axis with mask[None]")
    if arr.shape[0] < min_seeds:
        raise ValueError(f"{name} has {arr.shape[0]} seed(s) on axis 0; this statistic needs at least "
                         f"{min_seeds}: stack masks from more seeds")
    if arr[0].size == 0:
        raise ValueError(f"{name} has shape {arr.shape}: no components to analyse")
    return arr


def _flat(masks, name: str = "masks", min_seeds: int = 1) -> np.ndarray:
    """Bool (n_seeds, n_components)."""
    arr = _stack(masks, name, min_seeds)
    return arr.reshape(arr.shape[0], -1)


# --- survival ---------------------------------------------------------------------------------

def components(head_masks, mlp_masks=None) -> np.ndarray:
    """Flatten stacked head masks (n_seeds, L, H) and optional MLP masks (n_seeds, L) to (n_seeds, L*H [+ L]).

    Heads come first (layer-major), then MLPs. Returns float32 0/1.
    """
    heads = _stack(head_masks, "head_masks")
    if heads.ndim != 3:
        raise ValueError(f"head_masks has shape {heads.shape}; expected (n_seeds, n_layers, n_heads): "
                         "add a seed axis with mask[None] for a single mask")
    parts = [heads.reshape(heads.shape[0], -1)]
    if mlp_masks is not None:
        mlps = _stack(mlp_masks, "mlp_masks")
        if mlps.shape != heads.shape[:2]:
            raise ValueError(f"mlp_masks has shape {mlps.shape}, expected {heads.shape[:2]} "
                             "(n_seeds, n_layers) to match head_masks")
        parts.append(mlps)
    return np.concatenate(parts, axis=1).astype(np.float32)


def survival_frequency(masks) -> tuple[np.ndarray, np.ndarray]:
    """Share of seeds keeping each component. masks (n_seeds, ...) -> (mean, std), each of shape (...).

    std is the sample std (ddof=1) over seeds, 0 for a single seed.
    """
    arr = _stack(masks).astype(np.float64)
    mean = arr.mean(axis=0)
    std = arr.std(axis=0, ddof=1) if arr.shape[0] > 1 else np.zeros_like(mean)
    return mean, std


def super_survivors(masks) -> np.ndarray:
    """Components kept in every seed. masks (n_seeds, ...) -> float32 0/1 of shape (...)."""
    return _stack(masks).all(axis=0).astype(np.float32)


def super_pruned(masks) -> np.ndarray:
    """Components pruned in every seed. masks (n_seeds, ...) -> float32 0/1 of shape (...)."""
    return (~_stack(masks)).all(axis=0).astype(np.float32)


def share_per_layer(head_masks) -> np.ndarray:
    """Kept share of heads per layer: (L, H) or stacked (n_seeds, L, H) -> (L,), averaged over seeds."""
    arr = _binary(head_masks, "head_masks")
    if arr.ndim not in (2, 3):
        raise ValueError(f"head_masks has shape {arr.shape}; expected (n_layers, n_heads) or "
                         "(n_seeds, n_layers, n_heads)")
    if arr.ndim == 2:
        arr = arr[None]
    return arr.mean(axis=(0, 2))


def kept_counts(head_mask, mlp_mask=None) -> dict:
    """Counts of one seed's mask: head_mask (L, H), mlp_mask (L,) or None.

    Keys: heads_kept, heads_total, heads_share, mlps_kept, mlps_total, mlps_share, components_kept,
    components_total, components_share (MLP keys are None without an MLP mask).
    """
    heads = _binary(head_mask, "head_mask")
    if heads.ndim != 2:
        raise ValueError(f"head_mask has shape {heads.shape}; expected one seed's (n_layers, n_heads): "
                         "loop over the seed axis, or use survival_frequency for stacks")
    out = {"heads_kept": int(heads.sum()), "heads_total": int(heads.size),
           "mlps_kept": None, "mlps_total": None, "mlps_share": None}
    out["heads_share"] = out["heads_kept"] / out["heads_total"]
    kept, total = out["heads_kept"], out["heads_total"]
    if mlp_mask is not None:
        mlps = _binary(mlp_mask, "mlp_mask")
        if mlps.shape != heads.shape[:1]:
            raise ValueError(f"mlp_mask has shape {mlps.shape}, expected ({heads.shape[0]},) "
                             "(n_layers,) to match head_mask")
        out.update(mlps_kept=int(mlps.sum()), mlps_total=int(mlps.size))
        out["mlps_share"] = out["mlps_kept"] / out["mlps_total"]
        kept, total = kept + out["mlps_kept"], total + out["mlps_total"]
    out.update(components_kept=kept, components_total=total, components_share=kept / total)
    return out


# --- stability across seeds -------------------------------------------------------------------

def _kappa(flat: np.ndarray) -> float:
    """Fleiss' kappa of bool (n_raters, n_subjects), 2 categories; nan if only one category occurs."""
    kept = flat.sum(axis=0)
    table = np.column_stack([flat.shape[0] - kept, kept])  # (n_subjects, [pruned, kept])
    if (table.sum(axis=0) == 0).any():
        return float("nan")
    return float(fleiss_kappa(table, method="fleiss"))


def fleiss_kappa_over_seeds(masks) -> float:
    """Fleiss' kappa: subjects = components, raters = seeds, categories kept/pruned.

    masks (n_seeds >= 2, ...): all axes after the seed axis are flattened (use :func:`components` to
    pool heads and MLPs). nan when every rating is the same category.
    """
    return _kappa(_flat(masks, min_seeds=2))


def _cochran(flat: np.ndarray) -> CochranQResult:
    """Cochran's Q of bool (n_treatments, n_subjects)."""
    df = flat.shape[0] - 1
    if not (flat.any(axis=0) & ~flat.all(axis=0)).any():  # no component differs between seeds
        return CochranQResult(0.0, 1.0, df)
    res = cochrans_q(flat.T.astype(np.float64))
    return CochranQResult(float(res.statistic), float(res.pvalue), int(res.df))


def cochrans_q_over_seeds(masks) -> CochranQResult:
    """Cochran's Q: subjects = components, treatments = seeds. masks (n_seeds >= 2, ...).

    Tests whether all seeds keep the same proportion of components. Identical masks -> (0.0, 1.0, df).
    """
    return _cochran(_flat(masks, min_seeds=2))


def pairwise_seed_tests(masks, seeds=None, alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of seeds: Cochran's Q (= McNemar without continuity correction), Jaccard, kappa.

    masks (n_seeds >= 2, ...); seeds labels the seed axis (default 0..n_seeds-1).
    Columns: seed_a, seed_b, q, pvalue, similar (pvalue > alpha), jaccard (of the survivors), kappa
    (Fleiss, the two seeds as raters). One row per pair, in combinations order.
    """
    flat = _flat(masks, min_seeds=2)
    seeds = list(range(flat.shape[0])) if seeds is None else list(seeds)
    if len(seeds) != flat.shape[0]:
        raise ValueError(f"seeds has {len(seeds)} labels but masks has {flat.shape[0]} seeds on axis 0: "
                         "pass one label per seed")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    rows = []
    for i, j in combinations(range(flat.shape[0]), 2):
        pair = flat[[i, j]]
        q = _cochran(pair)
        rows.append({"seed_a": seeds[i], "seed_b": seeds[j], "q": q.statistic, "pvalue": q.pvalue,
                     "similar": q.pvalue > alpha, "jaccard": overlap(pair[0], pair[1], "jaccard"),
                     "kappa": _kappa(pair)})
    return pd.DataFrame(rows, columns=["seed_a", "seed_b", "q", "pvalue", "similar", "jaccard", "kappa"])


def similar_pairs_summary(pairs: pd.DataFrame) -> dict:
    """Summary of :func:`pairwise_seed_tests`: n_pairs, n_similar, share_similar, mean_jaccard, mean_kappa."""
    missing = {"similar", "jaccard", "kappa"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs lacks columns {sorted(missing)}: pass the frame from pairwise_seed_tests")
    n = len(pairs)
    n_similar = int(pairs["similar"].sum())
    return {"n_pairs": n, "n_similar": n_similar, "share_similar": n_similar / n if n else float("nan"),
            "mean_jaccard": float(pairs["jaccard"].mean()), "mean_kappa": float(pairs["kappa"].mean())}


# --- overlap across tasks ---------------------------------------------------------------------

def _check_kind(kind: str) -> None:
    if kind not in OVERLAP_KINDS:
        raise ValueError(f"overlap kind {kind!r} is unknown: use one of {OVERLAP_KINDS}")


def _overlap_counts(both: np.ndarray, k_a, k_b, kind: str):
    """Overlap from counts (arrays broadcast): kept in both, kept in a, kept in b."""
    both = np.asarray(both, dtype=np.float64)
    if kind == "count":
        return both
    denom = (np.asarray(k_a) + np.asarray(k_b) - both) if kind == "jaccard" else np.minimum(k_a, k_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, both / np.where(denom > 0, denom, 1), np.nan)


def overlap(mask_a, mask_b, kind: str = "count") -> float:
    """Overlap of two masks of the same shape (any shape).

    'count': components kept in both; 'jaccard': |a & b| / |a | b| (nan if neither keeps anything);
    'min': |a & b| / min(|a|, |b|) (nan if either keeps nothing).
    """
    _check_kind(kind)
    a, b = _binary(mask_a, "mask_a"), _binary(mask_b, "mask_b")
    if a.shape != b.shape:
        raise ValueError(f"mask_a has shape {a.shape} but mask_b has {b.shape}: compare masks of one model")
    return float(_overlap_counts((a & b).sum(), a.sum(), b.sum(), kind))


def _task_stacks(masks_by_task: dict) -> dict[str, np.ndarray]:
    """Validate {task: (n_seeds, ...)}: same shape for every task. Returns bool (n_seeds, n_components)."""
    if not masks_by_task:
        raise ValueError("masks_by_task is empty: pass {task: masks of shape (n_seeds, ...)}")
    flat = {task: _flat(m, f"masks_by_task[{task!r}]") for task, m in masks_by_task.items()}
    shapes = {task: np.shape(masks_by_task[task]) for task in flat}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"tasks have different mask shapes {shapes}: every task needs the same seeds "
                         "(same order) and the same model")
    return flat


def _sample_std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def overlap_matrix(masks_by_task: dict, kind: str = "count") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Task x task overlap, pairing the same seed index. {task: (n_seeds, ...)} -> (mean, std) DataFrames.

    Mean and sample std (ddof=1; 0 for one seed) over seeds; rows/columns in the dict's order.
    """
    _check_kind(kind)
    flat = _task_stacks(masks_by_task)
    tasks = list(flat)
    mean = pd.DataFrame(np.nan, index=tasks, columns=tasks)
    std = mean.copy()
    for t1 in tasks:
        for t2 in tasks:
            a, b = flat[t1], flat[t2]
            vals = _overlap_counts((a & b).sum(axis=1), a.sum(axis=1), b.sum(axis=1), kind)
            mean.loc[t1, t2], std.loc[t1, t2] = float(np.mean(vals)), _sample_std(vals)
    return mean, std


def _null_draws(k_a: int, k_b: int, n: int, n_perm: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    """Overlap of k_a and k_b survivors placed uniformly at random among n components: (n_perm,)."""
    rank_a = rng.random((n_perm, n)).argsort(axis=1)
    rank_b = rng.random((n_perm, n)).argsort(axis=1)
    both = ((rank_a < k_a) & (rank_b < k_b)).sum(axis=1)
    return _overlap_counts(both, k_a, k_b, kind)


def _check_n_perm(n_perm: int) -> None:
    if isinstance(n_perm, bool) or not isinstance(n_perm, (int, np.integer)) or n_perm < 1:
        raise ValueError(f"n_perm must be a positive integer, got {n_perm!r}")


def overlap_null(mask_a, mask_b, n_perm: int = 1000, seed: int = 0, kind: str = "count") -> tuple[float, float]:
    """Chance overlap: each mask's survivors re-placed at random (same counts). -> (mean, 95th percentile).

    For 'count' the mean approaches k_a * k_b / n. Deterministic for a given seed.
    """
    _check_kind(kind)
    _check_n_perm(n_perm)
    a, b = _binary(mask_a, "mask_a"), _binary(mask_b, "mask_b")
    if a.shape != b.shape:
        raise ValueError(f"mask_a has shape {a.shape} but mask_b has {b.shape}: compare masks of one model")
    draws = _null_draws(int(a.sum()), int(b.sum()), a.size, n_perm, np.random.default_rng(seed), kind)
    return float(np.nanmean(draws)), float(np.nanpercentile(draws, 95))


def pair_key(task_a: str, task_b: str) -> tuple[int, ...]:
    """Four 32-bit words from SHA-256 of the two task names (in the order given): the entropy that keys a task
    pair's chance draws (never Python's ``hash``, which changes between runs).

    >>> pair_key("CoLA", "RTE") == pair_key("CoLA", "RTE") != pair_key("RTE", "CoLA")
    True
    """
    digest = hashlib.sha256(f"{task_a}\0{task_b}".encode()).digest()
    return tuple(int.from_bytes(digest[k:k + 4], "little") for k in range(0, 16, 4))


def overlap_null_matrix(masks_by_task: dict, n_perm: int = 1000, seed: int = 0,
                        kind: str = "count") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Chance level for :func:`overlap_matrix`. {task: (n_seeds, ...)} -> (mean, 95th percentile) DataFrames.

    Each permutation re-places every seed's survivors at random (same counts) and averages the overlap
    over seed indices, as overlap_matrix does; the null of that seed-mean gives the mean and the 95th
    percentile. Deterministic for a given seed; rows/columns in the dict's order. A pair's draws are keyed by
    ``seed`` and the two task names (:func:`pair_key`), not by their positions: the same pair gets the same
    chance level whichever other tasks a page shows and in whatever order.
    """
    _check_kind(kind)
    _check_n_perm(n_perm)
    flat = _task_stacks(masks_by_task)
    tasks = list(flat)
    mean = pd.DataFrame(np.nan, index=tasks, columns=tasks)
    p95 = mean.copy()
    for i, t1 in enumerate(tasks):
        for j, t2 in enumerate(tasks):
            if j < i:
                mean.loc[t1, t2], p95.loc[t1, t2] = mean.loc[t2, t1], p95.loc[t2, t1]
                continue
            first, second = sorted((str(t1), str(t2)))
            rng = np.random.default_rng([seed, *pair_key(first, second)])
            a, b = (flat[t1], flat[t2]) if first == str(t1) else (flat[t2], flat[t1])
            draws = np.mean([_null_draws(int(a[s].sum()), int(b[s].sum()), a.shape[1], n_perm, rng, kind)
                             for s in range(a.shape[0])], axis=0)
            mean.loc[t1, t2], p95.loc[t1, t2] = float(np.nanmean(draws)), float(np.nanpercentile(draws, 95))
    return mean, p95


# --- early / middle / late layers ---------------------------------------------------------------------------

LAYER_GROUPS: tuple[str, ...] = ("early", "middle", "late")


def layer_groups(n_layers: int) -> np.ndarray:
    """The third of the depth each layer belongs to (the one definition of "early / middle / late layers", used by
    the C7 rule and every page): layer ``i`` of ``n`` is in third ``floor(3 i / n)``.

    >>> layer_groups(6).tolist()
    ['early', 'early', 'middle', 'middle', 'late', 'late']
    """
    n_layers = int(n_layers)
    if n_layers < 1:
        raise ValueError(f"n_layers must be at least 1, got {n_layers}")
    return np.array(LAYER_GROUPS)[np.minimum((np.arange(n_layers) * 3) // n_layers, 2)]


def layer_group(layer: int, n_layers: int) -> str:
    """``"early"``, ``"middle"`` or ``"late"`` for layer ``layer`` (0-based) of ``n_layers``.

    >>> layer_group(0, 12), layer_group(4, 12), layer_group(11, 12)
    ('early', 'middle', 'late')
    """
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer {layer} is not one of the {n_layers} layers (0-based)")
    return str(layer_groups(n_layers)[layer])


# --- m-pruning and importance -----------------------------------------------------------------

def importance_histogram(scores, bins: int = 10, range: tuple[float, float] | None = (0.0, 1.0)):
    """Histogram of normalised importance scores (paper Fig. 3): any shape -> (counts (bins,), edges (bins+1,)).

    With the default range (0, 1), scores outside it raise (normalise first, or pass range=None).
    """
    arr = _to_numpy(scores, "scores").astype(np.float64).ravel()
    if not np.isfinite(arr).all():
        raise ValueError(f"scores contain {int((~np.isfinite(arr)).sum())} nan/inf values: drop them first")
    if range is not None:
        lo, hi = range
        outside = int(((arr < lo) | (arr > hi)).sum())
        if outside:
            raise ValueError(f"{outside} scores lie outside range={range}: normalise them (the authors used "
                             "min-max to [0, 1]) or pass range=None to use the data's range")
    return np.histogram(arr, bins=bins, range=range)

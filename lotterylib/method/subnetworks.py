"""Good, random and bad subnetworks (METHOD.md section 7).

One selection rule serves every variant: keep the ``k`` components with the highest score.
Good m-pruning scores weights by magnitude, bad by negative magnitude, random by a seeded uniform
draw: good/random/bad is a choice of scorer, not three code paths. The s-pruning "bad" mask is the
exception the paper defines: every component the good mask pruned, topped up or subsampled at
random to the good size.

Every random draw has its own stream (:mod:`lotterylib.method.seeding`), keyed by the run's seed, the task,
the method, the variant and a draw index (0: heads or weights, 1: MLPs): the same inputs give the
same masks, and no two tasks, methods or variants share noise.
"""

from __future__ import annotations

import math
import numbers
from typing import Mapping

import numpy as np

from lotterylib.errors import ConfigError, MaskError
from lotterylib.method.seeding import rng_for

SUBNETWORKS = ("good", "random", "bad")
# How super-survivor random and bad variants are sized (METHOD.md section 7).
SUPER_RESIZE = ("matched", "authors")


def _check_size(name: str, value, total: int, what: str) -> int:
    """A component count: an integer in [0, total]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value <= total:
        raise ConfigError(f"{name}: cannot keep or prune {value!r} of {total} {what} (got {value!r}); use an "
                          f"integer in [0, {total}]")
    return int(value)


def _check_kind(kind: str, allowed: tuple[str, ...], what: str) -> None:
    if kind not in allowed:
        raise ConfigError(f"{what} must be one of {allowed}, got {kind!r}; use one of {list(allowed)}")


def keep_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of ``scores``' shape keeping the ``k`` highest (ties: lower index first).

    >>> keep_top_k(np.array([0.5, 0.1, 0.9, 0.5]), 2).tolist()
    [True, False, True, False]
    """
    flat = np.asarray(scores).ravel()
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k <= flat.size:
        raise ConfigError(f"k: cannot keep {k!r} of {flat.size} components (got {k!r}); use an integer in "
                          f"[0, {flat.size}]")
    order = np.argsort(-flat, kind="stable")
    keep = np.zeros(flat.size, dtype=bool)
    keep[order[:k]] = True
    return keep.reshape(np.shape(scores))


def _check_binary(mask: np.ndarray, what: str) -> np.ndarray:
    mask = np.asarray(mask)
    if not np.isin(mask, (0, 1)).all():
        raise MaskError(f"{what} must hold only 0 (pruned) and 1 (kept) (got values "
                        f"{np.unique(mask[~np.isin(mask, (0, 1))])[:3].tolist()}); pass a binary mask")
    return mask.astype(bool)


# --- s-pruning (heads and MLPs) ----------------------------------------------------------------

def random_like(good: np.ndarray, rng: np.random.Generator, bernoulli: bool = False) -> np.ndarray:
    """Uniformly random mask with exactly the good mask's number of kept components.

    ``bernoulli=True`` is the authors' variant: each component kept with p = kept / total, so
    the size matches only on average.
    """
    good = _check_binary(good, "good mask")
    if bernoulli:
        return (rng.random(good.shape) < good.mean()).astype(np.float32)
    return keep_top_k(rng.random(good.shape), int(good.sum())).astype(np.float32)


def bad_like(good: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every component the good mask pruned, topped up with random survivors to the good size.

    When pruned components outnumber the good size, a random sample of them.
    """
    good = _check_binary(good, "good mask")
    k = int(good.sum())
    noise = rng.random(good.shape)  # (0, 1): ranks within each group
    # pruned components first (score 1 + noise), then survivors (noise); keep the top k
    return keep_top_k(np.where(good, noise, 1.0 + noise), k).astype(np.float32)


def structured_subnetwork(
    kind: str, head_mask: np.ndarray, mlp_mask: np.ndarray, seed: int, task: str, method: str = "s",
    bernoulli: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``(head_mask, mlp_mask)`` of the good, random or bad s-pruning subnetwork of one run.

    Heads and MLPs are drawn separately, each of exactly the good count, each from its own stream
    keyed by ``(seed, task, method, kind, 0 for heads / 1 for MLPs)``.
    """
    _check_kind(kind, SUBNETWORKS, "subnetwork")
    head_mask = np.asarray(head_mask, dtype=np.float32)
    mlp_mask = np.asarray(mlp_mask, dtype=np.float32)
    if kind == "good":
        return _check_binary(head_mask, "good head mask").astype(np.float32), \
            _check_binary(mlp_mask, "good MLP mask").astype(np.float32)
    heads_rng, mlps_rng = (rng_for(seed, task, method, kind, draw) for draw in (0, 1))
    if kind == "random":
        return random_like(head_mask, heads_rng, bernoulli), random_like(mlp_mask, mlps_rng, bernoulli)
    return bad_like(head_mask, heads_rng), bad_like(mlp_mask, mlps_rng)


def super_survivor_masks(
    head_masks: np.ndarray, mlp_masks: np.ndarray, seed: int, task: str, resize: str = "matched",
) -> dict[str, tuple]:
    """Super-survivor variants from good masks stacked over seeds, (S, L, H) and (S, L).

    ``good``: kept in every seed. With ``resize="matched"`` (default, METHOD.md section 7) random and
    bad keep exactly the good number of heads and of MLPs: random draws that many uniformly; bad
    draws them from the components pruned in every seed, topped up at random from the rest when
    that pool is smaller. ``resize="authors"`` is the authors' resizing: bad ("bizzaro") samples the
    pool pruned in every seed and random ("midling") the pool neither always kept nor always pruned,
    each at most the good size and never topped up, so both can be smaller than good.
    Each draw has its own stream, keyed by ``(seed, task, "super", variant, part)``.
    """
    _check_kind(resize, SUPER_RESIZE, "super-survivor resize")
    stacks = [_check_binary(head_masks, "stacked head masks"), _check_binary(mlp_masks, "stacked MLP masks")]
    out: dict[str, tuple] = {"good": tuple(stack.all(0).astype(np.float32) for stack in stacks)}
    for name in ("random", "bad"):
        parts = []
        for draw, stack in enumerate(stacks):
            size = int(stack.all(0).sum())
            noise = rng_for(seed, task, "super", name, draw).random(stack.shape[1:])
            if resize == "matched":
                if name == "random":
                    scores = noise
                else:  # pruned in every seed first, then the rest, each in random order
                    scores = np.where(~stack.any(0), 1.0 + noise, noise)
                parts.append(keep_top_k(scores, size).astype(np.float32))
            else:
                pool = ~stack.any(0) if name == "bad" else stack.any(0) & ~stack.all(0)
                scores = np.where(pool, 1.0 + noise, 0.0)
                parts.append(keep_top_k(scores, min(size, int(pool.sum()))).astype(np.float32))
        out[name] = tuple(parts)
    return out


def structured_weight_count(structure, head_mask: np.ndarray, mlp_mask: np.ndarray) -> tuple[int, int]:
    """``(kept, total)`` m-prunable weights inside the kept heads and MLPs.

    One size unit for both methods: a head owns its rows of Q, K, V (weights and biases) and its
    columns of the attention output weight; the attention output bias stays while any head of
    its layer does; an MLP owns the intermediate weight and bias and the output weight.
    """
    hidden, d, ffn = structure.hidden_size, structure.head_dim, structure.intermediate_size
    head_mask, mlp_mask = np.asarray(head_mask) > 0, np.asarray(mlp_mask) > 0
    per_head = 3 * (d * hidden + d) + hidden * d
    per_mlp = ffn * hidden + ffn + hidden * ffn
    kept = (per_head * int(head_mask.sum()) + hidden * int(head_mask.any(axis=-1).sum())
            + per_mlp * int(mlp_mask.sum()))
    total = structure.n_layers * (per_head * structure.n_heads + hidden + per_mlp)
    return kept, total


# --- m-pruning (weights) ------------------------------------------------------------------------

def _flatten(tensors: Mapping[str, np.ndarray]) -> tuple[np.ndarray, list[tuple[str, tuple]]]:
    layout = [(name, tuple(np.shape(t))) for name, t in tensors.items()]
    return np.concatenate([np.asarray(t).ravel() for t in tensors.values()]), layout


def _unflatten(flat: np.ndarray, layout: list[tuple[str, tuple]]) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for name, shape in layout:
        size = int(np.prod(shape))
        out[name] = flat[start:start + size].reshape(shape)
        start += size
    return out


def magnitude_order(weights: Mapping[str, np.ndarray]) -> np.ndarray:
    """Flat indices of all prunable weights from smallest to largest magnitude (stable)."""
    flat, _ = _flatten(weights)
    return np.argsort(np.abs(flat), kind="stable")


def weight_mask_keeping(weights: Mapping[str, np.ndarray], order: np.ndarray, n_pruned: int) -> dict:
    """Weight masks pruning the first ``n_pruned`` entries of ``order`` (global, flat indices)."""
    layout = [(name, tuple(np.shape(w))) for name, w in weights.items()]
    total = sum(int(np.prod(shape)) for _, shape in layout)
    n_pruned = _check_size("n_pruned", n_pruned, min(total, len(order)), "weights (the length of order)")
    keep = np.ones(total, dtype=bool)
    keep[order[:n_pruned]] = False
    return _unflatten(keep, layout)


def random_weight_mask(shapes: Mapping[str, tuple], n_kept: int, rng: np.random.Generator) -> dict:
    """Weight masks keeping ``n_kept`` weights uniformly at random over all tensors (global, flat)."""
    layout = [(name, tuple(shape)) for name, shape in shapes.items()]
    total = sum(int(np.prod(shape)) for _, shape in layout)
    n_kept = _check_size("n_kept", n_kept, total, "weights")
    return _unflatten(keep_top_k(rng.random(total), n_kept), layout)


def weight_subnetwork(
    kind: str, good: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray], seed: int, task: str,
    method: str = "m",
) -> dict[str, np.ndarray]:
    """Good, random or bad m-pruning masks with exactly the good number of kept weights.

    random: uniform over all prunable weights, from the stream ``(seed, task, method, "random", 0)``
    (it needs only the good mask's size: :func:`random_weight_mask`); bad: keeps the
    smallest-magnitude weights (the authors' inverted L1), no randomness.
    """
    _check_kind(kind, SUBNETWORKS, "subnetwork")
    if set(good) != set(weights):
        raise MaskError(f"good: the mask and weights name different tensors (got {len(set(good) ^ set(weights))} "
                        "names in one only); use the same model's prunable set")
    if kind == "good":
        return {k: _check_binary(v, f"good weight mask {k}").copy() for k, v in good.items()}
    flat_good, layout = _flatten({k: _check_binary(good[k], f"good weight mask {k}") for k in weights})
    k = int(flat_good.sum())
    if kind == "random":
        return random_weight_mask(dict(layout), k, rng_for(seed, task, method, "random", 0))
    scores = -np.abs(_flatten({k2: weights[k2] for k2 in weights})[0])
    return _unflatten(keep_top_k(scores, k), layout)


# --- beyond the paper (METHOD.md section 10) ----------------------------------------------------

LOTTERY_EXPERIMENT = "lottery"
SWAP_VARIANTS = ("good_heads_random_mlps", "random_heads_good_mlps")


def heads_removed_mask(kind: str, head_scores: np.ndarray, fraction: float, seed: int, task: str) -> np.ndarray:
    """Head mask removing ``round(fraction x all heads)`` heads in one shot, by the full model's importance.

    good: the least important go; bad: the most important go; random: uniformly, from the stream
    ``(seed, task, "lottery", "random", 0)``. Ties in the scores break by the lower index.
    """
    _check_kind(kind, SUBNETWORKS, "lottery variant")
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not (
            math.isfinite(fraction) and 0 < fraction < 1):
        raise ConfigError(f"fraction: head fraction must lie strictly between 0 and 1, got {fraction!r}; pass a "
                          "share of heads to remove such as 0.5")
    scores = np.asarray(head_scores, dtype=np.float64)
    if scores.size == 0 or not np.isfinite(scores).all():
        raise ConfigError(f"head_scores: head importance scores are empty or hold NaN or inf (got shape "
                          f"{scores.shape}); recompute them")
    n_keep = scores.size - int(round(fraction * scores.size))
    if kind == "good":
        keep = keep_top_k(scores, n_keep)
    elif kind == "bad":
        keep = keep_top_k(-scores, n_keep)
    else:
        keep = keep_top_k(rng_for(seed, task, LOTTERY_EXPERIMENT, "random", 0).random(scores.shape), n_keep)
    return keep.astype(np.float32)


def swap_subnetwork(
    kind: str, head_mask: np.ndarray, mlp_mask: np.ndarray, seed: int, task: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The component swap of a good s-mask: ``good_heads_random_mlps`` keeps the good heads and a random MLP
    set of the good MLP count; ``random_heads_good_mlps`` keeps random heads (the good head count) and the
    good MLPs. The random part has its own stream ``(seed, task, "swap", kind, 0 heads / 1 MLPs)``."""
    _check_kind(kind, SWAP_VARIANTS, "swap variant")
    head = _check_binary(head_mask, "good head mask").astype(np.float32)
    mlp = _check_binary(mlp_mask, "good MLP mask").astype(np.float32)
    if kind == "good_heads_random_mlps":
        return head, random_like(mlp, rng_for(seed, task, "swap", kind, 1))
    return random_like(head, rng_for(seed, task, "swap", kind, 0)), mlp

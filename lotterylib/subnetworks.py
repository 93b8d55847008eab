"""Good, random and bad subnetworks (METHOD.md section 7).

One selection rule serves every variant: keep the ``k`` components with the highest score.
Good m-pruning scores weights by magnitude, bad by negative magnitude, random by a seeded uniform
draw: good/random/bad is a choice of scorer, not three code paths. The s-pruning "bad" mask is the
exception the paper defines: every component the good mask pruned, topped up or subsampled at
random to the good size.

All randomness comes from ``numpy.random.default_rng(seed)``: the same inputs give the same masks.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

SUBNETWORKS = ("good", "random", "bad")


def keep_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of ``scores``' shape keeping the ``k`` highest (ties: lower index first).

    >>> keep_top_k(np.array([0.5, 0.1, 0.9, 0.5]), 2).tolist()
    [True, False, True, False]
    """
    flat = np.asarray(scores).ravel()
    if not 0 <= k <= flat.size:
        raise ValueError(f"cannot keep {k} of {flat.size} components")
    order = np.argsort(-flat, kind="stable")
    keep = np.zeros(flat.size, dtype=bool)
    keep[order[:k]] = True
    return keep.reshape(np.shape(scores))


def _check_binary(mask: np.ndarray, what: str) -> np.ndarray:
    mask = np.asarray(mask)
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(f"{what} must hold only 0 (pruned) and 1 (kept)")
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
    kind: str, head_mask: np.ndarray, mlp_mask: np.ndarray, seed: int, bernoulli: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(head_mask, mlp_mask)`` of the good, random or bad s-pruning subnetwork.

    Heads and MLPs are drawn separately, each of exactly the good count.
    """
    if kind not in SUBNETWORKS:
        raise ValueError(f"subnetwork must be one of {SUBNETWORKS}, got {kind!r}")
    head_mask = np.asarray(head_mask, dtype=np.float32)
    mlp_mask = np.asarray(mlp_mask, dtype=np.float32)
    if kind == "good":
        return head_mask.copy(), mlp_mask.copy()
    rng = np.random.default_rng(seed)
    if kind == "random":
        return random_like(head_mask, rng, bernoulli), random_like(mlp_mask, rng, bernoulli)
    return bad_like(head_mask, rng), bad_like(mlp_mask, rng)


def super_survivor_masks(head_masks: np.ndarray, mlp_masks: np.ndarray, seed: int) -> dict[str, tuple]:
    """The authors' super-survivor variants from masks stacked over seeds, (S, L, H) and (S, L).

    ``good``: kept in every seed. ``bad`` ("bizzaro"): pruned in every seed, resized at random
    to the good size. ``random`` ("midling"): neither always kept nor always pruned, resized at
    random to the good size. Resizing draws without replacement; if a pool is smaller than the good
    size, the whole pool is kept (recorded by the returned sizes).
    """
    rng = np.random.default_rng(seed)
    out: dict[str, tuple] = {}
    for name, pool_of in (("good", lambda m: m.all(0)), ("random", lambda m: m.any(0) & ~m.all(0)),
                          ("bad", lambda m: ~m.any(0))):
        parts = []
        for stack in (np.asarray(head_masks).astype(bool), np.asarray(mlp_masks).astype(bool)):
            size = int(stack.all(0).sum())
            pool = pool_of(stack)
            if name == "good":
                parts.append(pool.astype(np.float32))
            else:
                scores = np.where(pool, rng.random(pool.shape) + 1.0, 0.0)
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
    keep = np.ones(sum(int(np.prod(shape)) for _, shape in layout), dtype=bool)
    keep[order[:n_pruned]] = False
    return _unflatten(keep, layout)


def weight_subnetwork(
    kind: str, good: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray], seed: int
) -> dict[str, np.ndarray]:
    """Good, random or bad m-pruning masks with exactly the good number of kept weights.

    random: uniform over all prunable weights; bad: keeps the smallest-magnitude weights
    (the authors' inverted L1).
    """
    if kind not in SUBNETWORKS:
        raise ValueError(f"subnetwork must be one of {SUBNETWORKS}, got {kind!r}")
    if set(good) != set(weights):
        raise ValueError("good mask and weights name different tensors: use the same model's prunable set")
    if kind == "good":
        return {k: np.asarray(v, dtype=bool).copy() for k, v in good.items()}
    flat_good, layout = _flatten({k: np.asarray(good[k], dtype=bool) for k in weights})
    k = int(flat_good.sum())
    if kind == "random":
        scores = np.random.default_rng(seed).random(flat_good.size)
    else:
        scores = -np.abs(_flatten({k2: weights[k2] for k2 in weights})[0])
    return _unflatten(keep_top_k(scores, k), layout)

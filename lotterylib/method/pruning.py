"""The two pruning searches, both stopped by the 90 % rule (METHOD.md section 6).

Keep pruning while ``metric(pruned) >= 0.9 * metric(full)`` on dev; the result is the last mask
that passed; every step (passing or not) is recorded in a trace.

The searches do not know about data or models beyond what they are handed: an ``evaluate``
callable that scores a mask, and (for s-pruning) an ``importance`` callable.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np

from lotterylib.errors import ConfigError
from lotterylib.method.subnetworks import magnitude_order, weight_mask_keeping

if TYPE_CHECKING:  # (the search itself needs no torch: the callers' importance and evaluation do)
    from lotterylib.method.importance import Importance

METHODS = ("m", "s")
"""The two pruning methods: m (weights by magnitude) and s (heads and MLPs by importance)."""


def passes(metric: float, full_metric: float, fraction: float = 0.9) -> bool:
    """The 90 % rule."""
    return metric >= fraction * full_metric


@dataclass
class SearchResult:
    method: str  # "m" or "s"
    full_metric: float
    threshold: float
    trace: list[dict] = field(default_factory=list)
    head_mask: np.ndarray | None = None
    mlp_mask: np.ndarray | None = None
    weight_mask: dict[str, np.ndarray] | None = None
    skipped: str | None = None  # why no search ran (e.g. a full model with metric <= 0)
    options: dict = field(default_factory=dict)

    def summary(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("head_mask", "mlp_mask", "weight_mask", "trace")}
        out["n_steps"] = len(self.trace)
        out["accepted_steps"] = sum(1 for s in self.trace if s["passed"])
        if self.head_mask is not None:
            out.update(heads_kept=int(self.head_mask.sum()), heads_total=int(self.head_mask.size),
                       mlps_kept=int(self.mlp_mask.sum()), mlps_total=int(self.mlp_mask.size))
        if self.weight_mask is not None:
            total = sum(m.size for m in self.weight_mask.values())
            out.update(weights_kept=int(sum(m.sum() for m in self.weight_mask.values())), weights_total=int(total))
        return out


def _skip_reason(full_metric: float) -> str | None:
    if not np.isfinite(full_metric) or full_metric <= 0:
        return (f"the full model's metric is {full_metric:.4g}: 90 % of a non-positive score means nothing, "
                "so no search was run (the run failed to learn)")
    return None


# --- argument checks (before any compute) -----------------------------------------------------

def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_share(name: str, value, example: str) -> float:
    """A share in (0, 1]: the 90 % rule's fraction, a step's share of weights or heads."""
    if not (_is_real(value) and math.isfinite(value) and 0 < value <= 1):
        raise ConfigError(f"{name}: must be a number in (0, 1] (got {value!r}); pass a share such as {example}")
    return float(value)


def _check_count(name: str, value, low: int, optional: bool = False, fix: str = "") -> None:
    """An integer >= ``low`` (None too when ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        allowed = f"an integer >= {low}" + (" or None" if optional else "")
        raise ConfigError(f"{name}: must be {allowed} (got {value!r}); {fix or f'pass {allowed}'}")


def _check_full_metric(value) -> None:
    if not (_is_real(value) and not math.isnan(value) and not math.isinf(value)):
        raise ConfigError(f"full_metric: must be a finite number (got {value!r}); pass the full model's dev "
                          "metric (a failed run scores 0 or less, and its search is skipped)")


def _check_callable(name: str, value, optional: bool = False) -> None:
    if not (callable(value) or (optional and value is None)):
        raise ConfigError(f"{name}: must be callable{' or None' if optional else ''} (got {type(value).__name__}); "
                          "pass a function")


# --- m-pruning --------------------------------------------------------------------------------

def m_prune_steps(n_weights: int, step: float = 0.1, max_steps: int | None = None):
    """Pruned counts after each step: prune ``step`` of the *remaining* weights each time
    (PyTorch's rounding, as in the authors' ``global_unstructured`` calls), so the sparsity after
    k steps is 1 - 0.9**k up to rounding.

    >>> list(m_prune_steps(100, max_steps=3))
    [10, 19, 27]
    """
    _check_count("n_weights", n_weights, 0)
    _check_share("step", step, "0.1 (prune a tenth of the remaining weights per step)")
    _check_count("max_steps", max_steps, 1, optional=True, fix="pass None for no cap, or a cap such as 10")
    return _m_prune_steps(n_weights, step, max_steps)


def _m_prune_steps(n_weights: int, step: float, max_steps: int | None):
    pruned, k = 0, 0
    while pruned < n_weights and (max_steps is None or k < max_steps):
        pruned += max(1, round(step * (n_weights - pruned)))
        pruned = min(pruned, n_weights)
        k += 1
        yield pruned


def m_prune_search(
    weights: Mapping[str, np.ndarray],
    evaluate: Callable[[dict[str, np.ndarray]], float],
    full_metric: float,
    fraction: float = 0.9,
    step: float = 0.1,
    max_steps: int | None = None,
    progress: Callable[[dict], None] | None = None,
) -> SearchResult:
    """Global magnitude pruning of the fine-tuned ``weights`` (qualified name -> array).

    Weights never change during the search, so step k equals one global magnitude threshold at
    that sparsity; ``evaluate(weight_mask)`` returns the search metric. ``max_steps`` caps the
    number of steps (the authors' code stopped after 10); the default has no cap.
    """
    _check_share("fraction", fraction, "0.9 (the 90 % rule)")
    _check_share("step", step, "0.1 (prune a tenth of the remaining weights per step)")
    _check_count("max_steps", max_steps, 1, optional=True, fix="pass None for no cap, or a cap such as 10")
    _check_full_metric(full_metric)
    _check_callable("evaluate", evaluate)
    _check_callable("progress", progress, optional=True)
    if not isinstance(weights, Mapping) or not weights:
        raise ConfigError(f"weights: must be a non-empty mapping of prunable tensors (got "
                          f"{type(weights).__name__} of {len(weights) if isinstance(weights, Mapping) else '?'}); "
                          "pass prunable_tensors(model) as numpy arrays")
    n_weights = sum(int(np.size(w)) for w in weights.values())
    if n_weights == 0:
        raise ConfigError(f"weights: the tensors hold no weights (got {len(weights)} empty tensors); "
                          "pass prunable_tensors(model) as numpy arrays")
    result = SearchResult("m", full_metric, fraction * full_metric,
                          options={"fraction": fraction, "step": step, "max_steps": max_steps})
    best = weight_mask_keeping(weights, np.empty(0, dtype=np.int64), 0)
    result.weight_mask = best
    if (reason := _skip_reason(full_metric)) is not None:
        result.skipped = reason
        return result
    order = magnitude_order(weights)
    for k, n_pruned in enumerate(m_prune_steps(n_weights, step, max_steps), start=1):
        mask = weight_mask_keeping(weights, order, n_pruned)
        metric = float(evaluate(mask))
        ok = passes(metric, full_metric, fraction)
        record = {"step": k, "phase": "weights", "n_pruned": n_pruned, "sparsity": n_pruned / n_weights,
                  "metric": metric, "passed": ok}
        result.trace.append(record)
        if progress:
            progress(record)
        if not ok:
            break
        result.weight_mask = mask
    return result


# --- s-pruning --------------------------------------------------------------------------------

def _lowest(scores: np.ndarray, alive: np.ndarray, n: int) -> np.ndarray:
    """Flat indices of the ``n`` lowest-scoring live components (ties: lower index first)."""
    flat_alive = np.flatnonzero(alive.ravel())
    ranked = flat_alive[np.argsort(scores.ravel()[flat_alive], kind="stable")]
    return ranked[:n]


def s_prune_search(
    importance: Callable[[np.ndarray, np.ndarray], Importance],
    evaluate: Callable[[np.ndarray, np.ndarray], float],
    full_metric: float,
    n_layers: int,
    n_heads: int,
    fraction: float = 0.9,
    head_step: float = 0.1,
    halve_phase2: bool = False,
    normalized: bool = True,
    progress: Callable[[dict], None] | None = None,
) -> SearchResult:
    """Structured pruning of heads and MLPs by importance, in three phases.

    Phase 1 prunes ``max(1, floor(head_step * all heads))`` lowest-scoring heads and the lowest
    MLP per step; phase 2 heads alone (the same step, or half of it with ``halve_phase2``, the
    authors' code); phase 3 MLPs alone, one per step. Importance is recomputed on the current
    masked model before every step; each phase starts from the last passing mask.
    ``importance(head_mask, mlp_mask)`` returns an :class:`Importance`; ranking uses the
    normalised scores (``normalized=False``: raw). ``evaluate(head_mask, mlp_mask)`` returns the
    search metric.
    """
    _check_share("fraction", fraction, "0.9 (the 90 % rule)")
    _check_share("head_step", head_step, "0.1 (a tenth of all heads per step)")
    _check_count("n_layers", n_layers, 1, fix="pass ModelStructure.of(model).n_layers")
    _check_count("n_heads", n_heads, 1, fix="pass ModelStructure.of(model).n_heads")
    _check_full_metric(full_metric)
    _check_callable("importance", importance)
    _check_callable("evaluate", evaluate)
    _check_callable("progress", progress, optional=True)
    head_mask = np.ones((n_layers, n_heads), dtype=np.float32)
    mlp_mask = np.ones(n_layers, dtype=np.float32)
    step_heads = max(1, math.floor(head_step * n_layers * n_heads))
    phases = [("heads+mlps", step_heads, 1),
              ("heads", max(1, step_heads // 2) if halve_phase2 else step_heads, 0),
              ("mlps", 0, 1)]
    result = SearchResult("s", full_metric, fraction * full_metric, head_mask=head_mask, mlp_mask=mlp_mask,
                          options={"fraction": fraction, "head_step": head_step, "step_heads": step_heads,
                                   "halve_phase2": halve_phase2, "normalized": normalized})
    if (reason := _skip_reason(full_metric)) is not None:
        result.skipped = reason
        return result
    step = 0
    for phase, n_heads_step, n_mlps_step in phases:
        while True:
            heads_left, mlps_left = int(head_mask.sum()), int(mlp_mask.sum())
            if (n_heads_step and not heads_left) or (n_mlps_step and not mlps_left):
                break  # this phase has nothing left to prune
            scores = importance(head_mask, mlp_mask)
            head_scores = scores.head_norm if normalized else scores.head
            mlp_scores = scores.mlp_norm if normalized else scores.mlp
            new_head, new_mlp = head_mask.copy(), mlp_mask.copy()
            cut_heads = _lowest(head_scores, head_mask > 0, n_heads_step)
            cut_mlps = _lowest(mlp_scores, mlp_mask > 0, n_mlps_step)
            new_head.ravel()[cut_heads] = 0.0
            new_mlp[cut_mlps] = 0.0
            metric = float(evaluate(new_head, new_mlp))
            ok = passes(metric, full_metric, fraction)
            step += 1
            record = {"step": step, "phase": phase, "metric": metric, "passed": ok,
                      "heads_kept": int(new_head.sum()), "mlps_kept": int(new_mlp.sum()),
                      "pruned_heads": [[int(i) // n_heads, int(i) % n_heads] for i in cut_heads],
                      "pruned_mlps": [int(i) for i in cut_mlps],
                      "head_scores": head_scores.round(6).tolist(), "mlp_scores": mlp_scores.round(6).tolist()}
            result.trace.append(record)
            if progress:
                progress(record)
            if not ok:
                break
            head_mask, mlp_mask = new_head, new_mlp
    result.head_mask, result.mlp_mask = head_mask, mlp_mask
    return result


def replay_s_trace(trace: list[dict]):
    """``(record, head_alive, mlp_alive)`` for each s-pruning step, with the boolean masks of the
    components alive *before* that step: a step's removals count only if it passed."""
    if not trace:
        return
    head_alive = np.ones(np.shape(trace[0]["head_scores"]), dtype=bool)
    mlp_alive = np.ones(np.shape(trace[0]["mlp_scores"]), dtype=bool)
    for rec in trace:
        yield rec, head_alive.copy(), mlp_alive.copy()
        if rec["passed"]:
            for layer, head in rec["pruned_heads"]:
                head_alive[layer, head] = False
            mlp_alive[rec["pruned_mlps"]] = False


def no_subnetwork_reason(search: dict) -> str | None:
    """Why a search record (``search.json``) has no subnetwork: skipped (the full model did not learn), or it
    removed nothing; None when it found one."""
    if search.get("skipped"):
        return f"search skipped: {search['skipped']}"
    if search.get("accepted_steps", 1) == 0:
        return ("the search removed nothing: its first step already scored below the 90 % threshold "
                f"({search['trace'][0]['metric']:.4f} < {search['threshold']:.4f}), so good, random and bad "
                "would all be the full model; left out of every subnetwork comparison")
    return None

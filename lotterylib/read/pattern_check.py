"""A second, independent rule for attention maps, to check the classifier that claim C10 rests on.

The main rules (:mod:`lotterylib.read.pattern_rules`, fixed in METHOD.md before any result) read the mass on
[CLS]/[SEP], on the diagonal band and inside the query's sentence. This check reads *other* statistics of the
raw map, computed here in numpy (no model, no torch):

- ``top_column``: the mean over queries of the attention on the single most attended key position (any token),
  chance-corrected like the main rules: ``(m - 1/T) / (1 - 1/T)``;
- ``top_offset``: the mean over queries of the attention on the single most attended *relative* position
  (key - query in {-1, 0, +1}), chance-corrected with ``1/T``;
- ``entropy``: the mean over queries of the row entropy divided by ``log T`` (0: every query on one key,
  1: uniform).

Its classes (tried in this order; thresholds fixed here, not tuned on any result):

1. **stripe on [CLS]/[SEP]** if ``top_column >= STRIPE`` and that key is [CLS] or a [SEP];
2. **stripe on another token** if ``top_column >= STRIPE`` on an ordinary token (a full stop, say): what a reader
   of a heatmap would call vertical, but the main rules, which follow the paper's definition, do not;
3. **diagonal** if ``top_offset >= DIAGONAL``;
4. **focused** if ``entropy < FOCUSED`` (attention concentrated, but on no single column or offset: a block,
   several stripes, ...);
5. **broad** otherwise: this rule's "heterogeneous".

Agreement with the main rules is measured on "heterogeneous or not" (main: ``heterogeneous``; check:
``broad``): the confusion table (main type x check class) and Cohen's kappa.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

STRIPE = 0.5
DIAGONAL = 0.5
FOCUSED = 0.5
CLASSES = ("stripe on [CLS]/[SEP]", "stripe on another token", "diagonal", "focused", "broad")
BROAD = "broad"
SPECIAL = ("[CLS]", "[SEP]", "<s>", "</s>")


def map_features(maps: np.ndarray, tokens: Sequence[str]) -> dict[str, np.ndarray]:
    """``maps`` (..., T, T) row-stochastic, ``tokens`` (T,) -> ``top_column``, ``top_key`` (index),
    ``top_key_special`` (bool), ``top_offset``, ``entropy`` (each with the leading shape)."""
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"attention maps must be (..., T, T), got shape {a.shape}")
    n = a.shape[-1]
    if len(tokens) != n:
        raise ValueError(f"the maps are {n} x {n} but {len(tokens)} tokens were given")
    u = 1.0 / n
    corr = (lambda m: (m - u) / (1 - u)) if n > 1 else (lambda m: np.zeros_like(m))
    column = a.mean(-2)  # (..., T): mean attention each key receives
    top_key = column.argmax(-1)
    top = column.max(-1)
    offsets = []
    for k in (-1, 0, 1):
        diag = np.diagonal(a, offset=k, axis1=-2, axis2=-1)  # (..., T - |k|)
        offsets.append(diag.sum(-1) / n)
    top_offset = np.max(np.stack(offsets), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -(np.where(a > 0, a * np.log(a), 0.0)).sum(-1).mean(-1)
    entropy = ent / np.log(n) if n > 1 else np.zeros_like(ent)
    special = np.asarray([str(t) in SPECIAL for t in tokens])
    return {"top_column": corr(top), "top_key": top_key, "top_key_special": special[top_key],
            "top_offset": corr(top_offset), "entropy": entropy}


def check_classify(features: dict) -> np.ndarray:
    """The check rule's class names (:data:`CLASSES`) from :func:`map_features`."""
    top, special = np.asarray(features["top_column"]), np.asarray(features["top_key_special"])
    out = np.full(top.shape, BROAD, dtype=object)
    out[np.asarray(features["entropy"]) < FOCUSED] = "focused"
    out[np.asarray(features["top_offset"]) >= DIAGONAL] = "diagonal"
    stripe = top >= STRIPE
    out[stripe & ~special] = "stripe on another token"
    out[stripe & special] = "stripe on [CLS]/[SEP]"
    return out


def classify_maps(maps: np.ndarray, tokens: Sequence[str]) -> np.ndarray:
    """Check classes of raw maps (..., T, T)."""
    return check_classify(map_features(maps, tokens))


def cohen_kappa(a: Sequence, b: Sequence) -> float:
    """Cohen's kappa of two labellings of the same items (nan when chance agreement is 1)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or not a.size:
        raise ValueError("two labellings of the same, non-empty items are needed")
    labels = np.union1d(a, b)
    po = float(np.mean(a == b))
    pe = float(sum(np.mean(a == k) * np.mean(b == k) for k in labels))
    return float("nan") if pe >= 1 else (po - pe) / (1 - pe)


def agreement(main_types: Sequence[str], check_classes: Sequence[str]) -> dict:
    """Confusion table (main type x check class, counts, every class shown) and agreement on "heterogeneous or
    not": ``table``, ``n``, ``agree`` (share), ``kappa`` (Cohen's), ``ordinary_stripes_heterogeneous`` (maps
    the main rules call heterogeneous that are single-column stripes on an ordinary token)."""
    from lotterylib.read.pattern_rules import TYPES

    main, check = np.asarray(main_types, dtype=object), np.asarray(check_classes, dtype=object)
    table = pd.crosstab(pd.Categorical(main, categories=TYPES), pd.Categorical(check, categories=CLASSES),
                        rownames=["main rules"], colnames=["check rule"], dropna=False)
    het_main, het_check = main == "heterogeneous", check == BROAD
    n = len(main)
    return {"table": table, "n": n, "agree": float(np.mean(het_main == het_check)) if n else float("nan"),
            "kappa": cohen_kappa(het_main, het_check) if n else float("nan"),
            "ordinary_stripes_heterogeneous": int(np.sum(het_main & (check == "stripe on another token"))),
            "heterogeneous_main": int(het_main.sum())}


def sentence(result: dict) -> str:
    """The table's sentence: agreement, kappa, and the heterogeneous maps that are stripes on an ordinary token."""
    if not result["n"]:
        return "No gallery map to check the attention classifier on yet."
    k = result["ordinary_stripes_heterogeneous"]
    kappa = "n/a" if not np.isfinite(result["kappa"]) else f"{result['kappa']:.2f}"
    text = (f"Check of the attention classifier on {result['n']} maps: the main rules and an independent rule "
            f"(top column, top diagonal offset, entropy) agree on heterogeneous-or-not for "
            f"{result['agree']:.0%} of the maps (Cohen's kappa {kappa}).")
    if k:
        text += (f" {k} of the {result['heterogeneous_main']} maps the main rules call heterogeneous are "
                 "single-column stripes on an ordinary token (a full stop, say), which a reader would call "
                 "vertical: the main rules follow the paper's definition (vertical = on [CLS]/[SEP]) and are "
                 "left as METHOD.md fixed them, so C10's 'heterogeneous' includes such stripes.")
    return text


def gallery_agreement(gallery) -> dict:
    """:func:`agreement` on every map of a :class:`lotterylib.read.pattern_data.Gallery` (its ``type`` column is
    the main rules'); adds ``classes`` (the check class of each gallery row)."""
    t = gallery.table
    if t.empty:
        return {**agreement([], []), "classes": np.array([], dtype=object)}
    classes = np.empty(len(t), dtype=object)
    for key, idx in t.groupby(["task", "seed", "weights", "example"], sort=False).indices.items():
        maps, tokens = gallery.maps[key]
        rows = t.iloc[idx]
        cls = classify_maps(maps, tokens)  # (L, H)
        classes[idx] = cls[rows["layer"].to_numpy(int), rows["head"].to_numpy(int)]
    return {**agreement(t["type"].to_numpy(), classes), "classes": classes}


def plan_agreement(plan) -> dict:
    """:func:`gallery_agreement` of a plan's gallery maps (typed by the default rules)."""
    from lotterylib.read.pattern_data import load_gallery

    return gallery_agreement(load_gallery(plan))

"""The per-head statistics of attention maps that classify attention patterns, computed with numpy (no torch), so
that the stages (through :mod:`lotterylib.method.attention`) and the read side (raw gallery maps) compute them with
one function. For one example's maps ``A`` (rows: queries, columns: keys; padding trimmed):

- ``cls``: mean over queries of the mass on the first token ([CLS]);
- ``sep``: mean mass on [SEP] tokens;
- ``diag_prev`` / ``diag_next``: mass on the previous / next token (the +-1 diagonals), summed over queries / n;
- ``self``: mean mass on the token itself;
- ``within``: for sentence pairs, mean mass that stays in the query's own segment (special tokens excluded from
  both sides; NaN for single sentences);
- ``entropy``: mean row entropy in nats, and ``max_entropy`` = log(sequence length).
"""

import numpy as np

STATS = ("cls", "sep", "diag_prev", "diag_next", "self", "within", "entropy", "max_entropy")


def example_statistics(maps, input_ids, token_type_ids, length: int, sep_id: int) -> dict[str, np.ndarray]:
    """Statistics of one example's maps ``(..., T, T)`` trimmed to ``length`` tokens: each of shape ``(...)``.

    >>> import numpy as np
    >>> s = example_statistics(np.full((1, 1, 4, 4), 0.25), np.array([101, 7, 8, 102]), np.zeros(4, int), 4, 102)
    >>> float(s["cls"][0, 0]), float(s["sep"][0, 0]), float(s["max_entropy"][0, 0]) == float(np.log(4))
    (0.25, 0.25, True)
    """
    a = np.asarray(maps, dtype=np.float64)[..., :length, :length]  # (..., n, n)
    ids = np.asarray(input_ids)[:length]
    segments = np.asarray(token_type_ids)[:length]
    n = length
    sep = (ids == sep_id).astype(np.float64)  # (n,)
    out = {
        "cls": a[..., 0].mean(-1),
        "sep": (a * sep).sum(-1).mean(-1),
        "diag_prev": np.diagonal(a, offset=-1, axis1=-2, axis2=-1).sum(-1) / max(n, 1),
        "diag_next": np.diagonal(a, offset=1, axis1=-2, axis2=-1).sum(-1) / max(n, 1),
        "self": np.diagonal(a, axis1=-2, axis2=-1).mean(-1),
        "entropy": -(a * np.log(np.clip(a, 1e-12, None))).sum(-1).mean(-1),
    }
    ordinary = (sep == 0) & (np.arange(n) > 0)  # neither [CLS] nor [SEP]
    if np.unique(segments[ordinary]).size > 1:
        same = (segments[:, None] == segments[None, :]) & ordinary[:, None] & ordinary[None, :]
        rows = a[..., ordinary, :]  # (..., q, n)
        within = (rows * same[ordinary]).sum(-1)
        content = np.clip((rows * ordinary).sum(-1), 1e-12, None)
        out["within"] = (within / content).mean(-1)
    else:
        out["within"] = np.full(a.shape[:-2], np.nan)
    out["max_entropy"] = np.full(a.shape[:-2], float(np.log(n)))
    return out

"""Attention maps and the statistics that classify attention patterns (Kovaleva et al. 2019).

For every head and every example of a fixed dev sample we record, from the attention
probabilities ``A`` (rows: queries, columns: keys; padding excluded):

- ``cls``: mean over queries of the mass on the first token ([CLS]);
- ``sep``: mean mass on [SEP] tokens;
- ``diag_prev`` / ``diag_next``: mean mass on the previous / next token (the +-1 diagonals);
- ``self``: mean mass on the token itself;
- ``within``: for sentence pairs, mean mass that stays in the query's own segment
  (special tokens excluded from both sides; NaN for single sentences);
- ``entropy``: mean row entropy in nats, and ``max_entropy`` = log(sequence length).

These are enough to classify maps as vertical, diagonal, vertical+diagonal, block or
heterogeneous without the model checkpoint. Needs a model loaded with ``attn_implementation="eager"``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lotterylib.model.masking import gates
from lotterylib.method.map_statistics import STATS, example_statistics
from lotterylib.model.forward import device_of, model_inputs



def _check_eager(model: nn.Module) -> None:
    impl = getattr(model.config, "_attn_implementation", "eager")
    if impl != "eager":
        raise ValueError(f"attention maps need attn_implementation='eager' (the model uses {impl!r}): "
                         "load it with load_model(..., attn_implementation='eager')")


@torch.no_grad()
def attention_maps(model: nn.Module, batch: dict, head_mask=None, mlp_mask=None) -> torch.Tensor:
    """Attention probabilities of every layer and head: (B, L, H, T, T)."""
    _check_eager(model)
    with gates(model, head_mask, mlp_mask):
        out = model(**model_inputs(batch, device_of(model)), output_attentions=True)
    return torch.stack(out.attentions, dim=1).float().cpu()


def example_stats(maps: torch.Tensor, input_ids: torch.Tensor, token_type_ids: torch.Tensor,
                  length: int, sep_id: int) -> dict[str, np.ndarray]:
    """Statistics of one example's maps ``(L, H, T, T)`` (trimmed to ``length``): each (L, H); computed by
    :func:`lotterylib.method.map_statistics.example_statistics`, the one definition."""
    return example_statistics(maps.detach().cpu().double().numpy(), input_ids.cpu().numpy(),
                              token_type_ids.cpu().numpy(), length, sep_id)


def attention_stats(model: nn.Module, batches: list[dict], sep_id: int, head_mask=None,
                    mlp_mask=None, n_maps: int = 0) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Per-example statistics, each ``(N, L, H)`` in the batches' example order by ``index``,
    plus the raw maps of the ``n_maps`` shortest examples (for a gallery; short keeps the files
    small and the maps legible): dicts with ``index``, ``tokens`` ids and ``maps`` (L, H, n, n) as
    float16, shortest first."""
    rows: dict[int, dict[str, np.ndarray]] = {}
    gallery: list[dict] = []
    lengths = {int(i): int(n) for b in batches for i, n in zip(b["index"], b["attention_mask"].sum(-1))}
    shortest = set(sorted(lengths, key=lambda i: (lengths[i], i))[:n_maps])
    for batch in batches:
        maps = attention_maps(model, batch, head_mask, mlp_mask)
        lengths = batch["attention_mask"].sum(-1)
        for b, index in enumerate(batch["index"].tolist()):
            length = int(lengths[b])
            rows[index] = example_stats(maps[b], batch["input_ids"][b], batch["token_type_ids"][b], length, sep_id)
            if index in shortest:
                gallery.append({"index": index, "tokens": batch["input_ids"][b, :length].numpy(),
                                "maps": maps[b, :, :, :length, :length].numpy().astype(np.float16)})
    order = sorted(rows)
    gallery.sort(key=lambda item: (len(item["tokens"]), item["index"]))
    return {k: np.stack([rows[i][k] for i in order]).astype(np.float32) for k in STATS}, gallery

"""Physically remove masked heads and MLPs, so that an s-pruned subnetwork trains at its own size.

A gate (:func:`lotterylib.model.masking.gates`) multiplies a removed head's context slice, or a removed MLP's
output, by zero: the model computes the component and throws the result away. :func:`remove_components`
cuts the component's rows and columns out of the weight matrices instead, which gives the same function
with less work, and is what s-pruned re-fine-tuning uses.

What is cut, per layer:

- a removed head: its rows of Q, K and V (weights and biases) and its columns of the attention output
  projection. The output projection's bias stays: the gate keeps it too (it acts on the projection's input).
- a removed MLP: every row of the intermediate projection and every column of the output projection. The
  gate zeroes the MLP's whole output, bias included, so a zero hook stays on the (now input-less) output
  projection to drop its bias.
- a layer with no head left keeps one head whose input to the output projection is zeroed by a hook
  (attention cannot be computed with zero heads), so it computes exactly what the gated layer computes.

The result is the gated model's function up to floating-point rounding (the tests check this, and that the
gradients of the kept weights agree). In training mode, attention dropout draws fewer random numbers, so a
run on the removed model follows a different (equally valid) dropout sequence than one on the gated model.
The change cannot be undone: it is meant for a model that is trained and evaluated once, as a re-fine-tuning
run's is.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lotterylib.model.structure import LAYER_PATHS, ModelStructure, get_module

# The self-attention module that holds Q, K, V and the head count (the parent of "query").
SELF_ATTENTION = LAYER_PATHS["query"].rsplit(".", 1)[0]


def _binary(mask, name: str, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(mask.detach().cpu() if isinstance(mask, torch.Tensor) else mask, dtype=float)
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}, the model needs {shape}")
    if not np.isin(array, (0.0, 1.0)).all():
        raise ValueError(f"{name} must be 0/1 to remove components physically; for fractional gates use "
                         "lotterylib.model.masking.gates")
    return array.astype(bool)


def _keep_rows(linear: nn.Linear, index: torch.Tensor) -> None:
    """Keep output features ``index`` of ``linear`` (in place, as new Parameters)."""
    linear.weight = nn.Parameter(linear.weight.detach()[index].clone())
    if linear.bias is not None:
        linear.bias = nn.Parameter(linear.bias.detach()[index].clone())
    linear.out_features = len(index)


def _keep_columns(linear: nn.Linear, index: torch.Tensor) -> None:
    """Keep input features ``index`` of ``linear``."""
    linear.weight = nn.Parameter(linear.weight.detach()[:, index].clone())
    linear.in_features = len(index)


def _zero_input(module, args):
    return (args[0] * 0, *args[1:])


def _zero_output(module, args, output):
    return output * 0


def remove_components(model: nn.Module, head_mask=None, mlp_mask=None) -> dict:
    """Cut removed heads (``head_mask`` (L, H), 0 removes) and MLPs (``mlp_mask`` (L,)) out of ``model``.

    Returns a summary: parameters before and after, heads and MLPs removed. The zero hooks that stand in for
    layers without heads and for removed MLPs stay on the model for its life.
    """
    s = ModelStructure.of(model)
    before = sum(p.numel() for p in model.parameters())
    heads = _binary(head_mask, "head_mask", (s.n_layers, s.n_heads)) if head_mask is not None else None
    mlps = _binary(mlp_mask, "mlp_mask", (s.n_layers,)) if mlp_mask is not None else None
    d = s.head_dim
    for layer in range(s.n_layers):
        if heads is not None and not heads[layer].all():
            query = s.module(model, layer, "query")
            kept = np.flatnonzero(heads[layer])
            empty = len(kept) == 0
            if empty:
                kept = np.array([0])  # one head stays, its output zeroed by a hook
            index = torch.as_tensor(np.concatenate([np.arange(h * d, (h + 1) * d) for h in kept]),
                                    device=query.weight.device)
            for name in ("query", "key", "value"):
                _keep_rows(s.module(model, layer, name), index)
            attn_out = s.module(model, layer, "attn_out")
            _keep_columns(attn_out, index)
            attention = get_module(s.layers(model)[layer], SELF_ATTENTION)
            attention.num_attention_heads = len(kept)
            attention.all_head_size = len(kept) * d
            if empty:
                attn_out.register_forward_pre_hook(_zero_input)
        if mlps is not None and not mlps[layer]:
            nothing = torch.zeros(0, dtype=torch.long, device=next(model.parameters()).device)
            _keep_rows(s.module(model, layer, "intermediate"), nothing)
            mlp_out = s.module(model, layer, "mlp_out")
            _keep_columns(mlp_out, nothing)
            mlp_out.register_forward_hook(_zero_output)
    after = sum(p.numel() for p in model.parameters())
    return {
        "parameters_before": before,
        "parameters_after": after,
        "heads_removed": int((~heads).sum()) if heads is not None else 0,
        "mlps_removed": int((~mlps).sum()) if mlps is not None else 0,
    }

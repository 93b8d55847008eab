"""Where masks act: head and MLP gates as removable hooks, weight masks as parametrisations.

Head gate ``xi[l, h]`` scales head h's slice of the context vector entering layer l's attention
output projection (equal to scaling that head's attention probabilities). MLP gate ``nu[l]``
scales the output of layer l's second FFN linear before the residual and LayerNorm.
Gates may carry a batch dimension, ``(B, L, H)`` and ``(B, L)``, so that one backward pass gives
every example's own gradient (exact per-example importance).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from lotterylib.errors import MaskError
from lotterylib.model.structure import ModelStructure


def _as_gate(mask, device: torch.device | None = None) -> torch.Tensor:
    """A float tensor on ``device``; a tensor already there is kept as is, so gradients flow to it."""
    if not isinstance(mask, torch.Tensor):
        mask = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    return mask if device is None else mask.to(device)


def _validate_gate(gate: torch.Tensor, expected: tuple[int, ...], what: str) -> None:
    if tuple(gate.shape) != expected and tuple(gate.shape[1:]) != expected:
        raise MaskError(
            f"{what} has shape {tuple(gate.shape)}, but this model needs {expected} "
            f"(or (batch, *{expected}) for per-example gates): was it made for another model?"
        )
    if not bool(torch.isfinite(gate.detach()).all()):
        raise MaskError(f"{what} holds NaN or inf: a gate may scale a component, but only by a finite number")


def _check_batch(gate: torch.Tensor, batch: int, what: str) -> None:
    if gate.shape[0] != batch:
        raise MaskError(f"per-example {what} has {gate.shape[0]} rows, but this batch has {batch} examples: "
                        "give one gate row per example (or an unbatched gate for all)")


def _head_pre_hook(layer: int, gate: torch.Tensor, n_heads: int):
    per_example = gate.dim() == 3

    def hook(module, args):
        context = args[0]  # (B, T, H*d)
        b, t, width = context.shape
        if per_example:
            _check_batch(gate, b, "head_mask")
        g = gate[:, layer] if per_example else gate[layer]  # (B, H) or (H,)
        g = g.to(context.dtype).reshape(-1 if per_example else 1, 1, n_heads, 1)
        scaled = (context.view(b, t, n_heads, width // n_heads) * g).view(b, t, width)
        return (scaled, *args[1:])

    return hook


def _mlp_hook(layer: int, gate: torch.Tensor):
    per_example = gate.dim() == 2

    def hook(module, args, output):  # output: (B, T, hidden)
        if per_example:
            _check_batch(gate, output.shape[0], "mlp_mask")
        g = gate[:, layer].reshape(-1, 1, 1) if per_example else gate[layer]
        return output * g.to(output.dtype)

    return hook


@contextmanager
def gates(
    model: nn.Module,
    head_mask=None,
    mlp_mask=None,
    structure: ModelStructure | None = None,
) -> Iterator[list[torch.utils.hooks.RemovableHandle]]:
    """Apply head and/or MLP gates for the duration of a ``with`` block.

    ``head_mask``: (L, H) or (B, L, H); ``mlp_mask``: (L,) or (B, L); 1 keeps, 0 removes, any
    float scales. ``None`` leaves that kind of component alone. Hooks are removed on exit, also
    after an exception.
    """
    structure = structure or ModelStructure.of(model)
    handles: list[torch.utils.hooks.RemovableHandle] = []
    device = next(model.parameters()).device
    try:
        if head_mask is not None:
            head = _as_gate(head_mask, device)
            _validate_gate(head, (structure.n_layers, structure.n_heads), "head_mask")
            for layer in range(structure.n_layers):
                module = structure.module(model, layer, "attn_out")
                handles.append(module.register_forward_pre_hook(_head_pre_hook(layer, head, structure.n_heads)))
        if mlp_mask is not None:
            mlp = _as_gate(mlp_mask, device)
            _validate_gate(mlp, (structure.n_layers,), "mlp_mask")
            for layer in range(structure.n_layers):
                module = structure.module(model, layer, "mlp_out")
                handles.append(module.register_forward_hook(_mlp_hook(layer, mlp)))
        yield handles
    finally:
        for handle in handles:
            handle.remove()


# --- weight masks (m-pruning) ------------------------------------------------------------------

class WeightMask(nn.Module):
    """Parametrisation ``W -> W * mask``: masked entries stay exactly zero whatever training does."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask.to(weight.dtype)


def prunable_tensors(model: nn.Module, structure: ModelStructure | None = None) -> dict[str, torch.Tensor]:
    """Qualified name -> the current (effective) value of every m-prunable tensor, in order."""
    structure = structure or ModelStructure.of(model)
    return {name: getattr(module, kind) for name, module, kind in structure.prunable(model)}


def validate_weight_masks(model: nn.Module, masks: Mapping[str, object], structure=None) -> None:
    structure = structure or ModelStructure.of(model)
    expected = {name: tuple(t.shape) for name, t in prunable_tensors(model, structure).items()}
    unknown = sorted(set(masks) - set(expected))
    if unknown:
        raise MaskError(
            f"weight masks name tensors that are not m-prunable in this model: {unknown[:3]}"
            f"{' ...' if len(unknown) > 3 else ''}; masks must come from the same model architecture"
        )
    for name, mask in masks.items():
        shape = tuple(np.shape(mask))
        if shape != expected[name]:
            raise MaskError(f"weight mask {name!r} has shape {shape}, the tensor has {expected[name]}: "
                            "the mask was made for another model")
        values = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        if not np.isin(values, (0, 1)).all():
            raise MaskError(f"weight mask {name!r} holds values other than 0 and 1 (e.g. "
                            f"{values[~np.isin(values, (0, 1))].ravel()[:3].tolist()}): a weight mask keeps (1) or "
                            "prunes (0); it never scales trained weights")


def apply_weight_masks(model: nn.Module, masks: Mapping[str, object], structure=None) -> int:
    """Register a :class:`WeightMask` on every named tensor; returns how many were patched."""
    structure = structure or ModelStructure.of(model)
    validate_weight_masks(model, masks, structure)
    patched = 0
    for name, module, kind in structure.prunable(model):
        if name not in masks:
            continue
        if parametrize.is_parametrized(module, kind):
            raise ValueError(f"{name} already carries a weight mask: remove_weight_masks() first")
        mask = torch.as_tensor(np.asarray(masks[name]), dtype=torch.bool)
        param = getattr(module, kind)
        parametrize.register_parametrization(module, kind, WeightMask(mask.to(param.device)))
        patched += 1
    return patched


def remove_weight_masks(model: nn.Module, bake: bool = True, structure=None) -> int:
    """Remove every weight mask; ``bake=True`` leaves the masked values at zero in the weights."""
    structure = structure or ModelStructure.of(model)
    removed = 0
    for _, module, kind in structure.prunable(model):
        if parametrize.is_parametrized(module, kind):
            parametrize.remove_parametrizations(module, kind, leave_parametrized=bake)
            removed += 1
    return removed


@contextmanager
def weight_masks(model: nn.Module, masks: Mapping[str, object], structure=None):
    """Apply weight masks inside a ``with`` block; the original weights come back afterwards."""
    structure = structure or ModelStructure.of(model)
    apply_weight_masks(model, masks, structure)
    try:
        yield model
    finally:
        remove_weight_masks(model, bake=False, structure=structure)


def ones_masks(structure: ModelStructure) -> tuple[np.ndarray, np.ndarray]:
    """The full model's ``(head_mask, mlp_mask)``."""
    return (np.ones((structure.n_layers, structure.n_heads), dtype=np.float32),
            np.ones(structure.n_layers, dtype=np.float32))

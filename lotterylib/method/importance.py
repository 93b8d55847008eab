"""Importance of heads and MLPs (Michel et al. 2019, extended to MLPs by the paper).

    I_head[l, h] = E_x |dL(x) / d xi[l, h]|        I_mlp[l] = E_x |dL(x) / d nu[l]|

Default (``abs_per="example"``): the gates get a batch dimension, (B, L, H) and (B, L), and we
back-propagate the *sum* of per-example losses, so example b's gradient lands in gate row b and
the absolute value is taken per example: the formula exactly, in one batched pass.
``abs_per="batch"`` is the authors' (and HF bertology's) variant: |gradient of the batch-mean
loss|, averaged over batches.
Scores of masked components are zero (a removed component has no importance to lose).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lotterylib.errors import ConfigError, DataError, MaskError
from lotterylib.model.masking import gates, ones_masks
from lotterylib.model.structure import ModelStructure
from lotterylib.model.forward import device_of, model_inputs, progress_bar, task_loss

ABS_PER = ("example", "batch")


@dataclass
class Importance:
    """Raw and normalised scores. ``head``: (L, H); ``mlp``: (L,)."""

    head: np.ndarray
    mlp: np.ndarray
    n_examples: int
    abs_per: str

    @property
    def head_norm(self) -> np.ndarray:
        return normalize_head_scores(self.head)

    @property
    def mlp_norm(self) -> np.ndarray:
        return normalize_mlp_scores(self.mlp)


def _minmax(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def normalize_head_scores(head: np.ndarray) -> np.ndarray:
    """The authors' normalisation: L2 within each layer, then min-max over all heads.

    >>> normalize_head_scores(np.array([[3.0, 4.0], [0.0, 1.0]])).round(2).tolist()
    [[0.6, 0.8], [0.0, 1.0]]
    """
    norms = np.linalg.norm(head, axis=-1, keepdims=True)
    per_layer = np.divide(head, norms, out=np.zeros_like(head, dtype=np.float64), where=norms > 0)
    return _minmax(per_layer)


def normalize_mlp_scores(mlp: np.ndarray) -> np.ndarray:
    """Min-max over all MLPs."""
    return _minmax(np.asarray(mlp, dtype=np.float64))


@contextmanager
def _frozen(model: nn.Module):
    """No parameter gradients (only the gates need them): saves the weight-gradient matmuls."""
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def compute_importance(
    model: nn.Module,
    batches: list[dict],
    head_mask=None,
    mlp_mask=None,
    abs_per: str = "example",
    progress: bool = False,
) -> Importance:
    """Importance of every head and MLP on ``batches`` (eval mode: no dropout).

    ``head_mask``/``mlp_mask`` (defaults: all ones) are the current masks: scores are computed on
    the masked model and masked components score zero.
    """
    if abs_per not in ABS_PER:
        raise ConfigError(f"abs_per must be one of {ABS_PER}, got {abs_per!r}; use one of {list(ABS_PER)} "
                          "(importance.abs_per in the plan)")
    if not batches or not all(batch["input_ids"].shape[0] for batch in batches):
        raise DataError(f"batches: no batches (or an empty batch) (got {len(batches)} batches); importance needs at "
                        "least one example: make the batches from a non-empty dev set (max_dev in the plan)")
    structure = ModelStructure.of(model)
    full_head, full_mlp = ones_masks(structure)
    head = torch.as_tensor(np.asarray(full_head if head_mask is None else head_mask, dtype=np.float32))
    mlp = torch.as_tensor(np.asarray(full_mlp if mlp_mask is None else mlp_mask, dtype=np.float32))
    if head.shape != full_head.shape or mlp.shape != full_mlp.shape:
        raise MaskError(f"head_mask / mlp_mask: masks of shape {tuple(head.shape)} / {tuple(mlp.shape)} do not fit this model "
                         f"({full_head.shape} / {full_mlp.shape})")
    device = device_of(model)
    head, mlp = head.to(device), mlp.to(device)
    head_total = torch.zeros_like(head, dtype=torch.float64)
    mlp_total = torch.zeros_like(mlp, dtype=torch.float64)
    n_examples = 0
    model.eval()
    with _frozen(model):
        for batch in progress_bar(batches, len(batches), "importance", progress):
            b = batch["input_ids"].shape[0]
            if abs_per == "example":
                # one gate row per example: (B, L, H) and (B, L)
                head_gate = head.expand(b, *head.shape).clone().requires_grad_(True)
                mlp_gate = mlp.expand(b, *mlp.shape).clone().requires_grad_(True)
            else:
                head_gate = head.clone().requires_grad_(True)
                mlp_gate = mlp.clone().requires_grad_(True)
            with gates(model, head_gate, mlp_gate, structure):
                logits = model(**model_inputs(batch, device)).logits
            labels = batch["labels"].to(device)
            if abs_per == "example":
                task_loss(logits, labels, reduction="sum").backward()
                head_total += head_gate.grad.abs().sum(0).double()
                mlp_total += mlp_gate.grad.abs().sum(0).double()
            else:
                task_loss(logits, labels, reduction="mean").backward()
                head_total += head_gate.grad.abs().double()
                mlp_total += mlp_gate.grad.abs().double()
            n_examples += b
    denominator = n_examples if abs_per == "example" else len(batches)
    head_scores = (head_total / denominator).cpu().numpy() * (head.cpu().numpy() != 0)
    mlp_scores = (mlp_total / denominator).cpu().numpy() * (mlp.cpu().numpy() != 0)
    return Importance(head_scores, mlp_scores, n_examples, abs_per)

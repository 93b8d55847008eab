"""One forward pass's plumbing, shared by training, evaluation, importance and attention recording: which inputs a
BERT-layout classifier takes, the task loss, the device a model sits on, and an optional progress bar."""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def task_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy for classification, mean squared error for a single regression output."""
    if logits.shape[-1] == 1:  # STS-B
        return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype), reduction=reduction)
    return F.cross_entropy(logits, labels, reduction=reduction)


def model_inputs(batch: Mapping[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """The model's inputs from a batch (labels and bookkeeping left out), on ``device``."""
    return {k: batch[k].to(device) for k in INPUT_KEYS if k in batch}


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def progress_bar(iterable, total: int, desc: str, enabled: bool):
    """``iterable`` with a tqdm bar when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)

"""Fine-tuning and evaluation: a plain loop, seeded, under optional fixed masks.

The paper's hyperparameters are the defaults of :class:`lotterylib.config.plans.TrainConfig`: AdamW, lr 2e-5, batch 32,
3 epochs, max length 128, linear decay without warm-up, no weight decay, gradient clipping at 1.0.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import ExitStack
from typing import Callable, Mapping

import numpy as np
import torch
from torch import nn

from lotterylib.model.forward import device_of, model_inputs, progress_bar, task_loss
from lotterylib.model.masking import gates, weight_masks
from lotterylib.config.plans import TrainConfig  # noqa: F401 (the plan's train section; re-exported)
from lotterylib.run.cpu_bf16 import FLOAT32_PRODUCTS, TORCH, bf16_products, kernel_for
from lotterylib.run.precision import warn_if_emulated
from lotterylib.run.resume import Resume, fingerprint, load_state, restore, save_state


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def default_device() -> torch.device:
    """Where the stages put their models: ``$LOTTERY_DEVICE`` if set ("cpu", "cuda", "cuda:1"), else the
    first GPU when there is one, else the CPU."""
    import os

    name = os.environ.get("LOTTERY_DEVICE", "").strip()
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"LOTTERY_DEVICE={name!r} is not a torch device: use cpu, cuda or cuda:<index>") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"LOTTERY_DEVICE={name!r} asks for a GPU, but torch sees none here "
                         f"(torch {torch.__version__}): unset it or set LOTTERY_DEVICE=cpu")
    return device


def bf16_matmul(device: str | torch.device, config: TrainConfig) -> str | None:
    """How a fine-tune on ``device`` under ``config`` computes its bf16 matrix products on a CPU ("float32
    products" or "torch", see :mod:`lotterylib.run.cpu_bf16`); ``None`` for fp32 training and on a GPU. Result
    files record it as ``bf16_matmul``."""
    return kernel_for(device, PRECISIONS[config.precision])


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _masked(stack: ExitStack, model, head_mask, mlp_mask, weight_mask) -> None:
    if weight_mask is not None:
        stack.enter_context(weight_masks(model, weight_mask))
    if head_mask is not None or mlp_mask is not None:
        stack.enter_context(gates(model, head_mask, mlp_mask))


def fine_tune(
    model: nn.Module,
    make_epoch_batches: Callable[[int], list[dict]],
    config: TrainConfig,
    seed: int,
    head_mask=None,
    mlp_mask=None,
    weight_mask: Mapping | None = None,
    progress: bool = False,
    log_every: int = 10,
    resume: Resume | None = None,
) -> list[dict]:
    """Train ``model`` in place; returns the training curve (one dict per ``log_every`` steps).

    ``make_epoch_batches(epoch)`` returns that epoch's batches (shuffled with a seed derived from
    the run's seed: see :func:`lotterylib.model.data.make_batches`). Masks stay fixed during training;
    a weight mask is baked in at the end so masked weights are exactly zero in the result.
    With ``resume`` (:class:`lotterylib.run.resume.Resume`), the whole training state is written to
    ``resume.path`` every ``resume.every_s`` seconds, a state found there is gone on from, and the result is
    the one an uninterrupted run gives, bit for bit. The caller deletes the file (``resume.finish()``) once
    what it made of the run is safely written.
    """
    set_seed(seed)
    device = device_of(model)
    n_epochs = math.ceil(config.epochs)
    first = make_epoch_batches(0)
    steps_per_epoch = len(first)
    total_steps = max(1, round(steps_per_epoch * config.epochs))
    warmup = round(config.warmup_ratio * total_steps)

    params = [p for p in model.parameters() if p.requires_grad]
    # The fused AdamW kernel is the same update in one launch per step: it matters on a GPU, where small models
    # are bound by kernel launches.
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                  fused=device.type == "cuda" or None)

    def schedule(step: int) -> float:  # linear decay to zero, optional linear warm-up
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    autocast_dtype = PRECISIONS[config.precision]
    kernel = bf16_matmul(device, config)
    if kernel == TORCH:
        warn_if_emulated(device)
    curve: list[dict] = []
    # The running loss stays on the device between log points: reading it every step would make the host
    # wait for the GPU at each step.
    step, running, seen = 0, torch.zeros((), device=device), 0
    model.train()
    with ExitStack() as stack:
        _masked(stack, model, head_mask, mlp_mask, weight_mask)
        stack.enter_context(bf16_products(kernel))
        start, started = 0, time.monotonic()
        if resume is not None:  # after the masks: a weight-masked model's state has their parametrisations
            identity = fingerprint(model, config, seed, total_steps, steps_per_epoch)
            if kernel == FLOAT32_PRODUCTS:  # a state from torch's kernels is not gone on from with these
                identity["bf16_matmul"] = kernel
            state = load_state(resume, identity)
            if state is not None:
                restore(state, model, optimizer, scheduler)
                start = step = state["step"]
                running, seen, curve = state["running"].to(device), state["seen"], list(state["curve"])
                resume.resumed_from_step, resume.seconds_before = start, state["seconds"]
            last_saved = started
        bar = progress_bar(range(total_steps), total_steps, "fine-tune", progress)
        bar_iter = iter(bar)
        for _ in range(start):
            next(bar_iter, None)
        for epoch in range(n_epochs):
            if (epoch + 1) * steps_per_epoch <= start:  # every step of this epoch was taken before the resume
                continue
            batches = first if epoch == 0 else make_epoch_batches(epoch)
            for i, batch in enumerate(batches):
                if epoch * steps_per_epoch + i < start:  # taken before the resume
                    continue
                if step >= total_steps:
                    break
                with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16,
                                    enabled=autocast_dtype is not None):
                    logits = model(**model_inputs(batch, device)).logits
                loss = task_loss(logits.float(), batch["labels"].to(device))
                loss.backward()
                if config.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                running += loss.detach()
                seen += 1
                next(bar_iter, None)
                if step % log_every == 0 or step == total_steps:
                    curve.append({"step": step, "epoch": epoch, "loss": running.item() / seen,
                                  "lr": scheduler.get_last_lr()[0]})
                    running, seen = torch.zeros((), device=device), 0
                # A long run also writes its last state: a job killed while it evaluates goes on from there.
                if resume is not None and step > start and (
                        time.monotonic() - last_saved >= resume.every_s
                        or (step == total_steps and time.monotonic() - started >= resume.every_s)):
                    save_state(resume, fingerprint=identity, model=model, optimizer=optimizer, scheduler=scheduler,
                               step=step, running=running, seen=seen, curve=curve,
                               seconds=resume.seconds_before + time.monotonic() - started)
                    last_saved = time.monotonic()
        if hasattr(bar, "close"):
            bar.close()
    model.eval()
    if weight_mask is not None:  # bake the zeros in: masked weights are exactly zero afterwards
        from lotterylib.model.masking import prunable_tensors

        with torch.no_grad():
            for name, tensor in prunable_tensors(model).items():
                if name in weight_mask:
                    tensor.mul_(torch.as_tensor(np.asarray(weight_mask[name]), dtype=tensor.dtype,
                                                device=tensor.device))
    return curve


@torch.no_grad()
def predict(
    model: nn.Module,
    batches: list[dict],
    head_mask=None,
    mlp_mask=None,
    weight_mask: Mapping | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Predictions in the original example order (batches carry an ``index``).

    Class ids for classifiers, the raw score for a one-output regressor.
    """
    model.eval()
    device = device_of(model)
    n = sum(len(b["index"]) for b in batches)
    out: np.ndarray | None = None
    with ExitStack() as stack:
        _masked(stack, model, head_mask, mlp_mask, weight_mask)
        for batch in progress_bar(batches, len(batches), "evaluate", progress):
            logits = model(**model_inputs(batch, device)).logits.float().cpu()
            values = logits.squeeze(-1).numpy() if logits.shape[-1] == 1 else logits.argmax(-1).numpy()
            if out is None:
                out = np.zeros(n, dtype=values.dtype)
            out[batch["index"].numpy()] = values
    if out is None:
        raise ValueError("no batches to evaluate: the evaluation set is empty")
    return out


def labels_of(batches: list[dict]) -> np.ndarray:
    """Labels in the original order, from batches that carry an ``index``."""
    n = sum(len(b["index"]) for b in batches)
    first = batches[0]["labels"].numpy()
    out = np.zeros(n, dtype=first.dtype)
    for batch in batches:
        out[batch["index"].numpy()] = batch["labels"].numpy()
    return out


def evaluate(
    model: nn.Module,
    batches: list[dict],
    task: str,
    head_mask=None,
    mlp_mask=None,
    weight_mask: Mapping | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """The task's metrics (see :func:`lotterylib.method.metrics.compute_metrics`) on ``batches``."""
    return evaluate_with_predictions(model, batches, task, head_mask, mlp_mask, weight_mask, progress)[0]


def evaluate_with_predictions(
    model: nn.Module,
    batches: list[dict],
    task: str,
    head_mask=None,
    mlp_mask=None,
    weight_mask: Mapping | None = None,
    progress: bool = False,
) -> tuple[dict[str, float], np.ndarray]:
    """``(metrics, predictions)``: the task's metrics and the dev predictions they came from (example order)."""
    from lotterylib.method.metrics import compute_metrics

    predictions = predict(model, batches, head_mask, mlp_mask, weight_mask, progress)
    return compute_metrics(task, predictions, labels_of(batches)), predictions

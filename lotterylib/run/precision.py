"""Whether bfloat16 autocast pays on this machine's CPU.

A plan's ``train.precision`` is part of its training path: every run of a plan trains at that precision, so that
its comparisons stay like for like. ``bf16`` is faster on GPUs and on CPUs with bfloat16 units (AVX-512 BF16,
AMX). On a CPU without them (AVX2 only, for example) torch's own bf16 matrix products are scalar loops, and
training would run ten or more times slower than in float32; there a fine-tune runs those products as float32
products of the bf16 operands instead (:mod:`lotterylib.run.cpu_bf16`: the same arithmetic, at float32 speed).
When ``$LOTTERY_CPU_BF16_MATMUL=torch`` keeps torch's kernels on such a CPU, this module measures the slowdown
once per process, on a small matrix product, and says so: a warning from :func:`~lotterylib.run.train.fine_tune`,
and a notice from ``python -m lotterylib.run.precision <plan>`` (``make experiments`` runs it first).

It changes no setting: a plan's results are only comparable at the plan's own precision.
"""

from __future__ import annotations

import functools
import sys
import time
import warnings

import torch

#: bf16 slower than fp32 by more than this factor counts as emulated
SLOW = 2.0


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up (first call allocates and picks kernels)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@functools.lru_cache(maxsize=None)
def cpu_bf16_slowdown(size: int = 256, repeats: int = 3) -> float:
    """How many times longer one ``size`` x 384 x 1536 matrix product (a batch through a MiniLM MLP's first layer)
    takes under bfloat16 autocast than in float32 on this CPU, with the threads torch uses now (best of
    ``repeats``; under 2 s where bf16 is emulated)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, 384, generator=generator)
    w = torch.randn(384, 1536, generator=generator)

    def fp32():
        return a @ w

    def bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return a @ w

    with torch.no_grad():
        return _best_time(bf16, repeats) / max(_best_time(fp32, repeats), 1e-9)


def bf16_notice(device: str | torch.device = "cpu", threshold: float = SLOW) -> str | None:
    """A sentence for the user when bf16 training on ``device`` runs on torch's emulated kernels here; None on a
    GPU, where bf16 pays, and where the fine-tunes run the products as float32 products
    (:func:`lotterylib.run.cpu_bf16.kernel_for`)."""
    from lotterylib.run.cpu_bf16 import ENV, TORCH, kernel_for

    device = torch.device(device)
    if kernel_for(device, torch.bfloat16) != TORCH:
        return None
    ratio = cpu_bf16_slowdown()
    if ratio <= threshold:
        return None
    return (f"bfloat16 autocast is emulated on this CPU (torch sees {torch.backends.cpu.get_cpu_capability()}; no "
            f"bfloat16 units): a bf16 matrix product takes {ratio:.0f} times as long as in float32, so training at "
            f"train.precision: bf16 runs many times slower here with torch's kernels. Unset {ENV} to run them as "
            f"float32 products of the bf16 operands (the same arithmetic, at float32 speed; lotterylib.run.cpu_bf16). "
            f"A plan's runs are comparable only at one precision: keep the plan's to extend its grid; for a new plan "
            f"you may also set train.precision: fp32.")


def warn_if_emulated(device: str | torch.device) -> None:
    """Warn once per process and device when bf16 training on ``device`` is emulated (see :func:`bf16_notice`)."""
    name = str(torch.device(device))
    if name in _WARNED:
        return
    _WARNED.add(name)
    notice = bf16_notice(name)
    if notice:
        warnings.warn(notice, RuntimeWarning, stacklevel=3)


_WARNED: set[str] = set()


def main(argv: list[str] | None = None) -> int:
    """``python -m lotterylib.run.precision PLAN``: a notice on stderr when the plan trains in bf16 and this
    machine would emulate it (no GPU that torch sees, or ``LOTTERY_DEVICE=cpu``). Always exits 0."""
    from lotterylib.config.plans import Plan
    from lotterylib.errors import ConfigError
    from lotterylib.run.train import default_device

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m lotterylib.run.precision PLAN", file=sys.stderr)
        return 2
    try:
        plan = Plan.of(argv[0])
    except (ConfigError, OSError, ValueError):
        return 0  # the workflow reports a bad plan itself, with its own message
    precisions = {plan.train_config(task).precision for task in plan.tasks}
    if "bf16" not in precisions:
        return 0
    try:
        device = default_device()
    except ValueError:
        return 0  # a bad LOTTERY_DEVICE: the stages say so
    try:
        notice = bf16_notice(device)
    except ValueError as err:  # a bad LOTTERY_CPU_BF16_MATMUL: said here, and again by the stages
        print(f"lotterybook: {err}", file=sys.stderr)
        return 0
    if notice:
        print(f"lotterybook: plan {plan.name!r}: {notice}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

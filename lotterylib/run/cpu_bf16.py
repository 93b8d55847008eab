"""bfloat16 matrix products on a CPU without bfloat16 units, at float32 speed.

Under bfloat16 autocast every matrix product of the forward pass takes bf16 operands and returns a bf16 result,
and so does each product of the backward pass that follows from it. A bf16 kernel (a GPU's, or a CPU's with
AVX-512 BF16 or AMX) multiplies the operands exactly, adds the products in float32 and rounds the sum to bf16
once. On a CPU without bfloat16 units (AVX2 only, for example) torch has no such kernel: it falls back to scalar
loops that run 6 to 70 times slower than the float32 product of the same shape, and training at a plan's
``precision: bf16`` runs ten or more times slower than in fp32.

:func:`float32_products` runs those products as float32 products of the same bf16 operands, rounded to bf16 once.
The arithmetic is the one a bf16 kernel does: a product of two bf16 numbers is exact in float32, the sum is
taken in float32 and the result is rounded to bf16 once. Only the order of the additions differs, as it differs
between any two devices or BLAS libraries; on random operands about one result element in 5,000 then rounds to
the neighbouring bf16 value (``tests/test_cpu_bf16.py`` measures it). So a run made this way is a run of the
plan's training path at its precision, as one made on another device is; the result files of the runs it made
say so (``bf16_matmul``).

:func:`kernel_for` picks it: on a CPU that torch's bf16 kernels do not serve (no bfloat16 units), training under
bf16 autocast uses the float32 products, unless ``$LOTTERY_CPU_BF16_MATMUL=torch`` asks for torch's own kernels
(the ones of the plan's earlier CPU runs: slower, the same arithmetic). Everything else (fp32 training, GPUs, CPUs
with bf16 units, evaluation) is left as it is.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lotterylib.config.plans import FLOAT32_PRODUCTS  # what a result file's bf16_matmul says of these runs
#: torch's own kernels (what a result file without ``bf16_matmul`` used).
TORCH = "torch"
ENV = "LOTTERY_CPU_BF16_MATMUL"
_CHOICES = {"float32": FLOAT32_PRODUCTS, "torch": TORCH}

_aten = torch.ops.aten
#: The matrix products under autocast and in their backward passes (a Linear's forward is addmm, its two
#: gradients are mm; attention's products are bmm, or baddbmm with a mask).
_PRODUCTS = frozenset({_aten.mm.default, _aten.addmm.default, _aten.bmm.default, _aten.baddbmm.default})


def cpu_has_bf16_kernels() -> bool:
    """Whether torch computes bf16 matrix products on this CPU with a vectorised kernel (oneDNN's, which needs
    AVX-512 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _choice_from_env() -> str | None:
    raw = os.environ.get(ENV, "").strip().lower()
    if not raw:
        return None
    if raw not in _CHOICES:
        raise ValueError(f"{ENV}={raw!r} is not a choice: set it to 'float32' (bf16 products as float32 products "
                         f"of the bf16 operands, the default on a CPU without bfloat16 units) or 'torch' "
                         f"(torch's own bf16 kernels), or unset it")
    return _CHOICES[raw]


def kernel_for(device: str | torch.device, autocast_dtype: torch.dtype | None) -> str | None:
    """How a fine-tune on ``device`` under ``autocast_dtype`` computes its bf16 matrix products: :data:`TORCH`
    (torch's kernels) or :data:`FLOAT32_PRODUCTS`; ``None`` where no bf16 product runs on a CPU (fp32 training,
    a GPU)."""
    if autocast_dtype != torch.bfloat16 or torch.device(device).type != "cpu":
        return None
    chosen = _choice_from_env()
    if chosen is not None:
        return chosen
    return TORCH if cpu_has_bf16_kernels() else FLOAT32_PRODUCTS


def _bf16_on_cpu(args) -> bool:
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    return bool(tensors) and all(t.dtype == torch.bfloat16 and t.device.type == "cpu" for t in tensors)


class _Float32Products(TorchDispatchMode):
    """Every bf16 matrix product on the CPU, as the float32 product of its operands rounded to bf16."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _PRODUCTS and _bf16_on_cpu(args):
            self.count += 1
            wide = [a.float() if isinstance(a, torch.Tensor) else a for a in args]
            return func(*wide, **kwargs).to(torch.bfloat16)
        return func(*args, **kwargs)


@contextlib.contextmanager
def float32_products() -> Iterator[_Float32Products]:
    """Within the block, bf16 matrix products on the CPU run as float32 products of their bf16 operands, rounded
    to bf16 once (forward and backward: the autograd engine runs a CPU graph's backward on the calling thread).
    Yields the mode, whose ``count`` says how many products it took."""
    mode = _Float32Products()
    with mode:
        yield mode


@contextlib.contextmanager
def bf16_products(kernel: str | None) -> Iterator[None]:
    """:func:`float32_products` where ``kernel`` (from :func:`kernel_for`) says so; nothing changes otherwise."""
    if kernel == FLOAT32_PRODUCTS:
        with float32_products():
            yield
    else:
        yield

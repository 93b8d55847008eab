"""bf16 matrix products on a CPU without bfloat16 units run as float32 products of the bf16 operands
(lotterylib.run.cpu_bf16): the arithmetic of torch's bf16 kernels up to the order of the additions, forward and
backward, chosen where it should be and recorded with the runs it made."""

import numpy as np
import pytest
import torch
from torch import nn

from lotterylib.config.plans import TrainConfig
from lotterylib.model.models import tiny_bert
from lotterylib.run import cpu_bf16
from lotterylib.run.resume import Resume
from lotterylib.run.train import bf16_matmul, fine_tune

from conftest import make_batches_by_hand

GEN = torch.Generator().manual_seed(0)


def _bf16(*shape):
    return torch.randn(*shape, generator=GEN).bfloat16()


PRODUCTS = {
    "linear (addmm)": lambda a: torch.addmm(a["bias"], a["x"], a["w"].t()),
    "input gradient (mm)": lambda a: a["g"] @ a["w"],
    "weight gradient (mm)": lambda a: a["g"].t() @ a["x"],
    "attention (bmm)": lambda a: torch.bmm(a["q"], a["k"].transpose(1, 2)),
    "masked attention (baddbmm)": lambda a: torch.baddbmm(a["m"], a["q"], a["k"].transpose(1, 2)),
}
OPERANDS = {"x": _bf16(256, 384), "w": _bf16(1536, 384), "g": _bf16(256, 1536), "bias": _bf16(1536),
            "q": _bf16(12, 64, 32), "k": _bf16(12, 64, 32), "m": _bf16(12, 64, 64)}


@pytest.mark.parametrize("name", PRODUCTS)
def test_each_product_is_torchs_bf16_product_up_to_the_order_of_the_additions(name):
    product = PRODUCTS[name]
    reference = product(OPERANDS)  # torch's own bf16 kernel
    with cpu_bf16.float32_products() as mode:
        ours_ref = product(OPERANDS)
    assert mode.count == 1
    assert ours_ref.dtype == torch.bfloat16 and ours_ref.shape == reference.shape
    exact = product({k: v.double() for k, v in OPERANDS.items()})  # the sum without any rounding
    differ = (ours_ref != reference).float().mean().item()
    assert differ < 2e-3  # a few elements round to the neighbouring bf16 value
    neighbours = (ours_ref.double() - reference.double()).abs() <= reference.double().abs() * 2.0 ** -7 + 1e-6
    assert neighbours.all()
    # both are the exact sum rounded once to bf16: equally close to it
    err_ours = (ours_ref.double() - exact).norm() / exact.norm()
    err_torch = (reference.double() - exact).norm() / exact.norm()
    assert err_ours < 3e-3 and abs(err_ours - err_torch) < 2e-4


def test_forward_and_backward_products_are_taken_and_other_dtypes_left_alone():
    torch.manual_seed(0)
    layer = nn.Linear(32, 16)
    x = torch.randn(8, 32, requires_grad=True)
    with cpu_bf16.float32_products() as mode:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(x)
        y.float().sum().backward()
        assert y.dtype == torch.bfloat16
        assert mode.count == 3  # the forward addmm and the two gradient products
        before = mode.count
        torch.randn(4, 8) @ torch.randn(8, 4)  # a float32 product is not touched
        assert mode.count == before
    assert layer.weight.grad.dtype == torch.float32


def test_the_kernel_is_chosen_by_device_precision_cpu_and_setting(monkeypatch):
    monkeypatch.delenv(cpu_bf16.ENV, raising=False)
    assert cpu_bf16.kernel_for("cpu", None) is None  # fp32 training
    assert cpu_bf16.kernel_for("cuda", torch.bfloat16) is None  # a GPU's own kernels
    monkeypatch.setattr(cpu_bf16, "cpu_has_bf16_kernels", lambda: False)
    assert cpu_bf16.kernel_for("cpu", torch.bfloat16) == cpu_bf16.FLOAT32_PRODUCTS
    monkeypatch.setattr(cpu_bf16, "cpu_has_bf16_kernels", lambda: True)  # AVX-512 BF16 / AMX: torch's are fast
    assert cpu_bf16.kernel_for("cpu", torch.bfloat16) == cpu_bf16.TORCH
    monkeypatch.setenv(cpu_bf16.ENV, "float32")
    assert cpu_bf16.kernel_for("cpu", torch.bfloat16) == cpu_bf16.FLOAT32_PRODUCTS
    monkeypatch.setenv(cpu_bf16.ENV, "Torch")
    assert cpu_bf16.kernel_for("cpu", torch.bfloat16) == cpu_bf16.TORCH
    assert bf16_matmul("cpu", TrainConfig(precision="bf16")) == cpu_bf16.TORCH
    assert bf16_matmul("cpu", TrainConfig(precision="fp32")) is None
    monkeypatch.setenv(cpu_bf16.ENV, "bf16")
    with pytest.raises(ValueError, match=r"LOTTERY_CPU_BF16_MATMUL='bf16' is not a choice.*'float32'.*'torch'"):
        cpu_bf16.kernel_for("cpu", torch.bfloat16)


def _train(kernel, monkeypatch, resume=None, epochs=2):
    monkeypatch.setenv(cpu_bf16.ENV, kernel)
    model = tiny_bert(num_labels=2, seed=0)
    config = TrainConfig(lr=5e-3, batch_size=8, epochs=epochs, precision="bf16")
    curve = fine_tune(model, lambda e: make_batches_by_hand(32, 12, 8, seed=e), config, seed=3, log_every=1,
                      resume=resume)
    return model, curve


@pytest.mark.filterwarnings("ignore:bfloat16 autocast is emulated")
def test_a_fine_tune_with_float32_products_follows_the_one_with_torchs_kernels(monkeypatch):
    fast, fast_curve = _train("float32", monkeypatch)
    slow, slow_curve = _train("torch", monkeypatch)
    fp32_model = tiny_bert(num_labels=2, seed=0)
    fine_tune(fp32_model, lambda e: make_batches_by_hand(32, 12, 8, seed=e),
              TrainConfig(lr=5e-3, batch_size=8, epochs=2), seed=3, log_every=1)
    losses = np.array([[p["loss"] for p in c] for c in (fast_curve, slow_curve)])
    assert np.abs(losses[0] - losses[1]).max() < 0.02
    # the two bf16 runs are no further apart than bf16 is from fp32: the difference is bf16's rounding
    apart = sum((a - b).norm() for a, b in zip(fast.parameters(), slow.parameters()))
    from_fp32 = sum((a - b).norm() for a, b in zip(slow.parameters(), fp32_model.parameters()))
    assert 0 < apart < from_fp32
    again, again_curve = _train("float32", monkeypatch)
    assert again_curve == fast_curve  # and deterministic
    for a, b in zip(fast.parameters(), again.parameters()):
        assert torch.equal(a, b)


@pytest.mark.filterwarnings("ignore:bfloat16 autocast is emulated")
def test_a_state_saved_with_torchs_kernels_is_not_gone_on_from_with_float32_products(monkeypatch, tmp_path):
    path = tmp_path / "state.pt"
    _train("torch", monkeypatch, resume=Resume(path, every_s=1e-9), epochs=1)
    assert path.is_file()  # the last state is written
    with pytest.warns(RuntimeWarning, match="written by a run with other settings"):
        _, curve = _train("float32", monkeypatch, resume=Resume(path, every_s=1e9), epochs=1)
    assert (tmp_path / "state.pt.stale").is_file()
    resumed = Resume(tmp_path / "again.pt", every_s=1e-9)
    _train("float32", monkeypatch, resume=resumed, epochs=1)
    again = Resume(tmp_path / "again.pt", every_s=1e9)
    _, curve_again = _train("float32", monkeypatch, resume=again, epochs=1)
    assert again.resumed_from_step == 4 and curve_again == curve  # the same kernel goes on from its own state


def test_a_result_file_says_how_its_bf16_products_ran(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from lotterylib.run.experiment import _how_trained

    model = tiny_bert(num_labels=2, seed=0)
    resume = Resume(tmp_path / "state.pt")
    bf16 = SimpleNamespace(train_config=TrainConfig(precision="bf16"))
    monkeypatch.setenv(cpu_bf16.ENV, "float32")
    assert _how_trained(bf16, model, resume) == {"bf16_matmul": "float32 products"}
    monkeypatch.setenv(cpu_bf16.ENV, "torch")
    resume.resumed_from_step = 12
    assert _how_trained(bf16, model, resume) == {"resumed_from_step": 12, "bf16_matmul": "torch"}
    assert _how_trained(SimpleNamespace(train_config=TrainConfig(precision="fp32")), model, resume) == {
        "resumed_from_step": 12}

"""The bf16 probe: a notice where this CPU would emulate bfloat16 training with torch's kernels, silence elsewhere
(and where the fine-tunes run the products as float32 products, lotterylib.run.cpu_bf16); no setting changes."""

import warnings

import pytest
import torch

from lotterylib.run import precision


@pytest.fixture
def slowdown(monkeypatch):
    """Pretend the CPU probe measured a given bf16/fp32 ratio (and forget what earlier calls cached), with torch's
    own bf16 kernels (``LOTTERY_CPU_BF16_MATMUL=torch``), the only ones the probe speaks of."""
    precision._WARNED.clear()
    monkeypatch.setenv("LOTTERY_CPU_BF16_MATMUL", "torch")

    def pretend(ratio):
        monkeypatch.setattr(precision, "cpu_bf16_slowdown", lambda *a, **k: ratio)

    yield pretend
    precision._WARNED.clear()


def test_the_probe_times_a_real_matrix_product():
    ratio = precision.cpu_bf16_slowdown(size=32, repeats=1)
    assert ratio > 0 and ratio == precision.cpu_bf16_slowdown(size=32, repeats=1)  # measured once per process


def test_the_probe_leaves_the_global_random_state_alone():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    precision.cpu_bf16_slowdown.__wrapped__(size=16, repeats=1)  # uncached: it really runs
    assert torch.equal(before, torch.get_rng_state())


def test_notice_only_where_bf16_is_emulated_on_a_cpu(slowdown):
    slowdown(17.0)
    notice = precision.bf16_notice("cpu")
    assert "emulated" in notice and "17 times" in notice and "train.precision: fp32" in notice
    assert precision.bf16_notice("cuda") is None  # a GPU is never probed
    slowdown(0.6)
    assert precision.bf16_notice("cpu") is None


def test_training_warns_once_and_trains_the_same(slowdown):
    from lotterylib.config.plans import TrainConfig
    from lotterylib.model.models import tiny_bert
    from lotterylib.run.train import fine_tune

    slowdown(17.0)
    torch.manual_seed(0)
    batch = {"input_ids": torch.randint(5, 90, (4, 8)), "attention_mask": torch.ones(4, 8, dtype=torch.long),
             "labels": torch.tensor([0, 1, 0, 1])}
    config = TrainConfig(lr=1e-3, batch_size=4, epochs=1, precision="bf16")
    with pytest.warns(RuntimeWarning, match="emulated on this CPU"):
        warned = fine_tune(tiny_bert(num_labels=2, seed=0), lambda epoch: [batch], config, seed=0, log_every=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second run in the same process stays quiet
        again = fine_tune(tiny_bert(num_labels=2, seed=0), lambda epoch: [batch], config, seed=0, log_every=1)
    precision._WARNED.clear()
    slowdown(0.6)  # where bf16 pays: no probe result to report, and the very same training
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = fine_tune(tiny_bert(num_labels=2, seed=0), lambda epoch: [batch], config, seed=0, log_every=1)
    assert warned == again == quiet  # a notice, never a change to training


def test_the_make_notice_names_the_plan_and_stays_quiet_for_fp32(slowdown, capsys, monkeypatch):
    monkeypatch.delenv("LOTTERY_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    slowdown(17.0)
    assert precision.main(["demo"]) == 0
    assert "plan 'demo': bfloat16 autocast is emulated" in capsys.readouterr().err
    assert precision.main(["smoke"]) == 0  # the smoke plan trains in fp32
    assert capsys.readouterr().err == ""
    assert precision.main(["no-such-plan"]) == 0 and capsys.readouterr().err == ""  # the workflow reports it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert precision.main(["demo"]) == 0 and capsys.readouterr().err == ""  # a GPU trains bf16 natively


def test_no_notice_where_the_fine_tunes_run_float32_products(slowdown, monkeypatch, capsys):
    from lotterylib.config.plans import TrainConfig
    from lotterylib.model.models import tiny_bert
    from lotterylib.run.train import fine_tune

    slowdown(17.0)
    monkeypatch.setenv("LOTTERY_CPU_BF16_MATMUL", "float32")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.bf16_notice("cpu") is None
    assert precision.main(["demo"]) == 0 and capsys.readouterr().err == ""
    batch = {"input_ids": torch.randint(5, 90, (4, 8)), "attention_mask": torch.ones(4, 8, dtype=torch.long),
             "labels": torch.tensor([0, 1, 0, 1])}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fine_tune(tiny_bert(num_labels=2, seed=0), lambda epoch: [batch],
                  TrainConfig(lr=1e-3, batch_size=4, epochs=1, precision="bf16"), seed=0, log_every=1)
    monkeypatch.setenv("LOTTERY_CPU_BF16_MATMUL", "fast please")
    assert precision.main(["demo"]) == 0
    assert "LOTTERY_CPU_BF16_MATMUL='fast please' is not a choice" in capsys.readouterr().err

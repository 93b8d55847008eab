"""Reading a plan's result files into tables (lotterylib.read.collect)."""

from __future__ import annotations

import pandas as pd

from lotterylib.read import collect


def _scores():
    return pd.DataFrame([{"task": t, "method": "s", "stage": "retrained", "subnetwork": sub, "score": v}
                         for t, base in (("MRPC", 0.8), ("CoLA", 0.3)) for sub, v in (("good", base), ("random", base - 0.1))
                         for _ in range(2)])


def test_cell_table_with_a_one_key_index_fills_its_cells():
    table = collect.cell_table(_scores(), index=("task",))
    assert list(table["task"]) == ["MRPC", "CoLA"]
    assert table.loc[0, "retrained: good"] == "0.800 ± 0.000 (n=2)"
    assert table.loc[1, "retrained: random"] == "0.200 ± 0.000 (n=2)"


def test_cell_table_with_two_keys_and_an_empty_cell_says_why():
    scores = _scores()
    scores = scores[~((scores["task"] == "CoLA") & (scores["subnetwork"] == "random"))]
    table = collect.cell_table(scores, index=("task", "method"))
    assert table.loc[1, "retrained: random"] == "no run yet"
    assert table.loc[0, "retrained: random"].startswith("0.700")


def test_the_device_label_says_how_a_cpu_computed_its_bf16_products():
    cpu = {"provenance": {"device": "cpu"}}
    assert collect._device_label(cpu) == "CPU"
    assert collect._device_label({**cpu, "bf16_matmul": "torch"}) == "CPU"
    assert collect._device_label({**cpu, "bf16_matmul": "float32 products"}) == "CPU (bf16 products in float32)"
    assert collect._device_label({"provenance": {"device": "cuda:NVIDIA H100 80GB HBM3"}}) == "GPU (NVIDIA H100 80GB HBM3)"

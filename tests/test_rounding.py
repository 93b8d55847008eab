"""The float16 rounding of a plan's pre-trained weights, measured against its float32 companion plan."""

from __future__ import annotations

import json
import math

import pytest

from lotterylib.method.metrics import reported_metric, search_metric
from lotterylib.read import rounding
from lotterylib.store import layout

SMOKE_PLAN = (layout.REPO / "plans" / "smoke.yaml").read_text()


def _plan_file(folder, name: str, weights: str, seeds=(1337, 42)):
    text = SMOKE_PLAN.replace("name: smoke", f"name: {name}").replace("seeds: [1337, 42]", f"seeds: {list(seeds)}")
    (folder / f"{name}.yaml").write_text(text + f"model_weights: {weights}\n")


def _finetune(plan: str, task: str, seed: int, score: float):
    path = layout.finetune_file(plan, task, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    metric = reported_metric(task)
    metrics = {metric: score, search_metric(task): score}
    path.write_text(json.dumps({"metrics": metrics, "majority_baseline": {metric: 0.5}, "n_train": 64, "n_dev": 48}))


@pytest.fixture
def plans(tmp_path, monkeypatch):
    folder = tmp_path / "plans"
    folder.mkdir()
    monkeypatch.setattr(rounding, "PLANS_DIR", folder)
    monkeypatch.setattr("lotterylib.config.plans.PLANS_DIR", folder)
    monkeypatch.setenv("LOTTERY_RESULTS", str(tmp_path / "results"))
    _plan_file(folder, "p16", "float16", seeds=(1337, 42, 86))
    _plan_file(folder, "p16_float32", "float32", seeds=(1337, 42, 86))
    _plan_file(folder, "p32", "float32")
    return folder


def test_a_float32_plan_has_nothing_to_measure(plans):
    assert rounding.companion("p32") is None
    assert rounding.rounding_effect("p32").empty
    assert "nothing" in rounding.rounding_sentence("p32") or "no rounding" in rounding.rounding_sentence("p32")


def test_without_runs_the_sentence_says_so(plans):
    assert rounding.companion("p16").name == "p16_float32"
    assert "no run yet" in rounding.rounding_sentence("p16")


def test_the_effect_is_paired_by_seed_and_judged_by_the_one_rule(plans):
    for seed, (a, b) in {1337: (0.80, 0.79), 42: (0.82, 0.80), 86: (0.81, 0.80)}.items():
        _finetune("p16_float32", "MRPC", seed, a)
        _finetune("p16", "MRPC", seed, b)
    _finetune("p16", "MRPC", 71, 0.10)  # no float32 partner: left out
    table = rounding.rounding_effect("p16").set_index("task")
    row = table.loc["MRPC"]
    assert row["n"] == 3
    assert math.isclose(row["difference"], ((0.79 - 0.80) + (0.80 - 0.82) + (0.80 - 0.81)) / 3)
    assert row["low"] < row["difference"] < row["high"]
    assert row["verdict"] == "on par"
    assert table.loc["RTE", "n"] == 0
    sentence = rounding.rounding_sentence("p16")
    assert "MRPC -0.013 acc" in sentence and "n=3" in sentence and "1 of 2 tasks have no paired run yet" in sentence


def test_paired_scores_and_their_figure(plans):
    import matplotlib

    matplotlib.use("Agg")
    from lotterylib.report import plots

    for seed in (1337, 42):
        _finetune("p16_float32", "RTE", seed, 0.6)
        _finetune("p16", "RTE", seed, 0.58)
        _finetune("p16_float32", "MRPC", seed, 0.7)
    _finetune("p16", "MRPC", 1337, 0.71)
    pairs = rounding.paired_scores("p16")
    assert sorted(map(tuple, pairs[["task", "seed"]].to_numpy())) == [("MRPC", 1337), ("RTE", 42), ("RTE", 1337)]
    fig = plots.rounding_pairs(pairs)
    assert [ax.get_title().split()[0] for ax in fig.axes] == ["MRPC", "RTE"]  # GLUE order
    assert rounding.paired_scores("p32").empty

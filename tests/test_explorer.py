"""The head-mask explorer: live callbacks on a tiny model, static views from result files."""

import numpy as np
import pytest
import torch

from lotterylib.report.explorer import Explorer, ExplorerModel, mask_table_html, switchable
from lotterylib.model.models import tiny_bert
from lotterylib.run.train import predict

from conftest import make_batches_by_hand


@pytest.fixture(scope="module")
def state():
    model = tiny_bert(seed=11, attn_implementation="eager")
    with torch.no_grad():  # louder heads, so that what they carry decides the predictions
        for layer in model.bert.encoder.layer:
            layer.attention.output.dense.weight.mul_(30)
    batches = make_batches_by_hand(64, 12, 16, seed=3)
    for b in batches:  # a [CLS] first token: without attention every example looks the same to the classifier
        b["input_ids"][:, 0] = 101
    own = predict(model, batches)  # labels = the full model's own predictions: accuracy 1.0
    assert 0 < own.mean() < 1
    for b in batches:
        b["labels"] = torch.as_tensor(own[b["index"].numpy()])
    good = (np.array([[1, 1, 0, 0], [0, 1, 1, 0]], dtype=np.float32), np.array([1, 0], dtype=np.float32))
    return ExplorerModel(model, batches[:2], "MRPC", presets={"s-pruning: good": good},
                         importance=np.arange(8.0).reshape(2, 4) / 7, attention_batch=batches[0],
                         full_batches=batches)


def test_full_model_scores_one_and_turning_heads_off_changes_it(state):
    explorer = Explorer(state)
    assert state.full_score == 1.0 and explorer.current == 1.0
    assert "1.0000" in explorer.status.value and "heads kept 8/8" in explorer.status.value
    for row in explorer.head_buttons:  # the user clicks every head off
        for button in row:
            button.value = False
    assert state.kept() == (0, 2)
    assert explorer.current < 1.0
    assert "heads kept 0/8" in explorer.status.value
    explorer.mlp_buttons[1].value = False
    assert state.mlp_mask.tolist() == [1.0, 0.0]


def test_presets_set_every_toggle_and_rescore_once(state):
    explorer = Explorer(state)
    calls = {"n": 0}
    original = state.score

    def counting():
        calls["n"] += 1
        return original()

    state.score = counting
    try:
        explorer.preset.value = "s-pruning: good"
    finally:
        del state.score
    assert calls["n"] == 1
    assert [[b.value for b in row] for row in explorer.head_buttons] == [[True, True, False, False],
                                                                        [False, True, True, False]]
    assert [b.value for b in explorer.mlp_buttons] == [True, False]
    explorer.preset.value = "all heads of layer 1 off"
    assert state.head_mask[1].sum() == 0 and state.head_mask[0].sum() == 4
    explorer.preset.value = "full model"
    assert explorer.current == 1.0


def test_selected_head_shows_its_importance_and_attention(state):
    explorer = Explorer(state)
    explorer.selected.value = (1, 3)
    assert "importance of layer 1 head 3: 1.000" in explorer.status.value
    weights, tokens = state.attention_map(1, 3, 0)
    n = int(state.attention_batch["attention_mask"][0].sum())
    assert weights.shape == (n, n) and len(tokens) == n
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert explorer.attention.value[:4] == b"\x89PNG"  # the map was drawn


def test_full_dev_set_on_request(state):
    explorer = Explorer(state)
    n_subset = sum(len(b["index"]) for b in state.batches)
    explorer.full_dev.value = True
    assert sum(len(b["index"]) for b in state.batches) == 64 > n_subset
    assert state.full_score == 1.0
    explorer.full_dev.value = False
    assert sum(len(b["index"]) for b in state.batches) == n_subset


def test_m_pruning_preset_applies_a_weight_mask_under_the_toggles(state):
    from lotterylib.model.masking import prunable_tensors

    zeros = {k: np.zeros(v.shape, dtype=bool) for k, v in prunable_tensors(state.model).items()}
    state.presets["m-pruning: everything"] = (np.ones((2, 4)), np.ones(2), zeros)
    explorer = Explorer(state)
    explorer.preset.value = "m-pruning: everything"
    assert state.weights_kept() == 0.0 and "keeps 0.0% of prunable weights" in explorer.status.value
    assert explorer.current < 1.0 and all(b.value for row in explorer.head_buttons for b in row)
    explorer.preset.value = "full model"
    assert state.weight_mask is None and explorer.current == 1.0


def test_unknown_preset_is_refused(state):
    with pytest.raises(ValueError, match="no preset"):
        state.apply_preset("best heads")


def test_static_building_blocks():
    html = mask_table_html(np.array([[1.0, 0.0]]), np.array([1.0]), highlight={(0, 1)})
    assert html.count("<td") == 4 and "class=hit" in html
    view = switchable(["a", "b"], ["<p>A</p>", "<p>B</p>"], "pick")
    control, stack = view.children
    assert stack.selected_index == 0 and len(stack.children) == 2
    with pytest.raises(ValueError, match="one label per view"):
        switchable(["a"], [], "x")


def test_static_explorer_leaves_out_tasks_without_a_run(tmp_path, monkeypatch):
    import shutil
    from pathlib import Path

    from lotterylib.report.explorer import static_explorer
    from lotterylib.config.plans import Plan

    committed = Path(__file__).resolve().parents[1] / "results" / "smoke"
    seed = Plan.load("smoke").seeds[0]
    monkeypatch.setenv("LOTTERY_RESULTS", str(tmp_path))
    widget = static_explorer("smoke", seed, ["MRPC", "RTE"])  # nothing under tmp_path: a message, no tabs
    assert f"No fine-tuned run of seed {seed}" in widget.value
    shutil.copytree(committed / "RTE", tmp_path / "smoke" / "RTE")  # RTE's committed runs, MRPC's not
    widget = static_explorer("smoke", seed, ["MRPC", "RTE"])
    control = widget.children[0]
    assert [label for label, _ in control.options] == ["RTE"]

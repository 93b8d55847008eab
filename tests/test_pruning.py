"""Pruning searches, subnetworks and mask files."""

import json

import numpy as np
import pytest

from lotterylib.method.importance import Importance
from lotterylib.model.masking import prunable_tensors
from lotterylib.store.masks import load_mask, save_mask
from lotterylib.model.models import tiny_bert
from lotterylib.method.pruning import m_prune_search, m_prune_steps, passes, s_prune_search
from lotterylib.model.structure import ModelStructure
from lotterylib.method.subnetworks import (
    keep_top_k, structured_subnetwork, super_survivor_masks, weight_subnetwork,
)


def weights_of(model):
    return {k: v.detach().numpy().copy() for k, v in prunable_tensors(model).items()}


# --- m-pruning --------------------------------------------------------------------------------

def test_m_pruning_reaches_sparsity_one_minus_point_nine_to_the_k():
    weights = weights_of(tiny_bert())
    n = sum(w.size for w in weights.values())
    result = m_prune_search(weights, evaluate=lambda mask: 1.0, full_metric=1.0, max_steps=15)
    assert len(result.trace) == 15
    for record in result.trace:
        k = record["step"]
        assert abs(record["sparsity"] - (1 - 0.9 ** k)) <= k / n + 1e-12
        # the mask really has that many pruned weights, and they are the smallest ones
    mask = result.weight_mask
    kept = np.concatenate([m.ravel() for m in mask.values()])
    magnitudes = np.abs(np.concatenate([w.ravel() for w in weights.values()]))
    assert (~kept).sum() == result.trace[-1]["n_pruned"]
    assert magnitudes[~kept].max() <= magnitudes[kept].min()


def test_m_prune_step_counts_follow_pytorch_rounding():
    assert list(m_prune_steps(100, max_steps=4)) == [10, 19, 27, 34]
    assert list(m_prune_steps(3))[-1] == 3  # ends when everything is pruned


def test_the_90_percent_rule_stops_at_the_first_failing_step():
    weights = weights_of(tiny_bert())
    scores = iter([0.95, 0.92, 0.91, 0.89, 0.99, 0.99])  # fails at step 4; a later pass must not count
    result = m_prune_search(weights, evaluate=lambda mask: next(scores), full_metric=1.0)
    assert [r["passed"] for r in result.trace] == [True, True, True, False]
    kept = sum(int(m.sum()) for m in result.weight_mask.values())
    n = sum(w.size for w in weights.values())
    assert n - kept == result.trace[2]["n_pruned"]  # the last mask that passed
    assert passes(0.9, 1.0) and not passes(0.8999, 1.0)


def test_search_is_skipped_for_a_non_positive_full_metric():
    weights = weights_of(tiny_bert())
    result = m_prune_search(weights, evaluate=lambda m: pytest.fail("must not evaluate"), full_metric=0.0)
    assert result.skipped and "non-positive" in result.skipped and not result.trace
    s = s_prune_search(lambda h, m: pytest.fail("no importance"), lambda h, m: 0.0, full_metric=-0.1,
                       n_layers=2, n_heads=4)
    assert s.skipped and s.head_mask.all()


# --- s-pruning --------------------------------------------------------------------------------

def fixed_importance(head_scores, mlp_scores):
    def importance(head_mask, mlp_mask):
        return Importance(head_scores * head_mask, mlp_scores * mlp_mask, 1, "example")
    return importance


def test_s_pruning_phases_and_steps():
    n_layers, n_heads = 3, 4  # 12 heads: floor(10 %) = 1 head per step
    rng = np.random.default_rng(0)
    head_scores, mlp_scores = rng.random((n_layers, n_heads)) + 0.1, np.array([0.3, 0.2, 0.9])
    # metric falls with what is pruned: passes until 5 heads + 1 MLP are gone
    def evaluate(head_mask, mlp_mask):
        return 1.0 - 0.02 * (12 - head_mask.sum()) - 0.05 * (3 - mlp_mask.sum())
    result = s_prune_search(fixed_importance(head_scores, mlp_scores), evaluate, full_metric=1.0,
                            n_layers=n_layers, n_heads=n_heads, normalized=False)
    phases = [r["phase"] for r in result.trace]
    assert phases[0] == "heads+mlps" and "heads" in phases and phases[-1] == "mlps"
    first = result.trace[0]
    assert len(first["pruned_heads"]) == 1 and first["pruned_mlps"] == [1]  # the lowest MLP
    lowest = np.unravel_index(np.argmin(head_scores), head_scores.shape)
    assert first["pruned_heads"] == [[int(lowest[0]), int(lowest[1])]]
    assert all(evaluate(result.head_mask, result.mlp_mask) >= 0.9 for _ in [0])
    # each phase ends on its first failure and the final mask is the last that passed
    for phase in ("heads+mlps", "heads", "mlps"):
        records = [r for r in result.trace if r["phase"] == phase]
        assert all(r["passed"] for r in records[:-1])
    assert evaluate(result.head_mask, result.mlp_mask) >= 0.9


def test_s_pruning_halved_phase_two_step():
    n_layers, n_heads = 4, 10  # 40 heads: 4 per step, 2 when halved
    importance = fixed_importance(np.arange(40.0).reshape(4, 10) + 1, np.arange(4.0) + 1)
    counter = {"n": 0}
    def evaluate(head_mask, mlp_mask):
        counter["n"] += 1
        return 1.0 if counter["n"] <= 1 else 0.0
    result = s_prune_search(importance, evaluate, 1.0, n_layers, n_heads, halve_phase2=True, normalized=False)
    phase2 = [r for r in result.trace if r["phase"] == "heads"]
    assert len(phase2[0]["pruned_heads"]) == 2
    assert result.options["step_heads"] == 4


def test_s_pruning_can_remove_every_component():
    result = s_prune_search(fixed_importance(np.ones((2, 2)), np.ones(2)), lambda h, m: 1.0, 1.0, 2, 2)
    assert result.head_mask.sum() == 0 and result.mlp_mask.sum() == 0


# --- subnetworks ------------------------------------------------------------------------------

def good_masks(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((6, 12)) < 0.6).astype(np.float32), (rng.random(6) < 0.5).astype(np.float32)


@pytest.mark.parametrize("kind", ["random", "bad"])
def test_random_and_bad_structured_have_exactly_the_good_size(kind):
    for seed in range(5):
        head, mlp = good_masks(seed)
        h, m = structured_subnetwork(kind, head, mlp, seed=seed, task="MRPC")
        assert h.sum() == head.sum() and m.sum() == mlp.sum()
        h2, m2 = structured_subnetwork(kind, head, mlp, seed=seed, task="MRPC")
        assert np.array_equal(h, h2) and np.array_equal(m, m2)  # same seed, same mask
    h3, _ = structured_subnetwork(kind, head, mlp, seed=99, task="MRPC")
    assert not np.array_equal(h, h3)


def test_bad_keeps_every_pruned_component_when_they_fit():
    head = np.ones((2, 4), dtype=np.float32)
    head[0, :3] = 0  # 3 pruned, 5 kept: bad = the 3 pruned + 2 random survivors
    bad, _ = structured_subnetwork("bad", head, np.ones(2), seed=0, task="MRPC")
    assert bad.sum() == 5 and (bad[0, :3] == 1).all()
    head = np.zeros((2, 4), dtype=np.float32)
    head[0, 0] = 1  # 7 pruned, 1 kept: bad = one of the pruned
    bad, _ = structured_subnetwork("bad", head, np.ones(2), seed=0, task="MRPC")
    assert bad.sum() == 1 and bad[0, 0] == 0


def test_bernoulli_random_matches_only_on_average():
    head, mlp = good_masks()
    sizes = [structured_subnetwork("random", head, mlp, seed=s, task="MRPC", bernoulli=True)[0].sum() for s in range(200)]
    assert len(set(sizes)) > 1
    assert np.mean(sizes) == pytest.approx(head.sum(), rel=0.05)


@pytest.mark.parametrize("kind", ["random", "bad"])
def test_weight_subnetworks_have_exactly_the_good_size(kind):
    weights = weights_of(tiny_bert())
    good = m_prune_search(weights, lambda m: 1.0, 1.0, max_steps=5).weight_mask
    n_good = sum(int(m.sum()) for m in good.values())
    sub = weight_subnetwork(kind, good, weights, seed=3, task="MRPC")
    assert sum(int(m.sum()) for m in sub.values()) == n_good
    again = weight_subnetwork(kind, good, weights, seed=3, task="MRPC")
    assert all(np.array_equal(sub[k], again[k]) for k in sub)
    if kind == "bad":  # keeps the smallest magnitudes
        flat_w = np.abs(np.concatenate([w.ravel() for w in weights.values()]))
        flat_m = np.concatenate([sub[k].ravel() for k in weights])
        assert flat_w[flat_m].max() <= flat_w[~flat_m].min()


def test_super_survivors_matched_by_default():
    heads = np.array([[[1, 1, 0, 0]], [[1, 0, 1, 0]], [[1, 1, 1, 0]]], dtype=np.float32)  # (S=3, L=1, H=4)
    mlps = np.array([[1], [1], [1]], dtype=np.float32)
    out = super_survivor_masks(heads, mlps, seed=0, task="MRPC")
    assert out["good"][0].tolist() == [[1, 0, 0, 0]] and out["good"][1].tolist() == [1]
    assert out["bad"][0].tolist() == [[0, 0, 0, 1]]  # the one head pruned in every seed
    for sub in ("random", "bad"):  # exactly the good size, heads and MLPs
        assert out[sub][0].sum() == out["good"][0].sum() and out[sub][1].sum() == out["good"][1].sum()


def test_super_bad_is_topped_up_to_the_good_size():
    # 3 heads kept in every seed, only 1 pruned in every seed: bad = that one + 2 others, at random
    heads = np.array([[[1, 1, 1, 0, 1, 0]], [[1, 1, 1, 0, 0, 1]]], dtype=np.float32)
    out = super_survivor_masks(heads, np.ones((2, 1)), seed=0, task="CoLA")
    assert out["good"][0].sum() == 3 and out["bad"][0].sum() == 3 and out["bad"][0][0, 3] == 1
    authors = super_survivor_masks(heads, np.ones((2, 1)), seed=0, task="CoLA", resize="authors")
    assert authors["bad"][0].tolist() == [[0, 0, 0, 1, 0, 0]]  # the authors' resizing: the pool only
    assert authors["random"][0].sum() == 2 and authors["random"][0][0, 4:].sum() == 2
    with pytest.raises(ValueError, match="resize"):
        super_survivor_masks(heads, np.ones((2, 1)), seed=0, task="CoLA", resize="bizzaro")


def test_keep_top_k_refuses_impossible_sizes():
    with pytest.raises(ValueError, match="cannot keep"):
        keep_top_k(np.ones(3), 4)
    with pytest.raises(ValueError, match="subnetwork must be"):
        structured_subnetwork("best", *good_masks(), seed=0, task="MRPC")
    with pytest.raises(ValueError, match="only 0"):
        structured_subnetwork("random", np.full((2, 2), 0.5), np.ones(2), seed=0, task="MRPC")


# --- mask files -------------------------------------------------------------------------------

def test_structured_mask_round_trip(tmp_path):
    s = ModelStructure.of(tiny_bert())
    head = np.array([[1, 0, 1, 1], [0, 0, 1, 1]], dtype=np.float32)
    stem = save_mask(tmp_path / "good", {"head_mask": head, "mlp_mask": np.array([1, 0])}, s, "structured",
                     model="tiny-bert", task="MRPC", seed=42, method="s", subnetwork="good")
    loaded = load_mask(stem, structure=s, expect={"task": "MRPC", "seed": 42})
    assert np.array_equal(loaded.arrays["head_mask"], head)
    assert loaded.meta["model"] == "tiny-bert" and loaded.meta["convention"].startswith("1 = kept")
    assert not list(tmp_path.glob("*.tmp"))
    with np.load(tmp_path / "good.npz", allow_pickle=False) as data:  # no pickles needed
        assert set(data.files) == {"head_mask", "mlp_mask"}


def test_weight_mask_round_trip(tmp_path):
    model = tiny_bert()
    s = ModelStructure.of(model)
    good = m_prune_search(weights_of(model), lambda m: 1.0, 1.0, max_steps=3).weight_mask
    stem = save_mask(tmp_path / "m_good", good, s, "weights", model="tiny-bert")
    loaded = load_mask(stem, structure=s)
    assert all(np.array_equal(loaded.arrays[k], good[k]) for k in good)
    assert json.loads((tmp_path / "m_good.json").read_text())["sparsity"] == pytest.approx(1 - 0.9 ** 3, abs=1e-3)


def test_mask_for_another_model_or_task_is_refused(tmp_path):
    s = ModelStructure.of(tiny_bert())
    stem = save_mask(tmp_path / "x", {"head_mask": np.ones((2, 4)), "mlp_mask": np.ones(2)}, s, "structured",
                     task="RTE")
    other = ModelStructure.of(tiny_bert(n_layers=3))
    with pytest.raises(ValueError, match="made for a model"):
        load_mask(stem, structure=other)
    with pytest.raises(ValueError, match="task='RTE'"):
        load_mask(stem, expect={"task": "MRPC"})
    # a tampered array of the wrong shape, with a sidecar that does not say so
    np.savez(tmp_path / "x.npz", head_mask=np.ones((3, 3)), mlp_mask=np.ones(2))
    with pytest.raises(ValueError, match="head_mask .* has shape"):
        load_mask(stem, structure=s)


def test_missing_sidecar_and_bad_kind_are_refused(tmp_path):
    s = ModelStructure.of(tiny_bert())
    with pytest.raises(ValueError, match="kind"):
        save_mask(tmp_path / "y", {}, s, "heads")
    np.savez(tmp_path / "z.npz", head_mask=np.ones((2, 4)))
    with pytest.raises(FileNotFoundError, match="sidecar"):
        load_mask(tmp_path / "z")


def test_weight_mask_naming_foreign_tensors_is_refused(tmp_path):
    s = ModelStructure.of(tiny_bert())
    stem = save_mask(tmp_path / "w", {"bert.embeddings.word_embeddings.weight": np.ones(3, bool)}, s, "weights")
    with pytest.raises(ValueError, match="lacks"):
        load_mask(stem, structure=s)

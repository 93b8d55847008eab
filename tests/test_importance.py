"""Importance scores: exact per-example expectation, zero for masked components."""

import numpy as np
import pytest
import torch

from lotterylib.method.importance import compute_importance, normalize_head_scores, normalize_mlp_scores
from lotterylib.model.masking import gates
from lotterylib.model.models import tiny_bert
from lotterylib.model.forward import task_loss

from conftest import make_batches_by_hand


def test_per_example_scores_equal_the_batch_size_one_loop(tiny, tiny_batches):
    batched = compute_importance(tiny, tiny_batches)
    singles = [{k: v[i:i + 1] for k, v in b.items()} for b in tiny_batches for i in range(len(b["index"]))]
    # trim each single example to its own length, as a batch of one would be
    singles = [{k: (v[:, :int(s["attention_mask"].sum())] if v.dim() == 2 else v) for k, v in s.items()}
               for s in singles]
    loop = compute_importance(tiny, singles)
    assert batched.n_examples == loop.n_examples == 20
    np.testing.assert_allclose(batched.head, loop.head, rtol=1e-4)
    np.testing.assert_allclose(batched.mlp, loop.mlp, rtol=1e-4)


def test_masked_head_and_mlp_score_zero(tiny, tiny_batches):
    head_mask = np.ones((2, 4), dtype=np.float32)
    head_mask[0, 1] = 0
    mlp_mask = np.array([1, 0], dtype=np.float32)
    for abs_per in ("example", "batch"):
        scores = compute_importance(tiny, tiny_batches, head_mask, mlp_mask, abs_per=abs_per)
        assert scores.head[0, 1] == 0 and scores.mlp[1] == 0
        assert (np.delete(scores.head.ravel(), 1) > 0).all() and scores.mlp[0] > 0


def test_scores_agree_with_a_finite_difference_estimate():
    model = tiny_bert(seed=5, dtype=torch.float64)
    batches = make_batches_by_hand(6, 9, 6, seed=4)
    scores = compute_importance(model, batches)
    batch = batches[0]
    eps = 1e-6

    def loss_of(example: int, head_mask, mlp_mask) -> float:
        one = {k: v[example:example + 1] for k, v in batch.items()}
        with torch.no_grad(), gates(model, torch.tensor(head_mask), torch.tensor(mlp_mask)):
            out = model(input_ids=one["input_ids"], attention_mask=one["attention_mask"]).logits
        return task_loss(out, one["labels"], reduction="sum").item()

    for (layer, head) in [(0, 0), (1, 3)]:
        fd = []
        for example in range(6):
            plus, minus = np.ones((2, 4)), np.ones((2, 4))
            plus[layer, head] += eps
            minus[layer, head] -= eps
            fd.append(abs(loss_of(example, plus, np.ones(2)) - loss_of(example, minus, np.ones(2))) / (2 * eps))
        assert scores.head[layer, head] == pytest.approx(np.mean(fd), rel=1e-5)
    fd = []
    for example in range(6):
        plus, minus = np.ones(2), np.ones(2)
        plus[1] += eps
        minus[1] -= eps
        fd.append(abs(loss_of(example, np.ones((2, 4)), plus) - loss_of(example, np.ones((2, 4)), minus)) / (2 * eps))
    assert scores.mlp[1] == pytest.approx(np.mean(fd), rel=1e-5)


def test_batch_variant_is_the_abs_of_the_batch_mean_gradient(tiny, tiny_batches):
    per_batch = compute_importance(tiny, tiny_batches, abs_per="batch")
    per_example = compute_importance(tiny, tiny_batches, abs_per="example")
    # |mean of gradients| <= mean of |gradients| per batch (triangle inequality), summed over batches
    assert (per_batch.head <= per_example.head * len(tiny_batches) + 1e-9).all()
    assert per_batch.abs_per == "batch"


def test_regression_loss_is_used_for_one_output():
    model = tiny_bert(num_labels=1)
    batches = make_batches_by_hand(8, 7, 4, num_labels=1)
    scores = compute_importance(model, batches)
    assert np.isfinite(scores.head).all() and (scores.head > 0).all()


def test_normalisation_is_the_authors():
    head = np.array([[3.0, 4.0], [1.0, 0.0]])
    norm = normalize_head_scores(head)
    assert norm.min() == 0 and norm.max() == 1
    np.testing.assert_allclose(norm, [[0.6, 0.8], [1.0, 0.0]])
    np.testing.assert_allclose(normalize_mlp_scores(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])


def test_importance_leaves_parameter_gradients_alone(tiny, tiny_batches):
    compute_importance(tiny, tiny_batches)
    assert all(p.requires_grad for p in tiny.parameters())
    assert all(p.grad is None for p in tiny.parameters())


@pytest.mark.parametrize("kwargs, match", [({"abs_per": "token"}, "abs_per"),
                                           ({"head_mask": np.ones((3, 3))}, "do not fit")])
def test_bad_arguments_are_refused(tiny, tiny_batches, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compute_importance(tiny, tiny_batches, **kwargs)


def test_no_batches_is_refused(tiny):
    with pytest.raises(ValueError, match="no batches"):
        compute_importance(tiny, [])

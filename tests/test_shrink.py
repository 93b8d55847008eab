"""Physically removed heads and MLPs compute what the gates compute, and train the same kept weights."""

import numpy as np
import pytest
import torch

from lotterylib.model.masking import gates
from lotterylib.model.models import tiny_bert
from lotterylib.model.shrink import remove_components
from lotterylib.model.structure import ModelStructure


def _inputs(seed=0, batch=3, length=7, vocab=50):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _pair(head_mask, mlp_mask, num_labels=2):
    gated = tiny_bert(num_labels=num_labels, seed=3).double().eval()
    cut = tiny_bert(num_labels=num_labels, seed=3).double().eval()
    summary = remove_components(cut, head_mask, mlp_mask)
    return gated, cut, summary


MASKS = [
    (np.array([[1, 0, 1, 0], [0, 1, 1, 1]]), np.array([1, 1])),   # some heads
    (np.array([[0, 0, 0, 0], [1, 0, 0, 1]]), np.array([1, 0])),   # a layer without heads, an MLP removed
    (np.array([[0, 0, 0, 0], [0, 0, 0, 0]]), np.array([0, 0])),   # nothing left
    (np.ones((2, 4)), np.ones(2)),                                # nothing removed
]


@pytest.mark.parametrize("head_mask,mlp_mask", MASKS)
def test_removed_model_computes_the_gated_function(head_mask, mlp_mask):
    gated, cut, _ = _pair(head_mask, mlp_mask)
    x = _inputs()
    with torch.no_grad(), gates(gated, head_mask, mlp_mask):
        want = gated(**x).logits
    got = cut(**x).logits
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_kept_weights_get_the_same_gradients():
    head_mask, mlp_mask = MASKS[1]
    gated, cut, _ = _pair(head_mask, mlp_mask)
    x, y = _inputs(), torch.tensor([0, 1, 1])
    with gates(gated, head_mask, mlp_mask):
        torch.nn.functional.cross_entropy(gated(**x).logits, y).backward()
    torch.nn.functional.cross_entropy(cut(**x).logits, y).backward()
    s = ModelStructure.of(gated)
    d = s.head_dim
    # layer 1 keeps heads 0 and 3: their query rows in the cut model are rows [0:d] and [d:2d]
    g_full = gated.bert.encoder.layer[1].attention.self.query.weight.grad
    g_cut = cut.bert.encoder.layer[1].attention.self.query.weight.grad
    torch.testing.assert_close(g_cut, torch.cat([g_full[0:d], g_full[3 * d:4 * d]]), rtol=1e-9, atol=1e-12)
    # a weight outside the pruned parts: the classifier
    torch.testing.assert_close(cut.classifier.weight.grad, gated.classifier.weight.grad, rtol=1e-9, atol=1e-12)


def test_sizes_and_summary():
    head_mask, mlp_mask = MASKS[0]
    _, cut, summary = _pair(head_mask, mlp_mask)
    s = ModelStructure.of(cut)
    per_head = 3 * (s.hidden_size * s.head_dim + s.head_dim) + s.head_dim * s.hidden_size
    assert summary["heads_removed"] == 3 and summary["mlps_removed"] == 0
    assert summary["parameters_before"] - summary["parameters_after"] == 3 * per_head
    assert cut.bert.encoder.layer[0].attention.self.query.out_features == 2 * s.head_dim


def test_regression_head_and_training_mode_run():
    gated, cut, _ = _pair(*MASKS[1], num_labels=1)
    cut.train()
    out = cut(**_inputs()).logits
    assert out.shape == (3, 1) and torch.isfinite(out).all()


@pytest.mark.parametrize("head_mask,mlp_mask,match", [
    (np.ones((2, 3)), None, "head_mask has shape"),
    (np.full((2, 4), 0.5), None, "must be 0/1"),
    (None, np.ones(3), "mlp_mask has shape"),
])
def test_bad_masks_are_refused(head_mask, mlp_mask, match):
    with pytest.raises(ValueError, match=match):
        remove_components(tiny_bert(num_labels=2, seed=0), head_mask, mlp_mask)

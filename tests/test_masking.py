"""Gates and weight masks: invariants of where masks act."""

import numpy as np
import pytest
import torch

from lotterylib.model.masking import (
    apply_weight_masks, gates, prunable_tensors, remove_weight_masks, weight_masks,
)
from lotterylib.model.models import tiny_bert
from lotterylib.model.structure import ModelStructure

from conftest import make_batches_by_hand


def logits(model, batch):
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     token_type_ids=batch["token_type_ids"]).logits


def test_all_ones_gates_leave_logits_bit_equal(tiny, tiny_batches):
    s = ModelStructure.of(tiny)
    batch = tiny_batches[0]
    plain = logits(tiny, batch)
    with gates(tiny, np.ones((s.n_layers, s.n_heads)), np.ones(s.n_layers)) as handles:
        assert len(handles) == 2 * s.n_layers  # every layer patched: a path that matches nothing fails
        gated = logits(tiny, batch)
    assert torch.equal(plain, gated)
    assert torch.equal(plain, logits(tiny, batch))  # hooks removed


def test_gated_head_equals_zeroing_its_context_slice_by_hand(tiny, tiny_batches):
    s = ModelStructure.of(tiny)
    batch = tiny_batches[0]
    layer, head = 1, 2
    head_mask = np.ones((s.n_layers, s.n_heads), dtype=np.float32)
    head_mask[layer, head] = 0
    with gates(tiny, head_mask):
        gated = logits(tiny, batch)

    def zero_slice(module, args):
        context = args[0].clone()
        context[..., head * s.head_dim:(head + 1) * s.head_dim] = 0
        return (context,)

    handle = s.module(tiny, layer, "attn_out").register_forward_pre_hook(zero_slice)
    try:
        by_hand = logits(tiny, batch)
    finally:
        handle.remove()
    assert torch.allclose(gated, by_hand, atol=1e-6)
    assert not torch.allclose(gated, logits(tiny, batch), atol=1e-6)


def test_gated_mlp_equals_removing_the_ffn_output_by_hand(tiny, tiny_batches):
    s = ModelStructure.of(tiny)
    batch = tiny_batches[0]
    mlp_mask = np.array([1.0, 0.0])
    with gates(tiny, mlp_mask=mlp_mask):
        gated = logits(tiny, batch)
    handle = s.module(tiny, 1, "mlp_out").register_forward_hook(lambda m, a, out: torch.zeros_like(out))
    try:
        by_hand = logits(tiny, batch)
    finally:
        handle.remove()
    assert torch.allclose(gated, by_hand, atol=1e-6)


def test_per_example_gates_equal_shared_gates_row_by_row(tiny, tiny_batches):
    s = ModelStructure.of(tiny)
    batch = tiny_batches[0]
    b = batch["input_ids"].shape[0]
    rng = np.random.default_rng(0)
    per_example = rng.integers(0, 2, (b, s.n_layers, s.n_heads)).astype(np.float32)
    with gates(tiny, torch.tensor(per_example)):
        batched = logits(tiny, batch)
    for i in (0, b - 1):
        with gates(tiny, per_example[i]):
            single = logits(tiny, {k: v[i:i + 1] for k, v in batch.items()})
        assert torch.allclose(batched[i], single[0], atol=1e-5)


def test_hooks_are_removed_after_an_exception(tiny, tiny_batches):
    s = ModelStructure.of(tiny)
    with pytest.raises(RuntimeError):
        with gates(tiny, np.zeros((s.n_layers, s.n_heads))):
            raise RuntimeError("boom")
    assert not s.module(tiny, 0, "attn_out")._forward_pre_hooks


@pytest.mark.parametrize("kwargs, shape", [({"head_mask": np.ones((3, 4))}, "(3, 4)"),
                                           ({"mlp_mask": np.ones(5)}, "(5,)")])
def test_gate_of_the_wrong_shape_is_refused(tiny, kwargs, shape):
    with pytest.raises(ValueError, match="another model"):
        with gates(tiny, **kwargs):
            pass


def test_works_on_another_shape_of_model():
    model = tiny_bert(n_layers=3, n_heads=2, hidden_size=16, intermediate_size=24)
    batch = make_batches_by_hand(4, 6, 4)[0]
    head_mask = np.ones((3, 2))
    head_mask[2, 1] = 0
    with gates(model, head_mask, np.ones(3)):
        out = logits(model, batch)
    assert out.shape == (4, 2)


def test_unknown_family_is_refused():
    class Fake(torch.nn.Module):
        config = type("C", (), {"model_type": "gpt2"})()

    with pytest.raises(ValueError, match="structure table"):
        ModelStructure.of(Fake())


def test_prunable_set_is_the_authors_one(tiny):
    s = ModelStructure.of(tiny)
    names = list(prunable_tensors(tiny))
    assert len(names) == 11 * s.n_layers
    assert all("embeddings" not in n and "LayerNorm" not in n and "pooler" not in n and "classifier" not in n
               for n in names)
    assert "bert.encoder.layer.0.output.dense.weight" in names
    assert "bert.encoder.layer.0.output.dense.bias" not in names
    assert "bert.encoder.layer.0.intermediate.dense.bias" in names


def test_masked_weights_stay_zero_after_an_optimiser_step():
    model = tiny_bert(seed=3).train()
    tensors = prunable_tensors(model)
    rng = np.random.default_rng(0)
    masks = {name: rng.random(t.shape) > 0.5 for name, t in tensors.items()}
    assert apply_weight_masks(model, masks) == len(masks)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    batch = make_batches_by_hand(8, 10, 8)[0]
    for _ in range(2):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        torch.nn.functional.cross_entropy(out, batch["labels"]).backward()
        optimizer.step()
        optimizer.zero_grad()
    for name, value in prunable_tensors(model).items():
        assert torch.all(value[~torch.as_tensor(masks[name])] == 0), name
    remove_weight_masks(model, bake=True)
    for name, value in prunable_tensors(model).items():
        assert torch.all(value[~torch.as_tensor(masks[name])] == 0), name


def test_weight_mask_context_restores_the_weights(tiny):
    before = {k: v.detach().clone() for k, v in prunable_tensors(tiny).items()}
    masks = {k: np.zeros(v.shape, dtype=bool) for k, v in before.items()}
    with weight_masks(tiny, masks):
        assert all(torch.all(v == 0) for v in prunable_tensors(tiny).values())
    assert all(torch.equal(before[k], v) for k, v in prunable_tensors(tiny).items())


def test_weight_mask_for_another_model_is_refused(tiny):
    name = "bert.encoder.layer.0.attention.self.query.weight"
    with pytest.raises(ValueError, match="shape"):
        apply_weight_masks(tiny, {name: np.ones((5, 5), dtype=bool)})
    with pytest.raises(ValueError, match="not m-prunable"):
        apply_weight_masks(tiny, {"bert.embeddings.word_embeddings.weight": np.ones(3)})


def test_a_second_weight_mask_on_the_same_tensor_is_refused():
    model = tiny_bert()
    name = "bert.encoder.layer.0.attention.self.query.weight"
    mask = {name: np.ones((32, 32), dtype=bool)}
    apply_weight_masks(model, mask)
    with pytest.raises(ValueError, match="already carries"):
        apply_weight_masks(model, mask)

"""Every random draw has its own stream (METHOD.md section 7): keyed by seed, task, method, variant, draw."""

import subprocess
import sys

import numpy as np
import pytest

from lotterylib.method.seeding import draw_key, rng_for, stable_hash
from lotterylib.method.subnetworks import (
    heads_removed_mask, random_weight_mask, structured_subnetwork, super_survivor_masks, swap_subnetwork,
    weight_subnetwork,
)

TASKS = ("CoLA", "SST-2", "MRPC", "STS-B", "RTE", "WNLI")


def good_mask(seed=0, shape=(6, 12), p=0.7):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.float32)


def test_stable_hash_is_the_same_in_another_process():
    here = stable_hash("CoLA", "s", "random", 0)
    code = "from lotterylib.method.seeding import stable_hash; print(stable_hash('CoLA', 's', 'random', 0))"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.strip()
    assert int(there) == here
    assert draw_key(42, "CoLA", "s", "random") == [42, here]


def test_the_same_inputs_give_the_same_masks():
    head, mlp = good_mask(), good_mask(1, (6,), 0.8)
    for kind in ("random", "bad"):
        a = structured_subnetwork(kind, head, mlp, seed=42, task="RTE")
        b = structured_subnetwork(kind, head, mlp, seed=42, task="RTE")
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def nested(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = a.astype(bool), b.astype(bool)
    return bool((a <= b).all() or (b <= a).all())


def test_two_tasks_random_masks_of_one_seed_are_not_nested():
    """With one stream per seed, a task keeping fewer heads kept a subset of another task's random heads."""
    rng = np.random.default_rng(0)
    for seed in (1337, 42, 86, 71, 166):
        masks = {}
        for task in TASKS:  # the tasks' good sizes differ, as they do in a grid
            head = np.ones(72, dtype=np.float32)
            head[rng.choice(72, size=int(rng.integers(10, 60)), replace=False)] = 0
            masks[task] = structured_subnetwork("random", head.reshape(6, 12), np.ones(6), seed=seed, task=task)[0]
        pairs = [(a, b) for i, a in enumerate(TASKS) for b in TASKS[i + 1:]]
        assert not any(nested(masks[a], masks[b]) for a, b in pairs), seed


def test_bad_does_not_reuse_the_random_draws():
    """bad's top-up among survivors must not follow the order random drew: compare with the old shared stream."""
    head = np.ones((6, 12), dtype=np.float32)
    head[0, :4] = 0  # 4 pruned, 68 kept: bad = those 4 + 64 of the survivors
    overlaps = []
    for seed in range(30):
        random, _ = structured_subnetwork("random", head, np.ones(6), seed=seed, task="CoLA")
        bad, _ = structured_subnetwork("bad", head, np.ones(6), seed=seed, task="CoLA")
        survivors = head.astype(bool)
        # survivors that bad dropped vs survivors random dropped: independent draws rarely coincide
        overlaps.append(np.array_equal(~bad.astype(bool) & survivors, ~random.astype(bool) & survivors))
    assert sum(overlaps) <= 1


def test_streams_differ_by_method_variant_and_draw():
    draws = {(m, v, d): rng_for(7, "MRPC", m, v, d).random(8).tobytes()
             for m in ("m", "s", "super", "lottery", "swap") for v in ("random", "bad") for d in (0, 1)}
    assert len(set(draws.values())) == len(draws)


def test_m_random_needs_only_the_size_and_differs_by_task():
    shapes = {"a": (20, 30), "b": (50,)}
    total = 650
    masks = {t: random_weight_mask(shapes, 300, rng_for(1, t, "m", "random")) for t in ("CoLA", "MRPC")}
    for mask in masks.values():
        assert sum(int(m.sum()) for m in mask.values()) == 300 and sum(m.size for m in mask.values()) == total
    flat = {t: np.concatenate([m[k].ravel() for k in shapes]) for t, m in masks.items()}
    assert not np.array_equal(flat["CoLA"], flat["MRPC"])
    good = {k: np.ones(s, dtype=bool) for k, s in shapes.items()}
    good["a"][:, :10] = False
    weights = {k: np.random.default_rng(0).normal(size=s) for k, s in shapes.items()}
    via = weight_subnetwork("random", good, weights, seed=1, task="CoLA")
    direct = random_weight_mask(shapes, 450, rng_for(1, "CoLA", "m", "random"))
    assert all(np.array_equal(via[k], direct[k]) for k in shapes)


def test_super_variants_have_their_own_streams_per_task():
    heads = np.stack([good_mask(s, (6, 12), 0.8) for s in range(5)])
    a = super_survivor_masks(heads, np.ones((5, 6)), seed=42, task="CoLA")
    b = super_survivor_masks(heads, np.ones((5, 6)), seed=42, task="MRPC")
    assert not np.array_equal(a["random"][0], b["random"][0])


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_lottery_masks_remove_the_fraction_by_importance(fraction):
    scores = np.random.default_rng(3).random((6, 12))
    n_removed = int(round(fraction * 72))
    good = heads_removed_mask("good", scores, fraction, seed=1, task="CoLA")
    bad = heads_removed_mask("bad", scores, fraction, seed=1, task="CoLA")
    random = heads_removed_mask("random", scores, fraction, seed=1, task="CoLA")
    for mask in (good, bad, random):
        assert mask.sum() == 72 - n_removed
    assert scores[good == 0].max() <= scores[good == 1].min()  # the least important went
    assert scores[bad == 0].min() >= scores[bad == 1].max()  # the most important went
    with pytest.raises(ValueError, match="strictly between"):
        heads_removed_mask("good", scores, 1.0, seed=1, task="CoLA")


def test_swap_keeps_one_part_and_draws_the_other_at_the_good_size():
    head, mlp = good_mask(), np.array([1, 1, 0, 1, 0, 1], dtype=np.float32)
    h, m = swap_subnetwork("good_heads_random_mlps", head, mlp, seed=5, task="STS-B")
    assert np.array_equal(h, head) and m.sum() == mlp.sum()
    h, m = swap_subnetwork("random_heads_good_mlps", head, mlp, seed=5, task="STS-B")
    assert np.array_equal(m, mlp) and h.sum() == head.sum() and not np.array_equal(h, head)

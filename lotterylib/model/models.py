"""Loading models: a hub id, a local folder, the offline default, or a tiny random BERT for tests.

Every classifier is built the same way so that "rewinding to the pre-trained weights" means one
thing: the backbone comes from the pre-trained checkpoint (or, for the tiny model, from a fixed
seed standing in for pre-training) and the classifier is initialised from the *run's* seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from lotterylib.errors import ConfigError, MissingError, ModelError
from lotterylib.model.structure import check_family
from lotterylib.model.sources import (  # noqa: F401 (where models come from; re-exported for callers)
    DEFAULT_MODEL, OFFLINE_DIR_ENV, OFFLINE_MODELS, TINY_MODEL, OfflineModel, check_model_folder, from_pretrained_kwargs,
    model_choices, resolve_model, sha256_of)

# The variants of the pre-trained weights a plan may start from (its ``model_weights``): as the checkpoint
# has them, or rounded to float16 first (the plan's model_weights; its effect on the full model's scores is
# measured by plan demo_float32, see the methods page).
# Training always runs on float32 weights; a variant only fixes the values they start from.
WEIGHT_VARIANTS = {"float32": None, "float16": torch.float16}


def load_tokenizer(name: str = DEFAULT_MODEL):
    """The tokenizer of a model; the tiny test model borrows the offline default's vocabulary."""
    from transformers import AutoTokenizer

    source = resolve_model(DEFAULT_MODEL if name == TINY_MODEL else name, verify=False)
    if Path(source).is_dir():
        check_model_folder(source, tokenizer=True)
    return AutoTokenizer.from_pretrained(source, **from_pretrained_kwargs(source))


def init_classifier(model: nn.Module, seed: int) -> None:
    """Re-initialise the task head (every Linear under ``model.classifier``) from ``seed``."""
    gen = torch.Generator().manual_seed(int(seed))
    std = model.config.initializer_range
    head = model.classifier
    linears = [head] if isinstance(head, nn.Linear) else [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ModelError(f"{type(model).__name__}.classifier: has no Linear layer to initialise (got "
                         f"{type(head).__name__}); load a *ForSequenceClassification model")
    with torch.no_grad():
        for linear in linears:
            weight = torch.empty(linear.weight.shape, dtype=torch.float32).normal_(0.0, std, generator=gen)
            linear.weight.copy_(weight)
            if linear.bias is not None:
                linear.bias.zero_()


def tiny_bert(
    num_labels: int = 2,
    n_layers: int = 2,
    n_heads: int = 4,
    hidden_size: int = 32,
    intermediate_size: int = 64,
    vocab_size: int = 30522,
    seed: int = 0,
    backbone_seed: int = 0,
    attn_implementation: str = "eager",
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """A small random BERT classifier; ``backbone_seed`` plays the part of pre-training.

    The vocabulary matches the offline default's tokenizer so real GLUE text can be fed to it.
    """
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=n_layers,
        num_attention_heads=n_heads, intermediate_size=intermediate_size,
        max_position_embeddings=512, num_labels=num_labels,
        attn_implementation=attn_implementation,
    )
    torch.manual_seed(backbone_seed)
    model = BertForSequenceClassification(config)
    init_classifier(model, seed)
    return model.to(dtype).eval()


def stored_dtype(folder: str | os.PathLike, weights_file: str = "model.safetensors") -> torch.dtype:
    """The floating dtype the weights of a model folder are stored in (read from the file's header)."""
    from safetensors import safe_open

    with safe_open(str(Path(folder) / weights_file), framework="pt") as handle:
        for key in handle.keys():
            dtype = handle.get_slice(key).get_dtype()
            if dtype in ("F32", "F16", "BF16", "F64"):
                return {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                        "F64": torch.float64}[dtype]
    raise ModelError(f"{folder}/{weights_file}: holds no floating-point tensor (got none of F32, F16, BF16, F64); "
                     "save the model again with model.save_pretrained(folder)")


def _variant_dtype(weights: str) -> torch.dtype | None:
    """The dtype a weight variant rounds to (None: none); an unknown variant names the known ones."""
    if weights not in WEIGHT_VARIANTS:
        raise ConfigError(f"model_weights: unknown weight variant {weights!r} (got {weights!r}); use one of "
                          f"{list(WEIGHT_VARIANTS)} (model_weights in the plan)")
    return WEIGHT_VARIANTS[weights]


def round_weights(model: nn.Module, weights: str) -> nn.Module:
    """Round every floating pre-trained parameter (all but the classifier's, which comes from the seed) to the
    plan's weight variant and back, in place ("float32": as is)."""
    target = _variant_dtype(weights)
    if target is not None:
        with torch.no_grad():
            for name, tensor in model.named_parameters():
                if tensor.is_floating_point() and not name.startswith("classifier."):
                    tensor.copy_(tensor.to(target).to(tensor.dtype))
    return model


def load_model(
    name: str = DEFAULT_MODEL,
    num_labels: int = 2,
    seed: int = 0,
    attn_implementation: str = "sdpa",
    dtype: torch.dtype = torch.float32,
    tiny_kwargs: dict | None = None,
    weights: str = "float32",
) -> nn.Module:
    """A sequence classifier with pre-trained backbone and a classifier initialised from ``seed``.

    ``name``: ``"tiny-bert"``, the short name of an offline model (``"all-MiniLM-L6-v2"``), a
    local folder, or a hub id. ``attn_implementation="eager"`` is needed to read attention maps.
    ``weights``: the plan's weight variant (:data:`WEIGHT_VARIANTS`): "float16" rounds the pre-trained
    weights to float16 before the classifier is initialised, so a float32 checkpoint and its float16 copy
    give the same model; a float16 copy refuses to stand in for "float32".
    Calling it again with the same arguments is exactly "rewinding to the pre-trained weights".
    """
    target = _variant_dtype(weights)
    if name == TINY_MODEL:
        return round_weights(tiny_bert(num_labels=num_labels, seed=seed, attn_implementation=attn_implementation,
                                       dtype=dtype, **(tiny_kwargs or {})), weights)
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    source = resolve_model(name)
    if Path(source).is_dir():
        check_model_folder(source)
    if target is None and (Path(source) / "model.safetensors").is_file():
        stored = stored_dtype(source)
        if stored in (torch.float16, torch.bfloat16):
            raise ModelError(f"{source}: stores its weights as {stored}, but the plan starts from float32 "
                             f"weights: never mix weight variants in one plan; set model_weights: "
                             f"{str(stored).removeprefix('torch.')} in the plan, or load the float32 weights")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "classifier newly initialised" report is expected
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=num_labels, attn_implementation=attn_implementation,
            dtype=dtype, **from_pretrained_kwargs(source),
        )
    except (OSError, ValueError) as err:
        raise MissingError(
            f"{source}: could not load model {name!r} (got {type(err).__name__}: {err}); give {model_choices()}"
        ) from err
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    check_family(getattr(model.config, "model_type", None), f"model {name!r} ({source})")
    round_weights(model, weights)
    init_classifier(model, seed)
    return model.eval()

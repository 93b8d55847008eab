"""GLUE data: task specs, loading (local TSVs, else the Hugging Face hub), tokenisation and batching.

Sources, in order (METHOD.md section 3):

1. a local folder in the classic ``glue_data/<TASK>/{train,dev}.tsv`` layout written by the original GLUE
   download script, given as ``glue_dir`` or by the environment variable ``LOTTERY_GLUE_DIR``;
2. the hub dataset ``nyu-mll/glue`` (needs the optional ``datasets`` package and a network or a warm cache).

A task found in neither place raises :class:`GlueNotFoundError`, whose one message names both.

Split names are ``'train'`` and ``'dev'`` for every task; MNLI's ``'dev'`` is dev-matched and it also has
``'dev_mismatched'``. Labels always use the hub's label ids (``TaskSpec.label_names`` gives their order),
whichever source they came from. STS-B is a regression task: float32 scores in [0, 5].
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lotterylib.errors import ConfigError, DataError, MissingError
from lotterylib.config.tasks import OFFICIAL_SIZES, TASKS, TaskSpec, get_task  # noqa: F401 (the task registry, re-exported)

GLUE_DIR_ENV = "LOTTERY_GLUE_DIR"
HUB_DATASET = "nyu-mll/glue"
STSB_RANGE = (0.0, 5.0)
_MEGA_BATCH_FACTOR = 50  # HF group_by_length: length-sort within chunks of 50 * batch_size
_DATA_FIX = (f"re-copy the GLUE data (download_glue_data.py, classic layout) or point {GLUE_DIR_ENV} at a complete "
             "glue_data folder")


# ----------------------------------------------------------------------------------------------------------
# Task specs
# ----------------------------------------------------------------------------------------------------------


def _check_split(spec: TaskSpec, split: str) -> None:
    if split not in spec.splits:
        raise ConfigError(
            f"Unknown split {split!r} for {spec.name}. Use one of {list(spec.splits)} "
            "(GLUE test labels are not public, so there is no 'test' split)."
        )


def _tsv_filename(spec: TaskSpec, split: str) -> str:
    """File name of a split in the classic layout (MNLI dev is ``dev_matched.tsv``)."""
    _check_split(spec, split)
    if spec.name == "MNLI" and split != "train":
        return "dev_matched.tsv" if split == "dev" else "dev_mismatched.tsv"
    return f"{split}.tsv"


def _hub_split(spec: TaskSpec, split: str) -> str:
    """Hub split name: 'train', 'validation' (MNLI 'validation_matched' / 'validation_mismatched')."""
    _check_split(spec, split)
    if split == "train":
        return "train"
    if spec.name == "MNLI":
        return "validation_matched" if split == "dev" else "validation_mismatched"
    return "validation"


# ----------------------------------------------------------------------------------------------------------
# Splits
# ----------------------------------------------------------------------------------------------------------


@dataclass
class GlueSplit:
    """The examples of one split: texts (``text_b`` is None for single-sentence tasks) and labels.

    ``labels``: [N] int64 class ids, or float32 scores for STS-B. ``source``: the TSV path or
    ``'hub:nyu-mll/glue'``.
    """

    task: str
    split: str
    text_a: list[str]
    text_b: list[str] | None
    labels: np.ndarray
    source: str

    def __post_init__(self) -> None:
        n = len(self.text_a)
        if self.text_b is not None and len(self.text_b) != n:
            raise DataError(f"GlueSplit {self.task}/{self.split}: text_b has {len(self.text_b)} rows, text_a {n}.")
        if np.ndim(self.labels) != 1 or len(self.labels) != n:
            raise DataError(
                f"GlueSplit {self.task}/{self.split}: labels must be 1-D with {n} entries, got shape "
                f"{np.shape(self.labels)}."
            )

    def __len__(self) -> int:
        return len(self.text_a)

    def take(self, indices: Sequence[int] | np.ndarray) -> GlueSplit:
        """A new split with the rows at ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        text_b = None if self.text_b is None else [self.text_b[i] for i in idx]
        return GlueSplit(
            self.task, self.split, [self.text_a[i] for i in idx], text_b, self.labels[idx], self.source
        )


class GlueNotFoundError(MissingError):
    """A GLUE split was found neither in the local GLUE folder nor on the hub."""


# ----------------------------------------------------------------------------------------------------------
# Classic TSV files
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TsvLayout:
    """Column positions in a classic GLUE TSV (``label`` may count from the end).

    ``header`` holds the expected header names of the (text_a, text_b, label) columns, or None for CoLA,
    whose files have no header row (columns: source, label, original label, sentence).
    """

    text_a: int
    text_b: int | None
    label: int
    header: tuple[str, str | None, str] | None
    skip_malformed: bool = False  # QQP: drop rows with missing columns, as the GLUE processors do


_NLI_LAYOUT = _TsvLayout(1, 2, 3, ("sentence1", "sentence2", "label"))
_TSV_LAYOUTS: dict[str, _TsvLayout] = {
    "CoLA": _TsvLayout(3, None, 1, None),
    "SST-2": _TsvLayout(0, None, 1, ("sentence", None, "label")),
    "MRPC": _TsvLayout(3, 4, 0, ("#1 String", "#2 String", "Quality")),
    "QQP": _TsvLayout(3, 4, 5, ("question1", "question2", "is_duplicate"), skip_malformed=True),
    "STS-B": _TsvLayout(7, 8, -1, ("sentence1", "sentence2", "score")),
    "MNLI": _TsvLayout(8, 9, -1, ("sentence1", "sentence2", "gold_label")),
    "QNLI": _TsvLayout(1, 2, 3, ("question", "sentence", "label")),
    "RTE": _NLI_LAYOUT,
    "WNLI": _NLI_LAYOUT,
}
_COLA_WIDTH = 4


def _iter_tsv(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (1-based line number, fields) with quoting off.

    Only '\\n' ends a line (``newline='\\n'``), a trailing '\\r' is dropped, empty lines are skipped, fields are
    not stripped. ``utf-8-sig`` removes MRPC's byte-order mark.
    """
    with open(path, encoding="utf-8-sig", newline="\n") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if line:
                yield lineno, line.split("\t")


def _check_header(path: Path, layout: _TsvLayout, header: list[str]) -> None:
    positions = (layout.text_a, layout.text_b, layout.label)
    for pos, expected in zip(positions, layout.header):
        if pos is None:
            continue
        found = header[pos] if -len(header) <= pos < len(header) else None
        if found != expected:
            raise DataError(
                f"{path}:1: unexpected header {header!r}: column {pos} should be {expected!r}, found {found!r}. "
                "Expected the classic GLUE TSV layout written by download_glue_data.py."
            )


def _parse_label(spec: TaskSpec, raw: str, where: str) -> int | float:
    """Map a TSV label string to the hub label id (or a float score for STS-B)."""
    if spec.is_regression:
        try:
            score = float(raw)
        except ValueError:
            raise DataError(f"{where}: STS-B score {raw!r} is not a number.") from None
        if not (math.isfinite(score) and STSB_RANGE[0] <= score <= STSB_RANGE[1]):
            raise DataError(f"{where}: STS-B score {score} is outside {list(STSB_RANGE)}.")
        return score
    if raw not in spec.tsv_labels:
        raise DataError(
            f"{where}: label {raw!r} is not a {spec.name} label; expected one of {list(spec.tsv_labels)}. "
            "Is the file corrupted or from another task?"
        )
    return spec.tsv_labels.index(raw)


def _check_tsv_file(path: Path) -> None:
    """A GLUE TSV must exist and hold more than blank lines."""
    if not path.is_file():
        raise GlueNotFoundError(f"{path}: GLUE file is missing (got no such file); {_DATA_FIX}")
    with open(path, encoding="utf-8-sig", newline="\n") as f:
        if not any(line.strip() for line in f):
            raise DataError(f"{path}: GLUE file is empty (got {path.stat().st_size} bytes, no lines); {_DATA_FIX}")


def _check_rows(path: Path, n_rows: int, n_skipped: int, has_header: bool) -> None:
    """A GLUE TSV must hold at least one example row."""
    if n_rows == 0:
        what = ("has only malformed rows" if n_skipped else "has a header but no data rows" if has_header
                else "has no data rows")
        raise DataError(f"{path}: GLUE file {what} (got 0 examples, {n_skipped} malformed rows skipped); {_DATA_FIX}")


def read_glue_tsv(task: str | TaskSpec, split: str, glue_dir: str | os.PathLike) -> GlueSplit:
    """Read ``<glue_dir>/<TASK>/<split file>.tsv`` exactly, quoting off; labels mapped to hub ids.

    Every row must have as many fields as the header (CoLA: 4), except in QQP, where malformed rows are
    skipped like the standard GLUE processors do. A missing file raises GlueNotFoundError, an empty or
    header-only file and bad labels raise DataError naming the file (and line).
    """
    spec = get_task(task)
    layout = _TSV_LAYOUTS[spec.name]
    path = Path(glue_dir) / spec.name / _tsv_filename(spec, split)
    _check_tsv_file(path)
    rows = _iter_tsv(path)
    width = _COLA_WIDTH
    if layout.header is not None:
        _, header = next(rows, (1, []))
        _check_header(path, layout, header)
        width = len(header)
    text_a: list[str] = []
    text_b: list[str] | None = [] if layout.text_b is not None else None
    labels: list[int | float] = []
    skipped = 0
    for lineno, cols in rows:
        if len(cols) != width:
            if layout.skip_malformed:
                skipped += 1
                continue
            raise DataError(
                f"{path}:{lineno}: expected {width} tab-separated fields, found {len(cols)}. "
                "Read the file unmodified (quoting off); do not re-save it with a CSV tool."
            )
        labels.append(_parse_label(spec, cols[layout.label], f"{path}:{lineno}"))
        text_a.append(cols[layout.text_a])
        if text_b is not None:
            text_b.append(cols[layout.text_b])
    _check_rows(path, len(labels), skipped, layout.header is not None)
    dtype = np.float32 if spec.is_regression else np.int64
    return GlueSplit(spec.name, split, text_a, text_b, np.asarray(labels, dtype=dtype), str(path))


# ----------------------------------------------------------------------------------------------------------
# Loading: local folder, else hub
# ----------------------------------------------------------------------------------------------------------


def _env_offline() -> bool:
    flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(f, "").strip().upper() in {"1", "ON", "YES", "TRUE"} for f in flags)


@contextlib.contextmanager
def _offline_as_env_says(datasets_module) -> Iterator[None]:
    """Honour HF_HUB_OFFLINE / HF_DATASETS_OFFLINE as set *now*.

    ``datasets`` and ``huggingface_hub`` read those variables once, at import time; if they were imported
    before the variable was set (e.g. in a test), a hub attempt would retry the network for ~25 s. This
    switches both libraries to offline mode for the duration of the call and restores them afterwards.
    """
    if not _env_offline():
        yield
        return
    from huggingface_hub import constants as hub_constants

    saved = (datasets_module.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    datasets_module.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets_module.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def _fetch_hub(spec: TaskSpec, split: str):
    """The hub split as a ``datasets.Dataset`` (``datasets`` is imported lazily)."""
    import datasets

    with _offline_as_env_says(datasets):
        return datasets.load_dataset(HUB_DATASET, spec.hub_config, split=_hub_split(spec, split))


def _from_hub_dataset(spec: TaskSpec, split: str, ds) -> GlueSplit:
    """Convert a hub ``Dataset`` (columns: text fields, 'label', 'idx') to a GlueSplit."""
    where = f"hub:{HUB_DATASET}/{spec.hub_config}/{_hub_split(spec, split)}"
    text_a = list(ds[spec.text_fields[0]])
    text_b = list(ds[spec.text_fields[1]]) if spec.is_pair else None
    dtype = np.float32 if spec.is_regression else np.int64
    labels = np.asarray(list(ds["label"]), dtype=dtype)
    lo, hi = STSB_RANGE if spec.is_regression else (0, spec.num_labels - 1)
    bad = np.flatnonzero(~((labels >= lo) & (labels <= hi)))
    if bad.size:
        raise DataError(f"{where}: row {bad[0]} has label {labels[bad[0]]}, outside [{lo}, {hi}].")
    if len(labels) == 0:
        raise DataError(f"{where}: hub split has no rows (got 0 examples); clear the datasets cache and download it "
                        f"again, or set {GLUE_DIR_ENV} to a local glue_data folder")
    return GlueSplit(spec.name, split, text_a, text_b, labels, f"hub:{HUB_DATASET}")


def _not_found_message(spec: TaskSpec, split: str, local: str, hub_outcome: str) -> str:
    fname = _tsv_filename(spec, split)
    return (
        f"GLUE {spec.name} split {split!r} not found. Tried (1) local file {local}; "
        f"(2) hub dataset '{HUB_DATASET}' config '{spec.hub_config}' split '{_hub_split(spec, split)}': "
        f"{hub_outcome}. Fix: set {GLUE_DIR_ENV} (or pass glue_dir) to a folder holding "
        f"{spec.name}/{fname} in the classic GLUE layout, or run where the Hugging Face hub is reachable "
        "(the dataset is cached after the first download)."
    )


def load_glue(
    task: str | TaskSpec,
    split: str = "train",
    glue_dir: str | os.PathLike | None = None,
    allow_hub: bool = True,
) -> GlueSplit:
    """Load a GLUE split from the local folder (``glue_dir``, default ``$LOTTERY_GLUE_DIR``), else the hub.

    Raises GlueNotFoundError (a FileNotFoundError) naming both places when neither has the split.
    """
    spec = get_task(task)
    fname = _tsv_filename(spec, split)
    root = glue_dir if glue_dir is not None else os.environ.get(GLUE_DIR_ENV) or None
    if root is not None:
        path = Path(root) / spec.name / fname
        if path.is_file():
            return read_glue_tsv(spec, split, root)
        local = f"{path} (missing)"
    else:
        local = f"${GLUE_DIR_ENV}/{spec.name}/{fname} (no glue_dir given and {GLUE_DIR_ENV} is not set)"
    if not allow_hub:
        raise GlueNotFoundError(_not_found_message(spec, split, local, "not tried (allow_hub=False)"))
    try:
        ds = _fetch_hub(spec, split)
    except ImportError as exc:
        outcome = f"not tried: the 'datasets' package is not installed ({exc}); pip install datasets"
        raise GlueNotFoundError(_not_found_message(spec, split, local, outcome)) from exc
    except Exception as exc:  # offline, no network, missing cache: all mean "not on the hub for us"
        outcome = f"failed with {type(exc).__name__}: {exc}"
        raise GlueNotFoundError(_not_found_message(spec, split, local, outcome)) from exc
    return _from_hub_dataset(spec, split, ds)


def subsample(split: GlueSplit, n: int, seed: int) -> GlueSplit:
    """``n`` rows drawn without replacement (seeded), kept in their original order; n >= len -> all rows."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"subsample: n must be an integer >= 0 (got {n!r}); pass a row count such as max_train")
    if n >= len(split):
        return split.take(np.arange(len(split)))
    rng = np.random.default_rng(seed)
    return split.take(np.sort(rng.choice(len(split), size=n, replace=False)))


# ----------------------------------------------------------------------------------------------------------
# Tokenisation
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Encoded:
    """Tokenised, unpadded examples: ragged ``input_ids`` / ``token_type_ids`` ([N][L_i]) and labels [N]."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: np.ndarray
    source: str = ""  # where the examples came from (the split's TSV path or hub id), for error messages

    def __post_init__(self) -> None:
        if not (len(self.input_ids) == len(self.token_type_ids) == len(self.labels)):
            raise DataError(
                f"Encoded: input_ids ({len(self.input_ids)}), token_type_ids ({len(self.token_type_ids)}) "
                f"and labels ({len(self.labels)}) must have the same number of rows."
            )

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        """[N] int64 token counts (special tokens included)."""
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def _check_examples(n: int, source: str, what: str) -> None:
    """A data set handed on to tokenisation or batching must hold at least one example."""
    if n == 0:
        raise DataError(f"{source or 'data set'}: the {what} has no examples (got 0 rows: a file with only a "
                        "header, or a subsample of 0 rows); check the plan's max_train / max_dev and "
                        f"{_DATA_FIX}")


def encode(split: GlueSplit, tokenizer, max_length: int = 128) -> Encoded:
    """Tokenise a split with a HF tokenizer in one batched call: pairs when ``text_b``, truncation to
    ``max_length`` (longest-first for pairs), no padding (``make_batches`` pads per batch)."""
    _check_examples(len(split), split.source, f"{split.task} {split.split} split")
    out = tokenizer(
        split.text_a,
        split.text_b,
        truncation=True,
        max_length=max_length,
        padding=False,
        return_token_type_ids=True,
        return_attention_mask=False,
    )
    return Encoded(list(out["input_ids"]), list(out["token_type_ids"]), split.labels.copy(), split.source)


# ----------------------------------------------------------------------------------------------------------
# Batching
# ----------------------------------------------------------------------------------------------------------


def _chunks(order: np.ndarray, size: int) -> list[np.ndarray]:
    return [order[i : i + size] for i in range(0, len(order), size)]


def _sort_desc(idx: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``idx`` reordered by length, longest first; ties keep their order (stable)."""
    return idx[np.argsort(-lengths[idx], kind="stable")]


def batch_indices(
    lengths: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int | None = None,
    group_by_length: bool = True,
) -> list[np.ndarray]:
    """The example indices of each batch (see ``make_batches`` for the ordering rules)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
    if shuffle and seed is None:
        raise ConfigError("shuffle=True needs an integer seed so batches are reproducible; pass seed=...")
    n = len(lengths)
    if not shuffle:
        order = _sort_desc(np.arange(n), lengths) if group_by_length else np.arange(n)
        return _chunks(order, batch_size)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    if not group_by_length:
        return _chunks(perm, batch_size)
    batches = [
        b
        for mega in _chunks(perm, _MEGA_BATCH_FACTOR * batch_size)
        for b in _chunks(_sort_desc(mega, lengths), batch_size)
    ]
    return [batches[i] for i in rng.permutation(len(batches))]


def _collate(
    encoded: Encoded, idx: np.ndarray, lengths: np.ndarray, pad_to: int | None, pad_token_id: int
) -> dict[str, torch.Tensor]:
    """Pad the rows ``idx`` (token counts ``lengths`` [B]) to the longest one (or ``pad_to``); make tensors."""
    longest = int(lengths.max())
    if pad_to is not None and longest > pad_to:
        raise ConfigError(
            f"pad_to={pad_to} is shorter than a sequence of {longest} tokens; "
            f"encode with max_length <= {pad_to} or raise pad_to."
        )
    width = longest if pad_to is None else pad_to  # T
    input_ids = np.full((len(idx), width), pad_token_id, dtype=np.int64)  # [B, T]
    token_type_ids = np.zeros((len(idx), width), dtype=np.int64)  # [B, T]
    attention_mask = np.zeros((len(idx), width), dtype=np.int64)  # [B, T]
    for row, (i, length) in enumerate(zip(idx, lengths)):
        input_ids[row, :length] = encoded.input_ids[i]
        token_type_ids[row, :length] = encoded.token_type_ids[i]
        attention_mask[row, :length] = 1
    labels = encoded.labels[idx]  # [B]
    label_dtype = torch.float32 if np.issubdtype(labels.dtype, np.floating) else torch.int64
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention_mask),
        "token_type_ids": torch.from_numpy(token_type_ids),
        "labels": torch.as_tensor(labels, dtype=label_dtype),
        "index": torch.as_tensor(idx, dtype=torch.int64),
    }


def make_batches(
    encoded: Encoded,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int | None = None,
    group_by_length: bool = True,
    pad_to: int | None = None,
    pad_token_id: int = 0,
) -> list[dict[str, torch.Tensor]]:
    """Cut ``encoded`` into padded batches; every example appears exactly once.

    Each batch: ``input_ids``, ``attention_mask``, ``token_type_ids`` (LongTensor [B, T]), ``labels``
    ([B], LongTensor, or FloatTensor for regression) and ``index`` ([B] positions in ``encoded``, to restore
    the original order). T is the batch's longest sequence, or ``pad_to`` for fixed-width batches (the
    paper pads everything to 128; use that for benchmarks).

    Order: without ``shuffle``, examples sorted by length (longest first, stable) when ``group_by_length``,
    else the original order. With ``shuffle`` (``seed`` required): a seeded permutation; with
    ``group_by_length`` also, like HF's length-grouped sampler: the permutation is split into mega-chunks of
    50 * batch_size, each sorted by length (longest first) and cut into batches, then the batch order is
    shuffled with the same generator. The same seed gives the same batches.
    """
    _check_examples(len(encoded), encoded.source, "encoded set to batch")
    lengths = encoded.lengths  # [N]
    order = batch_indices(lengths, batch_size, shuffle=shuffle, seed=seed, group_by_length=group_by_length)
    return [_collate(encoded, idx, lengths[idx], pad_to, pad_token_id) for idx in order]

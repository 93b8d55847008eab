"""Loader for the data the paper's authors published with "When BERT Plays the Lottery".

The data (s-pruning masks of bert-base-uncased for the 9 GLUE tasks x 5 seeds, and the dev-set scores of
every evaluation setting) come from the authors' repository ``sai-prasanna/bert-experiments`` at commit
:data:`PAPER_COMMIT`. See ``../shared/paper_reference/README.md`` for what each variant and setting means.

Where the files are looked for, in order (:func:`paper_reference_dir`):

1. the ``root`` argument of every loader;
2. the environment variable ``LOTTERY_PAPER_DIR``;
3. ``<repository root>/../shared/paper_reference`` if that folder exists.

A file missing from that folder is downloaded, where a network exists, from
``https://raw.githubusercontent.com/sai-prasanna/bert-experiments/<PAPER_COMMIT>/<relative path>`` into a cache
folder (``LOTTERY_CACHE`` or ``~/.cache/lotterybook/paper_reference``), written atomically (temporary file,
then ``os.replace``). The local copy keeps the repository's relative paths (``masks/<variant>/<TASK>/seed_<SEED>/
<file>.npy`` and ``evaluate_masked/<setting>/baseline/results.json``), so the same relative path serves both.
``table2_baselines.csv`` (the paper's printed Table 2) exists only in the local copy. Downloads are switched
off by ``allow_download=False`` or the environment variable ``LOTTERY_OFFLINE=1``. Any file found nowhere
raises one :class:`PaperDataNotFound` naming the file, the local folder, the URL and the fix.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

PAPER_REPO = "sai-prasanna/bert-experiments"
PAPER_COMMIT = "f02280f0c0fe2429f031331f2db81d044a265f00"
PAPER_SEEDS: tuple[int, ...] = (1337, 42, 86, 71, 166)
PAPER_TASKS: tuple[str, ...] = ("CoLA", "SST-2", "MRPC", "QQP", "STS-B", "MNLI", "QNLI", "RTE", "WNLI")
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{relpath}"

# Which files each published mask variant has in every masks/<variant>/<TASK>/seed_<SEED>/ folder.
PAPER_VARIANT_FILES: dict[str, tuple[str, ...]] = {
    "heads_mlps": ("head_mask", "mlp_mask", "head_importance", "mlp_importance"),
    "heads_mlps_on_train": ("head_mask", "mlp_mask", "head_importance", "mlp_importance"),
    "heads_mlps_random": ("head_mask", "mlp_mask"),
    "heads_mlps_bad_1": ("head_mask", "mlp_mask"),
    "heads_mlps_super": ("head_mask", "mlp_mask"),
    "heads_mlps_super_bizzaro": ("head_mask", "mlp_mask"),
    "heads_mlps_super_midling": ("head_mask", "mlp_mask"),
    "heads": ("head_mask", "head_importance"),
    "mlps": ("mlp_mask", "mlp_importance"),
}
MASK_KEYS: tuple[str, ...] = ("head_mask", "mlp_mask", "head_importance", "mlp_importance")

# The metric the paper reports for each task (the results files hold more).
REPORTED_METRIC: dict[str, str] = {
    "CoLA": "mcc", "SST-2": "acc", "MRPC": "acc", "QQP": "acc", "STS-B": "pearson",
    "MNLI": "mnli_acc", "QNLI": "acc", "RTE": "acc", "WNLI": "acc",
}

TABLE2_FILE = "table2_baselines.csv"
# The printed Table 2 has m-pruning "bad" CoLA = 0.24; the authors' results give 0.0247 (README).
TABLE2_TYPO = {"model": "bad_subnetwork_m_pruning", "column": "CoLA", "printed": 0.24, "value": 0.0247,
               "source": "evaluate_masked/global_bad_retrained/baseline/results.json"}

_OFFLINE_VALUES = {"1", "true", "yes", "on"}
_urlopen = urllib.request.urlopen  # replaced in tests; never called when downloads are disabled


class PaperDataNotFound(FileNotFoundError):
    """A file of the authors' published data is neither in the local folder nor downloadable.

    Attributes: ``relpath`` (path relative to the data root), ``local_path`` (the file looked for),
    ``url`` (the raw GitHub URL tried, or None when the file is not in the authors' repository).
    """

    def __init__(self, message: str, relpath: str, local_path: Path, url: str | None):
        super().__init__(message)
        self.relpath, self.local_path, self.url = relpath, local_path, url
        self.filename = str(local_path)

    def __str__(self) -> str:  # FileNotFoundError's default str would prepend "None" fields
        return self.args[0]


# --- where the data lives ---------------------------------------------------------------------

def _default_local_dir() -> Path:
    """``<repository root>/../shared/paper_reference`` (repository root = parent of the package dir)."""
    return Path(__file__).resolve().parents[3] / "shared" / "paper_reference"


def paper_cache_dir() -> Path:
    """Download cache: ``$LOTTERY_CACHE`` or ``~/.cache/lotterybook/paper_reference``."""
    env = os.environ.get("LOTTERY_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lotterybook" / "paper_reference"


def paper_reference_dir(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will cache) the authors' data.

    ``root`` if given, else ``$LOTTERY_PAPER_DIR``, else ``<repo>/../shared/paper_reference`` if it exists,
    else the download cache (:func:`paper_cache_dir`). Does not check that files exist.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("LOTTERY_PAPER_DIR")
    if env:
        return Path(env).expanduser()
    local = _default_local_dir()
    return local if local.is_dir() else paper_cache_dir()


def downloads_allowed(allow_download: bool | None = None) -> bool:
    """``allow_download`` if given, else True unless ``$LOTTERY_OFFLINE`` is 1/true/yes/on."""
    if allow_download is not None:
        return bool(allow_download)
    return os.environ.get("LOTTERY_OFFLINE", "").strip().lower() not in _OFFLINE_VALUES


def paper_url(relpath: str) -> str:
    """Raw GitHub URL of ``relpath`` in the authors' repository at :data:`PAPER_COMMIT`."""
    return RAW_URL.format(repo=PAPER_REPO, commit=PAPER_COMMIT, relpath=relpath)


def _download(url: str, dest: Path, timeout: float = 30.0) -> str | None:
    """Fetch ``url`` into ``dest`` atomically. Returns None on success, else why it failed."""
    try:
        with _urlopen(url, timeout=timeout) as response:
            data = response.read()
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"
    except (urllib.error.URLError, OSError, ValueError) as err:
        return f"{type(err).__name__}: {err}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return None


def paper_file(relpath: str, root: str | os.PathLike | None = None,
               allow_download: bool | None = None, downloadable: bool = True) -> Path:
    """Path of one data file, downloading it into the cache if it is missing locally and allowed.

    ``relpath`` is relative to the data root, e.g. ``'masks/heads_mlps/QNLI/seed_42/head_mask.npy'``.
    ``downloadable=False`` for files that only exist in the local copy (Table 2).
    Raises :class:`PaperDataNotFound` when the file is found nowhere.
    """
    base = paper_reference_dir(root)
    local = base / relpath
    if local.is_file():
        return local
    url = paper_url(relpath) if downloadable else None
    cached = paper_cache_dir() / relpath
    if url is not None and cached.is_file():
        return cached
    if url is None:
        why = "it is not in the authors' repository (only in the local copy)"
    elif not downloads_allowed(allow_download):
        why = f"download from {url} skipped: downloads are off (allow_download=False or LOTTERY_OFFLINE=1)"
    else:
        reason = _download(url, cached)
        if reason is None:
            return cached
        why = f"download from {url} failed ({reason})"
    raise PaperDataNotFound(
        f"paper data file {relpath!r} not found: looked for {local} in the local folder {base}; {why}. "
        f"Fix: set LOTTERY_PAPER_DIR (or pass root=) to a copy of the authors' data, the folder holding "
        f"masks/ and evaluate_masked/ (e.g. ../shared/paper_reference), or allow downloads on a machine "
        f"with network access.",
        relpath, local, url,
    )


# --- names ------------------------------------------------------------------------------------

def canonical_task(task: str) -> str:
    """The paper's spelling of a GLUE task name: ``'sst2'``, ``'sst-2'`` -> ``'SST-2'``."""
    key = str(task).replace("-", "").replace("_", "").lower()
    for name in PAPER_TASKS:
        if name.replace("-", "").lower() == key:
            return name
    raise ValueError(f"unknown task {task!r}: the authors' data covers {list(PAPER_TASKS)}")


def _check_variant(variant: str) -> tuple[str, ...]:
    if variant not in PAPER_VARIANT_FILES:
        raise ValueError(
            f"unknown mask variant {variant!r}: the published variants are {sorted(PAPER_VARIANT_FILES)} "
            "(see ../shared/paper_reference/README.md)"
        )
    return PAPER_VARIANT_FILES[variant]


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) not in PAPER_SEEDS:
        raise ValueError(f"seed {seed!r} has no published masks: use one of {PAPER_SEEDS}")
    return int(seed)


def mask_relpath(variant: str, task: str, seed: int, key: str) -> str:
    """``masks/<variant>/<TASK>/seed_<SEED>/<key>.npy`` (same layout locally and on GitHub)."""
    return f"masks/{variant}/{canonical_task(task)}/seed_{_check_seed(seed)}/{key}.npy"


def results_relpath(setting: str) -> str:
    """``evaluate_masked/<setting>/baseline/results.json`` (``freq_baseline`` has no ``baseline/``)."""
    if not setting or not all(c.isalnum() or c == "_" for c in setting):
        raise ValueError(
            f"setting {setting!r} is not a results folder name: use e.g. 'no_mask', 'head_mlp_retrained' "
            "(letters, digits and '_' only; see ../shared/paper_reference/README.md)"
        )
    if setting == "freq_baseline":
        return "evaluate_masked/freq_baseline/results.json"
    return f"evaluate_masked/{setting}/baseline/results.json"


# --- masks ------------------------------------------------------------------------------------

def load_paper_mask(variant: str, task: str, seed: int, root=None, allow_download: bool | None = None) -> dict:
    """One published s-pruning mask.

    Returns a dict with 'head_mask' (float32 (12, 12) [layer, head], 1 = kept), 'mlp_mask' (float32 (12,)),
    'head_importance' (12, 12) and 'mlp_importance' (12,); a key the variant lacks is None.
    """
    files = _check_variant(variant)
    out: dict = dict.fromkeys(MASK_KEYS)
    for key in files:
        path = paper_file(mask_relpath(variant, task, seed, key), root, allow_download)
        out[key] = np.load(path, allow_pickle=False)
    return out


def load_paper_masks(variant: str = "heads_mlps", tasks=PAPER_TASKS, seeds=PAPER_SEEDS, root=None,
                     allow_download: bool | None = None) -> dict[str, dict]:
    """Published masks stacked over seeds, per task (keys in the order of ``tasks``).

    Each value: 'head_mask' (n_seeds, 12, 12), 'mlp_mask' (n_seeds, 12), 'head_importance',
    'mlp_importance' (same shapes; None where the variant lacks them) and 'seeds' (tuple, the seed axis order).
    """
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    seeds = (seeds,) if isinstance(seeds, (int, np.integer)) else tuple(seeds)
    if not tasks or not seeds:
        raise ValueError(f"need at least one task and one seed; got tasks={tasks}, seeds={seeds}")
    result: dict[str, dict] = {}
    for task in tasks:
        per_seed = [load_paper_mask(variant, task, seed, root, allow_download) for seed in seeds]
        stacked = {key: None if per_seed[0][key] is None else np.stack([m[key] for m in per_seed])
                   for key in MASK_KEYS}
        stacked["seeds"] = tuple(int(s) for s in seeds)
        result[canonical_task(task)] = stacked
    return result


# --- scores -----------------------------------------------------------------------------------

def load_paper_results(setting: str, root=None, allow_download: bool | None = None) -> pd.DataFrame:
    """Dev scores over the 5 seeds for one evaluation setting (e.g. 'no_mask', 'head_mlp_retrained').

    Columns: task, metric, mean, std_pop (as stored, ddof=0), std (sample, ddof=1: std_pop * sqrt(5/4)),
    reported (True for the metric the paper reports for that task). Tasks in :data:`PAPER_TASKS` order.
    """
    relpath = results_relpath(setting)
    path = paper_file(relpath, root, allow_download)
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    factor = math.sqrt(len(PAPER_SEEDS) / (len(PAPER_SEEDS) - 1))
    order = {t: i for i, t in enumerate(PAPER_TASKS)}
    rows = []
    for task, metrics in sorted(data.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])):
        for metric, value in sorted(metrics.items()):
            if not (isinstance(value, list) and len(value) == 2):
                raise ValueError(
                    f"{path}: {task}/{metric} is {value!r}, expected [mean, population std]; "
                    "the file is not an authors' results.json - check LOTTERY_PAPER_DIR"
                )
            mean, std_pop = float(value[0]), float(value[1])
            rows.append({"task": task, "metric": metric, "mean": mean, "std_pop": std_pop,
                         "std": std_pop * factor, "reported": REPORTED_METRIC.get(task) == metric})
    return pd.DataFrame(rows, columns=["task", "metric", "mean", "std_pop", "std", "reported"])


def load_table2(root=None) -> pd.DataFrame:
    """The paper's Table 2 exactly as printed (columns model, the 9 tasks, average).

    The m-pruning bad CoLA cell keeps the printed typo (0.24); see :func:`corrected_table2`.
    """
    path = paper_file(TABLE2_FILE, root, allow_download=False, downloadable=False)
    return pd.read_csv(path)


def corrected_table2(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of Table 2 with the m-pruning bad CoLA typo (0.24) replaced by 0.0247 (global_bad_retrained).

    Adds a boolean column 'corrected' (True on the fixed row); ``attrs['corrections']`` describes the fix.
    The printed 'average' is left as printed.
    """
    model, column = TABLE2_TYPO["model"], TABLE2_TYPO["column"]
    if "model" not in df.columns or column not in df.columns:
        raise ValueError(f"table has columns {list(df.columns)}; expected 'model' and {column!r}: "
                         "pass the frame returned by load_table2()")
    rows = df.index[df["model"] == model]
    if len(rows) != 1:
        raise ValueError(f"table has {len(rows)} rows with model == {model!r}, expected 1: "
                         "pass the frame returned by load_table2()")
    printed = float(df.loc[rows[0], column])
    if not math.isclose(printed, TABLE2_TYPO["printed"]):
        raise ValueError(f"{model} {column} is {printed}, not the printed typo {TABLE2_TYPO['printed']}: "
                         "the table is already corrected or not the paper's Table 2; pass load_table2()")
    out = df.copy()
    out.loc[rows[0], column] = TABLE2_TYPO["value"]
    out["corrected"] = out.index == rows[0]
    out.attrs["corrections"] = [dict(TABLE2_TYPO)]
    return out

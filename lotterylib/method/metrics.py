"""GLUE metrics (scikit-learn / scipy), the paper's reported and search metrics, majority baselines.

Keys returned by :func:`compute_metrics`, per task (METHOD.md section 3):

========================  =====================================================
CoLA                      ``mcc``, ``acc``
SST-2, MNLI, QNLI, RTE,   ``acc`` (MNLI: run once on dev-matched and once on
WNLI                      dev-mismatched; both give the same keys)
MRPC, QQP                 ``acc``, ``f1`` (positive class 1), ``acc_and_f1``
STS-B                     ``pearson``, ``spearmanr``, ``corr`` (their mean)
========================  =====================================================

Degenerate inputs do not crash: constant predictions give ``mcc`` 0.0 (sklearn's convention) and ``f1``
0.0 when nothing is predicted positive; a correlation involving a constant vector is undefined (scipy returns
nan) and is reported as 0.0 here, so a collapsed regressor scores 0 rather than poisoning averages with nan.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from lotterylib.config.tasks import TaskSpec, get_task

_F1_TASKS = ("MRPC", "QQP")


def reported_metric(task: str | TaskSpec) -> str:
    """The metric the paper reports: CoLA ``mcc``, STS-B ``pearson``, otherwise ``acc``."""
    name = get_task(task).name
    return {"CoLA": "mcc", "STS-B": "pearson"}.get(name, "acc")


def search_metric(task: str | TaskSpec) -> str:
    """The metric of the 90 % pruning rule: STS-B ``corr`` (mean of Pearson and Spearman, as in the
    authors' code), otherwise the reported metric."""
    spec = get_task(task)
    return "corr" if spec.name == "STS-B" else reported_metric(spec)


def _as_vector(values, what: str) -> np.ndarray:
    """``values`` as a 1-D array [N]; a 2-D input (logits) gets a pointed error."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        hint = " Pass class ids, e.g. logits.argmax(-1), not logits." if arr.ndim == 2 else ""
        raise ValueError(f"{what} must be 1-D [N], got shape {arr.shape}.{hint}")
    return arr


def _as_class_ids(arr: np.ndarray, spec: TaskSpec, what: str) -> np.ndarray:
    """Integer class ids in [0, num_labels); integral floats are accepted."""
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise ValueError(f"{what} for {spec.name} must be integer class ids, got non-integer values.")
    elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise ValueError(f"{what} for {spec.name} must be integer class ids, got dtype {arr.dtype}.")
    ids = arr.astype(np.int64)
    bad = ids[(ids < 0) | (ids >= spec.num_labels)]
    if bad.size:
        raise ValueError(f"{what} for {spec.name} must be in [0, {spec.num_labels - 1}], found {bad[0]}.")
    return ids


def _correlation(fn, predictions: np.ndarray, labels: np.ndarray) -> float:
    """Pearson / Spearman statistic; 0.0 when either side is constant (undefined; scipy would give nan)."""
    if np.ptp(predictions) == 0 or np.ptp(labels) == 0:
        return 0.0
    return float(fn(predictions, labels).statistic)


def _regression_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    predictions = predictions.astype(np.float64)
    labels = labels.astype(np.float64)
    if not (np.all(np.isfinite(predictions)) and np.all(np.isfinite(labels))):
        raise ValueError("STS-B predictions and labels must be finite; found nan or inf (diverged model?).")
    pearson = _correlation(pearsonr, predictions, labels)
    spearman = _correlation(spearmanr, predictions, labels)
    return {"pearson": pearson, "spearmanr": spearman, "corr": (pearson + spearman) / 2}


def _classification_metrics(name: str, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    acc = float(accuracy_score(labels, predictions))
    if name == "CoLA":
        with warnings.catch_warnings():  # one class only: sklearn warns, and returns 0.0 as we want
            warnings.filterwarnings("ignore", message="A single label was found")
            return {"mcc": float(matthews_corrcoef(labels, predictions)), "acc": acc}
    if name in _F1_TASKS:
        f1 = float(f1_score(labels, predictions, pos_label=1, zero_division=0.0))
        return {"acc": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2}
    return {"acc": acc}


def compute_metrics(task: str | TaskSpec, predictions, labels) -> dict[str, float]:
    """GLUE metrics of ``predictions`` [N] (class ids; floats for STS-B) against ``labels`` [N].

    Returns plain Python floats under the keys listed in the module docstring.
    """
    spec = get_task(task)
    preds = _as_vector(predictions, "predictions")
    gold = _as_vector(labels, "labels")
    if len(preds) != len(gold):
        raise ValueError(f"{spec.name}: {len(preds)} predictions but {len(gold)} labels; they must match.")
    if len(gold) == 0:
        raise ValueError(f"{spec.name}: no examples to score (empty predictions and labels).")
    if spec.is_regression:
        return _regression_metrics(preds, gold)
    preds = _as_class_ids(preds, spec, "predictions")
    gold = _as_class_ids(gold, spec, "labels")
    return _classification_metrics(spec.name, preds, gold)


def majority_baseline(task: str | TaskSpec, train_labels, dev_labels) -> dict[str, float]:
    """Metrics of always predicting the most frequent train class (ties: the smaller id) on dev.

    For STS-B (regression) the prediction is the train mean; its correlations are then 0.0.
    """
    spec = get_task(task)
    train = _as_vector(train_labels, "train_labels")
    dev = _as_vector(dev_labels, "dev_labels")
    if len(train) == 0:
        raise ValueError(f"{spec.name}: majority_baseline needs at least one train label.")
    if spec.is_regression:
        constant = float(np.mean(train.astype(np.float64)))
        return compute_metrics(spec, np.full(len(dev), constant), dev)
    classes, counts = np.unique(_as_class_ids(train, spec, "train_labels"), return_counts=True)
    majority = classes[np.argmax(counts)]
    return compute_metrics(spec, np.full(len(dev), majority, dtype=np.int64), dev)

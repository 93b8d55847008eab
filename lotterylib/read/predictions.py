"""Constant predictors: re-fine-tuned runs that give every dev example the same answer (METHOD.md section 8).

A run is a **constant predictor** when its dev predictions hold one value: one class id for every example, or,
for STS-B, one score (spread at most :data:`SCORE_SPREAD`). Two ways to know:

- **from its predictions** (``predictions.npz`` beside ``metrics.json``; key ``predictions``): exact;
- **inferred from its metrics**, for runs made before predictions were kept: a constant classifier scores exactly
  the dev share of the class it predicts, so its accuracy equals the majority-class share (the ``acc`` of
  ``finetune/metrics.json``'s ``majority_baseline``) or, for a binary task, one minus it (to half an example:
  ``0.5 / n_dev``); CoLA's Matthews correlation of a constant classifier is exactly 0 (checked as well); a
  constant regressor has no correlation (our metrics write 0.0, scipy nan), so STS-B's Pearson is exactly 0 or
  nan. An accuracy can equal a class share without the run being constant, so an inference is a
  suspicion, labelled ``inferred`` wherever it is shown; a run with more than two classes can only be caught
  when it predicts the majority class.

The paper's authors published means and standard deviations over their five seeds, not predictions:
:func:`paper_constant` can only see a cell where every seed was constant (the mean at a class share and a
standard deviation of 0), and says so.

Reads result files only (no model).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from lotterylib.method.metrics import reported_metric
from lotterylib.config.plans import Plan
from lotterylib.store import layout as L
from lotterylib.store.files import read_npz

#: Re-fine-tuned variants, (method, subnetwork), in the order every table shows them.
VARIANTS: tuple[tuple[str, str], ...] = tuple((m, s) for m in ("m", "s", "super") for s in ("good", "random", "bad"))
SCORE_SPREAD = 1e-6  # STS-B: predictions within this range of each other count as one value
FROM_PREDICTIONS, INFERRED = "predictions", "inferred from metrics"
BINARY = {"CoLA", "SST-2", "MRPC", "QQP", "QNLI", "RTE", "WNLI"}


def is_constant(predictions) -> bool:
    """Whether one run's dev predictions hold one value: class ids (integers) or STS-B scores (floats).

    >>> is_constant(np.array([1, 1, 1], dtype=np.int16)), is_constant(np.array([0, 1, 1]))
    (True, False)
    >>> is_constant(np.array([2.5, 2.5, 2.5], dtype=np.float32))
    True
    """
    values = np.asarray(predictions)
    if values.size == 0:
        raise ValueError("no predictions: a run's dev predictions cannot be empty")
    if np.issubdtype(values.dtype, np.floating):
        return bool(np.ptp(values.astype(np.float64)) <= SCORE_SPREAD)
    return bool((values == values.flat[0]).all())


def inferred_constant(task: str, metrics: dict, majority: dict, n_dev: int) -> bool:
    """Whether a run's metrics are those of a constant predictor (see the module docstring).

    ``metrics``: the run's dev metrics; ``majority``: ``majority_baseline`` of the task's fine-tune record;
    ``n_dev``: dev examples.

    >>> inferred_constant("RTE", {"acc": 146 / 277}, {"acc": 146 / 277}, 277)
    True
    >>> inferred_constant("RTE", {"acc": 131 / 277}, {"acc": 146 / 277}, 277)  # the other class, every time
    True
    >>> inferred_constant("CoLA", {"mcc": 0.0, "acc": 0.7}, {"mcc": 0.0, "acc": 0.69}, 1043)
    False
    """
    if task == "STS-B":
        value = metrics.get("pearson", float("nan"))
        return bool(value is None or math.isnan(value) or value == 0.0)
    if task == "CoLA" and metrics.get("mcc") != 0.0:
        return False
    acc, share = metrics.get("acc"), majority.get("acc")
    if acc is None or share is None:
        return False
    shares = (share, 1.0 - share) if task in BINARY else (share,)
    return any(abs(acc - s) < 0.5 / n_dev for s in shares)


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def run_constancy(plan: Plan | str) -> pd.DataFrame:
    """One row per re-fine-tuned run of the plan: ``task, seed, method, subnetwork, constant, source``.

    ``source`` is :data:`FROM_PREDICTIONS` or :data:`INFERRED`. Runs without a score (a search that removed
    nothing, a skipped one, a run not done yet) have no row: they are not runs of a subnetwork.
    """
    plan = plan if isinstance(plan, Plan) else Plan.load(plan)
    rows = []
    for task in plan.tasks:
        for seed in plan.seeds:
            finetune = _read(L.finetune_file(plan.name, task, seed))
            for method, sub in VARIANTS:
                stage = L.retrain_dir(plan.name, task, seed, method, sub)
                data = _read(stage / L.METRICS)
                if data is None or "metrics" not in data:
                    continue
                if (stage / L.PREDICTIONS).exists():
                    constant = is_constant(read_npz(stage / L.PREDICTIONS)["predictions"])
                    source = FROM_PREDICTIONS
                elif finetune is not None:
                    constant = inferred_constant(task, data["metrics"], finetune["majority_baseline"],
                                                 finetune["n_dev"])
                    source = INFERRED
                else:
                    continue  # no fine-tune record: neither way can tell
                rows.append({"task": task, "seed": seed, "method": method, "subnetwork": sub,
                             "score": data["metrics"][reported_metric(task)], "constant": constant, "source": source})
    return pd.DataFrame(rows, columns=["task", "seed", "method", "subnetwork", "score", "constant", "source"])


def variant_name(method: str, subnetwork: str) -> str:
    """``("s", "good")`` -> ``"s good"``, as column headers and notes spell a variant."""
    return f"{method} {subnetwork}"


def constant_counts(runs: pd.DataFrame, tasks=None) -> pd.DataFrame:
    """Task x variant table of ``"k of n"`` constant predictors among the re-fine-tuned runs, ``(inferred)``
    where any of the k was inferred from metrics; ``"no run yet"`` where a variant has none. Columns: ``task``
    then one per variant present in ``VARIANTS`` order.
    """
    tasks = list(dict.fromkeys(tasks if tasks is not None else runs["task"]))
    rows = []
    for task in tasks:
        row = {"task": task}
        for method, sub in VARIANTS:
            cell = runs[(runs["task"] == task) & (runs["method"] == method) & (runs["subnetwork"] == sub)]
            if not len(cell):
                row[variant_name(method, sub)] = "no run yet"
                continue
            k = int(cell["constant"].sum())
            inferred = bool((cell["constant"] & (cell["source"] == INFERRED)).any())
            row[variant_name(method, sub)] = f"{k} of {len(cell)}" + (" (inferred)" if inferred else "")
        rows.append(row)
    return pd.DataFrame(rows, columns=["task"] + [variant_name(m, s) for m, s in VARIANTS])


def constant_good(runs: pd.DataFrame, methods=("m", "s")) -> dict[str, str]:
    """Per task with any, its constant good re-fine-tunes of ``methods`` in words, e.g.
    ``{"RTE": "s good: 1 of 5 (seed 86; inferred)"}``."""
    out: dict[str, str] = {}
    good = runs[(runs["subnetwork"] == "good") & runs["method"].isin(methods)]
    for task, sub in good.groupby("task", sort=False):
        parts = []
        for method, cell in sub.groupby("method", sort=False):
            hit = cell[cell["constant"]]
            if len(hit):
                how = "inferred" if (hit["source"] == INFERRED).any() else "from predictions"
                seeds = ", ".join(str(s) for s in hit["seed"])
                parts.append(f"{variant_name(method, 'good')}: {len(hit)} of {len(cell)} "
                             f"(seed{'s' if len(hit) > 1 else ''} {seeds}; {how})")
        if parts:
            out[task] = "; ".join(parts)
    return out


def paper_constant(summary: pd.DataFrame, reference: pd.DataFrame, methods=("m", "s"),
                   subnetworks=("good",)) -> dict[str, str]:
    """Per task, the published re-fine-tuned cells whose five seeds were all constant predictors, as far as a
    mean and a standard deviation can show it (inferred: the mean at a class share with std 0).

    ``summary``: :func:`lotterylib.report.scorecard.paper_summary`; ``reference``: the paper's full models with the
    ``majority`` baseline (accuracy share; CoLA 0, STS-B none).
    """
    major = reference.set_index("task")["majority"]
    cells = summary[(summary["stage"] == "retrained") & summary["method"].isin(methods)
                    & summary["subnetwork"].isin(subnetworks)]
    out: dict[str, str] = {}
    for _, c in cells.iterrows():
        task, mean, std = c["task"], float(c["mean"]), float(c["std"])
        if not (np.isfinite(std) and std == 0.0) or task not in major.index:
            continue
        if task in ("CoLA", "STS-B"):
            constant = mean == 0.0
        else:
            share = float(major[task])
            constant = any(abs(mean - s) < 1e-9 for s in ((share, 1 - share) if task in BINARY else (share,)))
        if constant:
            note = f"{variant_name(c['method'], c['subnetwork'])}: every seed (inferred: mean at a class share, std 0)"
            out[task] = f"{out[task]}; {note}" if task in out else note
    return out

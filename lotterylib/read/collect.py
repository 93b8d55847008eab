"""Gather a plan's result files into tidy tables for the figure notebooks.

Everything here only reads ``results/<plan>/...``: no model, no data, no checkpoint. Missing
files are listed (``missing_runs``) rather than silently skipped, so a page can say what it lacks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lotterylib.config.plans import FLOAT32_PRODUCTS, Plan
from lotterylib.method.metrics import reported_metric, search_metric
from lotterylib.method.pruning import METHODS, no_subnetwork_reason, replay_s_trace
from lotterylib.method.subnetworks import SUBNETWORKS
from lotterylib.store import layout as L
from lotterylib.store.files import read_npz

STAGES = (L.FINETUNE,) + tuple(L.prune_stage(m) for m in METHODS) + tuple(
    L.retrain_stage(m, s) for m in METHODS for s in SUBNETWORKS)
SUPER_STAGES = tuple(L.retrain_stage("super", s) for s in SUBNETWORKS)


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _stage_file(stage: str) -> str:
    return L.SEARCH if stage.startswith("prune") else L.METRICS


def missing_runs(plan: Plan | str) -> pd.DataFrame:
    """Which (task, seed, stage) result files are not there yet."""
    plan = Plan.of(plan)
    rows = [{"task": t, "seed": s, "stage": stage}
            for t in plan.tasks for s in plan.seeds for stage in STAGES
            if not L.stage_dir(plan.name, t, s, stage).joinpath(_stage_file(stage)).exists()]
    return pd.DataFrame(rows, columns=["task", "seed", "stage"])


def grid_progress(plan: Plan | str) -> dict:
    """How much of the plan's grid is on file: ``done`` of ``total`` stage result files (fine-tunes, searches,
    re-fine-tunes: :data:`STAGES`) and ``super_done`` of ``super_total`` super-survivor re-fine-tunes;
    ``supers_asked``: whether the plan has them at all (more than one seed: with one there is nothing to pool)."""
    plan = Plan.of(plan)
    runs = len(plan.tasks) * len(plan.seeds)
    supers = sum(L.stage_dir(plan.name, t, s, stage).joinpath(L.METRICS).exists()
                 for t in plan.tasks for s in plan.seeds for stage in SUPER_STAGES)
    return {"done": runs * len(STAGES) - len(missing_runs(plan)), "total": runs * len(STAGES),
            "super_done": int(supers), "super_total": runs * len(SUPER_STAGES), "supers_asked": len(plan.seeds) > 1}


def grid_complete(progress: dict) -> bool:
    """Whether :func:`grid_progress` says every result file the plan asks for is there."""
    return progress["done"] == progress["total"] and (
        not progress["supers_asked"] or progress["super_done"] == progress["super_total"])


def scale_statement(plan: Plan | str) -> str:
    """One sentence on the scale a page was built from, for the top of every results page."""
    plan = Plan.of(plan)
    progress = grid_progress(plan)
    done, total = progress["done"], progress["total"]
    supers = [data["provenance"] for stage in SUPER_STAGES for _, _, data in _each(plan, stage, L.METRICS)]
    made = [data["provenance"] for stage in STAGES
            for _, _, data in _each(plan, stage, _stage_file(stage))] + supers
    origin = ""
    if made:
        commits = sorted({p.get("git_commit") or "unknown" for p in made})
        versions = sorted({p["lotterylib_version"] for p in made})
        dates = sorted(p["created"][:10] for p in made)
        weights = sorted({(p.get("config", {}).get("settings") or {}).get("model_weights", "float32") for p in made})
        stacks = sorted({f"torch {p['torch']}, transformers {p['transformers']}" for p in made})
        where = f"result files made {device_statement(plan)}"
        origin = (f" Runs made with lotterylib {', '.join(versions)} at git commit "
                  f"{', '.join(c[:10] for c in commits)}, {dates[0]}"
                  f"{'' if dates[0] == dates[-1] else ' to ' + dates[-1]}; {where}; "
                  f"{'; '.join(stacks)}; from {' and '.join(weights)} pre-trained weights.")
    n_super = progress["super_done"]  # counted as the stage files are: by existence
    super_note = (f" Super-survivor re-fine-tunes: {n_super} of {progress['super_total']}."
                  if n_super or progress["supers_asked"] else "")
    return (f"Built from the **{plan.name}** plan: {plan.description} (model `{plan.model}`). Tasks: "
            f"{', '.join(plan.tasks)}; seeds: {', '.join(map(str, plan.seeds))}. Result files present: "
            f"{done} of {total}.{super_note}{origin}")


def _device_label(data: dict) -> str:
    """Where a result file's run computed: its provenance's device, and for a CPU run under bf16 autocast whose
    matrix products ran as float32 products of the bf16 operands (its ``bf16_matmul``, written by
    lotterylib.run.cpu_bf16) that too."""
    device = data["provenance"]["device"]
    if device == "cpu":
        return "CPU (bf16 products in float32)" if data.get("bf16_matmul") == FLOAT32_PRODUCTS else "CPU"
    return f"GPU ({device.split(':', 1)[-1]})" if device.startswith("cuda") else device


def _kind_of(stage: str) -> str:
    if stage == L.FINETUNE:
        return "fine-tunes"
    if stage in {L.prune_stage(m) for m in METHODS}:
        return "searches"
    if stage.startswith("retrain_"):
        method, sub = L.parse_retrain_stage(stage)
        return f"{method}-{sub} re-fine-tunes"
    return f"{stage} re-fine-tunes"


def devices_by_kind(plan: Plan | str) -> pd.DataFrame:
    """How many result files of each kind of run were made on which device (from each file's provenance):
    one row per (kind, device) with ``n``. Kinds: fine-tunes, searches, <method>-<subnetwork> re-fine-tunes
    (method m, s or super), lottery and swap re-fine-tunes (METHOD.md section 10)."""
    plan = Plan.of(plan)
    rows = []
    for stage in STAGES + SUPER_STAGES:
        for task, seed, data in _each(plan, stage, _stage_file(stage)):
            if "provenance" in data and "metrics" in data or not stage.startswith("retrain_"):
                rows.append({"kind": _kind_of(stage), "device": _device_label(data)})
    for experiment in (L.LOTTERY, L.SWAP):
        for task in plan.tasks:
            for seed in plan.seeds:
                for metrics in L.experiment_files(plan.name, task, seed, experiment):
                    data = _read(metrics)
                    if data is not None and "metrics" in data:
                        rows.append({"kind": f"{experiment} re-fine-tunes",
                                     "device": _device_label(data)})
    if not rows:
        return pd.DataFrame(columns=["kind", "device", "n"])
    return pd.DataFrame(rows).value_counts(["kind", "device"], sort=False).rename("n").reset_index()


def device_statement(plan: Plan | str) -> str:
    """Where each kind of run was made, in words, device by device: "on CPU: s-random 3, lottery 2; on GPU
    (...): fine-tunes 30, ..." (counts of result files)."""
    table = devices_by_kind(plan)
    if table.empty:
        return "no runs yet"
    parts = []
    for device, sub in table.groupby("device", sort=False):
        kinds = ", ".join(f"{row.kind.replace(' re-fine-tunes', '')} {row.n}" for row in sub.itertuples())
        parts.append(f"on {device}: {kinds}")
    return "; ".join(parts)


#: The columns of :func:`full_scores` (also when no fine-tune is on file yet).
FULL_COLUMNS = ["task", "seed", "metric", "score", "search_metric", "search_score", "majority", "train_seconds",
                "n_train", "n_dev", "structure"]


def full_scores(plan: Plan | str) -> pd.DataFrame:
    """One row per (task, seed): the full fine-tuned model's reported and search metrics."""
    plan = Plan.of(plan)
    return full_scores_of(plan.name, plan.tasks, plan.seeds)


def full_scores_of(plan_name: str, tasks, seeds) -> pd.DataFrame:
    """:func:`full_scores` for the given tasks and seeds of the results folder ``plan_name``."""
    rows = []
    for task in tasks:
        for seed in seeds:
            data = _read(L.finetune_file(plan_name, task, seed))
            if data is None:
                continue
            rep, srch = reported_metric(task), search_metric(task)
            rows.append({"task": task, "seed": seed, "metric": rep, "score": data["metrics"][rep],
                         "search_metric": srch, "search_score": data["metrics"].get(srch),
                         "majority": data["majority_baseline"][rep], "train_seconds": data.get("train_seconds"),
                         "n_train": data.get("n_train"), "n_dev": data.get("n_dev"),
                         "structure": data.get("structure")})
    return pd.DataFrame(rows, columns=FULL_COLUMNS)


def subnetwork_scores(plan: Plan | str, include_super: bool = True) -> pd.DataFrame:
    """One row per (task, seed, method, subnetwork, stage) with the reported metric.

    ``stage`` is ``pruned`` (the fine-tuned model with the mask) or ``retrained`` (re-fine-tuned
    from the pre-trained weights under the mask). ``weights_kept_share`` is the subnetwork's size
    in one unit for both methods: the share of m-prunable encoder weights it keeps.
    """
    plan = Plan.of(plan)
    rows = []
    for task in plan.tasks:
        rep = reported_metric(task)
        for seed in plan.seeds:
            for method in METHODS:
                pruned = _read(L.pruned_file(plan.name, task, seed, method))
                sizes = {}
                if pruned is not None:
                    for sub, rec in pruned["subnetworks"].items():
                        sizes[sub] = rec.get("weights_kept_share")
                        if rec.get("metrics") is None:  # re-drawn without the fine-tuned checkpoint
                            continue
                        rows.append({"task": task, "seed": seed, "method": method, "subnetwork": sub,
                                     "stage": "pruned", "metric": rep, "score": rec["metrics"][rep],
                                     "weights_kept_share": sizes[sub], "heads_kept": rec.get("heads_kept"),
                                     "mlps_kept": rec.get("mlps_kept")})
                for sub in SUBNETWORKS:
                    data = _read(L.retrain_file(plan.name, task, seed, method, sub))
                    if data is None or data.get("skipped") or data.get("no_subnetwork"):
                        continue
                    rows.append({"task": task, "seed": seed, "method": method, "subnetwork": sub,
                                 "stage": "retrained", "metric": rep, "score": data["metrics"][rep],
                                 "weights_kept_share": sizes.get(sub), "heads_kept": None, "mlps_kept": None})
            if include_super:
                for sub in SUBNETWORKS:
                    data = _read(L.retrain_file(plan.name, task, seed, "super", sub))
                    if data is not None and not data.get("skipped") and not data.get("no_subnetwork"):
                        rows.append({"task": task, "seed": seed, "method": "super", "subnetwork": sub,
                                     "stage": "retrained", "metric": rep, "score": data["metrics"][rep],
                                     "weights_kept_share": None, "heads_kept": None, "mlps_kept": None})
    return pd.DataFrame(rows)


def mean_std_text(values) -> str:
    """'0.812 ± 0.010 (n=5)' for one cell's scores over seeds; 'no run yet' for none, no std for one seed.

    >>> mean_std_text([0.8, 0.82]), mean_std_text([0.5]), mean_std_text([])
    ('0.810 ± 0.014 (n=2)', '0.500 (n=1)', 'no run yet')
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return "no run yet"
    if len(v) == 1:
        return f"{v[0]:.3f} (n=1)"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f} (n={len(v)})"


#: What an empty cell of :func:`cell_table` says, per stage.
EMPTY_CELL = {"pruned": "not evaluated (yet)", "retrained": "no run yet"}


def cell_table(scores: pd.DataFrame, index=("task", "method"), columns=("stage", "subnetwork"),
               value: str = "score", empty: dict[str, str] | None = None) -> pd.DataFrame:
    """Wide table of 'mean ± std (n=k)' per cell (:func:`mean_std_text`); an empty cell says why
    (``empty``, keyed by the first column level; default :data:`EMPTY_CELL`, else 'no run yet'); the index as
    ordinary columns (no index shown), the other columns named 'stage: subnetwork'. A pruned-only score is
    missing where a re-drawn mask could not be evaluated (no fine-tuned checkpoint here), a re-fine-tune where
    the grid has not run it yet."""
    empty = EMPTY_CELL if empty is None else empty
    index, columns = list(index), list(columns)
    cells = scores.groupby(index + columns, sort=False)[value].agg(mean_std_text).rename("cell").reset_index()
    wide = cells.pivot(index=index, columns=columns, values="cell")
    order = [c for c in (("pruned", s) for s in SUBNETWORKS) if c in wide.columns] + \
            [c for c in (("retrained", s) for s in SUBNETWORKS) if c in wide.columns]
    order += [c for c in wide.columns if c not in order]
    keys = scores[index[0]] if len(index) == 1 else map(tuple, scores[index].to_numpy())  # a 1-key index is flat
    wide = wide.reindex(index=list(dict.fromkeys(keys)), columns=order)
    for col in wide.columns:
        wide[col] = wide[col].fillna(empty.get(col[0] if isinstance(col, tuple) else col, "no run yet"))
    wide.columns = [": ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in wide.columns]
    return wide.reset_index()


def bad_rows(scores: pd.DataFrame, full: pd.DataFrame) -> pd.DataFrame:
    """Table 2, ours, long: one row per (model, task) with the mean over seeds (``score``) and the seeds (``n``)
    of the re-fine-tuned bad subnetworks of both methods, the majority baseline and the full model."""
    rows = []
    bad = scores[(scores["subnetwork"] == "bad") & (scores["stage"] == "retrained")
                 & scores["method"].isin(METHODS)] if len(scores) else scores
    for method in METHODS:
        for task, g in bad[bad["method"] == method].groupby("task", sort=False) if len(bad) else []:
            rows.append({"model": f"bad subnetwork, {method}-pruning (ours)", "task": task,
                         "score": g["score"].mean(), "n": len(g)})
    for name, col in (("majority class (ours)", "majority"), ("full model (ours)", "score")):
        for task, g in full.groupby("task", sort=False) if len(full) else []:
            rows.append({"model": name, "task": task, "score": g[col].mean(), "n": len(g)})
    return pd.DataFrame(rows, columns=["model", "task", "score", "n"])


def bad_table(rows: pd.DataFrame, tasks) -> pd.DataFrame:
    """:func:`bad_rows` as Table 2: one row per model, 'mean (n=k)' per task, 'no run yet' where empty, and the
    average over the tasks it has (with how many when not all)."""
    out = []
    tasks = list(tasks)
    for model, g in rows.groupby("model", sort=False):
        g = g.set_index("task")
        row = {"model": model}
        for task in tasks:
            row[task] = f"{g.loc[task, 'score']:.3f} (n={int(g.loc[task, 'n'])})" if task in g.index else "no run yet"
        have = [t for t in tasks if t in g.index]
        row["average"] = (f"{g.loc[have, 'score'].mean():.3f}" + ("" if len(have) == len(tasks)
                                                                  else f" ({len(have)} of {len(tasks)} tasks)")
                          if have else "no run yet")
        out.append(row)
    return pd.DataFrame(out, columns=["model", *tasks, "average"])


def s_masks(plan: Plan | str, subnetwork: str = "good") -> dict[str, dict[str, np.ndarray]]:
    """Per task: s-pruning masks stacked over the seeds that have them: head (S, L, H), mlp (S, L)."""
    plan = Plan.of(plan)
    out = {}
    for task in plan.tasks:
        heads, mlps, seeds = [], [], []
        for seed in plan.seeds:
            path = L.mask_file(plan.name, task, seed, "s", subnetwork)
            if path.exists():
                arrays = read_npz(path)
                heads.append(arrays["head_mask"])
                mlps.append(arrays["mlp_mask"])
                seeds.append(seed)
        if heads:
            out[task] = {"head_mask": np.stack(heads), "mlp_mask": np.stack(mlps), "seeds": tuple(seeds)}
    return out


def no_subnetwork_runs(plan: Plan | str) -> pd.DataFrame:
    """One row per (task, seed, method) whose search has no subnetwork: skipped (the full model did not learn) or
    removed nothing (its first step failed the 90 % rule). Their good, random and bad would all be the full
    model: every comparison, mean and figure leaves them out (METHOD.md section 7)."""
    plan = Plan.of(plan)
    rows = [{"task": task, "seed": seed, "method": method, "reason": no_subnetwork_reason(data)}
            for method in METHODS for task, seed, data in _each(plan, L.prune_stage(method), L.SEARCH)
            if no_subnetwork_reason(data)]
    return pd.DataFrame(rows, columns=["task", "seed", "method", "reason"])


def super_masks(plan: Plan | str) -> pd.DataFrame:
    """One row per (task, subnetwork) of the super-survivor masks: heads and MLPs kept, and ``resize`` (how
    random and bad were sized: ``matched``, exactly the good size, the default; ``authors``, the authors' own
    resizing, at most the good size)."""
    plan = Plan.of(plan)
    rows = []
    for task in plan.tasks:
        for sub in SUBNETWORKS:
            meta = _read(L.mask_file(plan.name, task, None, "super", sub, "json"))
            if meta is not None:
                rows.append({"task": task, "subnetwork": sub, "heads_kept": meta["heads_kept"],
                             "mlps_kept": meta["mlps_kept"], "resize": meta.get("resize", "matched")})
    return pd.DataFrame(rows, columns=["task", "subnetwork", "heads_kept", "mlps_kept", "resize"])


def _each(plan: Plan, stage: str, name: str):
    """``(task, seed, data)`` for every run of the plan that has the result file ``<stage>/<name>``."""
    for task in plan.tasks:
        for seed in plan.seeds:
            data = _read(L.stage_dir(plan.name, task, seed, stage) / name)
            if data is not None:
                yield task, seed, data


def traces(plan: Plan | str) -> pd.DataFrame:
    """Every search step of every run: method, phase, step, metric, passed, size."""
    plan = Plan.of(plan)
    rows = []
    for method in METHODS:
        for task, seed, data in _each(plan, L.prune_stage(method), L.SEARCH):
            full = data["full_metric"]
            rows += [{"task": task, "seed": seed, "method": method, "step": rec["step"], "phase": rec["phase"],
                      "metric": rec["metric"], "passed": rec["passed"], "full_metric": full,
                      "relative": rec["metric"] / full if full else np.nan, "sparsity": rec.get("sparsity"),
                      "heads_kept": rec.get("heads_kept"), "mlps_kept": rec.get("mlps_kept")}
                     for rec in data["trace"]]
    return pd.DataFrame(rows)


def search_summaries(plan: Plan | str) -> pd.DataFrame:
    """One row per (task, seed, method): steps, skipped reason, final sizes."""
    plan = Plan.of(plan)
    rows = []
    for method in METHODS:
        for task, seed, data in _each(plan, L.prune_stage(method), L.SEARCH):
            keep = {k: v for k, v in data.items() if k not in ("trace", "provenance", "options")}
            rows.append({"task": task, "seed": seed, **keep})
    return pd.DataFrame(rows)


def importance_scores(plan: Plan | str) -> pd.DataFrame:
    """Normalised importance of the components still alive at every s-pruning step.

    Pruned components score zero by definition and are left out; the live set is rebuilt by
    replaying the trace (a step's removals count only if the step passed).
    """
    plan = Plan.of(plan)
    rows = []
    for task, seed, data in _each(plan, L.prune_stage("s"), L.SEARCH):
        for rec, head_alive, mlp_alive in replay_s_trace(data["trace"]):
            for kind, alive in (("head", head_alive), ("mlp", mlp_alive)):
                scores = np.asarray(rec[f"{kind}_scores"], dtype=float)[alive]
                rows += [{"task": task, "seed": seed, "step": rec["step"], "kind": kind, "score": float(v)}
                         for v in scores]
    return pd.DataFrame(rows)


def m_layer_shares(plan: Plan | str, subnetwork: str = "good") -> pd.DataFrame:
    """m-pruning's surviving weight share per layer and module, one row per (task, seed, layer, module)."""
    rows = [{"task": task, "seed": seed, **rec}
            for task, seed, data in _each(Plan.of(plan), L.prune_stage("m"), L.PRUNED)
            for rec in data["subnetworks"].get(subnetwork, {}).get("by_layer", [])]  # none: no subnetwork
    return pd.DataFrame(rows)


# --- where and how fast the grid ran ---------------------------------------------------------------------------

def grid_logs(plan: Plan | str) -> pd.DataFrame:
    """One row per job of each logged grid call (the timing records kept in ``results/<plan>/grid_log/*.json``):
    the call, its device and workers, the job's stage, task, seed and seconds."""
    plan = Plan.of(plan)
    rows = []
    folder = L.grid_log_dir(plan.name)
    for path in sorted(folder.glob("*.json")):
        log = json.loads(path.read_text())
        for job in log["jobs"]:
            if "stage" not in job:
                continue  # a job left out because one it needs failed
            rows.append({"call": path.stem, "device": log["provenance"]["device"], "workers": log["workers"],
                         "call_seconds": log["elapsed"], "job": job["job"], "stage": job["stage"],
                         "task": job["task"], "seed": job["seed"], "ok": job["ok"], "seconds": job["seconds"]})
    return pd.DataFrame(rows, columns=["call", "device", "workers", "call_seconds", "job", "stage", "task", "seed",
                                       "ok", "seconds"])


def grid_calls(plan: Plan | str) -> pd.DataFrame:
    """One row per logged grid call: device, workers, wall time, jobs finished and their summed job time."""
    jobs = grid_logs(plan)
    if jobs.empty:
        return pd.DataFrame(columns=["call", "device", "workers", "wall_seconds", "jobs_done", "job_seconds"])
    done = jobs[jobs["ok"]]
    out = jobs.groupby("call").agg(device=("device", "first"), workers=("workers", "first"),
                                   wall_seconds=("call_seconds", "first")).reset_index()
    counts = done.groupby("call").agg(jobs_done=("job", "count"), job_seconds=("seconds", "sum"))
    return out.merge(counts, on="call", how="left").fillna({"jobs_done": 0, "job_seconds": 0.0})

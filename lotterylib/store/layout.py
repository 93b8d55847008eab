"""Where every result file lives: the one module that spells the results layout.

The Snakefile, the stages, the readers, the explorer, the benchmarks and the tools all ask this module for a
path; nothing else writes ``seed_``, ``prune_s`` or ``retrain_`` into a path. The layout::

    results/<plan>/                                     plan_dir
        grid_log/<call>.json                            grid_log_dir
        <task>/super/masks/<sub>.npz|.json              super_dir, mask_file(..., method="super")
        <task>/seed_<seed>/                             run_dir
            finetune/metrics.json, attention.npz, ...   finetune_file
            prune_<m|s>/search.json, pruned.json        search_file, pruned_file
            prune_<m|s>/masks/<sub>.npz|.json           mask_file
            retrain_<m|s|super>_<sub>/metrics.json      retrain_file (+ predictions.npz)
            lottery/f<0.25>_<sub>/metrics.json          lottery_file
            swap/<variant>/metrics.json                 swap_file
    checkpoints/<plan>/<task>/seed_<seed>/              checkpoint_dir (never committed)

``LOTTERY_RESULTS`` and ``LOTTERY_CHECKPOINTS`` move either root, and every function takes ``root=`` to build
paths under another one (the Snakefile builds its relative file patterns so). Every part may be a Snakemake
wildcard such as ``"{task}"``: ``run_dir("demo", "{task}", "{seed}", root="results")`` is the pattern
``results/demo/{task}/seed_{seed}``.

>>> str(retrain_file("demo", "MRPC", 42, "s", "random", root="results"))
'results/demo/MRPC/seed_42/retrain_s_random/metrics.json'
>>> str(lottery_file("demo", "CoLA", 1337, 0.5, "good", root="results"))
'results/demo/CoLA/seed_1337/lottery/f0.50_good/metrics.json'
>>> str(mask_file("demo", "CoLA", None, "super", "bad", "json", root="results"))
'results/demo/CoLA/super/masks/bad.json'
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# File names inside a stage folder.
METRICS = "metrics.json"
PREDICTIONS = "predictions.npz"
SEARCH = "search.json"
PRUNED = "pruned.json"
ATTENTION = "attention.npz"
GALLERY = "gallery.npz"
SINGLE_REMOVAL = "single_removal.json"
IMPORTANCE = "importance.npz"
MASK = "mask.npz"
MASKS = "masks"

# Stage folder names of one run.
FINETUNE = "finetune"
LOTTERY = "lottery"
SWAP = "swap"
SUPER = "super"
GRID_LOG = "grid_log"


# --- roots --------------------------------------------------------------------------------------------------

def results_root() -> Path:
    return Path(os.environ.get("LOTTERY_RESULTS", REPO / "results"))


def checkpoints_root() -> Path:
    return Path(os.environ.get("LOTTERY_CHECKPOINTS", REPO / "checkpoints"))


def plan_dir(plan: str, root: str | Path | None = None) -> Path:
    return Path(root if root is not None else results_root()) / str(plan)


def grid_log_dir(plan: str, root: str | Path | None = None) -> Path:
    """Where the logged calls of a grid are kept (one JSON per call)."""
    return plan_dir(plan, root) / GRID_LOG


def run_dir(plan: str, task: str, seed: int | str, root: str | Path | None = None) -> Path:
    return plan_dir(plan, root) / str(task) / f"seed_{seed}"


def super_dir(plan: str, task: str, root: str | Path | None = None) -> Path:
    """The super-survivor masks of a task (built from every seed's good s-mask)."""
    return plan_dir(plan, root) / str(task) / SUPER


def checkpoint_dir(plan: str, task: str, seed: int | str, root: str | Path | None = None) -> Path:
    return Path(root if root is not None else checkpoints_root()) / str(plan) / str(task) / f"seed_{seed}"


# --- stage folders ------------------------------------------------------------------------------------------

def prune_stage(method: str) -> str:
    return f"prune_{method}"


def retrain_stage(method: str, sub: str) -> str:
    return f"retrain_{method}_{sub}"


def fraction_label(fraction: float | str) -> str:
    """``0.25 -> 'f0.25'``: the folder name of a lottery-curve point (a wildcard string passes through)."""
    if isinstance(fraction, str) and "{" in fraction:
        return f"f{fraction}"
    return f"f{float(fraction):.2f}"


def parse_retrain_stage(stage: str) -> tuple[str, str]:
    """Inverse of :func:`retrain_stage`: ``'retrain_super_good' -> ('super', 'good')``."""
    if not stage.startswith("retrain_"):
        raise ValueError(f"{stage!r} is not a re-fine-tune stage folder (retrain_<method>_<subnetwork>)")
    method, _, sub = stage[len("retrain_"):].partition("_")
    return method, sub


def stage_dir(plan: str, task: str, seed: int | str, stage: str, root: str | Path | None = None) -> Path:
    return run_dir(plan, task, seed, root) / stage


def finetune_file(plan: str, task: str, seed: int | str, name: str = METRICS,
                  root: str | Path | None = None) -> Path:
    return run_dir(plan, task, seed, root) / FINETUNE / name


def prune_dir(plan: str, task: str, seed: int | str, method: str, root: str | Path | None = None) -> Path:
    return run_dir(plan, task, seed, root) / prune_stage(method)


def search_file(plan: str, task: str, seed: int | str, method: str, root: str | Path | None = None) -> Path:
    return prune_dir(plan, task, seed, method, root) / SEARCH


def pruned_file(plan: str, task: str, seed: int | str, method: str, root: str | Path | None = None) -> Path:
    return prune_dir(plan, task, seed, method, root) / PRUNED


def masks_dir(plan: str, task: str, seed: int | str | None, method: str, root: str | Path | None = None) -> Path:
    """The masks of one search (``method`` m or s), or a task's super-survivor masks (``method="super"``,
    no seed)."""
    if method == SUPER:
        return super_dir(plan, task, root) / MASKS
    return prune_dir(plan, task, seed, method, root) / MASKS


def mask_file(plan: str, task: str, seed: int | str | None, method: str, sub: str, ext: str = "npz",
              root: str | Path | None = None) -> Path:
    """A subnetwork's mask (``ext="npz"``) or its sidecar (``ext="json"``)."""
    return masks_dir(plan, task, seed, method, root) / f"{sub}.{ext}"


def retrain_dir(plan: str, task: str, seed: int | str, method: str, sub: str,
                root: str | Path | None = None) -> Path:
    return run_dir(plan, task, seed, root) / retrain_stage(method, sub)


def retrain_file(plan: str, task: str, seed: int | str, method: str, sub: str, name: str = METRICS,
                 root: str | Path | None = None) -> Path:
    return retrain_dir(plan, task, seed, method, sub, root) / name


def lottery_dir(plan: str, task: str, seed: int | str, fraction: float | str, sub: str,
                root: str | Path | None = None) -> Path:
    return run_dir(plan, task, seed, root) / LOTTERY / f"{fraction_label(fraction)}_{sub}"


def lottery_file(plan: str, task: str, seed: int | str, fraction: float | str, sub: str, name: str = METRICS,
                 root: str | Path | None = None) -> Path:
    return lottery_dir(plan, task, seed, fraction, sub, root) / name


def swap_dir(plan: str, task: str, seed: int | str, variant: str, root: str | Path | None = None) -> Path:
    return run_dir(plan, task, seed, root) / SWAP / str(variant)


def swap_file(plan: str, task: str, seed: int | str, variant: str, name: str = METRICS,
              root: str | Path | None = None) -> Path:
    return swap_dir(plan, task, seed, variant, root) / name


def experiment_files(plan: str, task: str, seed: int | str, experiment: str,
                     root: str | Path | None = None) -> list[Path]:
    """Every ``metrics.json`` of a run's lottery or swap experiment that exists."""
    folder = run_dir(plan, task, seed, root) / experiment
    return sorted(folder.glob(f"*/{METRICS}")) if folder.exists() else []

"""Plans: the scale of an experiment grid as data (``plans/<name>.yaml``).

A plan names the model, tasks, seeds and every hyperparameter. Adding a plan is adding a YAML
file; nothing in the code knows plan names. Per-task overrides go under ``task_overrides``::

    task_overrides:
      SST-2: {data: {max_train: 20000}}
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .data import get_task
from .models import WEIGHT_VARIANTS
from .train import TrainConfig

REPO = Path(__file__).resolve().parents[1]
PLANS_DIR = REPO / "plans"
SECTIONS = ("data", "train", "importance", "search", "records", "beyond_paper")
DEFAULTS = {
    "model_options": {},
    # The pre-trained weights as the checkpoint has them ("float32"), or rounded to float16 first ("float16":
    # what a float16 copy of the checkpoint holds, e.g. one carried to a GPU machine; see models.load_model).
    "model_weights": "float32",
    "data": {"max_train": None, "max_dev": None},
    "importance": {"abs_per": "example", "batch_size": 32},
    # super_resize: "matched" (random and bad of exactly the good size; METHOD.md section 7) or "authors"
    "search": {"fraction": 0.9, "head_step": 0.1, "halve_phase2": False, "m_max_steps": None,
               "bernoulli_random": False, "super_resize": "matched"},
    "records": {"attention_examples": 64, "attention_gallery": 2, "single_removal_seeds": [],
                "single_removal_dev": 256},
    # METHOD.md section 10: heads-only lottery curves and the component swap, on these tasks and seeds
    "beyond_paper": {"tasks": [], "seeds": [], "head_fractions": [0.25, 0.5, 0.75]},
}


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else value
    return out


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    model: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    raw: dict = field(repr=False)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> "Plan":
        """A plan by name (``plans/<name>.yaml``) or by path to a YAML file."""
        path = Path(name_or_path)
        if path.suffix not in (".yaml", ".yml"):
            path = PLANS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in PLANS_DIR.glob("*.yaml"))
            raise FileNotFoundError(f"no plan {str(name_or_path)!r} ({path} is missing); known plans: {known}; "
                                    "add one as a YAML file in plans/")
        raw = yaml.safe_load(path.read_text()) or {}
        missing = [k for k in ("name", "model", "tasks", "seeds", "train") if k not in raw]
        if missing:
            raise ValueError(f"plan {path} lacks {missing}: see plans/smoke.yaml for the format")
        unknown = sorted(set(raw) - {"name", "description", "model", "model_options", "model_weights", "tasks",
                                     "seeds", "task_overrides", *SECTIONS})
        if unknown:
            raise ValueError(f"plan {path} has unknown keys {unknown}")
        raw = _merge(DEFAULTS, raw)
        tasks = tuple(get_task(t).name for t in raw["tasks"])
        TrainConfig.from_dict(raw["train"])  # validate early
        if raw["model_weights"] not in WEIGHT_VARIANTS:
            raise ValueError(f"plan {path} has model_weights: {raw['model_weights']!r}; use one of "
                             f"{list(WEIGHT_VARIANTS)}")
        for task in raw.get("task_overrides") or {}:
            get_task(task)
        beyond = raw["beyond_paper"]
        beyond["tasks"] = [get_task(t).name for t in beyond.get("tasks") or []]
        stray = [t for t in beyond["tasks"] if t not in tasks] + \
            [s for s in beyond.get("seeds") or [] if int(s) not in [int(x) for x in raw["seeds"]]]
        if stray:
            raise ValueError(f"plan {path}: beyond_paper names {stray}, which the plan's tasks/seeds lack")
        if not all(0 < float(f) < 1 for f in beyond.get("head_fractions") or []):
            raise ValueError(f"plan {path}: beyond_paper.head_fractions must lie strictly between 0 and 1, got "
                             f"{beyond.get('head_fractions')}")
        if raw["search"].get("super_resize") not in ("matched", "authors"):
            raise ValueError(f"plan {path}: search.super_resize is {raw['search'].get('super_resize')!r}; use "
                             "'matched' (default) or 'authors'")
        return cls(raw["name"], raw.get("description", ""), raw["model"], tasks,
                   tuple(int(s) for s in raw["seeds"]), raw)

    def settings(self, task: str) -> dict:
        """Every setting of one task's runs, task overrides applied."""
        task = get_task(task).name
        if task not in self.tasks:
            raise ValueError(f"task {task} is not in plan {self.name!r} (tasks: {list(self.tasks)})")
        base = {k: v for k, v in self.raw.items() if k != "task_overrides"}
        return _merge(base, (self.raw.get("task_overrides") or {}).get(task, {}))

    def train_config(self, task: str) -> TrainConfig:
        return TrainConfig.from_dict(self.settings(task)["train"])

"""Plans: the scale of an experiment grid as data (``plans/<name>.yaml``), read into a strict, typed schema.

A plan names the model, tasks, seeds and every hyperparameter. Adding a plan is adding a YAML file; nothing in
the code knows plan names. Per-task overrides go under ``task_overrides``::

    task_overrides:
      SST-2: {data: {max_train: 20000}}

Every section is a frozen dataclass below; a plan is checked completely when it loads. Unknown keys at any level,
wrong types (a string where a list belongs, a bool where a number belongs), NaN or infinite numbers, values out of
range, empty or duplicate task and seed lists, task overrides for tasks the plan lacks and plan names that are not
a plain name are refused with a :class:`~lotterylib.errors.ConfigError` that names the file, the key path, the
value and what is allowed. Settings are read as attributes: ``plan.settings("MRPC").search.fraction``.

This module imports no torch.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from lotterylib.errors import ConfigError, MissingError
from lotterylib.config.tasks import get_task

REPO = Path(__file__).resolve().parents[2]
PLANS_DIR = REPO / "plans"
#: The weight variants a plan may start from: the checkpoint as it is, or rounded to float16 first.
WEIGHT_VARIANTS = ("float32", "float16")
PRECISIONS = ("fp32", "bf16")
#: What a result file's ``bf16_matmul`` says of a CPU run whose bf16 matrix products ran as float32 products of the
#: bf16 operands (lotterylib.run.cpu_bf16); here so that the read side names it without loading torch.
FLOAT32_PRODUCTS = "float32 products"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# --- checks: each takes (value, where) and returns the value as the schema holds it ------------------------------

def _fail(where: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{where} = {value!r}: {allowed}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(low: int | None = None, optional: bool = False) -> Callable:
    allowed = (f"an integer >= {low}" if low is not None else "an integer") + (" or null" if optional else "")

    def check(value, where):
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
            raise _fail(where, value, f"use {allowed}")
        return value
    return check


def number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False,
           optional: bool = False) -> Callable:
    lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
    hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
    allowed = "a finite number" + (f" {lo}" if lo else "") + (" and" if lo and hi else "") + (f" {hi}" if hi else "")
    allowed += " or null" if optional else ""

    def check(value, where):
        if value is None and optional:
            return None
        if isinstance(value, str):
            hint = " (YAML 1.1 reads 1e-3 as text: write 1.0e-3)" if re.fullmatch(r"[-+]?[\d.]+e[-+]?\d+", value) else ""
            raise _fail(where, value, f"use {allowed}{hint}")
        if not _is_number(value) or not math.isfinite(value):
            raise _fail(where, value, f"use {allowed}")
        bad_low = low is not None and (value <= low if low_open else value < low)
        bad_high = high is not None and (value >= high if high_open else value > high)
        if bad_low or bad_high:
            raise _fail(where, value, f"use {allowed}")
        return float(value)
    return check


def boolean(value, where):
    if not isinstance(value, bool):
        raise _fail(where, value, "use true or false")
    return value


def choice(*options: str) -> Callable:
    def check(value, where):
        if value not in options:
            raise _fail(where, value, f"use one of {list(options)}")
        return value
    return check


def text(value, where):
    if not isinstance(value, str):
        raise _fail(where, value, "use a string")
    return value


def sequence(item: Callable, non_empty: bool = False) -> Callable:
    """A YAML list of items (never a bare string or number), without duplicates; held as a tuple."""
    def check(value, where):
        if not isinstance(value, (list, tuple)):
            raise _fail(where, value, "use a YAML list, e.g. [a, b]")
        if non_empty and not value:
            raise _fail(where, value, "use a non-empty list")
        out = tuple(item(v, f"{where}[{i}]") for i, v in enumerate(value))
        dupes = sorted({str(v) for v in out if out.count(v) > 1})
        if dupes:
            raise _fail(where, value, f"list each entry once (repeated: {dupes})")
        return out
    return check


def task_name(value, where):
    if not isinstance(value, str):
        raise _fail(where, value, "use a GLUE task name such as MRPC")
    try:
        return get_task(value).name
    except ConfigError as err:
        raise ConfigError(f"{where} = {value!r}: {err}") from None


def _setting(default: Any, check: Callable) -> Any:
    return field(default=default, metadata={"check": check})


# --- the schema -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Section:
    """A plan section: built from a mapping, every key known and checked."""

    @classmethod
    def build(cls, data: Any, where: str, base: "Section | None" = None) -> "Section":
        """``data`` over ``base`` (or the defaults); ``where`` is the key path for messages."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise _fail(where, data, f"use a mapping of {sorted(f.name for f in fields(cls))}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {unknown}; known: "
                              f"{sorted(known)}")
        values = {} if base is None else {f.name: getattr(base, f.name) for f in fields(cls)}
        for key, value in data.items():
            values[key] = known[key].metadata["check"](value, f"{where}.{key}")
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DataSettings(Section):
    max_train: int | None = _setting(None, integer(1, optional=True))  # None: the whole training set
    max_dev: int | None = _setting(None, integer(1, optional=True))


@dataclass(frozen=True)
class TrainConfig(Section):
    """The paper's hyperparameters are the defaults: AdamW, lr 2e-5, batch 32, 3 epochs, max length 128, linear
    decay without warm-up, no weight decay, gradient clipping at 1.0. ``precision="bf16"`` runs the training
    forward pass under bfloat16 autocast (fp32 weights, optimizer state and loss)."""

    lr: float = _setting(2e-5, number(0, low_open=True))
    batch_size: int = _setting(32, integer(1))
    epochs: float = _setting(3.0, number(0, low_open=True))
    max_length: int = _setting(128, integer(1))
    weight_decay: float = _setting(0.0, number(0))
    warmup_ratio: float = _setting(0.0, number(0, 1, high_open=True))
    max_grad_norm: float = _setting(1.0, number(0, low_open=True))
    group_by_length: bool = _setting(True, boolean)  # batches of similar length, padded per batch
    pad_to: int | None = _setting(None, integer(1, optional=True))  # pad every batch to this width
    eval_batch_size: int = _setting(128, integer(1))
    precision: str = _setting("fp32", choice(*PRECISIONS))

    def __post_init__(self):
        for f in fields(self):  # TrainConfig(...) built in code is checked like a plan's train section
            f.metadata["check"](getattr(self, f.name), f"train.{f.name}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "TrainConfig":
        return cls.build(dict(data), "train")


@dataclass(frozen=True)
class ImportanceSettings(Section):
    abs_per: str = _setting("example", choice("example", "batch"))
    batch_size: int = _setting(32, integer(1))


@dataclass(frozen=True)
class SearchSettings(Section):
    fraction: float = _setting(0.9, number(0, 1, low_open=True))  # the 90 % rule
    head_step: float = _setting(0.1, number(0, 1, low_open=True))  # share of all heads pruned per s-step
    halve_phase2: bool = _setting(False, boolean)
    m_max_steps: int | None = _setting(None, integer(1, optional=True))
    bernoulli_random: bool = _setting(False, boolean)
    # "matched": super-survivor random and bad of exactly the good size (METHOD.md section 7); "authors"
    super_resize: str = _setting("matched", choice("matched", "authors"))


@dataclass(frozen=True)
class RecordSettings(Section):
    attention_examples: int = _setting(64, integer(1))
    attention_gallery: int = _setting(2, integer(0))
    single_removal_seeds: tuple[int, ...] = _setting((), sequence(integer(0)))
    single_removal_dev: int = _setting(256, integer(1))


@dataclass(frozen=True)
class BeyondSettings(Section):
    """METHOD.md section 10: heads-only lottery curves and the component swap, on these tasks and seeds."""

    tasks: tuple[str, ...] = _setting((), sequence(task_name))
    seeds: tuple[int, ...] = _setting((), sequence(integer(0)))
    head_fractions: tuple[float, ...] = _setting((0.25, 0.5, 0.75),
                                                 sequence(number(0, 1, low_open=True, high_open=True), True))


def _model_options(value, where):
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(where, value, "use a mapping such as {n_layers: 2, n_heads: 4} (tiny-bert only)")
    return {key: integer(1)(v, f"{where}.{key}") for key, v in value.items()}


SECTIONS = {"data": DataSettings, "train": TrainConfig, "importance": ImportanceSettings, "search": SearchSettings,
            "records": RecordSettings}
TOP_LEVEL = ("name", "description", "model", "model_options", "model_weights", "tasks", "seeds", "stages",
             "task_overrides", *SECTIONS, "beyond_paper")
#: The stages a plan may run (its ``stages``, default all of them), each with the stages it needs.
STAGES = {"finetune": (), "prune": ("finetune",), "retrain": ("prune",), "super": ("prune",),
          "lottery": ("prune",), "swap": ("prune",)}


def check_stages(value, where: str = "stages") -> tuple[str, ...]:
    """A plan's stages: a non-empty list of :data:`STAGES`, each with the stages it needs."""
    stages = sequence(choice(*STAGES), non_empty=True)(value, where)
    for stage in stages:
        lacking = [need for need in STAGES[stage] if need not in stages]
        if lacking:
            raise _fail(where, list(value), f"stage {stage!r} needs {lacking}: add them to the list")
    return tuple(s for s in STAGES if s in stages)
REQUIRED = ("name", "model", "tasks", "seeds", "train")


@dataclass(frozen=True)
class Settings:
    """Every setting of one task's runs, task overrides applied."""

    model_options: dict
    model_weights: str
    data: DataSettings
    train: TrainConfig
    importance: ImportanceSettings
    search: SearchSettings
    records: RecordSettings

    def as_dict(self) -> dict:
        return asdict(self)


def check_name(name: Any, where: str = "name") -> str:
    """A plan name is a plain name (letters, digits, '_', '-', '.'; no path): it names a folder under results/."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise _fail(where, name, "use a plain name of letters, digits, '_', '-' or '.' (it names the folder "
                                 "results/<name>/), not a path")
    return name


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    model: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    model_options: dict = field(repr=False)
    stages: tuple[str, ...] = field(repr=False)
    model_weights: str = field(repr=False)
    sections: dict = field(repr=False)  # section name -> its dataclass (the plan-wide values)
    overrides: dict = field(repr=False)  # task -> {section name -> its dataclass with the override applied}
    beyond_paper: BeyondSettings = field(repr=False)
    path: Path | None = field(default=None, repr=False)

    @classmethod
    def of(cls, plan: "Plan | str | os.PathLike") -> "Plan":
        """``plan`` itself if it is a Plan, else the plan it names (see :meth:`load`)."""
        return plan if isinstance(plan, cls) else cls.load(plan)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> "Plan":
        """A plan by name (``plans/<name>.yaml``) or by path to a YAML file."""
        path = Path(name_or_path)
        if path.suffix not in (".yaml", ".yml"):
            check_name(str(name_or_path), "plan")
            path = PLANS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in PLANS_DIR.glob("*.yaml"))
            raise MissingError(f"no plan {str(name_or_path)!r} ({path} is missing); known plans: {known}; "
                                    "add one as a YAML file in plans/")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"plan {path} is not valid YAML: {err}") from None
        try:
            return cls.from_dict(raw, path)
        except ConfigError as err:
            raise ConfigError(f"plan {path}: {err}") from None

    @classmethod
    def from_dict(cls, raw: Any, path: Path | None = None) -> "Plan":
        if not isinstance(raw, Mapping):
            raise ConfigError(f"the plan is {type(raw).__name__}, not a mapping: see plans/smoke.yaml for the format")
        missing = [k for k in REQUIRED if k not in raw]
        if missing:
            raise ConfigError(f"lacks {missing}: see plans/smoke.yaml for the format")
        unknown = sorted(set(raw) - set(TOP_LEVEL))
        if unknown:
            raise ConfigError(f"unknown keys {unknown}; known: {list(TOP_LEVEL)}")
        name = check_name(raw["name"])
        model = text(raw["model"], "model")
        if not model.strip():
            raise _fail("model", model, "name a model (a hub id, a local folder, all-MiniLM-L6-v2 or tiny-bert)")
        tasks = sequence(task_name, non_empty=True)(raw["tasks"], "tasks")
        seeds = sequence(integer(0), non_empty=True)(raw["seeds"], "seeds")
        sections = {key: kind.build(raw.get(key), key) for key, kind in SECTIONS.items()}
        stray = [s for s in sections["records"].single_removal_seeds if s not in seeds]
        if stray:
            raise _fail("records.single_removal_seeds", list(sections["records"].single_removal_seeds),
                        f"name seeds of the plan ({list(seeds)}); not in it: {stray}")
        overrides = {}
        task_overrides = raw.get("task_overrides") or {}
        if not isinstance(task_overrides, Mapping):
            raise _fail("task_overrides", task_overrides, "use a mapping {TASK: {section: {key: value}}}")
        for key, extra in task_overrides.items():
            task = task_name(key, f"task_overrides.{key}")
            if task not in tasks:
                raise _fail(f"task_overrides.{key}", extra, f"override only the plan's tasks {list(tasks)}")
            if not isinstance(extra, Mapping):
                raise _fail(f"task_overrides.{key}", extra, f"use a mapping of sections {list(SECTIONS)}")
            bad = sorted(set(extra) - set(SECTIONS))
            if bad:
                raise ConfigError(f"task_overrides.{key}: unknown keys {bad}; a task may override {list(SECTIONS)}")
            overrides[task] = {s: SECTIONS[s].build(v, f"task_overrides.{key}.{s}", base=sections[s])
                               for s, v in extra.items()}
        beyond = BeyondSettings.build(raw.get("beyond_paper"), "beyond_paper")
        stray = [t for t in beyond.tasks if t not in tasks] + [s for s in beyond.seeds if s not in seeds]
        if stray:
            raise _fail("beyond_paper", raw.get("beyond_paper"), f"name tasks and seeds of the plan; not in it: {stray}")
        return cls(name=name, description=text(raw.get("description", ""), "description"), model=model,
                   tasks=tasks, seeds=seeds, stages=check_stages(raw.get("stages", list(STAGES))),
                   model_options=_model_options(raw.get("model_options"), "model_options"),
                   model_weights=choice(*WEIGHT_VARIANTS)(raw.get("model_weights", "float32"), "model_weights"),
                   sections=sections, overrides=overrides, beyond_paper=beyond, path=path)

    def settings(self, task: str) -> Settings:
        """Every setting of one task's runs, task overrides applied."""
        task = get_task(task).name
        if task not in self.tasks:
            raise ConfigError(f"task {task} is not in plan {self.name!r} (tasks: {list(self.tasks)})")
        parts = {**self.sections, **self.overrides.get(task, {})}
        return Settings(model_options=dict(self.model_options), model_weights=self.model_weights, **parts)

    def train_config(self, task: str) -> TrainConfig:
        return self.settings(task).train

    @property
    def raw(self) -> dict:
        """The whole plan as plain data, defaults filled in (for provenance and display)."""
        out = {"name": self.name, "description": self.description, "model": self.model,
               "model_options": dict(self.model_options), "model_weights": self.model_weights,
               "tasks": list(self.tasks), "seeds": list(self.seeds), "stages": list(self.stages),
               **{k: v.as_dict() for k, v in self.sections.items()},
               "beyond_paper": self.beyond_paper.as_dict()}
        if self.overrides:
            out["task_overrides"] = {t: {s: v.as_dict() for s, v in parts.items()} for t, parts in self.overrides.items()}
        return out

    def replace(self, **changes) -> "Plan":
        return replace(self, **changes)

"""The GLUE tasks: names, label sets, official sizes (no torch, no data loading).

:func:`get_task` resolves a name case-insensitively ('SST-2', 'sst2', 'sts-b', ...) and refuses an unknown
one with the list of known tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

from lotterylib.errors import ConfigError


@dataclass(frozen=True)
class TaskSpec:
    """One GLUE task.

    ``text_fields`` are the hub column names (one field, or two for sentence-pair tasks).
    ``label_names[i]`` is the name of label id ``i`` in the hub's order; ``tsv_labels[i]`` is how label id
    ``i`` is written in the classic TSV files. Both are empty for the regression task STS-B
    (``num_labels == 1``).
    """

    name: str
    hub_config: str
    text_fields: tuple[str, ...]
    num_labels: int
    label_names: tuple[str, ...]
    tsv_labels: tuple[str, ...]
    is_regression: bool = False
    dev_splits: tuple[str, ...] = ("dev",)

    @property
    def is_pair(self) -> bool:
        """True for sentence-pair tasks (two text fields)."""
        return len(self.text_fields) == 2

    @property
    def splits(self) -> tuple[str, ...]:
        """All loadable splits: ``'train'`` plus the dev splits (test labels are not public)."""
        return ("train",) + self.dev_splits


def _spec(name, config, fields, label_names, tsv_labels=None, **kw) -> TaskSpec:
    tsv = tuple(tsv_labels) if tsv_labels is not None else tuple(label_names)
    n_labels = len(label_names) if label_names else 1
    return TaskSpec(name, config, tuple(fields), n_labels, tuple(label_names), tsv, **kw)


_BINARY_01 = ("0", "1")
TASKS: dict[str, TaskSpec] = {
    s.name: s
    for s in (
        _spec("CoLA", "cola", ["sentence"], ["unacceptable", "acceptable"], _BINARY_01),
        _spec("SST-2", "sst2", ["sentence"], ["negative", "positive"], _BINARY_01),
        _spec("MRPC", "mrpc", ["sentence1", "sentence2"], ["not_equivalent", "equivalent"], _BINARY_01),
        _spec("QQP", "qqp", ["question1", "question2"], ["not_duplicate", "duplicate"], _BINARY_01),
        _spec("STS-B", "stsb", ["sentence1", "sentence2"], [], [], is_regression=True),
        _spec(
            "MNLI",
            "mnli",
            ["premise", "hypothesis"],
            ["entailment", "neutral", "contradiction"],
            dev_splits=("dev", "dev_mismatched"),
        ),
        _spec("QNLI", "qnli", ["question", "sentence"], ["entailment", "not_entailment"]),
        _spec("RTE", "rte", ["sentence1", "sentence2"], ["entailment", "not_entailment"]),
        _spec("WNLI", "wnli", ["sentence1", "sentence2"], ["not_entailment", "entailment"], _BINARY_01),
    )
}

#: Official GLUE row counts per split (train / dev, MNLI dev = matched).
OFFICIAL_SIZES: dict[str, dict[str, int]] = {
    "CoLA": {"train": 8551, "dev": 1043},
    "SST-2": {"train": 67349, "dev": 872},
    "MRPC": {"train": 3668, "dev": 408},
    "QQP": {"train": 363846, "dev": 40430},
    "STS-B": {"train": 5749, "dev": 1500},
    "MNLI": {"train": 392702, "dev": 9815, "dev_mismatched": 9832},
    "QNLI": {"train": 104743, "dev": 5463},
    "RTE": {"train": 2490, "dev": 277},
    "WNLI": {"train": 635, "dev": 71},
}


def _alias_key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


_ALIASES: dict[str, str] = {}
for _s in TASKS.values():
    _ALIASES[_alias_key(_s.name)] = _s.name
    _ALIASES[_alias_key(_s.hub_config)] = _s.name


def get_task(name: str | TaskSpec) -> TaskSpec:
    """Resolve a task name case-insensitively ('SST-2', 'sst2', 'sts-b', 'STSB', ...) to its TaskSpec."""
    if isinstance(name, TaskSpec):
        return name
    canonical = _ALIASES.get(_alias_key(str(name)))
    if canonical is None:
        raise ConfigError(
            f"Unknown GLUE task {name!r}. Known tasks: {', '.join(TASKS)} "
            "(case-insensitive; hub names such as 'sst2' or 'stsb' also work)."
        )
    return TASKS[canonical]

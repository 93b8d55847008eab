"""A plan's attention statistics, masks and gallery maps, read from its result files and typed by the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from lotterylib.config.plans import Plan
from lotterylib.method.map_statistics import STATS
from lotterylib.model.sources import token_strings
from lotterylib.store import layout as L
from lotterylib.read.pattern_rules import (
    DEFAULT_RULES,
    TYPES,
    WEIGHTS,
    PatternRules,
    check_aggregate,
    check_rules,
    classify,
    head_summary,
    map_stats,
    pattern_scores,
    type_names,
)


def read_attention(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """``finetune/attention.npz`` -> ``{"finetuned": stats, "pretrained": stats}``, each stat (N, L, H)."""
    from lotterylib.store.files import read_npz

    path = Path(path)
    arrays = read_npz(path)
    out = {}
    for weights in WEIGHTS:
        missing = [f"{weights}_{s}" for s in STATS if f"{weights}_{s}" not in arrays]
        if missing:
            raise ValueError(f"{path} lacks {missing}: it was not written by this version of "
                             "lotterylib.run.experiment.record_attention; re-run the run's finetune stage (or "
                             "record_attention on its checkpoint) to rewrite it")
        stats = {s: arrays[f"{weights}_{s}"] for s in STATS}
        shapes = {k: v.shape for k, v in stats.items()}
        if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 3:
            raise ValueError(f"{path}: the {weights} statistics must all be (N examples, L layers, H heads), got "
                             f"{shapes}; re-run the run's finetune stage to rewrite the file")
        out[weights] = stats
    return out

def _runs(plan, name: str):
    """``(task, seed, path)`` for every run of the plan that has ``finetune/<name>``; the rest are skipped."""

    for task in plan.tasks:
        for seed in plan.seeds:
            path = L.finetune_file(plan.name, task, seed, name)
            if path.exists():
                yield task, seed, path

def _grid_frame(arrays: Mapping[str, np.ndarray]) -> pd.DataFrame:
    layers, heads = next(iter(arrays.values())).shape
    frame = pd.DataFrame({"layer": np.repeat(np.arange(layers), heads), "head": np.tile(np.arange(heads), layers)})
    for key, value in arrays.items():
        frame[key] = np.asarray(value).ravel()
    return frame

def load_attention(plan, rules: PatternRules = DEFAULT_RULES, aggregate: str = "mean",
                   per_example: bool = False) -> pd.DataFrame:
    """A plan's attention statistics as one tidy table; runs without ``attention.npz`` are skipped.

    One row per (task, seed, weights, layer, head) -- ``weights`` is ``finetuned`` or ``pretrained`` -- with
    the per-head mean statistics, the rules' scores, ``type`` (name; :func:`head_summary` with
    ``aggregate``) and ``agreement``. With ``per_example=True``: one row per example too (column
    ``example``, the dev index), each map typed on its own.
    """
    plan, rules = Plan.of(plan), check_rules(rules)
    check_aggregate(aggregate)
    frames = []
    for task, seed, path in _runs(plan, L.ATTENTION):
        index = None
        for weights, stats in read_attention(path).items():
            if per_example:
                if index is None:
                    from lotterylib.store.files import read_npz
                    arrays = read_npz(path)
                    n = next(iter(stats.values())).shape[0]
                    index = arrays.get("example_index", np.arange(n))
                scores = pattern_scores(stats, rules)
                codes = classify(stats, rules)
                for i, example in enumerate(index):
                    frame = _grid_frame({**{k: v[i] for k, v in stats.items()},
                                         **{k: v[i] for k, v in scores.items() if k not in stats}})
                    frame["type"] = type_names(codes[i].ravel())
                    frame.insert(0, "example", int(example))
                    frame.insert(0, "weights", weights)
                    frame.insert(0, "seed", seed)
                    frame.insert(0, "task", task)
                    frames.append(frame)
            else:
                summary = head_summary(stats, rules, aggregate)
                frame = _grid_frame({k: v for k, v in summary.items() if k != "type"})
                frame["type"] = type_names(summary["type"].ravel())
                frame.insert(0, "weights", weights)
                frame.insert(0, "seed", seed)
                frame.insert(0, "task", task)
                frames.append(frame)
    columns = ["task", "seed", "weights"] + (["example"] if per_example else []) + ["layer", "head", "type"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

def load_masks(plan, subnetwork: str = "good") -> pd.DataFrame:
    """s-pruning head masks as a table: (task, seed, layer, head, kept); seeds without a mask are absent."""
    from lotterylib.read.collect import s_masks

    plan = Plan.of(plan)
    frames = []
    for task, masks in s_masks(plan, subnetwork).items():
        heads = np.asarray(masks["head_mask"])
        if heads.ndim != 3:
            raise ValueError(f"{task}: head masks must be (seeds, layers, heads), got {heads.shape}")
        for seed, mask in zip(masks.get("seeds", plan.seeds), heads):
            frame = _grid_frame({"kept": mask > 0.5})
            frame.insert(0, "seed", seed)
            frame.insert(0, "task", task)
            frames.append(frame)
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame({"task": [], "seed": [], "layer": [], "head": [], "kept": []}))

def load_super(plan, subnetwork: str = "good") -> pd.DataFrame:
    """Super-survivor head masks (kept in every seed) where they exist: (task, layer, head, super)."""
    from lotterylib.store.masks import load_mask

    plan = Plan.of(plan)
    frames = []
    for task in plan.tasks:
        stem = L.masks_dir(plan.name, task, None, "super") / subnetwork
        if not (stem.with_suffix(".npz").exists() and stem.with_suffix(".json").exists()):
            continue
        heads = np.asarray(load_mask(stem).arrays["head_mask"])
        frame = _grid_frame({"super": heads > 0.5})
        frame.insert(0, "task", task)
        frames.append(frame)
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame({"task": [], "layer": [], "head": [], "super": []}))

def attach_masks(heads: pd.DataFrame, masks: pd.DataFrame, supers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Add ``kept`` (the seed's good mask; <NA> where the run has none) and ``super`` to a head table."""
    for name, frame, keys in (("masks", masks, ["task", "seed", "layer", "head"]),
                              ("super-survivors", supers, ["task", "layer", "head"])):
        if frame is None or frame.empty or heads.empty:
            continue
        shape_h = heads.groupby("task")[["layer", "head"]].max()
        shape_m = frame.groupby("task")[["layer", "head"]].max()
        common = shape_h.index.intersection(shape_m.index)
        if not shape_h.loc[common].equals(shape_m.loc[common]):
            raise ValueError(f"the {name} and the attention statistics disagree on the number of layers/heads "
                             f"({shape_m.loc[common].to_dict()} vs {shape_h.loc[common].to_dict()}): they come "
                             "from different models; re-run the plan's stages with one model")
    out = heads.copy()
    if not masks.empty and not out.empty:
        out = out.merge(masks.astype({"seed": out["seed"].dtype}), on=["task", "seed", "layer", "head"], how="left")
        out["kept"] = out["kept"].astype("boolean")
    else:
        out["kept"] = pd.array([pd.NA] * len(out), dtype="boolean")
    if supers is not None and not supers.empty and not out.empty:
        out = out.merge(supers, on=["task", "layer", "head"], how="left")
        out["super"] = out["super"].astype("boolean")
    else:
        out["super"] = pd.array([pd.NA] * len(out), dtype="boolean")
    return out

def head_table(plan, rules: PatternRules = DEFAULT_RULES, aggregate: str = "mean",
               subnetwork: str = "good") -> pd.DataFrame:
    """Every head of every run with its type and survival: :func:`load_attention` + ``kept`` + ``super``."""
    return attach_masks(load_attention(plan, rules, aggregate), load_masks(plan, subnetwork),
                        load_super(plan, subnetwork))

@dataclass
class Gallery:
    """Raw maps of a plan and their types.

    ``table``: one row per (task, seed, weights, example, layer, head) with ``length``, the statistics of
    :func:`map_stats`, the rules' scores and ``type``; ``maps[(task, seed, weights, example)]`` is
    ``(maps (L, H, T, T), tokens)``; :meth:`map` gives one row's map and tokens.
    """

    table: pd.DataFrame
    maps: dict

    def map(self, row) -> tuple[np.ndarray, list[str]]:
        maps, tokens = self.maps[(row["task"], row["seed"], row["weights"], row["example"])]
        return maps[int(row["layer"]), int(row["head"])], tokens

def read_gallery(path: str | Path) -> list[tuple[str, int, np.ndarray, np.ndarray]]:
    """``finetune/gallery.npz`` -> ``[(weights, i, maps (L, H, T, T), tokens (T,)), ...]``."""
    from lotterylib.store.files import read_npz

    path = Path(path)
    arrays = read_npz(path)
    out = []
    for key in sorted(arrays):
        if not key.endswith("_maps"):
            continue
        weights, _, index = key[: -len("_maps")].rpartition("_")
        token_key = f"{weights}_{index}_tokens"
        if weights not in WEIGHTS or not index.isdigit():
            raise ValueError(f"{path} has an unexpected key {key!r}: gallery keys are <finetuned|pretrained>_<i>_maps "
                             "and _tokens, written by lotterylib.run.experiment.record_attention")
        if token_key not in arrays:
            raise ValueError(f"{path} lacks {token_key!r} for {key!r}: re-run the run's finetune stage to rewrite it")
        maps, tokens = arrays[key], arrays[token_key]
        if maps.ndim != 4 or maps.shape[-1] != maps.shape[-2] or maps.shape[-1] != len(tokens):
            raise ValueError(f"{path}: {key} must be (L, H, T, T) with T = len({token_key}) = {len(tokens)}, "
                             f"got {maps.shape}")
        out.append((weights, int(index), maps, tokens))
    return out

def load_gallery(plan, rules: PatternRules = DEFAULT_RULES, tokenizer=None) -> Gallery:
    """Every gallery map of a plan, typed by the rules; runs without ``gallery.npz`` are skipped.

    Tokens stored as ids are turned into strings with ``tokenizer`` (a transformers tokenizer; default: the plan
    model's vocabulary, :func:`lotterylib.model.sources.token_strings`, which needs no torch); tokens stored as
    strings are used as they are, with ``'[SEP]'`` as the separator.
    """
    plan, rules = Plan.of(plan), check_rules(rules)
    frames, maps = [], {}
    for task, seed, path in _runs(plan, L.GALLERY):
        for weights, index, stack, tokens in read_gallery(path):
            sep = "[SEP]"
            if np.issubdtype(tokens.dtype, np.integer):
                if tokenizer is None:
                    words, sep = token_strings(plan.model, tokens)
                else:
                    words = list(tokenizer.convert_ids_to_tokens([int(t) for t in tokens]))
                    sep = tokenizer.sep_token
            else:
                words = [str(t) for t in tokens]
            stats = map_stats(stack, words, sep_token=sep)
            scores = pattern_scores(stats, rules)
            frame = _grid_frame({**stats, **{k: v for k, v in scores.items() if k not in stats}})
            frame["type"] = classify(stats, rules, names=True).ravel()
            for col, value in (("length", len(words)), ("example", index), ("weights", weights), ("seed", seed),
                               ("task", task)):
                frame.insert(0, col, value)
            frames.append(frame)
            maps[(task, seed, weights, index)] = (np.asarray(stack, dtype=np.float32), words)
    columns = ["task", "seed", "weights", "example", "length", "layer", "head", "type"]
    return Gallery(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns), maps)

def gallery_picks(table: pd.DataFrame, per_type: int = 4, seed: int = 0) -> pd.DataFrame:
    """Up to ``per_type`` maps of each type, drawn at random (seeded) rather than the clearest ones: the
    gallery should show what the rules call each type, typical cases included. Draws spread over tasks."""
    rng = np.random.default_rng(seed)
    picks = []
    for kind in TYPES:
        rows = table[table["type"] == kind]
        if rows.empty:
            continue
        order = rng.permutation(len(rows))
        shuffled = rows.iloc[order]
        # round-robin over tasks, so one task does not fill the row
        by_task = [g for _, g in shuffled.groupby("task", sort=True)]
        chosen, i = [], 0
        while len(chosen) < min(per_type, len(rows)):
            group = by_task[i % len(by_task)]
            k = i // len(by_task)
            if k < len(group):
                chosen.append(group.iloc[k])
            i += 1
            if i > per_type * len(by_task) * 2 + len(rows):
                break
        picks += chosen
    return pd.DataFrame(picks).reset_index(drop=True) if picks else table.iloc[:0]


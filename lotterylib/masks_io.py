"""Masks as named, self-describing data: arrays in ``<stem>.npz`` plus a ``<stem>.json`` sidecar.

No pickles: arrays load with ``allow_pickle=False``. The sidecar carries provenance (model, task,
seed, method, subnetwork, sparsity, plan, library version) and the model's shape, so a mask made
for another model, or of the wrong shape, is refused with a clear error.

Structured masks hold ``head_mask`` (L, H) and ``mlp_mask`` (L,); weight masks hold one boolean
array per m-prunable tensor, keyed by the tensor's qualified name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from . import __version__
from .results import atomic_write
from .structure import PRUNABLE, ModelStructure

KINDS = ("structured", "weights")


@dataclass
class MaskFile:
    arrays: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.meta["kind"]


def _savez(tmp: str, packed: dict) -> None:
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, **packed)


def _stem(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".npz", ".json") else path


def save_mask(
    path: str | os.PathLike,
    arrays: Mapping[str, np.ndarray],
    structure: ModelStructure,
    kind: str,
    **meta,
) -> Path:
    """Write ``<stem>.npz`` and ``<stem>.json``; returns the stem. Writes are atomic."""
    if kind not in KINDS:
        raise ValueError(f"mask kind must be one of {KINDS}, got {kind!r}")
    stem = _stem(path)
    packed = {k: np.asarray(v).astype(np.bool_ if kind == "weights" else np.float32) for k, v in arrays.items()}
    sidecar = {
        "kind": kind, "convention": "1 = kept, 0 = pruned", "structure": structure.describe(),
        "arrays": {k: list(v.shape) for k, v in packed.items()},
        "lotterylib_version": __version__, **meta,
    }
    if kind == "weights":
        total = sum(v.size for v in packed.values())
        sidecar.setdefault("sparsity", 1.0 - sum(int(v.sum()) for v in packed.values()) / max(total, 1))
    # npz keys cannot hold '/', but qualified names only use '.', which is fine.
    atomic_write(stem.with_suffix(".npz"), lambda tmp: _savez(tmp, packed))
    atomic_write(stem.with_suffix(".json"),
                  lambda tmp: Path(tmp).write_text(json.dumps(sidecar, indent=1, sort_keys=True, default=str)))
    return stem


def load_mask(
    path: str | os.PathLike,
    structure: ModelStructure | None = None,
    expect: Mapping[str, object] | None = None,
) -> MaskFile:
    """Load a mask; with ``structure`` its shapes are checked, with ``expect`` its provenance.

    ``expect={"model": "all-MiniLM-L6-v2", "task": "MRPC"}`` refuses a mask whose sidecar says
    otherwise.
    """
    stem = _stem(path)
    npz, sidecar = stem.with_suffix(".npz"), stem.with_suffix(".json")
    for file in (npz, sidecar):
        if not file.exists():
            raise FileNotFoundError(f"mask file {file} is missing: a mask is a .npz plus its .json sidecar, "
                                    "written together by lotterylib.masks_io.save_mask")
    meta = json.loads(sidecar.read_text())
    with np.load(npz, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for key, value in (expect or {}).items():
        if meta.get(key) != value:
            raise ValueError(f"mask {stem} was saved with {key}={meta.get(key)!r}, expected {value!r}: "
                             "load the mask made for this run")
    if structure is not None:
        _check_structure(stem, meta, arrays, structure)
    return MaskFile(arrays, meta)


def _check_structure(stem: Path, meta: dict, arrays: dict, structure: ModelStructure) -> None:
    saved = meta.get("structure", {})
    if saved and saved != structure.describe():
        raise ValueError(f"mask {stem} was made for a model with {saved}, this model has "
                         f"{structure.describe()}: use a mask of the same model")
    if meta["kind"] == "structured":
        expected = {"head_mask": (structure.n_layers, structure.n_heads), "mlp_mask": (structure.n_layers,)}
        for key, shape in expected.items():
            if key in arrays and arrays[key].shape != shape:
                raise ValueError(f"{key} in {stem} has shape {arrays[key].shape}, this model needs {shape}")
    else:
        valid = {structure.param_name(layer, name, kind) for layer in range(structure.n_layers)
                 for name, kind in PRUNABLE}
        unknown = sorted(set(arrays) - valid)
        if unknown:
            raise ValueError(f"weight mask {stem} names tensors this model lacks: {unknown[:3]}")

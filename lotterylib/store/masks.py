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

from lotterylib import __version__
from lotterylib.errors import MaskError, MissingError, ResultFileError
from lotterylib.store.files import atomic_write, read_json, read_npz
from lotterylib.model.structure import PRUNABLE, ModelStructure

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
    _check_values(stem, kind, arrays)
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
            raise MissingError(f"mask file {file} is missing: a mask is a .npz plus its .json sidecar, "
                               "written together by lotterylib.store.masks.save_mask; re-run the stage that writes it")
    meta = read_json(sidecar)
    arrays = read_npz(npz)
    if meta.get("kind") not in KINDS:
        raise ResultFileError(f"mask sidecar {sidecar} has kind {meta.get('kind')!r}, not one of {KINDS}: re-run the "
                              "stage that writes it")
    _check_values(stem, meta["kind"], arrays)
    for key, value in (expect or {}).items():
        if meta.get(key) != value:
            raise ResultFileError(f"mask {stem} was saved with {key}={meta.get(key)!r}, expected {value!r}: "
                                  "load the mask made for this run (or re-run the stage that writes it)")
    if structure is not None:
        _check_structure(stem, meta, arrays, structure)
    return MaskFile(arrays, meta)


def _check_values(stem: Path, kind: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Masks hold 0 (pruned) and 1 (kept) only: a 0.5 would scale trained weights, a NaN would poison them."""
    for key, value in arrays.items():
        value = np.asarray(value)
        if value.dtype == np.bool_:
            continue
        if not np.isin(value, (0, 1)).all():
            bad = value[~np.isin(value, (0, 1))].ravel()[:3].tolist()
            raise MaskError(f"mask {stem}: {key} holds values other than 0 and 1 (e.g. {bad}); a saved {kind} mask "
                            "keeps (1) or prunes (0)")


def _check_structure(stem: Path, meta: dict, arrays: dict, structure: ModelStructure) -> None:
    saved = meta.get("structure", {})
    if saved and saved != structure.describe():
        raise MaskError(f"mask {stem} was made for a model with {saved}, this model has "
                         f"{structure.describe()}: use a mask of the same model")
    if meta["kind"] == "structured":
        expected = {"head_mask": (structure.n_layers, structure.n_heads), "mlp_mask": (structure.n_layers,)}
        for key, shape in expected.items():
            if key in arrays and arrays[key].shape != shape:
                raise MaskError(f"{key} in {stem} has shape {arrays[key].shape}, this model needs {shape}")
    else:
        valid = {structure.param_name(layer, name, kind) for layer in range(structure.n_layers)
                 for name, kind in PRUNABLE}
        unknown = sorted(set(arrays) - valid)
        if unknown:
            raise MaskError(f"weight mask {stem} names tensors this model lacks: {unknown[:3]}")

"""Where m-pruning's surviving weights sit: the kept share of each layer's modules (or components).

Computed by the m-pruning stage from its weight masks and written into ``prune_m/pruned.json``; the read side
reads the shares from there (the masks themselves stay beside the checkpoint).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lotterylib.errors import ConfigError, MaskError
from lotterylib.model.structure import COMPONENT_OF, LAYER_PATHS, ModelStructure


def weight_share_by_layer(weight_masks: dict, structure: ModelStructure, by: str = "module") -> pd.DataFrame:
    """Surviving weight share of m-pruning per layer and module (or component).

    weight_masks: {qualified parameter name: 0/1 mask of that parameter's shape}, names as given by
    ``structure.param_name(layer, name, kind)``; weights and biases of one module are pooled.
    by='module': one row per (layer, module); by='component': one row per (layer, 'attention'|'mlp'),
    module listing the pooled modules joined by '+'.
    Columns: layer, component, module, kept, total, share; sorted by layer then module order.
    """
    if by not in ("module", "component"):
        raise ConfigError(f"by={by!r} is unknown: use 'module' or 'component'")
    if not weight_masks:
        raise MaskError("weight_masks is empty: pass {parameter name: mask} for the m-prunable tensors")
    counts: dict[tuple[int, str], list[int]] = {}
    for name, mask in weight_masks.items():
        try:
            layer, module, _ = structure.locate(name)
        except ValueError as err:
            raise MaskError(f"weight mask {name!r} is not an encoder-layer parameter of this structure "
                             f"({err}); pass only the tensors listed by structure.prunable(model)") from err
        if not 0 <= layer < structure.n_layers:
            raise MaskError(f"weight mask {name!r} is in layer {layer} but the structure has "
                             f"{structure.n_layers} layers: use the structure of the model the masks came from")
        arr = np.asarray(mask)
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise MaskError(f"weight_masks[{name!r}] must hold only 0 (pruned) and 1 (kept); binarise it first")
        entry = counts.setdefault((layer, module), [0, 0])
        entry[0] += int(arr.sum())
        entry[1] += int(arr.size)
    order = {m: i for i, m in enumerate(LAYER_PATHS)}
    rows = [{"layer": layer, "component": COMPONENT_OF[module], "module": module, "kept": k, "total": t}
            for (layer, module), (k, t) in sorted(counts.items(), key=lambda kv: (kv[0][0], order[kv[0][1]]))]
    df = pd.DataFrame(rows, columns=["layer", "component", "module", "kept", "total"])
    if by == "component":
        df = (df.groupby(["layer", "component"], sort=False)
                .agg(module=("module", "+".join), kept=("kept", "sum"), total=("total", "sum"))
                .reset_index())
    df["share"] = df["kept"] / df["total"]
    return df

"""The one place that knows where a model family keeps its layers.

Everything else in lotterylib asks a :class:`ModelStructure` for modules by semantic name
("attention output projection of layer 3") and never spells ``encoder.layer`` itself.
Nothing here assumes a number of layers, heads or a hidden size: they are read off the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the structure is plain data: reading a mask's sidecar needs no torch
    from torch import nn

from lotterylib.errors import ConfigError, ModelError

# Semantic name -> path inside one transformer layer, for each supported family.
# BERT and RoBERTa share the layer layout; they differ only in the backbone attribute.
LAYER_PATHS: dict[str, str] = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attn_out": "attention.output.dense",  # the head gate acts on this module's input
    "intermediate": "intermediate.dense",
    "mlp_out": "output.dense",  # the MLP gate acts on this module's output
}

FAMILIES: dict[str, dict[str, str]] = {
    # model_type -> where the encoder's layer list lives in a *ForSequenceClassification model
    "bert": {"backbone": "bert", "layers": "bert.encoder.layer"},
    "roberta": {"backbone": "roberta", "layers": "roberta.encoder.layer"},
    "xlm-roberta": {"backbone": "roberta", "layers": "roberta.encoder.layer"},
}

# m-pruning's prunable tensors (the authors' code): Q, K, V, attention output and intermediate
# weights *and* biases, and the MLP output weight (not its bias). Never embeddings, LayerNorms,
# pooler or classifier.
PRUNABLE: tuple[tuple[str, str], ...] = (
    ("query", "weight"), ("query", "bias"),
    ("key", "weight"), ("key", "bias"),
    ("value", "weight"), ("value", "bias"),
    ("attn_out", "weight"), ("attn_out", "bias"),
    ("intermediate", "weight"), ("intermediate", "bias"),
    ("mlp_out", "weight"),
)

# Component type of each semantic module, for "surviving share per component" analyses.
COMPONENT_OF: dict[str, str] = {
    "query": "attention", "key": "attention", "value": "attention", "attn_out": "attention",
    "intermediate": "mlp", "mlp_out": "mlp",
}


def check_family(model_type, where: str = "model_type") -> str:
    """``model_type`` if lotterylib knows its layer layout (a key of :data:`FAMILIES`), else :class:`ModelError`
    naming ``where`` (the config file or the model), the supported families and the fix."""
    if model_type not in FAMILIES:
        raise ModelError(
            f"{where}: model_type {model_type!r} is not in lotterylib's structure table, so its layers cannot "
            f"be found (got {model_type!r}; supported families: {sorted(FAMILIES)}); use a model of a supported "
            "family, or add the family's layer path to lotterylib.model.structure.FAMILIES"
        )
    return model_type


def get_module(root: nn.Module, path: str) -> nn.Module:
    module = root
    for part in path.split("."):
        module = module[int(part)] if part.isdigit() else getattr(module, part)
    return module


@dataclass(frozen=True)
class ModelStructure:
    """Shape and module paths of a BERT-layout classifier.

    >>> from lotterylib.model.models import tiny_bert
    >>> s = ModelStructure.of(tiny_bert(num_labels=2))
    >>> (s.n_layers, s.n_heads, s.head_dim)
    (2, 4, 8)
    >>> s.param_name(1, "attn_out", "weight")
    'bert.encoder.layer.1.attention.output.dense.weight'
    """

    model_type: str
    layers_path: str
    n_layers: int
    n_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int = 0

    @classmethod
    def of(cls, model: nn.Module) -> "ModelStructure":
        config = model.config
        model_type = check_family(getattr(config, "model_type", None), f"{type(model).__name__}.config")
        layers_path = FAMILIES[model_type]["layers"]
        try:
            layers = get_module(model, layers_path)
        except AttributeError as err:
            raise ModelError(
                f"{type(model).__name__}: has no {layers_path!r} (got a {model_type} model without it); load a "
                "*ForSequenceClassification model of the BERT layout"
            ) from err
        n_heads = config.num_attention_heads
        hidden = config.hidden_size
        return cls(model_type, layers_path, len(layers), n_heads, hidden // n_heads, hidden,
                   config.intermediate_size)

    @classmethod
    def from_description(cls, description: dict) -> "ModelStructure":
        """Inverse of :meth:`describe` (e.g. from a mask's sidecar)."""
        model_type = check_family(description.get("model_type"), "structure description (model_type)")
        return cls(model_type, FAMILIES[model_type]["layers"], description["n_layers"], description["n_heads"],
                   description["head_dim"], description["hidden_size"], description.get("intermediate_size", 0))

    # --- modules -----------------------------------------------------------------------------
    def layers(self, model: nn.Module) -> nn.ModuleList:
        return get_module(model, self.layers_path)

    def module(self, model: nn.Module, layer: int, name: str) -> nn.Module:
        """The module ``name`` (a key of LAYER_PATHS) in layer ``layer``."""
        return get_module(self.layers(model)[layer], LAYER_PATHS[name])

    def backbone_prefix(self) -> str:
        return FAMILIES[self.model_type]["backbone"]

    # --- parameters -------------------------------------------------------------------------
    def param_name(self, layer: int, name: str, kind: str) -> str:
        return f"{self.layers_path}.{layer}.{LAYER_PATHS[name]}.{kind}"

    def prunable(self, model: nn.Module) -> list[tuple[str, nn.Module, str]]:
        """``(qualified_name, module, tensor_name)`` for every m-prunable tensor, in a fixed order."""
        return [
            (self.param_name(layer, name, kind), self.module(model, layer, name), kind)
            for layer in range(self.n_layers)
            for name, kind in PRUNABLE
        ]

    def locate(self, qualified_name: str) -> tuple[int, str, str]:
        """Inverse of :meth:`param_name`: ``(layer, semantic name, 'weight'|'bias')``."""
        prefix = self.layers_path + "."
        if not qualified_name.startswith(prefix):
            raise ConfigError(f"{qualified_name!r} is not inside {self.layers_path}: give a parameter name of "
                              "this model's encoder layers (ModelStructure.param_name)")
        rest = qualified_name[len(prefix):]
        layer_str, _, inner = rest.partition(".")
        path, _, kind = inner.rpartition(".")
        for name, p in LAYER_PATHS.items():
            if p == path:
                return int(layer_str), name, kind
        raise ConfigError(f"{qualified_name!r} is not a known module of the layer layout: give a parameter "
                          f"name ending in one of {sorted(LAYER_PATHS.values())} plus .weight or .bias")

    @property
    def n_components(self) -> int:
        """Heads plus MLPs: the units s-pruning removes."""
        return self.n_layers * (self.n_heads + 1)

    def describe(self) -> dict:
        return {
            "model_type": self.model_type, "n_layers": self.n_layers, "n_heads": self.n_heads,
            "head_dim": self.head_dim, "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
        }

"""The head-mask explorer: toggle heads and MLPs and watch the dev metric.

Two faces:

- :class:`Explorer` (live, needs a kernel): a grid of toggles, one per head and one per MLP, presets
  (full model, good/random/bad of either method, super-survivors, a layer off), the dev metric
  re-evaluated on every change beside the full model's and the 90 % line, the importance of the
  selected head, and the attention map of a selected head on a selected dev example.
- :func:`static_views` (no kernel): precomputed views from committed results, switched in the
  browser by ``jslink``-ed controls over ``Stack`` widgets, so the built book stays interactive.

The compute lives in :class:`ExplorerModel` (no widgets), so tests drive it directly.
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass, field

import numpy as np

from lotterylib.config.plans import Plan
from lotterylib.model.masking import ones_masks
from lotterylib.method.metrics import search_metric
from lotterylib.model.structure import ModelStructure
from lotterylib.report import style
from lotterylib.store import layout as L

_PASS_COLOUR, _FAIL_COLOUR = style.VERDICT_COLORS["on par"], style.VERDICT_COLORS["worse"]  # the 90 % rule


# --- compute -----------------------------------------------------------------------------------

@dataclass
class ExplorerModel:
    """A fine-tuned model, its dev batches and the current masks; ``score()`` evaluates them."""

    model: object
    batches: list
    task: str
    presets: dict = field(default_factory=dict)  # name -> (head_mask, mlp_mask[, weight_mask])
    importance: np.ndarray | None = None  # (L, H) normalised head importance
    attention_batch: dict | None = None  # a few dev examples for the attention panel (eager model)
    tokenizer: object = None
    full_batches: list | None = None  # the whole dev set, evaluated on request
    attention_model: object = None  # an eager-attention copy for the attention panel (default: model)
    fraction: float = 0.9  # the plan's search.fraction: the share of the full score a subnetwork must keep

    def __post_init__(self):
        self.subset_batches = self.batches
        self.structure = ModelStructure.of(self.model)
        self.head_mask, self.mlp_mask = ones_masks(self.structure)
        self.weight_mask = None  # an m-pruning preset's weight masks, applied under the toggles
        self.metric_name = search_metric(self.task)
        self.full_score = self.score()
        self.presets = {"full model": ones_masks(self.structure), **self.presets}
        for layer in range(self.structure.n_layers):
            head, mlp = ones_masks(self.structure)
            head[layer] = 0
            self.presets.setdefault(f"all heads of layer {layer} off", (head, mlp))
        self.last_seconds = 0.0

    @property
    def n_examples(self) -> int:
        """Dev examples the current scores are computed on (the fixed subset, or the whole dev set)."""
        return int(sum(b["attention_mask"].shape[0] for b in self.batches))

    def use_full_dev(self, full: bool) -> None:
        """Evaluate on the whole dev set (``True``) or the fixed subset; the full model is re-scored."""
        if full and self.full_batches is None:
            raise ValueError("this explorer has no full dev set: build it with explorer_for_run(...)")
        current = self.head_mask, self.mlp_mask, self.weight_mask
        self.batches = self.full_batches if full else self.subset_batches
        self.head_mask, self.mlp_mask = ones_masks(self.structure)
        self.weight_mask = None
        self.full_score = self.score()
        self.head_mask, self.mlp_mask, self.weight_mask = current

    def score(self) -> float:
        from lotterylib.run.train import evaluate

        start = time.perf_counter()
        value = evaluate(self.model, self.batches, self.task, head_mask=self.head_mask, mlp_mask=self.mlp_mask,
                         weight_mask=self.weight_mask)
        self.last_seconds = time.perf_counter() - start
        return float(value[self.metric_name])

    def set_head(self, layer: int, head: int, keep: bool) -> None:
        self.head_mask[layer, head] = float(keep)

    def set_mlp(self, layer: int, keep: bool) -> None:
        self.mlp_mask[layer] = float(keep)

    def apply_preset(self, name: str) -> None:
        if name not in self.presets:
            raise ValueError(f"no preset {name!r}; presets: {sorted(self.presets)}")
        head, mlp, *weights = self.presets[name]
        self.head_mask, self.mlp_mask = np.array(head, dtype=np.float32), np.array(mlp, dtype=np.float32)
        self.weight_mask = weights[0] if weights else None

    def weights_kept(self) -> float | None:
        """Share of m-prunable weights an active m-pruning preset keeps (None: no weight mask)."""
        if self.weight_mask is None:
            return None
        return sum(int(m.sum()) for m in self.weight_mask.values()) / sum(m.size for m in self.weight_mask.values())

    def kept(self) -> tuple[int, int]:
        return int(self.head_mask.sum()), int(self.mlp_mask.sum())

    def attention_map(self, layer: int, head: int, example: int) -> tuple[np.ndarray, list[str]]:
        """(n, n) attention of one head on one dev example under the current masks."""
        from contextlib import nullcontext

        from lotterylib.method.attention import attention_maps
        from lotterylib.model.masking import weight_masks

        if self.attention_batch is None:
            raise ValueError("no attention examples: build the explorer with an eager model's batch")
        one = {k: v[example:example + 1] for k, v in self.attention_batch.items()}
        n = int(one["attention_mask"].sum())
        model = self.attention_model or self.model
        with weight_masks(model, self.weight_mask) if self.weight_mask is not None else nullcontext():
            maps = attention_maps(model, one, self.head_mask, self.mlp_mask)  # (1, L, H, T, T)
        ids = one["input_ids"][0, :n].tolist()
        tokens = self.tokenizer.convert_ids_to_tokens(ids) if self.tokenizer is not None else [str(i) for i in ids]
        return maps[0, layer, head, :n, :n].numpy(), tokens


def explorer_for_run(run, dev_examples: int | None = 128, attention_examples: int = 8,
                     presets_from_results: bool = True) -> ExplorerModel:
    """An :class:`ExplorerModel` for one (plan, task, seed) of the experiment grid.

    Loads (or, if missing, re-creates by fine-tuning) the run's checkpoint with eager attention,
    the fixed dev subset (``dev_examples=None``: the full dev set), and the presets found in the
    run's results (s-pruning good/random/bad, super-survivors, m-pruning good/random/bad as weight
    masks under all-on toggles).
    """
    from lotterylib.store.masks import load_mask
    from lotterylib.store.files import read_json

    model = run.finetuned_model()  # fast (sdpa) attention for scoring
    eager = run.new_model(eager=True)  # the same weights with readable attention maps
    eager.load_state_dict(model.state_dict())
    batches = (run.dev_batches if dev_examples is None
               else run.dev_sample_batches(dev_examples, 32))
    presets, importance = {}, None
    if presets_from_results:
        for folder, label in ((L.masks_dir(run.plan.name, run.task, run.seed, "s"), "s-pruning"),
                              (L.masks_dir(run.plan.name, run.task, None, "super"), "super-survivors")):
            for sub in ("good", "random", "bad"):
                if (folder / f"{sub}.npz").exists():
                    arrays = load_mask(folder / sub).arrays
                    presets[f"{label}: {sub}"] = (arrays["head_mask"], arrays["mlp_mask"])
        m_search = L.search_file(run.plan.name, run.task, run.seed, "m")
        if m_search.exists() and not read_json(m_search).get("skipped"):
            from lotterylib.run.experiment import load_subnetwork

            head, mlp = ones_masks(ModelStructure.of(model))
            for sub in ("good", "random", "bad"):
                presets[f"m-pruning: {sub}"] = (head, mlp, load_subnetwork(run, "m", sub)["weight_mask"])
        search = L.search_file(run.plan.name, run.task, run.seed, "s")
        if search.exists():
            trace = read_json(search)["trace"]
            if trace:
                importance = np.asarray(trace[0]["head_scores"])
    attention_batch = run.dev_sample_batches(attention_examples, attention_examples)[0]
    return ExplorerModel(model, batches, run.task, presets, importance, attention_batch, run.tokenizer,
                         full_batches=run.dev_batches, attention_model=eager.eval(),
                         fraction=run.settings.search.fraction)


# --- live widgets ------------------------------------------------------------------------------

class Explorer:
    """The live explorer (ipywidgets). ``Explorer(explorer_model).widget`` displays it."""

    def __init__(self, state: ExplorerModel):
        import ipywidgets as w

        self.state = state
        s = state.structure
        self.head_buttons = [[w.ToggleButton(value=True, description=f"{layer}.{head}",
                                             layout=w.Layout(width="52px", height="28px"),
                                             tooltip=f"layer {layer}, head {head}")
                              for head in range(s.n_heads)] for layer in range(s.n_layers)]
        self.mlp_buttons = [w.ToggleButton(value=True, description=f"MLP {layer}", button_style="info",
                                           layout=w.Layout(width="70px", height="28px"))
                            for layer in range(s.n_layers)]
        self.preset = w.Dropdown(options=list(state.presets), description="preset")
        self.full_dev = w.Checkbox(value=False, description="full dev set")
        self.selected = w.Dropdown(options=[(f"layer {l}, head {h}", (l, h)) for l in range(s.n_layers)
                                            for h in range(s.n_heads)], description="head")
        n_examples = 0 if state.attention_batch is None else len(state.attention_batch["index"])
        self.example = w.IntSlider(value=0, min=0, max=max(0, n_examples - 1), description="example")
        self.status = w.HTML()
        self.attention = w.Image(format="png", layout=w.Layout(width="480px"))
        self._busy = False
        for layer, row in enumerate(self.head_buttons):
            for head, button in enumerate(row):
                button.observe(self._head_changed(layer, head), names="value")
        for layer, button in enumerate(self.mlp_buttons):
            button.observe(self._mlp_changed(layer), names="value")
        self.preset.observe(lambda change: self.apply_preset(change["new"]), names="value")
        self.selected.observe(lambda change: self.refresh(rescore=False), names="value")
        self.example.observe(lambda change: self.draw_attention(), names="value")
        self.full_dev.observe(self._full_dev_changed, names="value")
        rows = [w.HBox([w.Label(f"layer {layer}", layout=w.Layout(width="60px")), *row, self.mlp_buttons[layer]])
                for layer, row in enumerate(self.head_buttons)]
        self.widget = w.VBox([w.HBox([self.preset, self.full_dev]), *rows, self.status,
                              w.HBox([self.selected, self.example]), self.attention])
        self.refresh()

    def _head_changed(self, layer, head):
        def callback(change):
            self.state.set_head(layer, head, change["new"])
            if not self._busy:
                self.refresh()
        return callback

    def _mlp_changed(self, layer):
        def callback(change):
            self.state.set_mlp(layer, change["new"])
            if not self._busy:
                self.refresh()
        return callback

    def _full_dev_changed(self, change) -> None:
        self.state.use_full_dev(change["new"])
        self.refresh()

    def apply_preset(self, name: str) -> None:
        self.state.apply_preset(name)
        self._busy = True  # sync the buttons without one evaluation per button
        try:
            for layer, row in enumerate(self.head_buttons):
                for head, button in enumerate(row):
                    button.value = bool(self.state.head_mask[layer, head])
            for layer, button in enumerate(self.mlp_buttons):
                button.value = bool(self.state.mlp_mask[layer])
        finally:
            self._busy = False
        self.refresh()

    def refresh(self, rescore: bool = True) -> None:
        st = self.state
        if rescore:
            self.current = st.score()
        heads, mlps = st.kept()
        s = st.structure
        layer, head = self.selected.value
        importance = "n/a" if st.importance is None else f"{st.importance[layer, head]:.3f}"
        weights = st.weights_kept()
        weights = "" if weights is None else f"m-pruning weight mask keeps {weights:.1%} of prunable weights; "
        ok = self.current >= st.fraction * st.full_score
        colour = _PASS_COLOUR if ok else _FAIL_COLOUR
        self.status.value = (
            f"<b>{st.metric_name}</b> on {st.n_examples} dev examples: now "
            f"<b style='color:{colour}'>{self.current:.4f}</b> "
            f"&nbsp; full model {st.full_score:.4f} (same examples) &nbsp; {st.fraction:.0%} line {st.fraction * st.full_score:.4f} "
            f"&nbsp; | {weights}heads kept {heads}/{s.n_layers * s.n_heads}, MLPs kept {mlps}/{s.n_layers} "
            f"&nbsp; | importance of layer {layer} head {head}: {importance} "
            f"&nbsp; <i>({st.last_seconds:.2f} s)</i>")
        for l, row in enumerate(self.head_buttons):
            for h, button in enumerate(row):
                button.button_style = "success" if button.value else ""
        self.draw_attention()

    def draw_attention(self) -> None:
        if self.state.attention_batch is None:
            return
        import matplotlib.pyplot as plt

        layer, head = self.selected.value
        weights, tokens = self.state.attention_map(layer, head, self.example.value)
        fig = attention_figure(weights, tokens, f"layer {layer}, head {head} (current masks)")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=style.DPI, bbox_inches="tight")
        plt.close(fig)
        self.attention.value = buffer.getvalue()


def attention_figure(weights: np.ndarray, tokens: list[str], title: str = ""):
    """One head's (n, n) attention map with its colour bar; token labels at 9 pt when they fit (5 in square)."""
    fig, axes = style.subplots(height=5.0, fig_width=5.0)
    ax = axes[0, 0]
    style.heatmap(ax, weights, cmap="viridis", vmin=0, vmax=max(float(np.max(weights)), 1e-6),
                  cbar_label="attention weight")
    if len(tokens) * 0.14 <= 3.8:
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=9)
        ax.set_yticks(range(len(tokens)), tokens, fontsize=9)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{len(tokens)} tokens (too many to name)")
    ax.set_title(title)
    return fig


# --- static views ------------------------------------------------------------------------------

def figure_html(fig, width: int = 520) -> str:
    """A matplotlib figure as an inline PNG ``<img>`` (the static book carries no kernel)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=style.DPI, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img src="data:image/png;base64,{data}" style="max-width:{width}px;width:100%" alt="figure"/>'


def switchable(labels: list[str], views: list[str], description: str, slider: bool = False):
    """A control (toggle buttons or a slider) ``jslink``-ed to a ``Stack`` of HTML views.

    Switching happens in the browser, so it works in the static book without a kernel.
    """
    import ipywidgets as w

    if not labels or len(labels) != len(views):
        raise ValueError("switchable needs one label per view, and at least one view")
    stack = w.Stack([w.HTML(v) for v in views], selected_index=0)
    if slider:
        control = w.SelectionSlider(options=[(label, i) for i, label in enumerate(labels)], value=0,
                                    description=description, continuous_update=True,
                                    layout=w.Layout(width="420px"))
        w.jslink((control, "index"), (stack, "selected_index"))
        return w.VBox([control, stack])
    control = w.ToggleButtons(options=[(label, i) for i, label in enumerate(labels)], value=0,
                              description=description, style={"button_width": "auto"})
    w.jslink((control, "index"), (stack, "selected_index"))
    return w.VBox([control, stack])


def _cell_colour(value: float, vmin: float, vmax: float, cmap: str) -> str:
    from matplotlib import colormaps, colors

    norm = 0.5 if vmax == vmin else (value - vmin) / (vmax - vmin)
    return colors.to_hex(colormaps[cmap](float(np.clip(norm, 0, 1))))


def mask_table_html(head_values: np.ndarray, mlp_values: np.ndarray, vmin: float = 0.0, vmax: float = 1.0,
                    cmap: str = "Greens", fmt: str = "", highlight: set | None = None, caption: str = "",
                    legend: str | None = None) -> str:
    """Heads (layers x heads) and MLPs as a coloured HTML table: light, crisp, no image needed, with its key
    below (:func:`legend_html`).

    ``fmt=""`` shows no numbers (masks: the key is kept / pruned); ``highlight`` is a set of ``(layer, head)`` or
    ``(layer, "mlp")`` cells outlined in red (e.g. the components a pruning step removes); ``legend``: the colour
    scale's label (numbers) or None (masks: "kept" / "pruned"; numbers: no label).
    """
    highlight = highlight or set()
    n_layers, n_heads = head_values.shape
    css = ("<style>.lbm{border-collapse:collapse;font:12px sans-serif}.lbm td{width:26px;height:20px;"
           "text-align:center;border:1px solid #ddd;padding:0}.lbm td.gap{border:none;width:8px}"
           ".lbm td.hit{outline:2px solid #d62828}.lbm th{padding:0 4px}</style>")
    header = "".join(f"<th>{h}</th>" for h in range(n_heads))
    rows = [f"<tr><th></th>{header}<th></th><th>MLP</th></tr>"]
    for layer in range(n_layers):
        tds = []
        for head in range(n_heads):
            value = float(head_values[layer, head])
            tds.append(_cell(value, vmin, vmax, cmap, fmt, (layer, head) in highlight, f"layer {layer}, head {head}"))
        mlp = _cell(float(mlp_values[layer]), vmin, vmax, cmap, fmt, (layer, "mlp") in highlight, f"layer {layer} MLP")
        rows.append(f"<tr><th>{layer}</th>{''.join(tds)}<td class='gap'></td>{mlp}</tr>")
    caption_html = f"<caption style='caption-side:bottom;text-align:left'>{caption}</caption>" if caption else ""
    key = legend_html(vmin, vmax, cmap, fmt, legend, outlined=bool(highlight))
    return f"{css}<table class='lbm'>{caption_html}{''.join(rows)}</table>{key}"


def legend_html(vmin: float, vmax: float, cmap: str, fmt: str, label: str | None = None,
                outlined: bool = False) -> str:
    """The key of a coloured table: "kept" / "pruned" swatches for a mask (``fmt=""``), else a colour bar from
    ``vmin`` to ``vmax`` labelled ``label``; ``outlined`` adds the red outline's meaning."""
    swatch = ("<span style='display:inline-block;width:14px;height:12px;vertical-align:middle;"
              "border:1px solid #ddd;background:{}'></span>")
    if not fmt:
        parts = [f"{swatch.format(_cell_colour(vmax, vmin, vmax, cmap))} kept",
                 f"{swatch.format(_cell_colour(vmin, vmin, vmax, cmap))} pruned"]
    else:
        stops = ", ".join(_cell_colour(v, 0.0, 1.0, cmap) for v in np.linspace(0, 1, 7))
        bar = (f"<span style='display:inline-block;width:140px;height:12px;vertical-align:middle;"
               f"background:linear-gradient(to right, {stops})'></span>")
        parts = [f"{format(vmin, fmt)} {bar} {format(vmax, fmt)}" + (f" &nbsp;{label}" if label else "")]
    if outlined:
        parts.append("<span style='display:inline-block;width:12px;height:10px;vertical-align:middle;"
                     "outline:2px solid #d62828'></span> removed at this step")
    return ("<p class='lb-key' style='font:12px sans-serif;margin:4px 0'>"
            + " &nbsp;&nbsp; ".join(parts) + "</p>")


def _cell(value: float, vmin: float, vmax: float, cmap: str, fmt: str, hit: bool, title: str) -> str:
    text = format(value, fmt) if fmt else ""
    colour = _cell_colour(value, vmin, vmax, cmap)
    ink = "#fff" if _is_dark(colour) else "#000"
    return (f"<td{' class=hit' if hit else ''} style='background:{colour};color:{ink}' "
            f"title='{title}: {value:.4g}'>{text}</td>")


def _is_dark(hex_colour: str) -> bool:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b < 128


def _score_line(label: str, value: float | None, full: float | None, metric: str, fraction: float) -> str:
    if value is None:
        return f"<p><b>{label}</b>: no score recorded</p>"
    ratio = f" ({value / full:.0%} of the full model)" if full else ""
    colour = _PASS_COLOUR if full is None or value >= fraction * full else _FAIL_COLOUR
    return f"<p><b>{label}</b>: {metric} <b style='color:{colour}'>{value:.4f}</b>{ratio}</p>"


def preset_views(plan: str, task: str, seed: int) -> tuple[list[str], list[str]]:
    """Labels and HTML views of the presets of one run, from committed results."""
    from lotterylib.store.masks import load_mask
    from lotterylib.store.files import read_json

    full = read_json(L.finetune_file(plan, task, seed))
    metric = full["search_metric"]
    full_score = full["metrics"][metric]
    fraction = Plan.load(plan).settings(task).search.fraction
    s = full["structure"]
    labels = ["full model"]
    views = [_score_line("full model", full_score, None, metric, fraction)
             + mask_table_html(np.ones((s["n_layers"], s["n_heads"])), np.ones(s["n_layers"]))]
    pruned = L.pruned_file(plan, task, seed, "s")
    scores = read_json(pruned)["subnetworks"] if pruned.exists() else {}
    for sub in ("good", "random", "bad"):
        path = L.mask_file(plan, task, seed, "s", sub)
        if not path.exists():
            continue
        arrays = load_mask(path).arrays
        head, mlp = arrays["head_mask"], arrays["mlp_mask"]
        labels.append(f"s-pruning {sub}")
        value = scores.get(sub, {}).get("metric")
        views.append(_score_line(f"s-pruning {sub}, pruned (not re-fine-tuned)", value, full_score, metric, fraction)
                     + f"<p>kept: {int(head.sum())} of {head.size} heads, {int(mlp.sum())} of {mlp.size} MLPs</p>"
                     + mask_table_html(head, mlp))
    m_pruned = L.pruned_file(plan, task, seed, "m")
    for sub, rec in (read_json(m_pruned)["subnetworks"].items() if m_pruned.exists() else []):
        labels.append(f"m-pruning {sub}")
        views.append(_score_line(f"m-pruning {sub}, pruned (not re-fine-tuned)", rec["metric"], full_score, metric, fraction)
                     + f"<p>keeps {rec['weights_kept_share']:.1%} of the prunable weights; every head and MLP "
                       "stays. Share kept per layer and module:</p>" + share_table_html(rec["by_layer"]))
    super_good = L.mask_file(plan, task, None, "super", "good")
    if super_good.exists():
        arrays = load_mask(super_good).arrays
        retrained = L.retrain_file(plan, task, seed, "super", "good")
        value = read_json(retrained).get("metric") if retrained.exists() else None
        labels.append("super-survivors")
        views.append(_score_line("super-survivors, re-fine-tuned", value, full_score, metric, fraction)
                     + f"<p>kept in every seed: {int(arrays['head_mask'].sum())} heads, "
                       f"{int(arrays['mlp_mask'].sum())} MLPs</p>"
                     + mask_table_html(arrays["head_mask"], arrays["mlp_mask"]))
    note = f"<p><i>Scores on the whole dev set ({_dev_size(full)}), as in every results table.</i></p>"
    return labels, [note + v for v in views]


def share_table_html(by_layer: list[dict]) -> str:
    """m-pruning's kept share per layer (rows) and module (columns) as a coloured HTML table."""
    modules = list(dict.fromkeys(r["module"] for r in by_layer))
    layers = sorted({r["layer"] for r in by_layer})
    share = {(r["layer"], r["module"]): r["share"] for r in by_layer}
    header = "".join(f"<th>{m}</th>" for m in modules)
    rows = [f"<tr><th></th>{header}</tr>"]
    for layer in layers:
        cells = "".join(_cell(share[layer, m], 0.0, 1.0, "Greens", ".2f", False, f"layer {layer} {m}")
                        for m in modules)
        rows.append(f"<tr><th>{layer}</th>{cells}</tr>")
    return ("<style>.lbs{border-collapse:collapse;font:12px sans-serif}.lbs td{width:64px;height:20px;"
            "text-align:center;border:1px solid #ddd}.lbs th{padding:0 4px}</style>"
            f"<table class='lbs'>{''.join(rows)}</table>" + legend_html(0.0, 1.0, "Greens", ".1f", "share kept"))


def removal_view(plan: str, task: str, seed: int) -> str | None:
    """The dev metric change from removing each single head and each single MLP."""
    from lotterylib.store.files import read_json

    path = L.finetune_file(plan, task, seed, L.SINGLE_REMOVAL)
    if not path.exists():
        return None
    data = read_json(path)
    heads = np.asarray(data["head_removed"]) - data["full"]
    mlps = np.asarray(data["mlp_removed"]) - data["full"]
    bound = float(max(np.abs(heads).max(), np.abs(mlps).max(), 1e-6))
    return (f"<p>{removal_baseline(plan, task, seed, data)} Each cell: the change of {data['metric']} on those "
            f"{data['n_examples']} examples when that one component is removed; red: worse, blue: better.</p>"
            + mask_table_html(heads, mlps, vmin=-bound, vmax=bound, cmap="RdBu", fmt="+.2f",
                              legend=f"change of {data['metric']}"))


def _dev_size(finetune: dict) -> str:
    n = finetune.get("n_dev")
    return f"{n} examples" if n else "every example"


def removal_baseline(plan: str, task: str, seed: int, data: dict | None = None) -> str:
    """The single removals' baseline, with what it is computed on, beside the presets' one.

    The single removals are scored on a fixed sample of the dev set (``records.single_removal_dev`` examples,
    256 by default), so their full-model baseline is the full model on that sample; the presets tab scores the
    whole dev set. Two example sets, two values of "the full model": both are named here.
    """
    from lotterylib.store.files import read_json

    data = data if data is not None else read_json(L.finetune_file(plan, task, seed, L.SINGLE_REMOVAL))
    full = read_json(L.finetune_file(plan, task, seed))
    whole = full["metrics"].get(data["metric"])
    text = (f"Baseline: the full model scores {data['metric']} {data['full']:.4f} on the {data['n_examples']} "
            "dev examples these removals are scored on")
    if whole is not None and full.get("n_dev") != data["n_examples"]:
        text += (f" (on the whole dev set, {_dev_size(full)}, it scores {whole:.4f}: the baseline of the presets "
                 "tab)")
    return text + "."


def trace_views(plan: str, task: str, seed: int) -> tuple[list[str], list[str]]:
    """One view per s-pruning step: the mask after the step, the components it removed, the score."""
    from lotterylib.method.pruning import replay_s_trace
    from lotterylib.store.files import read_json

    path = L.search_file(plan, task, seed, "s")
    if not path.exists():
        return [], []
    search = read_json(path)
    full = search["full_metric"]
    labels, views = [], []
    for rec, head_alive, mlp_alive in replay_s_trace(search["trace"]):
        removed = {tuple(x) for x in rec["pruned_heads"]} | {(layer, "mlp") for layer in rec["pruned_mlps"]}
        verdict = "kept: passes the 90 % rule" if rec["passed"] else "rejected: below 90 %, the search phase stops"
        labels.append(f"step {rec['step']}")
        views.append(f"<p><b>step {rec['step']}</b> ({rec['phase']}): removes the outlined components; "
                     f"score {rec['metric']:.4f} = {rec['metric'] / full:.0%} of the full model: {verdict}. "
                     f"Cells show the normalised importance the step ranked by.</p>"
                     + mask_table_html(np.asarray(rec["head_scores"]) * head_alive,
                                       np.asarray(rec["mlp_scores"]) * mlp_alive,
                                       cmap="Blues", fmt=".2f", highlight=removed,
                                       legend="normalised importance"))
    return labels, views


def static_explorer(plan: str, seed: int, tasks: list[str]):
    """The kernel-free explorer: tasks x (presets, single removals, pruning trace), switched in the browser."""
    import ipywidgets as w


    pages, shown = [], []
    for task in tasks:
        if not L.finetune_file(plan, task, seed).exists():
            continue  # not fine-tuned yet (a grid still running): the task is left out of the switch
        shown.append(task)
        tabs, titles = [], []
        labels, views = preset_views(plan, task, seed)
        tabs.append(switchable(labels, views, "preset"))
        titles.append("presets")
        removal = removal_view(plan, task, seed)
        if removal is not None:
            tabs.append(w.HTML(removal))
            titles.append("single removals")
        labels, views = trace_views(plan, task, seed)
        if views:
            tabs.append(switchable(labels, views, "step", slider=True))
            titles.append("s-pruning trace")
        tab = w.Tab(tabs)
        for i, title in enumerate(titles):
            tab.set_title(i, title)
        pages.append(tab)
    if not pages:
        return w.HTML(f"<p>No fine-tuned run of seed {seed} in this plan's results yet: run the workflow first.</p>")
    return _task_switch(shown, pages)


def _task_switch(tasks: list[str], pages: list):
    import ipywidgets as w

    stack = w.Stack(pages, selected_index=0)
    control = w.ToggleButtons(options=[(t, i) for i, t in enumerate(tasks)], value=0, description="task")
    w.jslink((control, "index"), (stack, "selected_index"))
    return w.VBox([control, stack])

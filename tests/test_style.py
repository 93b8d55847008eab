"""The book's figure standard (lotterylib.report.style), checked on every plot function.

The rules, each checked on small synthetic data (tasks handed over out of order) and, where cheap, on the committed
demo results:

- size: every visible text, as the reader sees it, is >= 9 pt: ``fontsize * min(1, 7.5 in / figure width)``
  (the book's content column is 7.5 in = 720 px at 96 dpi; a wider figure is shrunk to fit, a narrower one is
  shown at its own size; :func:`lotterylib.report.style.shown_pt`);
- GLUE order: task panels (titles) and task tick labels follow CoLA, SST-2, MRPC, QQP, STS-B, MNLI, QNLI, RTE, WNLI;
- every heatmap (AxesImage, QuadMesh) has a colour bar in its figure (its own, or one it shares: same map, same
  limits);
- legends lie outside every data axes (their drawn boxes do not intersect);
- the subnetwork palette (good / random / bad) is used by subnetwork artists only;
- no text says "retrained" (the book's word is "re-fine-tuned").
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

from lotterylib.read.pattern_rules import GROUPS, TYPES, WEIGHTS  # noqa: E402
from lotterylib.report import pattern_plots, plots, style  # noqa: E402

TASKS = ["RTE", "CoLA", "STS-B", "SST-2"]  # out of order on purpose
GLUE = style.GLUE_ORDER
SUBNET_HEX = {to_hex(c) for c in style.SUBNETWORK_COLORS.values()}


# --- the checks ----------------------------------------------------------------------------------------------

def _drawn(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _is_cbar(ax) -> bool:
    return hasattr(ax, "_colorbar")


def _data_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.axison and not _is_cbar(ax)]


def _texts(fig):
    out = []
    for t in fig.findobj(matplotlib.text.Text):
        ax = t.axes
        if not t.get_text().strip() or not t.get_visible() or (ax is not None and not ax.get_visible()):
            continue
        out.append(t)
    return out


def check_sizes(fig):
    small = [(t.get_text()[:30], t.get_fontsize()) for t in _texts(fig)
             if style.shown_pt(t.get_fontsize(), fig.get_figwidth()) < style.MIN_FONT_PT - 1e-9]
    assert not small, f"text under 9 pt at the page width: {small[:5]}"
    assert fig.get_figwidth() <= style.CONTENT_WIDTH_IN + 1e-9


def check_glue_order(fig):
    """Panels: in GLUE order along each row of panels, and row after row where each row names one task."""
    rows = {}
    for ax in _data_axes(fig):
        first = ax.get_title().split("\n")[-1 if ax.get_title().count("\n") == 2 else 0].split(" ")[0]
        rows.setdefault(round(ax.get_position().y0, 2), []).append(first)
    for titles in rows.values():
        titles = [t for t in titles if t in GLUE]
        assert titles == sorted(titles, key=GLUE.index), titles
    names = [t for _, ts in sorted(rows.items(), reverse=True) for t in ts if t in GLUE]
    if all(len(set(t for t in ts if t in GLUE)) <= 1 for ts in rows.values()):  # one task per row
        names = list(dict.fromkeys(names))
    else:
        names = [t for _, ts in sorted(rows.items(), reverse=True) for t in ts if t in GLUE]
        if len(names) != len(set(names)):  # a task repeated across rows (a gallery): rows checked above
            names = []
    assert names == sorted(names, key=GLUE.index), names
    for ax in _data_axes(fig):
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            names = [t.get_text() for t in labels if t.get_text() in GLUE]
            assert names == sorted(names, key=GLUE.index), names


def check_colorbars(fig):
    maps = [a for ax in fig.axes if not _is_cbar(ax) for a in ax.get_children()
            if isinstance(a, (AxesImage, QuadMesh))]
    with_bar = [(m.get_cmap().name, m.get_clim()) for m in maps if m.colorbar is not None]
    for m in maps:
        assert m.colorbar is not None or (m.get_cmap().name, m.get_clim()) in with_bar, \
            f"a heatmap without a colour bar in {fig}"


def check_legends_outside(fig):
    renderer = _drawn(fig)
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in _data_axes(fig):
            a = ax.get_window_extent(renderer)
            w = min(box.x1, a.x1) - max(box.x0, a.x0)
            h = min(box.y1, a.y1) - max(box.y0, a.y0)
            assert w <= 1 or h <= 1, f"legend over the data of {ax.get_title()!r}"


def check_legend_entries_once(fig):
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for legend in legends:
        labels = [t.get_text() for t in legend.get_texts()]
        assert len(labels) == len(set(labels)), f"a legend entry twice: {labels}"


def check_words(fig):
    said = [t.get_text() for t in _texts(fig) if "retrained" in t.get_text().lower()]
    assert not said, said


def _colors_of(fig):
    """Hex colours of every patch face, line and collection face of the data axes, with the artist."""
    out = []
    for ax in _data_axes(fig):
        for p in ax.patches:
            out.append((to_hex(p.get_facecolor(), keep_alpha=False), p))
        for line in ax.lines:
            out.append((to_hex(line.get_color(), keep_alpha=False), line))
        for c in ax.collections:
            for fc in np.atleast_2d(c.get_facecolor()):
                if len(fc):
                    out.append((to_hex(fc, keep_alpha=False), c))
    for legend in fig.legends:
        for h in legend.legend_handles:
            if hasattr(h, "get_facecolor"):
                out.append((to_hex(np.atleast_2d(h.get_facecolor())[0], keep_alpha=False), h))
    return out


def check_no_subnetwork_colors(fig):
    used = {c for c, _ in _colors_of(fig)} & SUBNET_HEX
    assert not used, f"subnetwork colours on a figure with no subnetwork: {used}"


def check_all(fig):
    check_sizes(fig)
    check_glue_order(fig)
    check_colorbars(fig)
    check_legends_outside(fig)
    check_legend_entries_once(fig)
    check_words(fig)
    plt.close(fig)


# --- synthetic data ------------------------------------------------------------------------------------------

RNG = np.random.default_rng(0)


def _scores():
    rows = []
    for task in TASKS:
        for seed in (1, 2, 3):
            for method in ("m", "s"):
                for sub in ("good", "random", "bad"):
                    for stage in ("pruned", "retrained"):
                        if task == "RTE" and sub == "random":
                            continue  # a missing bar keeps its place
                        rows.append({"task": task, "seed": seed, "method": method, "subnetwork": sub, "stage": stage,
                                     "metric": "acc", "score": RNG.uniform(0.4, 0.9), "weights_kept_share": 0.6})
    return pd.DataFrame(rows)


def _full():
    return pd.DataFrame([{"task": t, "seed": s, "score": 0.85, "majority": 0.5} for t in TASKS for s in (1, 2, 3)])


def _published():
    rows = [{"task": t, "method": m, "subnetwork": sub, "stage": st, "metric": "acc", "mean": 0.7, "std": 0.05,
             "paper figure differs": sub == "random" and st == "retrained", "paper figure mean": 0.8,
             "paper figure std": 0.02} for t in TASKS for m in ("m", "s") for sub in ("good", "random", "bad")
            for st in ("pruned", "retrained")]
    ref = pd.DataFrame({"task": TASKS, "metric": "acc", "full": 0.88, "majority": 0.5})
    return pd.DataFrame(rows), ref


def _masks(n_layers=4, n_heads=6, seeds=(1, 2, 3)):
    return {t: {"head_mask": RNG.integers(0, 2, (len(seeds), n_layers, n_heads)).astype(float),
                "mlp_mask": RNG.integers(0, 2, (len(seeds), n_layers)).astype(float), "seeds": list(seeds)}
            for t in TASKS}


def _square(values=None):
    n = len(TASKS)
    data = RNG.uniform(5, 20, (n, n)) if values is None else values
    return pd.DataFrame(data, index=TASKS, columns=TASKS)


class _Gallery:
    def map(self, row):
        n = 6
        return RNG.dirichlet(np.ones(n), n), [f"t{i}" for i in range(n)]


def _type_shares():
    rows = [{"task": t, "weights": w, "group": g, "type": k, "share": 1 / len(TYPES), "n": 30}
            for t in TASKS for w in WEIGHTS for g in GROUPS for k in TYPES]
    return pd.DataFrame(rows)


def _figures():
    scores, full = _scores(), _full()
    published, ref = _published()
    masks = _masks()
    long = pd.DataFrame([{"model": m, "task": t, "score": 0.6, "n": 3} for m in
                         ("bad subnetwork, m-pruning (ours)", "bad subnetwork, s-pruning (ours)",
                          "majority class (ours)", "full model (ours)") for t in TASKS])
    trace_rows = [{"method": "s", "task": t, "seed": s, "step": k, "relative": 1 - 0.05 * k, "phase": "heads"}
                  for t in TASKS for s in (1, 2, 3) for k in range(4)]
    trace_rows += [{"method": "m", "task": t, "seed": s, "sparsity": k / 10, "relative": 1 - 0.05 * k}
                   for t in TASKS for s in (1, 2, 3) for k in range(4)]
    layer_rows = [{"task": t, "seed": s, "layer": layer, "component": c, "share": RNG.uniform()}
                  for t in TASKS for s in (1, 2) for layer in range(4) for c in ("heads", "MLP")]
    kappa = pd.DataFrame({"task": TASKS, "kappa (ours)": [0.2, 0.1, 0.3, 0.25], "kappa (paper)": [0.2] * 4})
    card = pd.DataFrame({"claim": ["C1", "C2", "C3", "C4"], "paper verdict": ["holds", "does not hold", None, "holds"],
                         "verdict": ["does not hold", "not testable at this scale", "not yet computed",
                                     "not yet computed"]})
    picks = pd.DataFrame([{"type": k, "task": t, "layer": 0, "head": 1, "weights": "finetuned", "seed": 1}
                          for k in TYPES[:2] for t in TASKS[:3]])
    head_mean = RNG.uniform(size=(4, 6))
    return {
        "layer_shares": (lambda: plots.layer_shares(pd.DataFrame(layer_rows), title="shares"), False),
        "subnetwork_bars": (lambda: plots.subnetwork_bars(scores, full, "s"), True),
        "fig2_like_paper": (lambda: plots.fig2_like_paper(scores, full, "m", paper=published, paper_reference=ref),
                            True),
        "published_subnetwork_bars": (lambda: plots.published_subnetwork_bars(published, ref, "s"), True),
        "importance_histogram": (lambda: plots.importance_histogram(
            pd.DataFrame({"kind": ["head", "mlp"] * 20, "score": RNG.uniform(size=40)})), False),
        "overlap_heatmap": (lambda: plots.overlap_heatmap(_square(), _square(), _square(), unit="heads"), False),
        "trace_lines_s": (lambda: plots.trace_lines(pd.DataFrame(trace_rows), "s"), False),
        "trace_lines_m": (lambda: plots.trace_lines(pd.DataFrame(trace_rows), "m"), False),
        "survival_detail": (lambda: plots.survival_detail(head_mean, head_mean / 3, head_mean[:, 0], head_mean[:, 1]),
                            False),
        "kappa_points": (lambda: plots.kappa_points(kappa, (0.15, 0.32), {"kappa (ours)": "o", "kappa (paper)": "x"}),
                         False),
        "overlap_triangle": (lambda: plots.overlap_triangle(_square(), _square(), marked=_square() > 10), False),
        "survival_stat_heatmaps": (lambda: plots.survival_stat_heatmaps(masks, "std", title="std"), False),
        "bad_vs_baselines": (lambda: plots.bad_vs_baselines(long), True),
        "verdict_grid": (lambda: plots.verdict_grid(card), False),
        "masks_by_seed": (lambda: plots.masks_by_seed(masks), False),
        "plot_type_shares": (lambda: pattern_plots.plot_type_shares(_type_shares(), title="types"), False),
        "plot_gallery": (lambda: pattern_plots.plot_gallery(_Gallery(), picks, per_type=4), False),
    }


FIGURES = list(_figures())


@pytest.fixture(scope="module", autouse=True)
def _book_style():
    plots.set_style()
    yield
    plt.close("all")


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_meets_the_standard(name):
    make, subnetworks = _figures()[name]
    fig = make()
    if not subnetworks:
        check_no_subnetwork_colors(fig)
    check_all(fig)


def test_bad_vs_baselines_keeps_the_red_for_the_bad_subnetworks():
    fig = _figures()["bad_vs_baselines"][0]()
    ax = _data_axes(fig)[0]
    for container in ax.containers:
        label = container.get_label()
        colors = {to_hex(p.get_facecolor(), keep_alpha=False) for p in container.patches}
        if "bad" in label:
            assert colors == {style.SUBNETWORK_COLORS["bad"]}
        else:
            assert not colors & SUBNET_HEX, label
    plt.close(fig)


def test_verdicts_seeds_and_types_have_their_own_palettes():
    for palette in (style.VERDICT_COLORS, style.TYPE_COLORS, dict(enumerate(style.SEED_COLORS))):
        assert not {to_hex(c) for c in palette.values()} & SUBNET_HEX
    assert pattern_plots.TYPE_COLORS is style.TYPE_COLORS and plots.VERDICT_COLORS is style.VERDICT_COLORS
    assert style.VERDICT_COLORS["holds"] == style.VERDICT_COLORS["on par"]
    assert style.THRESHOLD_COLOR not in SUBNET_HEX and style.FULL_COLOR not in SUBNET_HEX


def test_task_order_caption_and_words():
    assert style.task_order(["WNLI", "RTE", "MNLI", "CoLA", "HANS", "QQP"]) == ["CoLA", "QQP", "MNLI", "RTE", "WNLI",
                                                                                 "HANS"]
    text = style.caption(3, "Overlap between tasks.", "Tasks share more heads than chance")
    assert text == "**Figure 3. Overlap between tasks.** Tasks share more heads than chance."
    with pytest.raises(ValueError):
        style.caption(1, "t", "two\nlines")
    assert style.label("retrained") == "re-fine-tuned"
    assert style.shown_pt(9, 15) == 4.5 and style.shown_pt(9, 5) == 9


def test_a_heatmap_always_gets_its_colour_bar_and_a_rule_breaker_is_caught():
    fig, axes = style.subplots()
    style.heatmap(axes[0, 0], np.eye(3), cbar_label="x")
    check_colorbars(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7.5, 3))
    ax.imshow(np.eye(3))
    ax.legend(handles=[matplotlib.patches.Patch(label="inside")], loc="center")
    with pytest.raises(AssertionError):
        check_colorbars(fig)
    with pytest.raises(AssertionError):
        check_legends_outside(fig)
    ax.set_xlabel("retrained", fontsize=6)
    with pytest.raises(AssertionError):
        check_words(fig)
    with pytest.raises(AssertionError):
        check_sizes(fig)
    plt.close(fig)


def test_explorer_attention_map_and_mask_key():
    from lotterylib.report import explorer

    fig = explorer.attention_figure(RNG.dirichlet(np.ones(5), 5), [f"w{i}" for i in range(5)], "layer 0, head 1")
    check_all(fig)
    html = explorer.mask_table_html(np.array([[1.0, 0.0]]), np.array([1.0]))
    assert "kept" in html and "pruned" in html and html.count("<td") == 4
    html = explorer.mask_table_html(np.array([[0.1, -0.2]]), np.array([0.0]), vmin=-0.2, vmax=0.2, cmap="RdBu",
                                    fmt="+.2f", legend="change of acc")
    assert "linear-gradient" in html and "change of acc" in html


# --- the committed demo results ------------------------------------------------------------------------------

def _demo():
    from lotterylib.read import collect

    try:
        scores, full = collect.subnetwork_scores("demo"), collect.full_scores("demo")
    except Exception as error:  # noqa: BLE001 (a checkout without results)
        pytest.skip(f"no demo results: {error}")
    if not len(scores):
        pytest.skip("no demo results")
    return scores, full


@pytest.mark.parametrize("method", ["m", "s", "super"])
def test_demo_fig2_in_the_papers_layout(method):
    from lotterylib.report import paper_figures as pf

    scores, full = _demo()
    paper, ref = pf.fig2_paper_values(method)
    fig = plots.fig2_like_paper(scores, full, method, paper=paper, paper_reference=ref)
    if paper is not None:
        markers = [line for ax in _data_axes(fig) for line in ax.lines if line.get_marker() == "D"]
        assert markers, "the paper's values are drawn as markers"
    check_all(fig)


def test_demo_explorer_names_both_baselines():
    from lotterylib.report import explorer
    from lotterylib.store import layout as L
    from lotterylib.store.files import read_json

    path = L.finetune_file("demo", "CoLA", 1337, L.SINGLE_REMOVAL)
    if not path.exists():
        pytest.skip("no demo single-removal record")
    data, full = read_json(path), read_json(L.finetune_file("demo", "CoLA", 1337))
    text = explorer.removal_view("demo", "CoLA", 1337)
    assert f"{data['full']:.4f} on the {data['n_examples']} dev examples" in text
    whole = full["metrics"][data["metric"]]
    assert f"on the whole dev set, {full['n_dev']} examples, it scores {whole:.4f}" in text
    labels, views = explorer.preset_views("demo", "CoLA", 1337)
    assert all(f"whole dev set ({full['n_dev']} examples)" in v for v in views)
    assert f"{whole:.4f}" in views[0]

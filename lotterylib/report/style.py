"""The book's one figure standard: sizes, fonts, task order, palettes, legends, heatmaps, captions, words.

Every plotting module of :mod:`lotterylib.report` draws through this module, so a rule changes in one place.

The size rule. The book's content column is :data:`CONTENT_WIDTH_IN` = 7.5 in (720 px at :data:`DPI` = 96, the
CSS pixel density, so one figure inch is one inch on the page). A figure wider than the column is shrunk to fit,
its text with it; a narrower one is shown at its own size. So the size a reader sees is
:func:`shown_pt` ``= fontsize * min(1, CONTENT_WIDTH_IN / figure width)`` and every text must reach
:data:`MIN_FONT_PT` = 9 pt. Figures are drawn at most :data:`CONTENT_WIDTH_IN` wide (:func:`width`), and the
rc font sizes start at 9 pt.

Palettes. Each meaning has its own colours and no colour is shared between meanings:

- :data:`SUBNETWORK_COLORS` (good / random / bad) is reserved for artists that draw a subnetwork;
- :data:`VERDICT_COLORS` for verdicts (on par / worse / inconclusive / not testable, and the scorecard's
  holds / does not hold / not testable at this scale / not yet computed);
- :data:`TYPE_COLORS` for attention pattern types;
- :data:`SEED_COLORS` for seeds (never a red);
- :data:`FULL_COLOR`, :data:`MAJORITY_COLOR`, :data:`PAPER_COLOR`, :data:`OURS_COLOR`, :data:`THRESHOLD_COLOR` for
  reference lines.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

# --- sizes ---------------------------------------------------------------------------------------------------

CONTENT_WIDTH_IN = 7.5  # the book's content column: 720 px at 96 px per inch
DPI = 96  # one figure inch = one CSS inch: a figure up to 7.5 in wide is shown at its own size
MIN_FONT_PT = 9.0  # every text, as the reader sees it

RC = {
    "figure.dpi": DPI, "savefig.dpi": DPI, "figure.constrained_layout.use": True,
    "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "axes.titleweight": "bold",
    "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9, "legend.title_fontsize": 9,
    "figure.titlesize": 11, "figure.titleweight": "bold", "legend.frameon": False,
}


def set_style() -> None:
    """The one style of every figure in the book: seaborn's whitegrid with :data:`RC` on top."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", font_scale=1.0, rc=RC)
    plt.rcParams.update(RC)


def width(fraction: float = 1.0) -> float:
    """A figure width in inches: ``fraction`` of the content column (never more than the column)."""
    return CONTENT_WIDTH_IN * min(1.0, fraction)


def shown_pt(fontsize: float, fig_width_in: float) -> float:
    """The size in points at which the reader sees ``fontsize`` text of a figure ``fig_width_in`` wide.

    >>> shown_pt(9, 7.5), shown_pt(9, 15.0), shown_pt(9, 4.0)
    (9.0, 4.5, 9.0)
    """
    return float(fontsize) * min(1.0, CONTENT_WIDTH_IN / float(fig_width_in))


def subplots(nrows: int = 1, ncols: int = 1, height: float = 3.0, fig_width: float | None = None, **kw):
    """``plt.subplots`` at the column width (or ``fig_width``, capped at it) with constrained layout, so
    legends and colour bars placed outside the axes get their own room."""
    kw.setdefault("squeeze", False)
    return plt.subplots(nrows, ncols, figsize=(min(fig_width or CONTENT_WIDTH_IN, CONTENT_WIDTH_IN), height),
                        layout="constrained", **kw)


def figure(height: float = 3.0, fig_width: float | None = None):
    """An empty figure at the column width (or ``fig_width``, capped at it) with constrained layout."""
    return plt.figure(figsize=(min(fig_width or CONTENT_WIDTH_IN, CONTENT_WIDTH_IN), height), layout="constrained")


def grid(n: int, ncols: int = 3, panel_height: float = 2.4, fig_width: float | None = None):
    """``n`` panels in rows of ``ncols`` filling the column width; unused panels hidden. Returns (fig, axes)."""
    ncols = max(1, min(ncols, n))
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = subplots(nrows, ncols, height=panel_height * nrows + 0.6, fig_width=fig_width)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


# --- task order ----------------------------------------------------------------------------------------------

#: GLUE's own order (the benchmark paper's table, and this paper's): every panel, tick and legend uses it.
GLUE_ORDER: tuple[str, ...] = ("CoLA", "SST-2", "MRPC", "QQP", "STS-B", "MNLI", "QNLI", "RTE", "WNLI")


def task_order(tasks) -> list[str]:
    """``tasks`` (any iterable, duplicates dropped) in GLUE order; tasks outside GLUE follow, alphabetically.

    >>> task_order(["RTE", "CoLA", "MNLI", "CoLA", "HANS"])
    ['CoLA', 'MNLI', 'RTE', 'HANS']
    """
    rank = {t: i for i, t in enumerate(GLUE_ORDER)}
    return sorted(dict.fromkeys(tasks), key=lambda t: (rank.get(t, len(rank)), str(t)))


# --- palettes ------------------------------------------------------------------------------------------------

#: Reserved for subnetworks: only an artist drawing a good, random or bad subnetwork uses these.
SUBNETWORK_COLORS = {"good": "#2a9d8f", "random": "#e9c46a", "bad": "#e76f51"}

_ON_PAR, _WORSE, _INCONCLUSIVE, _UNTESTABLE = "#33528f", "#7d3c98", "#a6a05a", "#d9d9d9"
_PENDING = "#f3efe3"  # a claim whose runs the grid has not computed yet: lighter than "not testable"
#: Verdicts, their own colours (the comparison's and the scorecard's words for the same two outcomes share one).
VERDICT_COLORS = {"on par": _ON_PAR, "holds": _ON_PAR, "worse": _WORSE, "does not hold": _WORSE,
                  "inconclusive": _INCONCLUSIVE, "not testable": _UNTESTABLE,
                  "not testable at this scale": _UNTESTABLE, "not yet computed": _PENDING}

#: Attention pattern types (Kovaleva et al. 2019).
TYPE_COLORS = {"vertical": "#4477aa", "diagonal": "#88ccee", "vertical+diagonal": "#228833",
               "block": "#aa3377", "heterogeneous": "#bbbbbb"}

#: Seeds, in order of appearance: no red, no subnetwork colour.
SEED_COLORS = ("#332288", "#1f78b4", "#117733", "#aa4499", "#999933", "#555555", "#88ccee", "#a6761d")

FULL_COLOR = "#111111"  # the full fine-tuned model
MAJORITY_COLOR = "#8c8c8c"  # the majority-class baseline
PAPER_COLOR = "#7b2cbf"  # the paper's values (bert-base)
OURS_COLOR = "#264653"  # our values where no subnetwork is meant
THRESHOLD_COLOR = "#111111"  # rule lines (the 90 % line, a tolerance), dashed
NEUTRAL_COLOR = "#457b9d"  # one-series plots (a histogram)
KEPT_COLOR, PRUNED_COLOR = "#1b5e20", "#edf5e9"  # kept / pruned cells of a mask


def seed_colors(seeds) -> dict:
    """Seed -> colour from :data:`SEED_COLORS`, in order of appearance."""
    seeds = list(dict.fromkeys(seeds))
    return {s: SEED_COLORS[i % len(SEED_COLORS)] for i, s in enumerate(seeds)}


def verdict_color(verdict) -> str:
    """The colour of a verdict (white for an unknown one)."""
    return VERDICT_COLORS.get(str(verdict), "#ffffff")


def ink(color) -> str:
    """Black or white text, whichever reads on ``color``."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"


# --- words ---------------------------------------------------------------------------------------------------

#: Data words -> the words a reader sees on axes, ticks and legends ("re-fine-tuned", never "retrained").
VOCABULARY = {"retrained": "re-fine-tuned", "retrain": "re-fine-tune", "finetuned": "fine-tuned",
              "pretrained": "pre-trained"}


def label(word: str) -> str:
    """The reader's word for a data word: ``label("retrained") == "re-fine-tuned"``."""
    return VOCABULARY.get(str(word), str(word))


# --- legends, heatmaps, captions -----------------------------------------------------------------------------

def legend_outside(ax_or_fig, handles=None, labels=None, where: str = "bottom", ncol: int | None = None, **kw):
    """A legend outside the data: below the figure (``where="bottom"``, a figure legend in constrained layout's
    own room) or right of an axes (``where="right"``). Returns the legend."""
    from matplotlib.figure import Figure

    fig = ax_or_fig if isinstance(ax_or_fig, Figure) else ax_or_fig.figure
    if handles is None:
        handles, labels = (ax_or_fig.axes[0] if isinstance(ax_or_fig, Figure) else ax_or_fig
                           ).get_legend_handles_labels()
    handles = list(handles)
    labels = [h.get_label() for h in handles] if labels is None else list(labels)
    args = (handles, labels)
    kw.setdefault("frameon", False)
    kw.setdefault("fontsize", RC["legend.fontsize"])
    if fig.get_layout_engine() is None:
        fig.set_layout_engine("constrained")
    if where == "right":
        ax = ax_or_fig.axes[0] if isinstance(ax_or_fig, Figure) else ax_or_fig
        return ax.legend(*args, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, ncol=ncol or 1,
                         **kw)
    if where != "bottom":
        raise ValueError(f"where={where!r} is unknown: use 'bottom' or 'right'")
    return fig.legend(*args, loc="outside lower center", ncol=ncol or min(len(handles), 3), **kw)


def heatmap(ax, data, cmap: str = "viridis", vmin=None, vmax=None, cbar_label: str = "", colorbar: bool = True,
            cbar_ax=None, ticks=None, **kw):
    """``imshow`` of ``data`` (masked where not finite) with its colour bar (labelled ``cbar_label``).

    Every heatmap of the book has a colour bar; several panels on one scale share one: pass ``colorbar=False``
    for all but one and draw it with ``cbar_ax`` or :func:`shared_colorbar`. ``ticks``: the colour bar's ticks
    (``{value: label}`` for a categorical map such as kept / pruned). Returns the image.
    """
    grid_ = np.ma.masked_invalid(np.asarray(data, dtype=float))
    image = ax.imshow(grid_, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                      aspect=kw.pop("aspect", "equal"), **kw)
    ax.grid(False)
    if colorbar:
        shared_colorbar(image, ax if cbar_ax is None else None, cbar_label, ticks=ticks, cax=cbar_ax)
    return image


def shared_colorbar(image, axes, cbar_label: str, ticks=None, cax=None, **kw):
    """One colour bar for ``image`` beside ``axes`` (one axes or a list); ``ticks`` as in :func:`heatmap`."""
    fig = image.axes.figure
    kw.setdefault("shrink", 0.8)
    cb = fig.colorbar(image, cax=cax) if cax is not None else fig.colorbar(image, ax=axes, **kw)
    cb.set_label(cbar_label, fontsize=RC["axes.labelsize"])
    cb.ax.tick_params(labelsize=RC["ytick.labelsize"])
    if ticks:
        cb.set_ticks(list(ticks), labels=list(ticks.values()))
    return cb


def mask_cmap():
    """Two colours, pruned (0) and kept (1), for mask heatmaps."""
    from matplotlib.colors import ListedColormap

    return ListedColormap([PRUNED_COLOR, KEPT_COLOR])


MASK_TICKS = {0.25: "pruned", 0.75: "kept"}  # the colour bar of a mask drawn with vmin=0, vmax=1


def caption(number, title: str, takeaway: str) -> str:
    """The numbered caption under a figure, as Markdown: "**Figure n.** title. takeaway" (one line each).

    >>> caption(2, "Good, random and bad subnetworks", "Re-fine-tuned, all three come close to the full model.")
    '**Figure 2. Good, random and bad subnetworks.** Re-fine-tuned, all three come close to the full model.'
    """
    title, takeaway = str(title).strip().rstrip("."), str(takeaway).strip()
    if not title or not takeaway:
        raise ValueError("a caption needs a title and a one-line takeaway")
    if "\n" in title or "\n" in takeaway:
        raise ValueError("a caption's title and takeaway are one line each")
    if not takeaway.endswith((".", "!", "?")):
        takeaway += "."
    return f"**Figure {number}. {title}.** {takeaway}"

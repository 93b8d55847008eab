"""Sphinx extension: ``{pipeline-diagram}``, the workflow's rule graph drawn when the book is built.

The graph is Snakemake's own (``snakemake --rulegraph`` on this repository's ``Snakefile``), so the picture cannot
drift from the workflow: a rule added, removed or rewired there shows here at the next build. It is drawn with
matplotlib into a PNG (no Graphviz, no JavaScript, nothing from a network), with alt text written from the same
graph. A failure to read the graph is a Sphinx warning, which fails the strict build.

    ```{pipeline-diagram}
    :plan: smoke
    ```
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

# Targets that only gather other rules' outputs: not steps of the pipeline.
AGGREGATES = {"all", "experiments", "figures"}
RESULTS_NODE = "results/<plan>/"
# What each rule runs (the rule graph names rules only); a rule missing here is drawn with its name alone.
RUNS = {
    "finetune": "finetune.ipynb",
    "prune_m": "prune.ipynb  method=m",
    "prune_s": "prune.ipynb  method=s",
    "retrain": "retrain.ipynb  m, s",
    "super_masks": "super.ipynb  per task",
    "retrain_super": "retrain.ipynb  super",
    "lottery": "lottery.ipynb",
    "swap": "swap.ipynb",
    RESULTS_NODE: "result files\n(committed)",
    "figure": "notebooks/figures/*.ipynb",
    "book": "jupyter-book build",
}
EXPERIMENT, RESULTS, FIGURES = "#dbe9f6", "#fdf2d0", "#e3f1e1"


def rule_graph(repo: Path, plan: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Rules and edges (upstream, downstream) of ``snakemake --rulegraph`` for ``plan``, aggregates dropped."""
    cmd = [sys.executable, "-m", "snakemake", "--rulegraph", "--nolock", "--config", f"plan={plan}",
           "--", "all", "figures", "book"]
    run = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if run.returncode != 0 or "digraph" not in run.stdout:
        raise RuntimeError(f"`{' '.join(cmd[1:])}` failed (exit {run.returncode}): {run.stderr.strip()[-600:]}")
    labels = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', run.stdout, flags=re.M))
    edges = [(labels[a], labels[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", run.stdout, flags=re.M)]
    rules = [name for name in labels.values() if name not in AGGREGATES]
    edges = [(a, b) for a, b in edges if a not in AGGREGATES and b not in AGGREGATES]
    return rules, edges


def with_results_node(rules: list[str], edges: list[tuple[str, str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """Route the experiment -> figure edges through one node, the result files (what `make book` draws).

    Every experiment rule writes result files; only the last ones of each chain (no experiment after them) get an
    arrow into that node, so that the picture stays readable (the caption says the rest).
    """
    into_figure = [a for a, b in edges if b == "figure"]
    if not into_figure:
        return rules, edges
    kept = [(a, b) for a, b in edges if b != "figure"]
    feeds = {a for a, b in kept if b in into_figure}
    last = [a for a in into_figure if a not in feeds]
    return rules + [RESULTS_NODE], kept + [(a, RESULTS_NODE) for a in last] + [(RESULTS_NODE, "figure")]


def layers(rules: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Columns by longest path from a source; within a column, ordered by the mean row of upstream rules."""
    ups: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        ups[b].append(a)
    depth: dict[str, int] = {}

    def level(rule: str, seen: tuple[str, ...] = ()) -> int:
        if rule not in depth:
            depth[rule] = 1 + max((level(u, seen + (rule,)) for u in ups[rule] if u not in seen), default=-1)
        return depth[rule]

    for rule in rules:
        level(rule)
    columns: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for rule in rules:  # snakemake's order within a column to start with
        columns[depth[rule]].append(rule)
    row: dict[str, float] = {}
    for column in columns:
        for i, rule in enumerate(column):
            row[rule] = i
        column.sort(key=lambda r: (sum(row[u] for u in ups[r]) / len(ups[r]) if ups[r] else row[r], r))
        for i, rule in enumerate(column):
            row[rule] = i - (len(column) - 1) / 2
    return columns


def alt_text(columns: list[list[str]]) -> str:
    def words(names: list[str]) -> str:
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    steps = "; then ".join(words(column) for column in columns)
    return ("Diagram of the workflow's rule graph, read left to right: " + steps + ". Every experiment rule "
            "writes result files under results/<plan>/; the figure notebooks read only those files, and the book "
            "renders the executed notebooks.")


def draw(columns: list[list[str]], edges: list[tuple[str, str]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    box_w, box_h, gap_x, gap_y = 1.8, 0.62, 0.5, 0.3
    rows = max(len(c) for c in columns)
    width = len(columns) * box_w + (len(columns) - 1) * gap_x
    height = rows * box_h + (rows - 1) * gap_y
    fig, ax = plt.subplots(figsize=(width + 0.2, height + 0.2))
    ax.set_xlim(-0.1, width + 0.1)
    ax.set_ylim(-height / 2 - 0.1, height / 2 + 0.1)
    ax.axis("off")
    centre: dict[str, tuple[float, float]] = {}
    for x, column in enumerate(columns):
        for i, rule in enumerate(column):
            cx = x * (box_w + gap_x) + box_w / 2
            cy = ((len(column) - 1) / 2 - i) * (box_h + gap_y)
            centre[rule] = (cx, cy)
            colour = RESULTS if rule == RESULTS_NODE else FIGURES if rule in ("figure", "book") else EXPERIMENT
            h = height if rule == RESULTS_NODE else box_h  # the result files: one bar that every chain ends in
            ax.add_patch(FancyBboxPatch((cx - box_w / 2, cy - h / 2), box_w, h,
                                        boxstyle="round,pad=0,rounding_size=0.08", facecolor=colour,
                                        edgecolor="#555555", linestyle="--" if rule == RESULTS_NODE else "-",
                                        linewidth=1.0))
            ax.text(cx, cy + (0.1 if rule != RESULTS_NODE else 0.2), rule, ha="center", va="center", fontsize=9.5, fontweight="bold")
            if rule in RUNS:
                ax.text(cx, cy - (0.14 if rule != RESULTS_NODE else 0.1), RUNS[rule], ha="center", va="center", fontsize=6.8, color="#333333")
    for a, b in edges:
        (xa, ya), (xb, yb) = centre[a], centre[b]
        skip = b != RESULTS_NODE and round((xb - xa) / (box_w + gap_x)) > 1
        if b == RESULTS_NODE:
            yb = ya  # straight into the bar
        ax.add_patch(FancyArrowPatch((xa + box_w / 2, ya), (xb - box_w / 2, yb), arrowstyle="-|>",
                                     mutation_scale=9, color="#777777", linewidth=0.9, shrinkA=1, shrinkB=1,
                                     connectionstyle=f"arc3,rad={-0.18 if skip else 0}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=160, bbox_inches="tight", facecolor="white")
    plt.close(fig)


class PipelineDiagram(SphinxDirective):
    has_content = False
    option_spec = {"plan": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        repo = Path(self.env.srcdir)
        plan = self.options.get("plan", "smoke")
        try:
            rules, edges = with_results_node(*rule_graph(repo, plan))
            columns = layers(rules, edges)
            out = repo / "_build" / "generated" / "pipeline.png"
            draw(columns, edges, out)
        except Exception as error:  # noqa: BLE001 - any failure is reported as one warning (strict build fails)
            logger.warning(f"pipeline-diagram: cannot draw the workflow's rule graph: {error}",
                           location=self.get_location())
            return []
        self.env.note_dependency(str(repo / "Snakefile"))
        image = nodes.image(uri="/" + out.relative_to(repo).as_posix(), alt=alt_text(columns),
                            classes=["pipeline-diagram"])
        caption = nodes.caption(text=f"The workflow, as Snakemake's rule graph of the {plan} plan (read when this "
                                     "book was built). Blue: experiment stages, one job per task and seed; "
                                     "yellow: the result files they write; green: figures and the book.")
        figure = nodes.figure("", image, caption, classes=["pipeline-figure"])
        figure["align"] = "center"
        return [figure]


def setup(app):
    app.add_directive("pipeline-diagram", PipelineDiagram)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

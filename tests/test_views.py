"""lotterylib.report.views: the tables, sentences and figures of the results pages, on the committed demo and smoke
results (and the authors' data where present), and the figure notebooks' shape: thin cells calling views, code
hidden on the rendered page, a verdict first, a re-run line last.

Torch-free: nothing here imports the model stack.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

from lotterylib.config.plans import Plan
from lotterylib.report import views

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "notebooks" / "figures"
NOTEBOOKS = sorted(p.stem for p in FIGURES.glob("*.ipynb"))
# Pages without a verdict box: the scorecard (its own tally), the explorer and the benchmarks (no claim).
NO_VERDICT = {"scorecard", "explorer", "engine_benchmark"}
# Notebooks other engineers own and are writing (the scorecard; the float16 rounding page): their shape is checked
# where they are written, until they move to views too.
OTHERS = {"scorecard"}
PLANS = ("demo", "smoke")


def _paper_dir() -> Path | None:
    env = os.environ.get("LOTTERY_PAPER_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "paper_reference"
    return path if (path / "masks").is_dir() and (path / "evaluate_masked").is_dir() else None


needs_paper = pytest.mark.skipif(_paper_dir() is None, reason="the authors' data is absent: set LOTTERY_PAPER_DIR")


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


# --- show_table ------------------------------------------------------------------------------------------------


def _table() -> pd.DataFrame:
    return pd.DataFrame({"task": ["MRPC", "RTE", "CoLA"], "heads_kept": [12.0, 30.0, np.nan],
                         "full_metric": [0.81234, 0.6, 0.5], "p_value": [0.0123, 2e-7, np.nan],
                         "ok": [True, False, True], "note": ["a", None, "c"]})


def test_format_table_words_numbers_p_values_and_reasons():
    out = views.format_table(_table(), empty={"heads_kept": "m-pruning keeps weights", "note": "no note"})
    assert list(out.columns) == ["task", "heads kept", "full model score", "p", "ok", "note"]
    assert list(out["heads kept"]) == ["12", "30", "m-pruning keeps weights"]  # integers without .0
    assert list(out["full model score"]) == ["0.812", "0.600", "0.500"]
    assert list(out["p"]) == ["p = 0.012", "p < 0.001", "no run yet"]  # the default reason
    assert list(out["ok"]) == ["yes", "no", "yes"]
    assert list(out["note"]) == ["a", "no note", "c"]
    assert not out.isin(["nan", "None", ""]).any().any()


def test_a_blank_note_says_nothing_and_a_missing_score_says_why():
    table = pd.DataFrame({"task": ["CoLA", "RTE"], "why not": ["", "constant predictors"], "score": [0.3, np.nan]})
    out = views.format_table(table)
    assert list(out["why not"]) == [views.NOTHING, "constant predictors"]  # testable: nothing to say, no run missing
    assert list(out["score"]) == ["0.300", views.NO_RUN]
    # a reason given for the column wins over the rule
    assert list(views.format_table(table, empty={"why not": "testable"})["why not"]) == ["testable",
                                                                                        "constant predictors"]


def test_format_table_drops_a_plain_index_and_keeps_a_named_one():
    named = _table().set_index("task")
    assert next(iter(views.format_table(named).columns)) == "task"
    assert "index" not in views.format_table(_table()).columns
    wide = pd.DataFrame([[1.0, 2.0]], columns=pd.MultiIndex.from_tuples([("heads_kept", "good"), ("heads_kept", "bad")]))
    assert list(views.format_table(wide).columns) == ["heads kept good", "heads kept bad"]


def test_table_html_scrolls_folds_and_says_why_it_is_empty():
    html = views.table_html(_table(), caption="Three tasks")
    assert "overflow-x: auto" in html and "<details>" not in html and "Three tasks" in html
    assert "nan" not in html.lower().replace("dataframe", "")
    long = pd.DataFrame({"task": [f"T{i}" for i in range(20)], "share": np.linspace(0, 1, 20)})
    folded = views.table_html(long, caption="Long", fold_after=15)
    assert folded.startswith("<details><summary>Long (20 rows") and "overflow-x: auto" in folded
    assert "no run" in views.table_html(pd.DataFrame(), none="no run of this plan yet")
    assert views.table_html(pd.DataFrame(), none=None) == ""
    missing = pd.DataFrame()
    missing.attrs["why"] = "the paper data is absent"
    assert "the paper data is absent" in views.table_html(missing)
    assert views.show_table(_table())._repr_html_() == views.table_html(_table())


def test_p_value_text():
    assert views.p_value_text(0.0004) == "p < 0.001"
    assert views.p_value_text(0.012) == "p = 0.012"
    assert views.p_value_text(float("nan")) == ""


# --- one definition of the thirds, thresholds from the plan ----------------------------------------------------


def test_layer_groups_are_thirds_of_the_depth():
    for n in (2, 4, 6, 12, 24):
        groups = list(views.layer_groups(n))
        assert groups == sorted(groups, key=views.LAYER_GROUPS.index)  # early before middle before late
        assert groups == [views.layer_group(i, n) for i in range(n)]
    assert list(views.layer_groups(12)) == ["early"] * 4 + ["middle"] * 4 + ["late"] * 4
    assert list(views.layer_groups(4)) == ["early", "early", "middle", "late"]
    with pytest.raises(ValueError, match="not one of the 6 layers"):
        views.layer_group(6, 6)


def test_no_other_early_middle_late_split_in_the_notebooks():
    for stem in NOTEBOOKS:
        nb = nbformat.read(FIGURES / f"{stem}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert "pd.cut" not in cell.source and '"early"' not in cell.source, stem


def _plan_with_fraction(tmp_path, fraction: float, override: float | None = None) -> Plan:
    raw = yaml.safe_load((REPO / "plans" / "smoke.yaml").read_text())
    raw["name"] = "smokefraction"
    raw["search"]["fraction"] = fraction
    if override is not None:
        raw["task_overrides"] = {"RTE": {"search": {"fraction": override}}}
    path = tmp_path / "smokefraction.yaml"
    path.write_text(yaml.safe_dump(raw))
    return Plan.load(path)


def test_the_90_percent_rule_comes_from_the_plan(tmp_path):
    assert "90 %" in views.search_rule_text("smoke")
    plan = _plan_with_fraction(tmp_path, 0.8)
    assert views.search_fraction(plan) == 0.8
    assert "80 %" in views.search_rule_text(plan) and "90" not in views.search_rule_text(plan)
    mixed = _plan_with_fraction(tmp_path, 0.8, override=0.95)
    assert "RTE: 95 %" in views.search_rule_text(mixed)
    with pytest.raises(ValueError, match="per task"):
        views.search_fraction(mixed)


def test_rerun_command_mirrors_the_snakefiles_figure_rule():
    snakefile = (REPO / "Snakefile").read_text()
    rule = snakefile[snakefile.index("FIGURE_SHELL = "):snakefile.index("rule figures:")]  # its command and rule
    assert "--cwd notebooks/figures -p plan" in rule and "-m papermill" in snakefile
    line = views.rerun_command("fig5_overlap", "demo")
    assert "make book PLAN=demo" in line
    assert "-m papermill" in line and "-k python3" in line
    assert "notebooks/figures/fig5_overlap.ipynb out.ipynb --cwd notebooks/figures -p plan demo" in line


# --- the page elements on committed results --------------------------------------------------------------------


@pytest.mark.parametrize("plan", PLANS)
def test_fig1_tables(plan):
    kept = views.fig1_kept_table(plan)
    assert len(kept) and (kept["heads kept (mean)"] <= kept["heads in all"]).all()
    assert (kept["super-survivor heads"] <= kept["heads kept (mean)"] + 1e-9).all()
    shares = views.fig1_layer_shares(plan)
    assert shares["share"].between(0, 1).all()
    n_layers = shares["layer"].max() + 1
    assert all(views.layer_group(r.layer, n_layers) == r.depth for r in shares.itertuples())
    depth = views.fig1_depth_table(plan)
    assert list(depth["component"]) == ["heads", "MLP"]
    assert set(depth.columns) - {"component"} == set(views.layer_groups(n_layers))
    assert "third" in views.fig1_depth_text(plan)
    m = views.fig1_m_shares(plan)
    assert m.empty or m["share"].between(0, 1).all()


@pytest.mark.parametrize("plan", PLANS)
def test_fig2_and_table2_tables(plan):
    cells = views.fig2_cells_table(plan)
    assert len(cells)
    sizes = views.fig2_sizes_table(plan)
    assert set(sizes.columns) <= {"task", "m", "s"} or len(sizes.columns) >= 2
    assert views.fig2_bars_text(plan).endswith(".")
    assert isinstance(views.table2_ours_table(plan), pd.DataFrame)
    assert "majority" in views.table2_text(plan) or "No results" in views.table2_text(plan)


@needs_paper
def test_super_survivor_caption_gives_the_rules_verdicts_of_the_table():
    """The caption under the super-survivor bars says what the one comparison rule finds (no second 'on par'),
    on the tasks testable on both sides, task by task as the comparison table does."""
    from lotterylib.report.views.subnetworks import _both_sides

    text = views.super_bars_text("demo")
    assert text.startswith("Re-fine-tuned, by the comparison rule on the tasks testable on both sides (")
    assert "of good's mean" not in text
    comparisons, testability = _both_sides("demo")
    tasks = text[text.index("(") + 1:text.index(")")].split(", ")
    assert tasks and all(testability[testability["task"] == t]["testable"].all() for t in tasks)
    ours = comparisons[(comparisons["side"] == "ours") & (comparisons["claim"] == "super")]
    for other in ("random", "bad"):
        part = text.split(f"{other} against the super-survivors: ")[1].split(";")[0]
        for task in tasks:
            verdict = ours[(ours["task"] == task) & (ours["other"] == f"super {other}")]["verdict"].item()
            head = "on par on [0-9]+ of [0-9]+ tasks" if verdict == "on par" else f"{verdict} on [0-9]+"
            group = re.search(head + r" \(([^)]*)\)", part)
            assert group and task in group.group(1), (other, task, verdict, part)
    assert views.super_bars_text("smoke").startswith(("Re-fine-tuned", "No super-survivor"))


@pytest.mark.parametrize("plan", PLANS)
def test_traces_table_has_one_row_per_search(plan):
    from lotterylib.read import collect

    table = views.traces_table(plan)
    assert len(table) == len(collect.search_summaries(plan))
    assert list(table.columns) == [c for c in views.TRACE_COLUMNS if c in table.columns]
    shown = views.format_table(table, empty=views.TRACES_EMPTY)
    assert not shown.isin(["nan", "None", "", "no run yet"]).any().any()


@pytest.mark.parametrize("plan", PLANS)
def test_fig3_first_step_table(plan):
    first = views.fig3_first_step_table(plan)
    assert first.empty or (first["min"] <= first["max"]).all()


@pytest.mark.parametrize("plan", PLANS)
def test_fig5_pairs(plan):
    pairs = views.fig5_pairs_table(plan, n_perm=20)
    k = len(views.fig5_overlap(plan, n_perm=20)["tasks"])
    assert len(pairs) == k * (k - 1) // 2
    assert (pairs["chance mean"] <= pairs["chance 95th percentile"] + 1e-9).all()


@pytest.mark.parametrize("plan", PLANS)
def test_stability_tables(plan):
    table = views.stability_table(plan)
    if "Fleiss kappa" in table:
        assert table["Fleiss kappa"].dropna().between(-1, 1).all()
        assert table["p (heads+MLPs)"].dropna().between(0, 1).all()
    pairs = views.stability_pairs_table(plan)
    assert pairs.empty or next(iter(pairs.columns)) == "task"


def test_demo_pages_draw_their_figures():
    import matplotlib.figure

    assert all(isinstance(f, matplotlib.figure.Figure) for f in views.fig1_heatmaps("demo"))
    assert isinstance(views.fig1_layer_figure("demo"), matplotlib.figure.Figure)
    assert isinstance(views.fig3_histogram("demo"), matplotlib.figure.Figure)
    assert isinstance(views.masks_by_seed_figure("demo"), matplotlib.figure.Figure)


def test_figure_caption_is_one_line():
    md = views.figure_caption(2, "Good and random", "**4 of 15** pairs\nabove chance").data
    assert md.startswith("**Figure 2. Good and random.**") and "\n" not in md and md.count("**") == 2


def test_engine_benchmark_tables():
    table = views.engine_table()
    assert views.engine_table_transposed().shape[0] == max(0, table.shape[1] - 1)
    if len(table):
        assert "goal" in views.engine_text()


def test_the_cpu_bf16_benchmark_text_reads_each_result(tmp_path):
    assert views.cpu_bf16_text(tmp_path) == "*No bf16 kernel benchmark results committed.*"
    import json

    record = {"metric": 0.5162, "metrics": {"acc": 0.5162}, "seconds": 1675.0, "git_commit": "c5651f1df4",
              "bf16_matmul": "torch"}
    (tmp_path / "cpu_bf16_cpu.json").write_text(json.dumps({
        "model": "all-MiniLM-L6-v2", "task": "MRPC", "date": "2026-12-05T07:00:00+00:00",
        "machine": {"torch_threads": 2}, "cpu_has_bf16_kernels": False,
        "speed": {"n_examples": 96, "repeats": 3, "speedup_vs_torch_kernels": 11.6,
                  "examples_per_s": {"bf16, float32 products": 14.5, "bf16, torch's kernels": 1.25, "fp32": 15.0}},
        "remade": [{"task": "RTE", "seed": 1337, "method": "s", "subnetwork": "bad", "committed": record,
                    "again": {**record, "seconds": 381.0, "bf16_matmul": "float32 products"},
                    "n_dev": 277, "predictions_equal": 277, "max_abs_training_loss_difference": 2.2e-4,
                    "n_loss_points": 24},
                   {"task": "STS-B", "seed": 42, "method": "s", "subnetwork": "random",
                    "committed": {**record, "metric": 0.8302, "metrics": {"pearson": 0.8302, "spearmanr": 0.83}},
                    "again": {**record, "metric": 0.8297, "metrics": {"pearson": 0.8297, "spearmanr": 0.83}},
                    "n_dev": 1500, "predictions_equal": 1497, "predictions": "scores (equal: within 0.01)",
                    "max_abs_prediction_difference": 0.0213, "max_abs_training_loss_difference": 1e-3,
                    "n_loss_points": 54}]}))
    text = views.cpu_bf16_text(tmp_path)
    assert "**11.6x**" in text and "bfloat16 units: no" in text
    assert "RTE seed 1337 s-bad" in text and "dev acc 0.5162 vs 0.5162" in text and "277 of 277" in text
    assert "min against" not in text  # runs made under different loads: their times say nothing of the kernels
    assert "dev pearson 0.8297 vs 0.8302" in text and "1497 of 1500 dev scores within 0.01 (largest difference 0.021)" in text


@needs_paper
def test_paper_texts_state_the_published_counts():
    root = _paper_dir()
    assert "**9 of 9** tasks" in views.paper_kappa_text(root)
    assert "12 of 12" in views.paper_qnli_check_text(root).replace("**", "")
    assert "17 of 18" in views.paper_table2_text(root).replace("**", "")
    pairs = views.paper_overlap_pairs_table(root, n_perm=50)
    assert len(pairs) == 36
    assert f"of {len(pairs)}" in views.paper_overlap_takeaway("heads", root, n_perm=50)


# --- the notebooks ---------------------------------------------------------------------------------------------

# Pandas computation and table-building loops belong in views, not in a notebook cell.
FORBIDDEN = (r"\.groupby\(", r"\.merge\(", r"\.pivot", r"\.apply\(", r"\.agg\(", r"\.unstack\(", r"\.concat\(",
             r"pd\.DataFrame\(", r"pd\.cut\(", r"\.loc\[", r"\.iloc\[", r"\.round\(", r"\.style\b", r"^\s*for ",
             r"\bnp\.", r"json\.loads", r"\.drop_duplicates\(", r"\.set_index\(")


def _code(stem):
    nb = nbformat.read(FIGURES / f"{stem}.ipynb", as_version=4)
    return nb, [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("stem", [s for s in NOTEBOOKS if s not in OTHERS])
def test_notebook_cells_are_thin(stem):
    _, code = _code(stem)
    for cell in code:
        if stem == "explorer" and "if live:" in cell.source:
            continue  # the live explorer's cell starts a widget, it computes no table
        for pattern in FORBIDDEN:
            assert not re.search(pattern, cell.source, re.MULTILINE), f"{stem}: {pattern!r} in a cell:\n{cell.source}"
        if stem != "explorer":
            assert "import torch" not in cell.source and "lotterylib.run" not in cell.source, stem


@pytest.mark.parametrize("stem", [s for s in NOTEBOOKS if s not in OTHERS])
def test_notebook_code_is_hidden_on_the_page(stem):
    nb, code = _code(stem)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "remove-cell" in params[0].metadata["tags"], stem
    for cell in code:
        tags = set(cell.metadata.get("tags", []))
        assert tags & {"remove-input", "remove-cell"}, f"{stem}: a code cell shows its code:\n{cell.source}"
        assert not cell.outputs and cell.execution_count is None, f"{stem}: committed with outputs"
    # papermill's injected-parameters cell carries only its own tag: the file-level myst-nb setting hides its code
    assert nb.metadata["mystnb"]["remove_code_source"] is True, stem


@pytest.mark.parametrize("stem", [s for s in NOTEBOOKS if s not in NO_VERDICT | OTHERS])
def test_results_pages_open_with_the_verdict_and_end_with_the_rerun_line(stem):
    _, code = _code(stem)
    i = next(i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
    verdict = code[i + 1]
    assert verdict.source == f'display(Markdown(scorecard.verdict_markdown(plan, "{stem}")))'
    assert verdict.metadata["mystnb"]["markdown_format"] == "myst"  # the admonition renders as one
    rerun = f'views.rerun_command("{stem}", plan)' if stem != "why_small_model" else "views.why_small_rerun_text(plan)"
    assert any(rerun in c.source for c in code), stem


@pytest.mark.parametrize("stem", [s for s in NOTEBOOKS if s not in OTHERS | {"explorer"}])
def test_every_figure_has_a_caption_under_it(stem):
    _, code = _code(stem)
    for i, cell in enumerate(code):
        if cell.source.startswith("fig = "):
            assert code[i + 1].source.startswith("views.figure_caption("), f"{stem}: no caption under {cell.source}"


def test_papermill_keeps_the_injected_cell_untagged_for_removal():
    """Why the notebooks carry the file-level setting: papermill tags its cell 'injected-parameters' only."""
    pytest.importorskip("papermill")
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(FIGURES / "fig5_overlap.ipynb"))
    out = parameterize_notebook(nb, {"plan": "demo"}, kernel_name="python3")
    injected = next(c for c in out.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert injected.metadata["tags"] == ["injected-parameters"]
    assert out.metadata["mystnb"]["remove_code_source"] is True


def test_hide_injected_parameters_tags_papermills_cell_for_removal(tmp_path):
    pytest.importorskip("papermill")
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(load_notebook_node(str(FIGURES / "fig5_overlap.ipynb")), {"plan": "demo"},
                               kernel_name="python3")
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    assert views.hide_injected_parameters(path) is True
    cells = nbformat.read(path, as_version=4).cells
    injected = next(c for c in cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "remove-cell" in injected.metadata["tags"]  # myst-nb drops remove-cell cells before rendering
    assert views.hide_injected_parameters(path) is False  # once is enough
    assert [c.source for c in cells] == [c.source for c in nb.cells]


def test_views_never_load_torch():
    """The read/report side is torch-free: the views and what they read, in a fresh interpreter."""
    import subprocess
    import sys

    code = ("import sys, matplotlib; matplotlib.use('Agg')\n"
            "from lotterylib.report import views\n"
            "views.show_table(views.fig1_kept_table('smoke')); views.traces_table('smoke'); views.fig5_pairs_table('smoke', 20)\n"
            "views.fig1_heatmaps('smoke'); views.stability_view('smoke')\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:5]\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=300)

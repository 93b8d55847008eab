"""What the results pages show: one function per page element, so that a figure notebook is a parameters cell,
prose and one call per cell.

Every table, statistic and sentence of a results page (``notebooks/figures/*.ipynb``) is computed here and tested
(``tests/test_views.py``), never in a notebook cell. Three kinds of functions:

- ``<page>_<element>_table(...)`` return a :class:`pandas.DataFrame` (the numbers, unformatted); the notebook shows
  it with :func:`show_table` (formatting, readable headers, folding);
- ``<page>_<element>_text(...)`` return Markdown (a sentence computed from the data);
- ``<page>_<element>_figure(...)`` draw one figure with :mod:`lotterylib.report.plots` (or its siblings) and return
  it, or return ``None`` after showing why there is nothing to draw.

Thresholds come from the plan (``plan.search.fraction``, the 90 % rule) or from the module that owns them; the
early / middle / late split of the layers is :func:`layer_group` (the scorecard's C7 rule uses the same one).
Nothing here imports torch.

The rendered page hides the plumbing: every code cell of a figure notebook is tagged ``remove-input`` (its
parameters cell ``remove-cell``), the notebooks set myst-nb's file-level ``remove_code_source``, and
:func:`hide_injected_parameters` tags papermill's injected cell of an executed copy ``remove-cell``
(``python -m lotterylib.report.views NOTEBOOK...``).

One module per page or family of pages, all names re-exported here, so that a notebook reads ``views.<name>``:
``_common`` (the plan cache, tables, the re-run command), ``survivors``, ``subnetworks`` (also Table 2),
``search`` (importance and traces), ``stability`` (also the overlap of tasks), ``patterns``, ``why_small``,
``paper`` (the authors' published data) and ``engine``.
"""

from lotterylib.report.views._common import (  # noqa: F401
    ASSOCIATION_EMPTY,
    BY_SEED_EMPTY,
    HEADERS,
    LAYER_GROUPS,
    NO_RUN,
    NOTHING,
    OURS_OVERLAP_EMPTY,
    OURS_STABILITY_EMPTY,
    PAIRS_EMPTY,
    PAPERMILL,
    Q_EMPTY,
    clear_cache,
    figure_caption,
    format_table,
    header,
    hide_injected_parameters,
    layer_group,
    layer_groups,
    p_value_text,
    rerun_command,
    search_fraction,
    search_rule_text,
    show_table,
    table_html,
)
from lotterylib.report.views.engine import (  # noqa: F401
    BENCH_RESULTS,
    cpu_bf16_text,
    engine_figure,
    engine_ratios,
    engine_table,
    engine_table_transposed,
    engine_takeaway,
    engine_text,
    explorer_bench_text,
    grid_calls_table,
    grid_calls_text,
    grid_stages_table,
    speedups_text,
)
from lotterylib.report.views.paper import (  # noqa: F401
    Q_P_COLUMNS,
    Q_PAIR_COLUMNS,
    ours_cells_table,
    ours_comparisons_table,
    ours_overlap_table,
    ours_stability_table,
    ours_survivors_figure,
    paper_anchors_table,
    paper_anchors_text,
    paper_fig2_figure,
    paper_fig2_table,
    paper_fig2_takeaway,
    paper_head_counts_table,
    paper_heatmaps,
    paper_jaccard_takeaway,
    paper_kappa_figure,
    paper_kappa_table,
    paper_kappa_takeaway,
    paper_kappa_text,
    paper_kept_table,
    paper_kept_text,
    paper_outliers_text,
    paper_overlap,
    paper_overlap_chance_text,
    paper_overlap_diag_text,
    paper_overlap_example_text,
    paper_overlap_figure,
    paper_overlap_pairs_table,
    paper_overlap_takeaway,
    paper_pair_details_table,
    paper_panel_titles,
    paper_q_table,
    paper_q_text,
    paper_qnli_check_table,
    paper_qnli_check_text,
    paper_qnli_figure,
    paper_qnli_takeaway,
    paper_random_check_table,
    paper_random_check_text,
    paper_reference_table,
    paper_series_table,
    paper_similar_text,
    paper_size_table,
    paper_size_text,
    paper_stability,
    paper_super_table,
    paper_super_text,
    paper_survival_text,
    paper_table2_averages_table,
    paper_table2_check_table,
    paper_table2_text,
    paper_toy_text,
    paper_wnli_table,
    paper_wnli_text,
)
from lotterylib.report.views.patterns import (  # noqa: F401
    association_by_seed_table,
    association_table,
    association_text,
    gallery,
    gallery_counts_table,
    gallery_figure,
    gallery_takeaway,
    gallery_text,
    pattern_rules_table,
    pattern_thresholds_table,
    super_types_none,
    type_shares,
    type_shares_figure,
    type_shares_table,
)
from lotterylib.report.views.search import (  # noqa: F401
    TRACE_COLUMNS,
    TRACES_EMPTY,
    fig3_first_step_table,
    fig3_histogram,
    no_subnetwork_text,
    trace_figures,
    traces_table,
    traces_text,
)
from lotterylib.report.views.stability import (  # noqa: F401
    fig5_figure,
    fig5_overlap,
    fig5_pairs_table,
    kappa_range,
    masks_by_seed_figure,
    masks_by_seed_text,
    one_seed_text,
    stability_kappa_figure,
    stability_pairs_table,
    stability_table,
    stability_view,
)
from lotterylib.report.views.subnetworks import (  # noqa: F401
    comparisons_table,
    fig2_bars,
    fig2_bars_text,
    fig2_cells_table,
    fig2_sizes_table,
    no_subnetwork_table,
    super_bars,
    super_bars_text,
    super_scores_table,
    super_sizes_table,
    table2_figure,
    table2_ours_table,
    table2_paper_table,
    table2_text,
    testability_table,
)
from lotterylib.report.views.survivors import (  # noqa: F401
    fig1_depth_table,
    fig1_depth_text,
    fig1_heatmap_text,
    fig1_heatmaps,
    fig1_kept_table,
    fig1_layer_figure,
    fig1_layer_shares,
    fig1_m_figure,
    fig1_m_shares,
    fig1_m_text,
)
from lotterylib.report.views.why_small import (  # noqa: F401
    evidence,
    why_small_rerun_text,
    why_small_takeaway,
)

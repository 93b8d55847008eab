"""One number per statistic: each statistic function returns what the scorecard row uses, the verdict boxes
and the answer are built from the same findings, and the executed book pages (if built) print the functions'
sentences."""

import html
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from lotterylib.config.plans import Plan
from lotterylib.read import collect
from lotterylib.report import scorecard as sc
from lotterylib.report import statistics as st

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", params=["demo", "smoke"])
def plan(request):
    if not (ROOT / "results" / request.param).exists():
        pytest.skip(f"no committed results of the {request.param} plan")
    return request.param


def _ok(finding, key):
    t = finding.table
    ok = (t.drop_duplicates(key)["ok"] if key else t["ok"]).dropna().astype(bool)
    return int(ok.sum()), len(ok)


def test_every_statistic_equals_the_scorecard_row(plan):
    card = sc.cached_build(plan)
    rows = {r.claim: r for r in sc.claim_rows(card)}
    stats = st.all_statistics(plan)
    ours = {c: card.findings[c]["ours"] for c in sc.CLAIMS}
    for name, s in stats.items():
        assert s.text and s.unit and "unit:" in s.text, name  # every sentence states its unit and tasks
        if s.side == "ours":
            assert tuple(card.tasks) == s.tasks or s.claim in ("C8", "C9", "C10")
    if len(ours["C5"].table) and "ok" in ours["C5"].table:
        assert (stats["c5_compression"].count, stats["c5_compression"].total) == _ok(ours["C5"], "task")
    if ours["C9"].extra:
        k, n = _ok(ours["C9"], "pair")
        assert (stats["c9_overlap"].count, stats["c9_overlap"].total) == (k, n)
        assert f"on {k} of {n} task pairs" in rows["C9"].ours
        assert stats["c9_overlap"].tasks == tuple(card.tasks)
    if "C9" in card.paper_all and card.paper_all["C9"].extra:
        k, n = _ok(card.paper_all["C9"], "pair")
        assert (stats["paper_c9_overlap"].count, stats["paper_c9_overlap"].total) == (k, n)
    if ours["C6"].extra:
        e = ours["C6"].extra
        assert stats["c6_low_importance"].value == e["pooled head share"]
        assert f"{e['pooled head share']:.0%} of the head scores" in rows["C6"].ours
        assert f"{e['pooled head share']:.0%} of the live heads' importance scores" in stats["c6_low_importance"].text
    if ours["C8"].extra:
        e = ours["C8"].extra
        assert f"{e['kappa min']:.2f} to {e['kappa max']:.2f}" in rows["C8"].ours
        assert f"{e['kappa min']:.2f} to {e['kappa max']:.2f}" in stats["c8_kappa"].text
        assert stats["c8_cochran"].count == int((ours["C8"].table["p"] < sc.ALPHA).sum())
        assert "heads (MLPs not counted)" in stats["c8_cochran"].text
    for claim in sc.CLAIMS:  # the generic count is the row's evidence
        s = st.claim_count(plan, claim)
        assert rows[claim].ours in s.text


def test_c1_threshold_comes_from_the_plan(plan):
    from lotterylib.config.plans import Plan

    p = Plan.load(plan)
    s = st.c1_pruned_share(plan)
    fractions = {p.settings(t).search.fraction for t in s.tasks}
    for f in fractions:
        assert f"{f:.0%}" in s.text
    table = sc.cached_build(plan).findings["C1"]["ours"].table.drop_duplicates("task").set_index("task")
    shares = table["pruned good / full"].reindex(list(s.tasks))
    finite = shares[np.isfinite(shares)]
    assert s.total == len(finite)
    assert s.count == sum(v >= p.settings(t).search.fraction - 1e-12 for t, v in finite.items())


def test_verdict_boxes_link_each_claim_to_its_scorecard_row(plan):
    for page, claims in sc.PAGES.items():
        box = sc.verdict_markdown(plan, page)
        assert box.startswith("````{admonition} Verdict") and "\n:class: verdict\n" in box
        assert box.rstrip().endswith("````")
        for claim in claims:
            href = f"#{sc.anchor(claim)}" if page == "scorecard" else f"scorecard.html#{sc.anchor(claim)}"
            assert f'href="{href}"' in box, (page, claim)
    rows = sc.claim_rows(sc.cached_build(plan))
    assert sc.tally_text(rows) in sc.verdict_markdown(plan, "scorecard")
    with pytest.raises(ValueError, match="unknown page 'fig9'"):
        sc.verdict_markdown(plan, "fig9")


def test_scorecard_rows_carry_anchors_and_link_back(plan):
    html = sc.card_html(sc.cached_build(plan))
    for claim in sc.CLAIMS:
        assert f'<tr id="claim-{claim.lower()}">' in html
        assert f'href="{sc.CLAIM_PAGE[claim]}.html"' in html
    assert "nan" not in re.sub(r"<[^>]+>", "", html).split()


def test_answer_is_three_sentences_and_the_tally(plan, tmp_path):
    rows = sc.claim_rows(sc.cached_build(plan))
    text = sc.answer_markdown(plan)
    assert sc.tally_text(rows) in text and "{doc}`the claims scorecard <figures/scorecard>`" in text
    t = sc.tally(rows)
    for claim in t[sc.HOLDS]:
        assert f"{claim} (" in text.split("These do not")[0]
    path = sc.write_answer(plan, tmp_path / "answer.md")
    assert path.read_text() == text
    assert sc.repo_root() == ROOT
    progress = collect.grid_progress(plan)  # an incomplete grid is said where the reader meets the verdicts
    partial = "The plan's grid is not complete yet" in text
    assert partial == (not collect.grid_complete(progress))
    assert not partial or f"rest on {progress['done']} of its {progress['total']} result files" in text


def test_the_answer_says_when_the_grid_is_incomplete(tmp_path, monkeypatch):
    import shutil

    if not (ROOT / "results" / "smoke").exists():
        pytest.skip("no committed results of the smoke plan")
    shutil.copytree(ROOT / "results" / "smoke", tmp_path / "smoke")
    monkeypatch.setenv("LOTTERY_RESULTS", str(tmp_path))
    plan = Plan.load("smoke")
    full = collect.grid_progress(plan)
    assert collect.grid_complete(full) and "not complete" not in sc.answer_markdown(plan, n_perm=50)
    (tmp_path / "smoke" / "RTE" / "seed_42" / "retrain_s_random" / "metrics.json").unlink()
    shutil.rmtree(tmp_path / "smoke" / "MRPC" / "seed_1337" / "retrain_super_bad")
    text = sc.answer_markdown(plan, n_perm=50)
    assert (f"The plan's grid is not complete yet: these verdicts rest on {full['total'] - 1} of its "
            f"{full['total']} result files and {full['super_total'] - 1} of its {full['super_total']} "
            f"super-survivor re-fine-tunes") in text
    assert "{doc}`Re-run it yourself <rerun>`" in text


def test_verdicts_are_data_compared_by_identity(plan):
    for row in sc.claim_rows(sc.cached_build(plan)):
        assert isinstance(row.verdict, sc.Verdict) and row.verdict in tuple(sc.Verdict)
        assert any(row.verdict is v for v in sc.Verdict)


# --- the executed book ------------------------------------------------------------------------------------------


#: page -> the statistic functions whose sentence the page may print.
PAGE_STATISTICS = {
    "fig2_subnetworks": ("c1_pruned_share", "c5_compression"), "fig3_importance": ("c6_low_importance",),
    "stability": ("c8_kappa", "c8_cochran"), "fig5_overlap": ("c9_overlap",),
    "paper_overlap": ("paper_c9_overlap",), "attention_patterns": ("c10_association",),
    "scorecard": ("c1_pruned_share", "c5_compression", "c6_low_importance", "c8_kappa", "c8_cochran",
                  "c9_overlap", "paper_c9_overlap", "c10_association")}
#: A phrase that marks each statistic's sentence; a page printing it must print the function's exact sentence.
MARKERS = {"c1_pruned_share": "of the full model's score (the plan's search.fraction)",
           "c5_compression": "m-pruning keeps a smaller share of the m-prunable encoder weights",
           "c6_low_importance": "of the live heads' importance scores are below",
           "c8_kappa": "Fleiss' kappa of the heads over seeds ranges from",
           "c8_cochran": "Cochran's Q over the seeds rejects equal keep rates",
           "c9_overlap": "share more heads than the 95th percentile of chance",
           "paper_c9_overlap": "share more heads than the 95th percentile of chance",
           "c10_association": "[unit: heads (seed x head) of the fine-tuned models"}


@pytest.fixture(scope="module")
def built_pages(request) -> list[Path]:
    """The executed figure notebooks of a built book: those beside $LOTTERY_BOOK_HTML (``<root>/_build/html`` ->
    ``<root>/book/figures``), else those of the smoke book built in a clone of the working tree (conftest)."""
    given = os.environ.get("LOTTERY_BOOK_HTML")
    root = Path(given).resolve().parents[1] if given else request.getfixturevalue("smoke_book")
    pages = sorted((root / "book" / "figures").glob("*.ipynb"))
    assert pages, f"no executed pages in {root / 'book' / 'figures'}"
    return pages


def _markdown_outputs(nb: dict) -> list[str]:
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            for kind in ("text/markdown", "text/html"):
                if kind in data:
                    text = "".join(data[kind]) if isinstance(data[kind], list) else data[kind]
                    # A table's cells are HTML-escaped ("p &lt; 0.001"); the reader sees the sentence itself.
                    out.append(html.unescape(text) if kind == "text/html" else text)
    return out


@pytest.mark.book
def test_executed_pages_agree_with_the_statistic_functions(built_pages):
    checked = 0
    for path in built_pages:
        nb = json.loads(path.read_text())
        plan = nb.get("metadata", {}).get("papermill", {}).get("parameters", {}).get("plan")
        if plan is None or not (ROOT / "results" / plan).exists():
            continue
        outputs = _markdown_outputs(nb)
        n_perm = nb["metadata"]["papermill"]["parameters"].get("n_perm", 1000)
        for name in PAGE_STATISTICS.get(path.stem, ()):
            marker = MARKERS[name]
            shown = [o for o in outputs if marker in o]
            if not shown:
                continue
            expected = getattr(st, name)(plan, n_perm).text
            if name == "c9_overlap" and path.stem == "paper_overlap":
                continue
            if name in ("c9_overlap", "paper_c9_overlap") and not any(expected in o for o in shown):
                other = "paper_c9_overlap" if name == "c9_overlap" else "c9_overlap"
                expected_other = getattr(st, other)(plan, n_perm).text
                assert any(expected_other in o for o in shown), (path.name, name)
            else:
                assert any(expected in o for o in shown), (path.name, name, expected)
            checked += 1
        boxes = [o for o in outputs if "{admonition} Verdict" in o and ":class: verdict" in o]
        if path.stem in sc.PAGES and boxes:
            assert sc.verdict_markdown(plan, path.stem, n_perm) in boxes, path.name
            checked += 1
    if not checked:
        pytest.skip("no built page prints a statistic sentence or a verdict box yet")

"""The built book, opened page by page in a real (headless) Chromium, with no network.

Uses the HTML in ``$LOTTERY_BOOK_HTML`` if set (a built ``_build/html`` folder), else builds the smoke book
with ``make book PLAN=smoke`` in a clone of the working tree (this checkout's own ``_build/`` stays as it is).
Chromium is the Debian package (``apt-get install chromium``; ``.ci/run`` installs it); without it these tests
skip locally and fail under CI. Screenshots go to ``_build/screenshots/``.

    LOTTERY_BOOK_HTML=_build/html pytest -m book tests/test_book_browser.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from browser import (chromium_path, content_problems, move_first_slider, new_page, open_browser, page_problems,
                     serve, verdict_problem, visible_widget_content, widget_rendered)

pytestmark = pytest.mark.book

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "_build" / "screenshots"
RESULTS = "book/figures/"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Hosts that serve JavaScript, fonts or styles: no page of the offline book may name one.
CDN_HOSTS = ("cdn.jsdelivr.net", "cdnjs.cloudflare.com", "unpkg.com", "fonts.googleapis.com",
             "fonts.gstatic.com", "code.jquery.com", "ajax.googleapis.com", "cdn.plot.ly")


def toc_docs() -> list[str]:
    """Every document of _toc.yml (root first, then parts, chapters and sections in order)."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    docs = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                docs.append(re.sub(r"\.(md|ipynb)$", "", entry["file"]))
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return docs


DOCS = toc_docs()
FIRST_RESULTS = next(doc for doc in DOCS if doc.startswith(RESULTS))

# The parts of _toc.yml whose chapters are results pages: each opens with a verdict box, except these.
RESULTS_PARTS = ("Results", "The paper's own data")
NO_VERDICT = {
    "book/figures/explorer": "an interactive tool, not a claim",
    "book/figures/engine_benchmark": "speed of the engine, not a claim of the paper",
}


def verdict_docs() -> list[str]:
    """The chapters of the results parts of _toc.yml, less the pages named in NO_VERDICT."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    docs = [re.sub(r"\.(md|ipynb)$", "", chapter["file"])
            for part in toc.get("parts", []) if part.get("caption") in RESULTS_PARTS
            for chapter in part.get("chapters", []) if "file" in chapter]
    return [doc for doc in docs if doc not in NO_VERDICT]


VERDICT_DOCS = verdict_docs()


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium to drive; skip (locally) or fail (under CI) when it or Playwright is missing."""
    executable = chromium_path()
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = "the Python package playwright (pip install -e '.[test]')"
    else:
        missing = None if executable else "Chromium (apt-get install chromium; .ci/run does this)"
    if missing:
        if _under_ci():
            pytest.fail(f"CI is set but {missing} is not installed: the browser check cannot run")
        pytest.skip(f"browser check needs {missing}")
    return executable


@pytest.fixture(scope="module")
def book_html(request) -> Path:
    """A built book: $LOTTERY_BOOK_HTML, or the smoke book built in a clone of the working tree (conftest)."""
    given = os.environ.get("LOTTERY_BOOK_HTML")
    if given:
        html = Path(given).resolve()
        assert (html / "index.html").is_file(), f"LOTTERY_BOOK_HTML={given} holds no built book (no index.html)"
        return html
    return request.getfixturevalue("smoke_book") / "_build" / "html"


@pytest.fixture(scope="module")
def site(book_html) -> str:
    with serve(book_html) as base:
        yield base


@pytest.fixture(scope="module")
def browser(chromium):
    with open_browser(chromium) as browser:
        yield browser


def _screenshot(page, name: str, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


_FIGURES_JS = """
() => Array.from(document.querySelectorAll('article img'))
  .filter(img => img.naturalWidth > 0 && img.getBoundingClientRect().width > 0).length
"""


def test_built_pages_load_nothing_from_a_cdn(book_html):
    """No page names a CDN, and every script, style sheet and image a page loads is local."""
    offenders = []
    for path in sorted(book_html.rglob("*.html")):
        html = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(book_html)
        offenders += [f"{rel}: names {host}" for host in CDN_HOSTS if host in html]
        offenders += [f"{rel}: loads {url}" for url in
                      re.findall(r"<(?:script|img|iframe)\b[^>]*\bsrc=\"((?:https?:)?//[^\"]+)\"", html)]
        for tag in re.findall(r"<link\b[^>]*>", html):  # style sheets, preloads, icons (not plain links)
            href = re.search(r"\bhref=\"((?:https?:)?//[^\"]+)\"", tag)
            if href and not re.search(r"\brel=\"(?:canonical|alternate)\"", tag):
                offenders.append(f"{rel}: loads {href.group(1)}")
        if WIDGET_VIEW in html:
            for script in ("vendor/requirejs/require.js", "vendor/html-manager/embed-amd.js"):
                if script not in html:
                    offenders.append(f"{rel}: holds widgets but does not load the vendored {script}")
    assert not offenders, "the book would need a network:\n" + "\n".join(offenders)


@pytest.mark.parametrize("doc", DOCS)
def test_page_loads_cleanly(chromium, browser, site, book_html, doc):
    """HTTP 200, no console error, no failed or off-site request, no broken image; results pages show figures."""
    page = new_page(browser, site)
    try:
        response = page.goto(site + doc + ".html", wait_until="load")
        assert response is not None and response.status == 200, f"{doc}: HTTP {response and response.status}"
        has_widget = WIDGET_VIEW in (book_html / f"{doc}.html").read_text(encoding="utf-8")
        rendered = has_widget and widget_rendered(page)  # let the widget manager finish before judging
        problems = page_problems(page)
        if doc.startswith(RESULTS) and page.evaluate(_FIGURES_JS) == 0 and not rendered:
            problems.append("a results page with neither a visible figure image nor a rendered widget")
        if doc == DOCS[0]:
            _screenshot(page, "intro")
        elif doc == FIRST_RESULTS:
            _screenshot(page, "results_" + doc.rsplit("/", 1)[-1])
        assert not problems, f"{doc}:\n" + "\n".join(problems)
    finally:
        page.context.close()


def test_results_parts_have_verdict_pages():
    """The list the verdict check walks is not empty, and its exceptions are pages of the book."""
    assert len(VERDICT_DOCS) >= 10, f"only {len(VERDICT_DOCS)} results pages found in _toc.yml: {VERDICT_DOCS}"
    assert set(NO_VERDICT) <= set(DOCS), f"NO_VERDICT names pages not in _toc.yml: {set(NO_VERDICT) - set(DOCS)}"


@pytest.mark.parametrize("doc", DOCS)
def test_page_reads_well(chromium, browser, site, doc):
    """What a reader sees: no visible nan, no parameter cell, nothing wider than the content column, alt text on
    every image, and (results pages) a verdict box that opens the page."""
    page = new_page(browser, site)
    try:
        page.goto(site + doc + ".html", wait_until="load")
        page.wait_for_load_state("networkidle")
        problems = content_problems(page)
        if doc in VERDICT_DOCS:
            missing = verdict_problem(page)
            if missing:
                problems.append(f"results page: {missing}")
        assert not problems, f"{doc}:\n" + "\n".join(problems)
    finally:
        page.context.close()


def test_widgets_render_offline_and_respond(chromium, browser, site, book_html):
    """Every page holding an ipywidget shows it (not blank), and a slider changes what the widgets show."""
    widget_docs = [doc for doc in DOCS if WIDGET_VIEW in (book_html / f"{doc}.html").read_text(encoding="utf-8")]
    assert widget_docs, ("no page of the book holds an ipywidget: the results notebooks should offer at least "
                         "one (e.g. a slider jslink-ed to a widgets.Stack of precomputed views)")
    failures = []
    for n, doc in enumerate(widget_docs):
        page = new_page(browser, site)
        try:
            page.goto(site + doc + ".html", wait_until="load")
            if not widget_rendered(page):
                failures.append(f"{doc}: the widget area stays blank (widget JavaScript missing or failing?)")
                continue
            if n == 0:
                page.locator(".jupyter-widgets").first.scroll_into_view_if_needed()
                _screenshot(page, "widget_" + doc.rsplit("/", 1)[-1], full_page=False)
            before = visible_widget_content(page)
            if move_first_slider(page) and visible_widget_content(page) == before:
                failures.append(f"{doc}: moving the slider changes nothing on the page; Python callbacks "
                                "(observe/interact) do not run in the static book: link views with jslink")
            failures += [f"{doc}: {problem}" for problem in page_problems(page)]
        finally:
            page.context.close()
    assert not failures, "\n".join(failures)


EXPLORER = "book/figures/explorer"


@pytest.mark.skipif(EXPLORER not in DOCS, reason="the explorer page is not in _toc.yml")
def test_explorer_switches_views_with_a_click(chromium, browser, site):
    """The kernel-free explorer: clicking a preset button and stepping through the trace change the view."""
    page = new_page(browser, site)
    try:
        page.goto(site + EXPLORER + ".html", wait_until="load")
        assert widget_rendered(page), "the explorer's widgets stay blank"
        before = visible_widget_content(page)
        page.get_by_role("button", name="s-pruning good").first.click()
        page.wait_for_timeout(300)
        after_preset = visible_widget_content(page)
        assert after_preset != before and "s-pruning good" in after_preset, \
            "clicking the 's-pruning good' preset does not change the view"
        page.get_by_role("tab", name="s-pruning trace").first.click()
        page.wait_for_timeout(300)
        shown = visible_widget_content(page)
        assert "step 1" in shown, "the s-pruning trace tab shows no step"
        assert move_first_slider(page) and visible_widget_content(page) != shown, \
            "moving the step slider does not change the trace view"
        _screenshot(page, "explorer", full_page=False)
        assert not page_problems(page)
    finally:
        page.context.close()

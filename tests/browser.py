"""Check built HTML in a real browser: headless Debian Chromium driven by Playwright for Python.

Reusable by every browser test (the book now, the explorer later)::

    with serve(Path("_build/html")) as base, open_browser() as browser:
        page = new_page(browser, base)
        response = page.goto(base + "book/intro.html")
        assert response.status == 200 and not page_problems(page)

Playwright never downloads a browser here: we launch the Debian package's ``/usr/bin/chromium`` (override with
``LOTTERY_CHROMIUM``). Every request that leaves the local server is refused and reported, so a page that
would need a CDN or any network fails the check instead of working only online.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_CHROMIUM = "/usr/bin/chromium"
# Flags for a headless Chromium on a machine with no network but the package registries (TOOLING.md).
# Playwright adds --headless and an empty temporary --user-data-dir itself (it refuses one in args).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-quic",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}

# Widget views of ipywidgets 8 carry the class `jupyter-widgets` and one `widget-<kind>` class.
WIDGET_SELECTOR = ".jupyter-widgets, [class^='widget-'], [class*=' widget-']"

_problems: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def chromium_path() -> str | None:
    """The Chromium executable to drive, or None when none is installed."""
    given = os.environ.get("LOTTERY_CHROMIUM")
    for candidate in [given] if given else [DEFAULT_CHROMIUM, shutil.which("chromium")]:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


@contextmanager
def serve(directory: Path | str) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port) in a thread; yield the base URL ending in /."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"nothing to serve: {directory} is not a folder")
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="book-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def open_browser(executable: str | None = None):
    """Yield a Playwright ``Browser``: headless Debian Chromium (never a downloaded one)."""
    from playwright.sync_api import sync_playwright

    executable = executable or chromium_path()
    if executable is None:
        raise FileNotFoundError(f"no Chromium at {DEFAULT_CHROMIUM} or on PATH: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, base_url: str):
    """A fresh page whose console errors, failed and off-site requests are recorded for ``page_problems``.

    Requests to anything but ``base_url``'s origin (and data:/blob: URLs, which never hit the network) are
    aborted and reported: the book must work with no network at all.
    """
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    problems: list[str] = []
    _problems[page] = problems

    def route(route):
        url = route.request.url
        if url.startswith(origin + "/") or url.split(":", 1)[0] in ("data", "blob"):
            route.continue_()
        else:
            problems.append(f"off-site request (blocked): {url}")
            route.abort()

    def on_console(message):
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            problems.append(f"console error: {message.text}" + (f" ({where})" if where else ""))

    def on_response(response):
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    def on_request_failed(request):
        if request.url.startswith(origin + "/"):  # off-site ones are reported by route()
            problems.append(f"request failed: {request.url} ({request.failure})")

    context.route("**/*", route)
    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"JavaScript exception: {error}"))
    page.on("response", on_response)
    page.on("requestfailed", on_request_failed)
    return page


_BROKEN_IMAGES_JS = """
async () => {
  const images = Array.from(document.images);
  images.forEach(img => { if (img.loading === 'lazy') img.loading = 'eager'; });
  await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener('load', done, {once: true});
    img.addEventListener('error', done, {once: true});
    setTimeout(done, 5000);
  })));
  return images.filter(img => !(img.complete && img.naturalWidth > 0))
               .map(img => (img.getAttribute('src') || '(no src)').slice(0, 120));
}
"""


def page_problems(page, settle_ms: int = 300) -> list[str]:
    """Everything wrong with the loaded page, as readable strings; an empty list means it is clean.

    Reports console errors, uncaught JavaScript exceptions, HTTP errors (a missing resource is a 404),
    failed or off-site requests (recorded since ``new_page``), and every ``<img>`` with ``naturalWidth == 0``.
    """
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(settle_ms)  # let late scripts (the widget manager) log their errors
    broken = [f"broken image: {src}" for src in page.evaluate(_BROKEN_IMAGES_JS)]
    return list(_problems.get(page, [])) + broken


_WIDGET_RENDERED_JS = """
(selector) => Array.from(document.querySelectorAll(selector)).some(el => {
  const box = el.getBoundingClientRect();
  if (box.width <= 0 || box.height <= 0) return false;
  const text = (el.innerText || '').trim();
  return text.length > 0 || el.querySelector('img, canvas, svg, input, button, select, .noUi-handle') !== null;
})
"""


def widget_rendered(page, timeout_ms: int = 15000) -> bool:
    """True once the page shows an ipywidget view with a nonzero box and some content (text, image, control).

    The widget manager replaces each saved widget view with live DOM after the page loads; a page whose
    widget JavaScript failed to load keeps only the (invisible) saved state and returns False.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(_WIDGET_RENDERED_JS, arg=WIDGET_SELECTOR, timeout=timeout_ms)
        return True
    except PlaywrightTimeout:
        return False


_VISIBLE_WIDGET_CONTENT_JS = """
() => {
  const shown = el => el.offsetParent !== null && !el.closest('.widget-slider, .widget-hslider, .widget-vslider');
  const digest = s => { let h = 5381; for (let i = 0; i < s.length; i++) h = (h * 33 + s.charCodeAt(i)) | 0; return h; };
  const texts = Array.from(document.querySelectorAll(
      '.jupyter-widgets .widget-html-content, .jupyter-widgets.widget-label, .jupyter-widgets .widget-label'))
    .filter(shown).map(el => el.innerText.trim());
  const images = Array.from(document.querySelectorAll('.jupyter-widgets img'))
    .filter(shown).map(img => `img ${img.src.length} ${digest(img.src)}`);
  return texts.concat(images).join('\\n');
}
"""


def visible_widget_content(page) -> str:
    """The text and images widgets show right now, sliders excluded (to see whether moving one changes them)."""
    return page.evaluate(_VISIBLE_WIDGET_CONTENT_JS)


def move_first_slider(page) -> bool:
    """Move the first visible widget slider by one step with the keyboard; False if the page shows none."""
    handles = page.locator(".widget-slider .noUi-handle:visible, .widget-hslider .noUi-handle:visible")
    if handles.count() == 0:
        return False
    handle = handles.first
    handle.focus()
    at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
    page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
    page.wait_for_timeout(300)
    return True


# --- what a reader sees: content checks -------------------------------------------------------------------------
# The content column: pydata-sphinx-theme's article (the page TOC on the right is not part of it).
CONTENT_COLUMN = "article.bd-article"

_CONTENT_PROBLEMS_JS = r"""
(column) => {
  const problems = [];
  const article = document.querySelector(column) || document.querySelector('#main-content');
  if (!article) return ['no content column (' + column + ' or #main-content) on the page'];
  const shown = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const snippet = el => (el.innerText || el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 70);

  // 1. A visible "nan" / "NaN" in what the page renders (code a reader types is not a result: inputs skipped).
  const nans = [];
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest('.cell_input, script, style, .headerlink') || !shown(el)) continue;
    const m = /(^|[^A-Za-z0-9_.])(nan|NaN|NAN|<NA>)(?![A-Za-z0-9_])/.exec(node.textContent);
    if (!m) continue;
    const row = el.closest('tr');  // in a table: the row says where
    const where = row ? 'in the table row "' + snippet(row) + '"'
                      : '"...' + node.textContent.slice(Math.max(0, m.index - 30), m.index + 35).replace(/\s+/g, ' ') + '..."';
    nans.push('visible "' + m[2] + '" ' + where);
  }
  problems.push(...nans.slice(0, 3));
  if (nans.length > 3) problems.push('... and ' + (nans.length - 3) + ' more visible NaN');

  // 2. Parameter cells: papermill's parameters cell or its injected-parameters cell, by tag or by text.
  for (const cell of document.querySelectorAll('.tag_parameters, .tag_injected-parameters')) {
    problems.push('a parameter cell is on the page (class ' + cell.className.match(/tag_[\w-]+/)[0] + '): ' + snippet(cell));
  }
  for (const input of article.querySelectorAll('.cell_input')) {
    const text = (input.innerText || '').trim();
    if (shown(input) && !input.closest('.tag_parameters, .tag_injected-parameters') && /^(# Parameters\s*\n)?\s*plan\s*(:\s*[\w\[\], |]+)?\s*=/.test(text))
      problems.push('a parameter cell is shown: ' + text.slice(0, 70).replace(/\s+/g, ' '));
  }

  // 3. Tables and code blocks wider than the content column, unless a scrolling ancestor inside it clips them.
  const right = article.getBoundingClientRect().right + 1;
  for (const el of article.querySelectorAll('table, pre, div.highlight, .cell_output .output')) {
    if (!shown(el) || el.getBoundingClientRect().right <= right) continue;
    let clipped = false;
    for (let up = el.parentElement; up && up !== article && !clipped; up = up.parentElement) {
      const overflow = getComputedStyle(up).overflowX;
      clipped = overflow !== 'visible' && up.getBoundingClientRect().right <= right;
    }
    if (!clipped) {
      const box = el.getBoundingClientRect();
      problems.push('<' + el.tagName.toLowerCase() + (el.className ? ' class="' + el.className + '"' : '') +
                    '> runs ' + Math.round(box.right - right + 1) + ' px past the content column: ' + snippet(el));
    }
  }

  // 4. Images without alt text (an alt that is only the file's name or path is none).
  for (const img of document.querySelectorAll('img')) {
    const alt = (img.getAttribute('alt') || '').trim();
    const src = img.getAttribute('src') || '';
    const file = src.split('?')[0].split('/').pop();
    const nameOnly = alt && (alt === src || alt.split('/').pop() === file || /\.(png|jpe?g|svg|gif|webp)$/i.test(alt));
    if (!alt || nameOnly)
      problems.push('image without alt text' + (nameOnly ? ' (its alt is only a file name: "' + alt.slice(0, 60) + '")' : '') +
                    ': ' + (src.startsWith('data:') ? src.slice(0, 30) + '...' : src.slice(0, 100)));
  }
  return problems;
}
"""


def content_problems(page) -> list[str]:
    """What a reader should never see on a page, as readable strings (empty: the page reads well).

    A visible ``nan``/``NaN``/``<NA>`` outside code inputs; papermill's parameters or injected-parameters cell
    (by its ``tag_*`` class or by a shown input that starts ``plan =``); a table, ``pre``, code block or notebook
    output whose right edge runs past the content column (``article.bd-article``) with no scrolling box inside the
    column to hold it; an ``<img>`` with an empty alt, or one that is only the image's file name.
    """
    return page.evaluate(_CONTENT_PROBLEMS_JS, CONTENT_COLUMN)


_VERDICT_JS = r"""
(column) => {
  const article = document.querySelector(column) || document.querySelector('#main-content');
  const boxes = Array.from((article || document).querySelectorAll('div.admonition.verdict'));
  if (!boxes.length) return 'no verdict box (<div class="admonition verdict">)';
  const box = boxes[0];
  const title = (box.querySelector('.admonition-title') || {}).innerText || '';
  if (!/^\s*Verdict/.test(title)) return 'the verdict box\'s title does not begin "Verdict": "' + title.trim().slice(0, 60) + '"';
  if (!(box.offsetWidth && box.offsetHeight)) return 'the verdict box is not visible';
  const before = Array.from(article.querySelectorAll('img, table, .jupyter-widgets')).find(
    el => box.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_PRECEDING);
  if (before) return 'the verdict box does not open the page: a <' + before.tagName.toLowerCase() + '> comes before it';
  return null;
}
"""


def verdict_problem(page) -> str | None:
    """None if the page opens with a visible verdict box (``div.admonition.verdict`` titled "Verdict..."),
    before any figure, table or widget; else what is wrong."""
    return page.evaluate(_VERDICT_JS, CONTENT_COLUMN)

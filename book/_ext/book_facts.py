"""Sphinx extension: facts about the build itself, computed when the book is built.

- ``{versions-table}``: a table of the versions this book was built with (Python, the libraries that computed
  and rendered it, ``lotterylib``, the git commit), read from the running interpreter's installed packages.
  Nothing is typed by hand, so the page cannot drift from the environment.
- The footer's copyright year is the year of the build (``SOURCE_DATE_EPOCH`` if set, for reproducible builds),
  never earlier than the year in ``_config.yml``.
- ``book/_static/book.css`` (the verdict box, wide tables and outputs that scroll inside the content column) is
  added to every page.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import re
import subprocess
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

# (what the reader knows it as, distribution name on PyPI, what it does here)
PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("torch", "torch", "training, pruning, importance scores"),
    ("transformers", "transformers", "the BERT models"),
    ("datasets", "datasets", "GLUE from the Hugging Face hub (where a network exists)"),
    ("numpy", "numpy", "arrays, masks"),
    ("pandas", "pandas", "result tables"),
    ("matplotlib", "matplotlib", "figures"),
    ("papermill", "papermill", "executes the notebooks with parameters"),
    ("snakemake", "snakemake", "the workflow"),
    ("jupyter-book", "jupyter-book", "builds this book"),
    ("sphinx", "sphinx", "under Jupyter Book"),
    ("lotterylib", "lotterylib", "this repository's engine"),
)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(repo: Path, *args: str) -> str | None:
    try:
        run = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return run.stdout.strip() if run.returncode == 0 else None


def git_commit(repo: Path) -> str:
    """The commit the book was built from, ``(uncommitted changes)`` appended when tracked files differ."""
    commit = _git(repo, "rev-parse", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    dirty = _git(repo, "status", "--porcelain", "--untracked-files=no")
    return commit + (" (with uncommitted changes)" if dirty else "")


def build_time() -> dt.datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc)
    return dt.datetime.now(tz=dt.timezone.utc)


def version_rows(repo: Path) -> list[tuple[str, str, str]]:
    """(name, version, role) for Python, every package of :data:`PACKAGES`, the git commit and the build date."""
    rows = [("Python", platform.python_version(), f"{platform.python_implementation()}, {platform.system()}")]
    rows += [(name, _version(dist), role) for name, dist, role in PACKAGES]
    rows.append(("git commit", git_commit(repo), "the code and committed results the book was built from"))
    rows.append(("built", build_time().strftime("%Y-%m-%d %H:%M UTC"), "when this page was rendered"))
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], literal_cols: set[int]) -> nodes.table:
    table = nodes.table(classes=["versions-table"])
    group = nodes.tgroup(cols=len(header))
    table += group
    group.extend(nodes.colspec(colwidth=1) for _ in header)
    thead = nodes.thead()
    group += thead
    head_row = nodes.row()
    thead += head_row
    for title in header:
        head_row += nodes.entry("", nodes.paragraph(text=title))
    tbody = nodes.tbody()
    group += tbody
    for cells in rows:
        row = nodes.row()
        tbody += row
        for i, text in enumerate(cells):
            para = nodes.paragraph()
            para += nodes.literal(text=text) if i in literal_cols else nodes.Text(text)
            row += nodes.entry("", para)
    return table


class VersionsTable(SphinxDirective):
    """``{versions-table}``: the versions of the build, read from the interpreter that builds the book."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        repo = Path(self.env.srcdir)
        self.env.note_dependency(str(repo / "requirements" / "lock.txt"))
        return [_table(("software", "version", "what it does here"), version_rows(repo), literal_cols={1})]


def set_copyright_year(app, config) -> None:
    """The footer's year: the build's year, unless ``_config.yml`` names a later one (or more than a year)."""
    given = str(config.copyright or "").strip()
    year = build_time().year
    if not given or (given.isdigit() and int(given) < year):
        config.copyright = str(year)


def setup(app):
    app.add_directive("versions-table", VersionsTable)
    app.connect("config-inited", set_copyright_year)
    app.add_css_file("book.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

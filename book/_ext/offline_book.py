"""Sphinx extension: keep the built book free of scripts that need a network.

Jupyter Book 1 always loads sphinx-thebe (live code cells through Binder). This book does not use it
(`launch_buttons.thebe: false`), yet every page still carries its inline configuration, which names a CDN
(unpkg.com), and with Sphinx 7.4 that inline script is emitted twice, so every page throws
"Identifier 'THEBE_JS_URL' has already been declared". We drop sphinx-thebe's scripts from each page; nothing
else changes. tests/test_book_browser.py checks that pages load with no JavaScript error and no off-site request.
"""

from __future__ import annotations

from typing import Any


def _is_thebe_script(script: Any) -> bool:
    filename = getattr(script, "filename", None) or ""
    body = getattr(script, "attributes", {}).get("body", "")
    return filename.endswith("sphinx-thebe.js") or "THEBE_JS_URL" in body


def drop_thebe_scripts(app, pagename, templatename, context, doctree) -> None:
    if app.config.html_theme_options.get("launch_buttons", {}).get("thebe"):
        return  # someone switched thebe on: keep it working
    scripts = context.get("script_files")
    if scripts:
        context["script_files"] = [js for js in scripts if not _is_thebe_script(js)]


def setup(app):
    app.connect("html-page-context", drop_thebe_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

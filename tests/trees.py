"""Copies of this repository for tests that run the workflow or build the book, so that a test never writes into
the checkout it tests (its results/, logs/, book/figures/ and _build/ stay as the user left them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def working_tree_files() -> list[str]:
    """What a commit of the working tree would hold (tracked and new files, not ignored ones)."""
    try:
        out = git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def copy_tree(dest: Path, include_results: bool = False) -> Path:
    """The working tree's files (see :func:`working_tree_files`) copied into ``dest``, times kept."""
    for rel in working_tree_files():
        if rel.startswith("results/") and not include_results:
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    return dest


def fresh_clone(dest: Path, include_results: bool = False) -> Path:
    """`git clone` of this repository, with the working tree's uncommitted files laid over it (checkout times);
    uncommitted result files only with ``include_results``."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(dest)], check=True)
    changed = git("ls-files", "-z", "--modified", "--others", "--exclude-standard").split("\0")
    for rel in changed:
        if rel and (REPO / rel).is_file() and (include_results or not rel.startswith("results/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest

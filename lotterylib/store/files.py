"""Small result files with provenance, written atomically, and where they live.

Where each file lives is :mod:`lotterylib.store.layout`'s business; this module writes and reads them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Iterator

import numpy as np

from lotterylib import __version__
from lotterylib.errors import MissingError, ResultFileError

REPO = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The repository's commit (``+dirty`` if lotterylib has uncommitted changes); ``$LOTTERY_GIT_COMMIT`` where
    the code runs from a copy without its .git folder."""
    if os.environ.get("LOTTERY_GIT_COMMIT"):
        return os.environ["LOTTERY_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "lotterylib"], cwd=REPO,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _device() -> str:
    """The accelerator the running stage computes on: asked of torch if the process has loaded it (every stage
    has); a process that never loaded torch computed nothing on a device."""
    torch = sys.modules.get("torch")
    if torch is None:
        return "cpu"
    return "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def provenance(config: dict | None = None) -> dict:
    """Who made a result file: library versions, commit, date, host and device, and the run's config."""
    return {
        "lotterylib_version": __version__, "git_commit": git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "python": platform.python_version(), "torch": _version("torch"),
        "transformers": _version("transformers"), "device": _device(),
        "config": config or {},
    }


def _default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def atomic_write(path: Path, write) -> Path:
    """Run ``write(tmp_path)`` then move the file into place: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_json(path: Path, payload: dict, config: dict | None = None) -> Path:
    body = {**payload, "provenance": provenance(config)}
    text = json.dumps(body, indent=1, default=_default, allow_nan=True)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_json(path: Path) -> dict:
    """A result file's JSON; a missing file raises :class:`MissingError`, a corrupt or half-written one
    :class:`ResultFileError`, each naming the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise MissingError(f"result file {path} is missing: run the stage that writes it "
                           "(see the book's 're-run it yourself' page)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultFileError(f"result file {path} is corrupt or half-written ({err}): delete it and re-run the "
                              "stage that writes it") from None
    if not isinstance(data, dict):
        raise ResultFileError(f"result file {path} holds a {type(data).__name__}, not a JSON object: delete it and "
                              "re-run the stage that writes it")
    return data


def write_npz(path: Path, **arrays) -> Path:
    def write(tmp):
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return atomic_write(path, write)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """A result file's arrays (never pickles); missing or corrupt files are refused naming the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise MissingError(f"result file {path} is missing: run the stage that writes it")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as err:
        raise ResultFileError(f"result file {path} is corrupt or half-written ({type(err).__name__}: {err}): delete "
                              "it and re-run the stage that writes it") from None


@contextmanager
def staged(folder: Path) -> Iterator[Path]:
    """Write a stage's files into a fresh temporary folder beside ``folder``; when the block ends without an
    error, the new folder replaces the old one whole. A failed or killed stage leaves the previous complete
    result untouched (and no mixture of old and new files)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".partial"))
    os.chmod(tmp, 0o755)
    try:
        yield tmp
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

"""Shared fixtures: tiny offline models, hand-made batches, the local GLUE and paper folders."""

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def glue_dir() -> Path | None:
    path = Path(os.environ.get("LOTTERY_GLUE_DIR", SHARED / "glue_data"))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def glue_root() -> Path:
    path = glue_dir()
    if path is None:
        pytest.skip("no local GLUE folder: set LOTTERY_GLUE_DIR to a glue_data folder")
    return path


def make_batches_by_hand(n: int, seq_len: int, batch_size: int, num_labels: int = 2, seed: int = 0,
                         vocab: int = 1000, ragged: bool = True) -> list[dict]:
    """Random token batches with per-example lengths (right padding) and an ``index``."""
    gen = torch.Generator().manual_seed(seed)
    batches, start = [], 0
    while start < n:
        b = min(batch_size, n - start)
        ids = torch.randint(1, vocab, (b, seq_len), generator=gen)
        lengths = torch.randint(3, seq_len + 1, (b,), generator=gen) if ragged else torch.full((b,), seq_len)
        mask = (torch.arange(seq_len)[None, :] < lengths[:, None]).long()
        ids = ids * mask
        labels = (torch.randn(b, generator=gen) if num_labels == 1
                  else torch.randint(0, num_labels, (b,), generator=gen))
        batches.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
                        "labels": labels, "index": torch.arange(start, start + b)})
        start += b
    return batches


@pytest.fixture(scope="module")
def tiny():
    from lotterylib.model.models import tiny_bert

    return tiny_bert(num_labels=2, seed=1)


@pytest.fixture(scope="module")
def tiny_batches():
    return make_batches_by_hand(n=20, seq_len=12, batch_size=8)


SMOKE_BOOK_TIMEOUT_S = 3600


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> Path:
    """The smoke book, built by ``make book PLAN=smoke`` in a clone of the working tree (its committed smoke results
    count as done): the root of that clone, with the HTML in ``_build/html`` and the executed pages in
    ``book/figures``. Built in a clone so that ``make test`` leaves this checkout's own book (say, the demo book a
    user built with ``make book``) as it was. The clone uses this checkout's ``.venv``, and its own code first."""
    import subprocess
    import sys
    import time

    import yaml
    from trees import fresh_clone

    from lotterylib.read.paper import paper_reference_dir

    first_page = Path("_build") / "html" / f"{yaml.safe_load((REPO / '_toc.yml').read_text())['root']}.html"

    def own_book() -> dict[str, int]:
        built = [REPO / first_page, *(REPO / "book" / "figures").glob("*.ipynb")]
        return {str(p): p.stat().st_mtime_ns for p in built if p.is_file()}

    before = own_book()
    tree = fresh_clone(tmp_path_factory.mktemp("smoke_book") / "repo", include_results=True)
    venv = Path(sys.prefix).resolve()  # this checkout's .venv, which `make test` runs in
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(tree), os.environ.get("PYTHONPATH")))),
           # the data folders as this checkout finds them (the clone has no ../shared beside it)
           "LOTTERY_PAPER_DIR": str(paper_reference_dir().resolve())}
    if glue_dir() is not None:
        env["LOTTERY_GLUE_DIR"] = str(glue_dir().resolve())
    for inherited in ("MAKEFLAGS", "MAKELEVEL"):  # `make test`'s own make variables: not for the clone's make
        env.pop(inherited, None)
    started = time.time()
    # -o: the clone's files are newer than the venv's install stamp; never reinstall this checkout's .venv
    run = subprocess.run(["make", "-o", f"{venv}/bin/.installed", "book", "PLAN=smoke", f"VENV={venv}"], cwd=tree,
                         env=env, capture_output=True, text=True, timeout=SMOKE_BOOK_TIMEOUT_S)
    if run.returncode != 0:
        pytest.fail(f"`make book PLAN=smoke` failed (exit {run.returncode}):\n{(run.stdout + run.stderr)[-4000:]}")
    intro = tree / first_page
    if not intro.is_file() or intro.stat().st_mtime < started - 1:
        # e.g. `book` not declared .PHONY: with a folder book/ in the repository, `make book` does nothing.
        pytest.fail(f"`make book PLAN=smoke` exited 0 but wrote no fresh {intro.relative_to(tree)}:\n"
                    f"{(run.stdout + run.stderr)[-2000:]}")
    assert own_book() == before, "building the smoke book changed this checkout's own _build/ or book/figures/"
    return tree

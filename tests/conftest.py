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

"""Tests for lotterylib.read.paper. Never touches the network: downloads are off and urlopen is a trap."""

from __future__ import annotations

import io
import math
import os
import urllib.error
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lotterylib.read import paper as P


def _paper_dir() -> Path | None:
    env = os.environ.get("LOTTERY_PAPER_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "paper_reference"
    return path if (path / "masks").is_dir() else None


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Downloads off by default, cache in tmp, and any real urlopen call fails the test."""
    monkeypatch.setenv("LOTTERY_OFFLINE", "1")
    monkeypatch.setenv("LOTTERY_CACHE", str(tmp_path / "cache"))

    def trap(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(P, "_urlopen", trap)


@pytest.fixture
def root():
    path = _paper_dir()
    if path is None:
        pytest.skip("the authors' data is absent: set LOTTERY_PAPER_DIR or provide ../shared/paper_reference")
    return path


# --- locating files ---------------------------------------------------------------------------

def test_constants():
    assert P.PAPER_COMMIT == "f02280f0c0fe2429f031331f2db81d044a265f00"
    assert P.PAPER_REPO == "sai-prasanna/bert-experiments"
    assert P.PAPER_SEEDS == (1337, 42, 86, 71, 166)
    assert P.PAPER_TASKS == ("CoLA", "SST-2", "MRPC", "QQP", "STS-B", "MNLI", "QNLI", "RTE", "WNLI")


def test_paper_reference_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("LOTTERY_PAPER_DIR", raising=False)
    monkeypatch.setattr(P, "_default_local_dir", lambda: tmp_path / "shared")
    assert P.paper_reference_dir() == tmp_path / "cache"  # no local copy -> download cache
    (tmp_path / "shared").mkdir()
    assert P.paper_reference_dir() == tmp_path / "shared"
    monkeypatch.setenv("LOTTERY_PAPER_DIR", str(tmp_path / "env"))
    assert P.paper_reference_dir() == tmp_path / "env"
    assert P.paper_reference_dir(tmp_path / "arg") == tmp_path / "arg"


def test_default_local_dir_is_sibling_shared():
    assert P._default_local_dir() == Path(P.__file__).resolve().parents[3] / "shared" / "paper_reference"


def test_downloads_allowed_switch(monkeypatch):
    assert P.downloads_allowed() is False  # LOTTERY_OFFLINE=1 from the fixture
    assert P.downloads_allowed(True) is True
    monkeypatch.delenv("LOTTERY_OFFLINE")
    assert P.downloads_allowed() is True
    assert P.downloads_allowed(False) is False


def test_missing_mask_raises_paper_data_not_found(tmp_path):
    with pytest.raises(P.PaperDataNotFound) as info:
        P.load_paper_mask("heads_mlps", "QNLI", 42, root=tmp_path, allow_download=False)
    err = info.value
    message = str(err)
    assert isinstance(err, FileNotFoundError)
    assert "masks/heads_mlps/QNLI/seed_42/head_mask.npy" in message
    assert str(tmp_path) in message and P.PAPER_COMMIT in message
    assert "LOTTERY_PAPER_DIR" in message and "downloads are off" in message
    assert err.url == P.paper_url("masks/heads_mlps/QNLI/seed_42/head_mask.npy")
    assert err.local_path == tmp_path / "masks/heads_mlps/QNLI/seed_42/head_mask.npy"


def test_missing_results_raises_with_url(tmp_path):
    with pytest.raises(P.PaperDataNotFound, match="evaluate_masked/no_mask/baseline/results.json"):
        P.load_paper_results("no_mask", root=tmp_path)  # LOTTERY_OFFLINE=1


def test_missing_table2_is_not_downloadable(tmp_path):
    with pytest.raises(P.PaperDataNotFound, match="not in the authors' repository") as info:
        P.load_table2(root=tmp_path)
    assert info.value.url is None


class _FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_download_into_cache_atomically(monkeypatch, tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.eye(3, dtype=np.float32))
    calls = []

    def fake_urlopen(url, timeout):
        calls.append(url)
        return _FakeResponse(buffer.getvalue())

    monkeypatch.setattr(P, "_urlopen", fake_urlopen)
    relpath = "masks/heads/QNLI/seed_42/head_mask.npy"
    path = P.paper_file(relpath, root=tmp_path / "empty", allow_download=True)
    assert path == tmp_path / "cache" / relpath
    assert calls == [P.paper_url(relpath)]
    assert calls[0].startswith(f"https://raw.githubusercontent.com/{P.PAPER_REPO}/{P.PAPER_COMMIT}/masks/")
    np.testing.assert_array_equal(np.load(path), np.eye(3))
    assert [p.name for p in path.parent.iterdir()] == ["head_mask.npy"]  # no temporary file left
    assert P.paper_file(relpath, root=tmp_path / "empty", allow_download=False) == path  # cached now
    assert len(calls) == 1


@pytest.mark.parametrize("error, reason", [
    (urllib.error.HTTPError("u", 404, "Not Found", None, None), "HTTP 404"),
    (urllib.error.URLError("no network"), "URLError"),
])
def test_download_failure_raises_paper_data_not_found(monkeypatch, tmp_path, error, reason):
    def failing(url, timeout):
        raise error

    monkeypatch.setattr(P, "_urlopen", failing)
    with pytest.raises(P.PaperDataNotFound, match=reason) as info:
        P.paper_file("evaluate_masked/no_mask/baseline/results.json", root=tmp_path, allow_download=True)
    assert "failed" in str(info.value)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.json"))


# --- names ------------------------------------------------------------------------------------

def test_canonical_task():
    assert P.canonical_task("sst2") == "SST-2"
    assert P.canonical_task("sts-b") == "STS-B"
    assert P.canonical_task("MNLI") == "MNLI"
    with pytest.raises(ValueError, match="unknown task 'squad'"):
        P.canonical_task("squad")


def test_bad_variant_seed_and_setting(tmp_path):
    with pytest.raises(ValueError, match="unknown mask variant 'good'"):
        P.load_paper_mask("good", "QNLI", 42, root=tmp_path)
    with pytest.raises(ValueError, match="seed 7 has no published masks"):
        P.load_paper_mask("heads_mlps", "QNLI", 7, root=tmp_path)
    with pytest.raises(ValueError, match="not a results folder name"):
        P.load_paper_results("../no_mask", root=tmp_path)
    assert P.results_relpath("freq_baseline") == "evaluate_masked/freq_baseline/results.json"


def test_load_paper_masks_needs_tasks_and_seeds(tmp_path):
    with pytest.raises(ValueError, match="at least one task and one seed"):
        P.load_paper_masks(tasks=[], root=tmp_path)


# --- the authors' data ------------------------------------------------------------------------

def test_load_paper_mask(root):
    m = P.load_paper_mask("heads_mlps", "qnli", 42, root=root)
    assert m["head_mask"].dtype == np.float32 and m["head_mask"].shape == (12, 12)
    assert m["mlp_mask"].shape == (12,) and m["head_importance"].shape == (12, 12)
    assert set(np.unique(m["head_mask"])) <= {0.0, 1.0}
    heads_only = P.load_paper_mask("heads", "QNLI", 42, root=root)
    assert heads_only["mlp_mask"] is None and heads_only["mlp_importance"] is None
    mlps_only = P.load_paper_mask("mlps", "QNLI", 42, root=root)
    assert mlps_only["head_mask"] is None and mlps_only["mlp_mask"].shape == (12,)


def test_load_paper_masks_stacks(root):
    masks = P.load_paper_masks(tasks=["RTE", "CoLA"], root=root)
    assert list(masks) == ["RTE", "CoLA"]
    rte = masks["RTE"]
    assert rte["head_mask"].shape == (5, 12, 12) and rte["mlp_mask"].shape == (5, 12)
    assert rte["seeds"] == P.PAPER_SEEDS
    np.testing.assert_array_equal(rte["head_mask"][1], P.load_paper_mask("heads_mlps", "RTE", 42, root)["head_mask"])
    random = P.load_paper_masks("heads_mlps_random", tasks="RTE", seeds=1337, root=root)
    assert random["RTE"]["head_mask"].shape == (1, 12, 12) and random["RTE"]["head_importance"] is None


def test_load_paper_results_no_mask(root):
    df = P.load_paper_results("no_mask", root=root)
    assert list(df.columns) == ["task", "metric", "mean", "std_pop", "std", "reported"]
    cola = df[(df.task == "CoLA") & (df.metric == "mcc")].iloc[0]
    assert round(cola["mean"], 4) == 0.5604
    assert cola["std"] == pytest.approx(cola["std_pop"] * math.sqrt(5 / 4))
    reported = df[df.reported].set_index("task")["metric"].to_dict()
    assert reported == P.REPORTED_METRIC
    assert list(dict.fromkeys(df.task)) == list(P.PAPER_TASKS)
    freq = P.load_paper_results("freq_baseline", root=root)
    assert set(freq.task) == set(P.PAPER_TASKS)


def test_load_paper_results_malformed(tmp_path):
    folder = tmp_path / "evaluate_masked" / "broken" / "baseline"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text('{"CoLA": {"mcc": 0.5}}')
    with pytest.raises(ValueError, match=r"expected \[mean, population std\]"):
        P.load_paper_results("broken", root=tmp_path)


def test_table2_as_printed_and_corrected(root):
    df = P.load_table2(root)
    assert list(df.columns) == ["model", *P.PAPER_TASKS, "average"]
    row = df.model == "bad_subnetwork_m_pruning"
    assert df.loc[row, "CoLA"].item() == 0.24  # the printed typo is kept
    fixed = P.corrected_table2(df)
    assert fixed.loc[row, "CoLA"].item() == 0.0247
    assert fixed["corrected"].tolist() == row.tolist()
    assert df.loc[row, "CoLA"].item() == 0.24  # input untouched
    assert fixed.attrs["corrections"][0]["printed"] == 0.24
    bad = P.load_paper_results("global_bad_retrained", root=root)
    source = bad[(bad.task == "CoLA") & (bad.metric == "mcc")]["mean"].item()
    assert source == pytest.approx(0.0247, abs=1e-4)


def test_corrected_table2_errors():
    table = pd.DataFrame({"model": ["bad_subnetwork_m_pruning"], "CoLA": [0.24]})
    with pytest.raises(ValueError, match="expected 'model' and 'CoLA'"):
        P.corrected_table2(table.drop(columns="CoLA"))
    with pytest.raises(ValueError, match="0 rows with model"):
        P.corrected_table2(table.assign(model="CBOW"))
    with pytest.raises(ValueError, match="already corrected"):
        P.corrected_table2(P.corrected_table2(table))

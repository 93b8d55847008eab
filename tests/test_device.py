"""Running on another machine: the device choice, weight variants, the offline-model folder, and the GPU-machine
grid driver (tools/device_grid.py), which must write what the notebooks write and resume after a cut-off."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lotterylib.model import masking
from lotterylib.model.models import load_model, round_weights, stored_dtype
from lotterylib.config.plans import Plan
from lotterylib.run.train import default_device

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import device_grid  # noqa: E402


# --- the device ------------------------------------------------------------------------------------------------

def test_default_device_follows_the_environment(monkeypatch):
    monkeypatch.setenv("LOTTERY_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    monkeypatch.setenv("LOTTERY_DEVICE", "abacus")
    with pytest.raises(ValueError, match="not a torch device"):
        default_device()
    monkeypatch.delenv("LOTTERY_DEVICE")
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_asking_for_a_gpu_without_one_says_so(monkeypatch):
    monkeypatch.setenv("LOTTERY_DEVICE", "cuda")
    with pytest.raises(ValueError, match="torch sees none"):
        default_device()


def test_gates_keep_a_tensor_that_collects_gradients(tiny):
    gate = torch.ones(2, 4, requires_grad=True)
    assert masking._as_gate(gate, torch.device("cpu")) is gate
    from_numpy = masking._as_gate(np.ones((2, 4)), torch.device("cpu"))
    assert from_numpy.dtype == torch.float32 and from_numpy.device.type == "cpu"


# --- weight variants ---------------------------------------------------------------------------------------------

def test_float16_variant_rounds_the_backbone_once():
    full = load_model("tiny-bert", num_labels=2, seed=3)
    half = load_model("tiny-bert", num_labels=2, seed=3, weights="float16")
    name = "bert.encoder.layer.0.attention.self.query.weight"
    a, b = full.state_dict()[name], half.state_dict()[name]
    assert not torch.equal(a, b)  # rounding changed the values ...
    assert torch.equal(b, a.half().float())  # ... to exactly their float16 neighbours
    assert b.dtype == torch.float32  # training still runs on float32 weights
    # the classifier comes from the seed, not from the rounding
    assert torch.equal(full.classifier.weight, half.classifier.weight)
    again = {k: v.clone() for k, v in half.state_dict().items()}
    round_weights(half, "float16")
    assert all(torch.equal(again[k], v) for k, v in half.state_dict().items() if not k.startswith("classifier"))
    with pytest.raises(ValueError, match="unknown weight variant"):
        load_model("tiny-bert", weights="int4")


def _float16_folder(tmp_path: Path) -> Path:
    model = load_model("tiny-bert", num_labels=2, seed=0)
    folder = tmp_path / "half"
    model.to(torch.float16).save_pretrained(folder)
    return folder


def test_a_float16_folder_never_stands_in_for_float32_weights(tmp_path):
    folder = _float16_folder(tmp_path)
    assert stored_dtype(folder) == torch.float16
    with pytest.raises(ValueError, match="never mix weight variants"):
        load_model(str(folder), num_labels=2, seed=0)
    model = load_model(str(folder), num_labels=2, seed=0, weights="float16")
    assert next(model.parameters()).dtype == torch.float32


def test_offline_dir_replaces_the_package(tmp_path, monkeypatch):
    from lotterylib.model.models import resolve_model

    monkeypatch.setenv("LOTTERY_OFFLINE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="device_pack"):
        resolve_model("all-MiniLM-L6-v2")
    (tmp_path / "all-MiniLM-L6-v2").mkdir()
    (tmp_path / "all-MiniLM-L6-v2" / "model.safetensors").write_bytes(b"")
    assert resolve_model("all-MiniLM-L6-v2") == str(tmp_path / "all-MiniLM-L6-v2")
    assert resolve_model("some/hub-id") == "some/hub-id"  # other names are untouched


def test_plans_check_their_weight_variant(tmp_path):
    text = (REPO / "plans" / "smoke.yaml").read_text()
    assert Plan.load("smoke").settings("MRPC").model_weights == "float32"  # the default
    assert Plan.load("demo").settings("MRPC").model_weights == "float16"
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "model_weights: float8\n")
    with pytest.raises(ValueError, match="model_weights"):
        Plan.load(bad)


# --- the grid driver -----------------------------------------------------------------------------------------------

def test_grid_has_every_stage_once_and_runs_stages_in_order():
    plan = Plan.load("demo")
    jobs, needs = device_grid.grid(plan, list(plan.tasks), list(plan.seeds))
    assert len(jobs) == len(set(jobs))
    n_runs = len(plan.tasks) * len(plan.seeds)
    beyond = plan.beyond_paper
    n_beyond = len(beyond.tasks) * len(beyond.seeds) * (3 * len(beyond.head_fractions) + 2)
    assert len(jobs) == n_runs * (1 + 2 + 6 + 3) + len(plan.tasks) + n_beyond
    assert sum(j.kind in ("lottery", "swap") for j in jobs) == n_beyond == 99
    order = sorted(jobs, key=lambda j: device_grid.priority(j, list(plan.seeds)))
    position = {job: i for i, job in enumerate(order)}
    for job, required in needs.items():
        assert all(position[r] < position[job] for r in required), job.name
    assert order[0].kind == "finetune" and order[0].seed == plan.seeds[0]
    # the outputs are the Snakefile's declared result files
    ft = device_grid.Job("finetune", "MRPC", 42)
    assert [p.name for p in ft.outputs("demo")] == ["metrics.json", "attention.npz", "gallery.npz"]
    # a subset of seeds has no super-survivor stages (they need every seed)
    jobs, _ = device_grid.grid(plan, ["MRPC"], [71])
    assert {j.kind for j in jobs} == {"finetune", "prune", "retrain"}
    # the lottery and swap folders are the ones the stages write
    from lotterylib.run.experiment import Run, lottery_dir, swap_dir
    run = Run(plan, "MRPC", 42, progress=False)
    assert device_grid.Job("lottery", "MRPC", 42, "0.50", "bad").folder("demo") == lottery_dir(run, 0.5, "bad")
    assert device_grid.Job("swap", "MRPC", 42, None, "random_heads_good_mlps").folder("demo") == \
        swap_dir(run, "random_heads_good_mlps")


def _driver(tmp_path, glue_root, *args):
    import os

    env = {**os.environ, "LOTTERY_RESULTS": str(tmp_path / "results"), "LOTTERY_CHECKPOINTS": str(tmp_path / "ckpt"),
           "LOTTERY_DEVICE": "cpu", "LOTTERY_GLUE_DIR": str(glue_root), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / "tools" / "device_grid.py"), "smoke", "--workers", "2", *args],
                          env=env, capture_output=True, text=True, timeout=600, cwd=REPO)


def test_driver_stops_at_its_deadline_and_resumes_to_the_notebooks_results(tmp_path, glue_root):
    first = _driver(tmp_path, glue_root, "--deadline", "6", "--start-margin", "0", "--out", str(tmp_path / "out"),
                    "--tasks", "MRPC", "--seeds", "1337")
    assert first.returncode == 0, first.stdout + first.stderr
    meta = json.loads((tmp_path / "out" / "jobs.json").read_text())
    assert meta["stopped_at_deadline"] or not meta["left"]
    second = _driver(tmp_path, glue_root, "--tasks", "MRPC", "--seeds", "1337", "--out", str(tmp_path / "out"))
    assert second.returncode == 0, second.stdout + second.stderr
    meta = json.loads((tmp_path / "out" / "jobs.json").read_text())
    assert meta["left"] == [] and meta["failed"] == []
    ours = tmp_path / "results" / "smoke" / "MRPC" / "seed_1337"
    committed = REPO / "results" / "smoke" / "MRPC" / "seed_1337"
    for stage in ("finetune", "retrain_m_good", "retrain_s_bad"):
        a = json.loads((ours / stage / "metrics.json").read_text())["metrics"]
        b = json.loads((committed / stage / "metrics.json").read_text())["metrics"]
        assert a == pytest.approx(b, abs=1e-6), stage
    # the pack holds whole stage folders, under <plan>/<task>/seed_<seed>/
    import tarfile

    with tarfile.open(tmp_path / "out" / "results_seed_1337.tar.gz") as tar:
        names = tar.getnames()
    assert "smoke/MRPC/seed_1337/prune_s/masks/good.npz" in names
    assert not any(n.endswith(".tmp") for n in names)
    third = _driver(tmp_path, glue_root, "--tasks", "MRPC", "--seeds", "1337")
    assert "0 to run" in third.stdout


def test_grid_logs_table_the_calls(tmp_path, monkeypatch):
    from lotterylib.read import collect

    monkeypatch.setenv("LOTTERY_RESULTS", str(tmp_path))
    assert collect.grid_calls("smoke").empty
    folder = tmp_path / "smoke" / "grid_log"
    folder.mkdir(parents=True)
    jobs = [{"job": "finetune MRPC 42", "stage": "finetune", "task": "MRPC", "seed": 42, "ok": True, "seconds": 30.0},
            {"job": "prune MRPC 42 m", "stage": "prune", "task": "MRPC", "seed": 42, "ok": True, "seconds": 10.0},
            {"job": "prune MRPC 42 s", "stage": "prune", "task": "MRPC", "seed": 42, "ok": False, "seconds": 1.0},
            {"job": "retrain MRPC 42 s good", "ok": False, "error": "a job it needs failed"}]
    log = {"workers": 4, "elapsed": 20.0, "provenance": {"device": "cuda:X"}, "jobs": jobs}
    (folder / "call_1.json").write_text(json.dumps(log))
    assert len(collect.grid_logs("smoke")) == 3  # the job that never ran is left out
    calls = collect.grid_calls("smoke")
    row = calls.iloc[0]
    assert (row["device"], row["workers"], row["jobs_done"], row["job_seconds"], row["wall_seconds"]) == \
        ("cuda:X", 4, 2, 40.0, 20.0)

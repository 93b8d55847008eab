"""The stage notebooks (notebooks/{finetune,prune,retrain,super}.ipynb) run with papermill, as documented.

Every stage runs once on the smoke plan restricted to one task and one seed (a copy of plans/smoke.yaml with
`seeds: [1337]`, passed by path, so that the super-survivor stage, which needs every seed of its plan, runs too),
writing into a temporary results and checkpoints root given as notebook parameters. About a minute on 2 cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml

papermill = pytest.importorskip("papermill")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
STAGES = ("finetune", "prune", "retrain", "super", "lottery", "swap")
TASK, SEED = "MRPC", 1337

pytestmark = pytest.mark.slow


def test_templates_are_thin_and_committed_clean():
    """Kernelspec python3, a tagged parameters cell with type annotations and help, no outputs."""
    for stage in STAGES:
        nb = nbformat.read(NOTEBOOKS / f"{stage}.ipynb", as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3", stage
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), stage
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{stage}: one cell tagged 'parameters'"
        params = papermill.inspect_notebook(str(NOTEBOOKS / f"{stage}.ipynb"))
        assert {"plan", "task", "results", "checkpoints"} <= set(params), stage
        for name, p in params.items():
            assert p["inferred_type_name"] != "None" and p["help"], f"{stage}: parameter {name} lacks a type or help"
        assert params["task"]["inferred_type_name"] == "str"
        assert params["results"]["inferred_type_name"] == "Optional[str]"
        if "seed" in params:
            assert params["seed"]["inferred_type_name"] == "int"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{stage}: committed with outputs"


@pytest.fixture(scope="module")
def roots(tmp_path_factory, glue_root):
    base = tmp_path_factory.mktemp("stages")
    plan = yaml.safe_load((REPO / "plans" / "smoke.yaml").read_text())
    plan.update(name="smoke1", tasks=[TASK], seeds=[SEED])
    plan_file = base / "smoke1.yaml"
    plan_file.write_text(yaml.safe_dump(plan))
    return {"plan": str(plan_file), "results": base / "results", "checkpoints": base / "checkpoints",
            "out": base / "executed"}


def execute(roots: dict, stage: str, label: str | None = None, **params) -> nbformat.NotebookNode:
    """papermill, as the workflow runs it: --cwd notebooks, kernel python3, roots as parameters."""
    out = roots["out"] / f"{label or stage}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {"plan": roots["plan"], "task": TASK, **params,
              "results": str(roots["results"]), "checkpoints": str(roots["checkpoints"])}
    return papermill.execute_notebook(str(NOTEBOOKS / f"{stage}.ipynb"), str(out), parameters=params,
                                      cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False)


def run_dir(roots: dict) -> Path:
    return roots["results"] / "smoke1" / TASK / f"seed_{SEED}"


def read_json(path: Path) -> dict:
    assert path.is_file(), f"{path} was not written"
    data = json.loads(path.read_text())
    assert data["provenance"]["config"]["plan"] == "smoke1"
    return data


def last_output_text(nb) -> str:
    """The text of the last code cell's outputs (the 'what was written' display)."""
    cell = [c for c in nb.cells if c.cell_type == "code"][-1]
    return "\n".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs)


@pytest.fixture(scope="module")
def finetuned(roots):
    nb = execute(roots, "finetune", seed=SEED)
    return nb


def test_finetune(roots, finetuned):
    folder = run_dir(roots) / "finetune"
    metrics = read_json(folder / "metrics.json")
    assert metrics["task"] == TASK and metrics["seed"] == SEED and metrics["curve"]
    with np.load(folder / "attention.npz") as data:
        assert any(k.startswith("finetuned_") for k in data.files)
        assert any(k.startswith("pretrained_") for k in data.files)
    with np.load(folder / "gallery.npz") as data:
        assert data.files
    read_json(folder / "single_removal.json")  # the smoke plan names seed 1337 for single removals
    assert (roots["checkpoints"] / "smoke1" / TASK / f"seed_{SEED}" / "model.safetensors").is_file()
    assert "finetune/metrics.json" in last_output_text(finetuned)
    # papermill recorded the parameters it injected
    assert finetuned.metadata.papermill.parameters["seed"] == SEED


@pytest.mark.parametrize("method", ["s", "m"])
def test_prune(roots, finetuned, method):
    nb = execute(roots, "prune", f"prune_{method}", seed=SEED, method=method)
    folder = run_dir(roots) / f"prune_{method}"
    search = read_json(folder / "search.json")
    assert search["trace"]
    pruned = read_json(folder / "pruned.json")
    assert set(pruned["subnetworks"]) == {"good", "random", "bad"}
    if method == "s":
        for sub in ("good", "random", "bad"):
            assert (folder / "masks" / f"{sub}.npz").is_file() and (folder / "masks" / f"{sub}.json").is_file()
    assert f"prune_{method}/search.json" in last_output_text(nb)


def test_super(roots, finetuned):
    if not (run_dir(roots) / "prune_s" / "search.json").exists():
        execute(roots, "prune", "prune_s", seed=SEED, method="s")
    execute(roots, "super")
    folder = roots["results"] / "smoke1" / TASK / "super" / "masks"
    for sub in ("good", "random", "bad"):
        meta = json.loads((folder / f"{sub}.json").read_text())
        assert meta["method"] == "super" and meta["subnetwork"] == sub and meta["seeds"] == [SEED]
        with np.load(folder / f"{sub}.npz") as data:
            assert {"head_mask", "mlp_mask"} <= set(data.files)


@pytest.mark.parametrize("method, subnetwork", [("m", "bad"), ("super", "random")])
def test_retrain(roots, finetuned, method, subnetwork):
    prune_method = "s" if method == "super" else method
    if not (run_dir(roots) / f"prune_{prune_method}" / "search.json").exists():
        execute(roots, "prune", f"prune_{prune_method}", seed=SEED, method=prune_method)
    if method == "super" and not (roots["results"] / "smoke1" / TASK / "super" / "masks" / "good.json").exists():
        execute(roots, "super")
    execute(roots, "retrain", f"retrain_{method}_{subnetwork}", seed=SEED, method=method, subnetwork=subnetwork)
    out = read_json(run_dir(roots) / f"retrain_{method}_{subnetwork}" / "metrics.json")
    assert out["method"] == method and out["subnetwork"] == subnetwork
    assert "skipped" in out or ("metric" in out and out["curve"])


def test_retrain_keeps_predictions_and_pruned_keeps_its_own(roots, finetuned):
    if not (run_dir(roots) / "prune_s" / "search.json").exists():
        execute(roots, "prune", "prune_s", seed=SEED, method="s")
    execute(roots, "retrain", "retrain_s_random", seed=SEED, method="s", subnetwork="random")
    folder = run_dir(roots) / "retrain_s_random"
    if "skipped" in read_json(folder / "metrics.json"):
        pytest.skip("the smoke full model did not learn")
    with np.load(folder / "predictions.npz") as data:
        assert data["predictions"].shape == (48,)  # every dev example of the smoke plan
    with np.load(run_dir(roots) / "prune_s" / "predictions.npz") as data:
        assert set(data.files) == {"good", "random", "bad"}
    sidecar = json.loads((run_dir(roots) / "prune_s" / "masks" / "random.json").read_text())
    assert sidecar["streams"].startswith("seed+task") and sidecar["provenance"]["git_commit"]
    assert {"created", "device", "lotterylib_version"} <= set(sidecar["provenance"])


@pytest.mark.parametrize("stage, params", [("lottery", {"fraction": 0.5, "variant": "bad"}),
                                           ("swap", {"variant": "random_heads_good_mlps"})])
def test_beyond_the_paper_stages(roots, finetuned, stage, params):
    if not (run_dir(roots) / "prune_s" / "search.json").exists():
        execute(roots, "prune", "prune_s", seed=SEED, method="s")
    label = f"{stage}_{params['variant']}"
    execute(roots, stage, label, seed=SEED, **params)
    folder = run_dir(roots) / ("lottery/f0.50_bad" if stage == "lottery" else f"swap/{params['variant']}")
    out = read_json(folder / "metrics.json")
    assert out["experiment"] == stage and out["variant"] == params["variant"]
    if "metrics" in out:
        n_heads = 2 * 4
        assert (folder / "predictions.npz").is_file() and (folder / "mask.npz").is_file()
        if stage == "lottery":
            assert out["heads_kept"] == n_heads // 2 and out["mlps_kept"] == 2
    with pytest.raises(papermill.PapermillExecutionError) as info:
        execute(roots, stage, f"{label}_bad", seed=SEED, **{**params, "variant": "best"})
    assert "variant must be one of" in info.value.evalue


def test_bad_parameter_fails_with_a_clear_message(roots):
    with pytest.raises(papermill.PapermillExecutionError) as info:
        execute(roots, "finetune", "bad_task", task="NOPE", seed=SEED)
    assert info.value.ename == "ConfigError"  # lotterylib.errors: a ValueError of the project's own
    assert "Unknown GLUE task 'NOPE'" in info.value.evalue and "MRPC" in info.value.evalue
    # papermill still wrote the executed notebook, flagged as failed
    nb = nbformat.read(roots["out"] / "bad_task.ipynb", as_version=4)
    assert nb.metadata.papermill.exception is True


def test_help_shows_types_and_help():
    """`papermill --help-notebook` (what a user reads first) lists every parameter with its type and help."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "papermill", "--help-notebook", str(NOTEBOOKS / "retrain.ipynb")],
                         capture_output=True, text=True, check=True).stdout
    for line in ("plan: str", "task: str", "seed: int", "method: str", "subnetwork: str",
                 "results: Optional[str]", "checkpoints: Optional[str]"):
        assert line in out, out
    assert "GLUE task" in out

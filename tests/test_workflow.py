"""The workflow (Snakefile): what runs, what counts as done, and what happens when a run dies.

Runs Snakemake in a copy of the working tree (the files a commit of it would hold: `git ls-files -co
--exclude-standard`, without results/) on the smoke plan cut to one task and one seed (plans/wftest.yaml, written
into the copy: every rule, the super-survivor stages included, in 14 jobs). In order, on one tree:

1. a run killed (SIGKILL of Snakemake, papermill and the kernel: a crashed machine) right after the first job
   wrote a result file: the file is flagged incomplete, and the next invocation redoes the job;
2. that invocation fails (no GLUE data): the failed job leaves no result file and no half-written one;
3. the next invocation finishes the grid; a fourth does nothing.

Then a fresh clone with the results in it schedules no experiment job, whatever the files' times; the tasks and
seeds subsets; the figure rule (a failed figure notebook fails the workflow and reaches no book page).
About two minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("snakemake")
pytest.importorskip("papermill")
psutil = pytest.importorskip("psutil")

from trees import copy_tree, fresh_clone, git  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PLAN = "wftest"
TASK, SEED = "MRPC", 1337
RUN = f"results/{PLAN}/{TASK}/seed_{SEED}"
EXPERIMENT_RULES = {"finetune", "prune_s", "prune_m", "retrain", "super_masks", "retrain_super", "lottery", "swap"}

pytestmark = pytest.mark.slow


# --- helpers -----------------------------------------------------------------------------------------------

def write_test_plan(tree: Path) -> None:
    plan = yaml.safe_load((REPO / "plans" / "smoke.yaml").read_text())
    plan.update(name=PLAN, description="the smoke plan on one task and one seed (tests/test_workflow.py)",
                tasks=[TASK], seeds=[SEED])
    (tree / "plans" / f"{PLAN}.yaml").write_text(yaml.safe_dump(plan))


def environment(glue: Path | str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("LOTTERY_RESULTS", "LOTTERY_CHECKPOINTS")}
    env.update(LOTTERY_GLUE_DIR=str(glue), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return env


def snakemake_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", *args]


def snakemake(tree: Path, *args: str, glue: Path | str, config: tuple[str, ...] = (f"plan={PLAN}",),
              check: bool = True) -> subprocess.CompletedProcess:
    cmd = snakemake_cmd("--config", *config, *args)  # --config first: it takes every KEY=VALUE after it
    proc = subprocess.run(cmd, cwd=tree, env=environment(glue), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def scheduled(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Jobs per rule from the 'Job stats' table of a (dry) run; {} when there is nothing to be done."""
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    match = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+\d+", text, re.S)
    assert match, f"no job stats in:\n{text[-3000:]}"
    return {name: int(count) for name, count in re.findall(r"^(\S+)\s+(\d+)$", match.group(1), re.M)}


def experiment_jobs(proc) -> dict[str, int]:
    return {rule: n for rule, n in scheduled(proc).items() if rule in EXPERIMENT_RULES}


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (the Jupyter kernel runs in a session of its own)."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    procs = [root]
    root.suspend()  # no new children while we collect them
    procs += root.children(recursive=True)
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)


# --- one tree, four invocations ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def story(tmp_path_factory, glue_root):
    """Killed, failed, finished, and once more: what each invocation left behind."""
    tree = copy_tree(tmp_path_factory.mktemp("wf") / "repo")
    write_test_plan(tree)
    first = tree / RUN / "finetune" / "metrics.json"
    facts: dict = {"tree": tree, "glue": glue_root}

    # 1. killed right after the first job wrote its first result file
    log = tree.parent / "killed_run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(snakemake_cmd("--cores", "2", "--config", f"plan={PLAN}", "--", "experiments"),
                                cwd=tree, env=environment(glue_root), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.time() + 300
    try:
        while not first.exists():
            assert proc.poll() is None, f"snakemake ended before writing the first result:\n{log.read_text()[-5000:]}"
            assert time.time() < deadline, "no result after 5 minutes"
            time.sleep(0.02)
    finally:
        kill_tree(proc.pid)
        proc.wait()
    facts["after_kill"] = sorted(p.name for p in first.parent.iterdir())
    facts["first_bytes"] = first.read_bytes() if first.exists() else None
    # a crash leaves Snakemake's lock behind: `snakemake --unlock` (make unlock) lifts it
    snakemake(tree, "--unlock", glue=glue_root)
    facts["dry_plain"] = snakemake(tree, "-n", glue=glue_root, check=False)
    facts["dry_ri"] = snakemake(tree, "-n", "--rerun-incomplete", glue=glue_root)

    # 2. the redo fails: no GLUE data
    empty = tmp_path_factory.mktemp("no_glue")
    facts["failed"] = snakemake(tree, "--cores", "2", "--rerun-incomplete", glue=empty, check=False)
    facts["after_failure"] = sorted(p.name for p in first.parent.iterdir()) if first.parent.exists() else []
    failed_log = tree / f"logs/{PLAN}/{TASK}/seed_{SEED}/finetune.ipynb"
    facts["failed_log"] = json.loads(failed_log.read_text()) if failed_log.exists() else None
    facts["dry_after_failure"] = snakemake(tree, "-n", "--rerun-incomplete", glue=glue_root)

    # 3. finished; 4. once more
    start = time.time()
    facts["finished"] = snakemake(tree, "--cores", "2", "--rerun-incomplete", glue=glue_root)
    facts["finish_seconds"] = time.time() - start
    facts["results"] = {str(p.relative_to(tree)): p.stat().st_mtime_ns
                        for p in sorted((tree / "results").rglob("*")) if p.is_file()}
    facts["again"] = snakemake(tree, "--cores", "2", glue=glue_root)
    facts["dry_again"] = snakemake(tree, "-n", glue=glue_root)
    return facts


def test_killed_run_flags_its_job_incomplete(story):
    # the kill came after the first result file of the fine-tuning job and before the job's end
    assert "metrics.json" in story["after_kill"]
    json.loads(story["first_bytes"])  # written atomically: whole, even though the job was killed
    # Snakemake will not take the file for done: a plain call (the workflow profile in profiles/default sets
    # rerun-incomplete) and an explicit --rerun-incomplete both schedule the job again
    plain = story["dry_plain"]
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "profiles/default" in plain.stdout + plain.stderr
    assert scheduled(plain)["finetune"] == 1
    assert scheduled(story["dry_ri"])["finetune"] == 1


def test_failed_job_leaves_no_result_file(story):
    failed = story["failed"]
    assert failed.returncode != 0
    log = failed.stdout + failed.stderr
    assert "Error in rule finetune" in log
    # Snakemake removed the declared outputs (the killed run's metrics.json among them) ...
    for name in ("metrics.json", "attention.npz", "gallery.npz"):
        assert name not in story["after_failure"]
    # the executed notebook is the job's log: kept, with papermill's error in it
    nb = story["failed_log"]
    assert nb is not None and nb["metadata"]["papermill"]["exception"] is True
    assert "GlueNotFoundError" in json.dumps(nb)
    # the next invocation redoes it
    assert scheduled(story["dry_after_failure"])["finetune"] == 1


def test_finished_run_wrote_every_result_and_log(story):
    tree = story["tree"]
    jobs = scheduled(story["finished"])
    # the smoke plan's beyond_paper section names MRPC seed 1337: one lottery point (3 variants) and the swap (2)
    assert jobs == {"finetune": 1, "prune_m": 1, "prune_s": 1, "retrain": 6, "super_masks": 1,
                    "retrain_super": 3, "lottery": 3, "swap": 2, "all": 1}, jobs
    results = story["results"]
    expected = [f"{RUN}/finetune/{f}" for f in ("metrics.json", "attention.npz", "gallery.npz")]
    expected += [f"{RUN}/prune_{m}/search.json" for m in "ms"]
    expected += [f"{RUN}/retrain_{m}_{s}/metrics.json" for m in ("m", "s", "super") for s in ("good", "random", "bad")]
    expected += [f"results/{PLAN}/{TASK}/super/masks/{s}.{e}" for s in ("good", "random", "bad") for e in ("npz", "json")]
    expected += [f"{RUN}/lottery/f0.50_{s}/{f}" for s in ("good", "random", "bad")
                 for f in ("metrics.json", "predictions.npz", "mask.npz", "mask.json")]
    expected += [f"{RUN}/swap/{v}/metrics.json" for v in ("good_heads_random_mlps", "random_heads_good_mlps")]
    for rel in expected:
        assert rel in results, rel
        if rel.endswith(".json"):
            json.loads((tree / rel).read_text())
    # a write cut short by the kill may leave a temporary file (.<name>.<random>.tmp) that no reader takes for a
    # result; git ignores them
    stray = [r for r in results if r.endswith(".tmp") or ".partial/" in r]
    if stray:
        assert git("check-ignore", *stray).split() == stray
    # checkpoints stay out of results/, executed notebooks are in logs/
    assert (tree / "checkpoints" / PLAN / TASK / f"seed_{SEED}" / "model.safetensors").is_file()
    logs = {p.name for p in (tree / "logs" / PLAN / TASK / f"seed_{SEED}").glob("*.ipynb")}
    assert {"finetune.ipynb", "prune_s.ipynb", "prune_m.ipynb", "retrain_m_good.ipynb",
            "retrain_super_bad.ipynb"} <= logs
    assert (tree / "logs" / PLAN / TASK / "super_masks.ipynb").is_file()


def test_second_run_does_nothing(story):
    assert "Nothing to be done" in story["again"].stdout + story["again"].stderr
    assert scheduled(story["dry_again"]) == {}
    tree = story["tree"]
    now = {str(p.relative_to(tree)): p.stat().st_mtime_ns for p in sorted((tree / "results").rglob("*")) if p.is_file()}
    assert now == story["results"]


# --- a fresh clone -----------------------------------------------------------------------------------------

def test_fresh_clone_with_results_schedules_no_experiment(story, tmp_path):
    clone = fresh_clone(tmp_path / "clone")
    write_test_plan(clone)
    # the results as a commit would carry them, older than everything else in the clone
    shutil.copytree(story["tree"] / "results" / PLAN, clone / "results" / PLAN)
    old = time.time() - 86400
    for path in (clone / "results").rglob("*"):
        os.utime(path, (old, old))
    # the templates, the plans and the Snakefile newer (a checkout writes them in whatever order)
    for path in [*(clone / "notebooks").rglob("*.ipynb"), *(clone / "plans").glob("*.yaml"), clone / "Snakefile"]:
        path.touch()
    assert not (clone / ".snakemake").exists() and not (clone / "checkpoints").exists()

    dry = snakemake(clone, "-n", glue=story["glue"])  # what a user types: every rerun trigger on
    assert scheduled(dry) == {}, dry.stdout[-3000:]
    # the figures (outputs not committed) would run, and still no experiment job
    dry = snakemake(clone, "-n", "figures", glue=story["glue"])
    assert experiment_jobs(dry) == {}

    # the plan of the book: its committed results, if this repository holds them, count as done as cloned
    if git("ls-files", "results/smoke"):
        dry = snakemake(clone, "-n", glue=story["glue"], config=("plan=smoke",))
        assert experiment_jobs(dry) == {}, dry.stdout[-3000:]


# --- configuration -----------------------------------------------------------------------------------------

def test_tasks_and_seeds_subsets(story):
    tree, glue = story["tree"], story["glue"]
    dry = snakemake(tree, "-n", glue=glue, config=("plan=smoke", "tasks=MRPC", "seeds=1337"))
    # one task, one seed of the two: the super-survivor stages need every seed, so they are left out
    # (the plan's section-10 runs are on MRPC, seed 1337: 3 lottery points at one fraction, 2 swaps)
    assert experiment_jobs(dry) == {"finetune": 1, "prune_s": 1, "prune_m": 1, "retrain": 6, "lottery": 3, "swap": 2}
    assert "left out" in dry.stderr
    dry = snakemake(tree, "-n", glue=glue, config=("plan=smoke", "tasks=mrpc,RTE", "seeds=[1337, 42]"))
    assert experiment_jobs(dry) == {"finetune": 4, "prune_s": 4, "prune_m": 4, "retrain": 24,
                                    "super_masks": 2, "retrain_super": 12, "lottery": 3, "swap": 2}
    # the section-10 runs alone: the fine-tune and the s-pruning search they start from, no other re-fine-tune
    dry = snakemake(tree, "-n", "--", "beyond_paper", glue=glue, config=("plan=smoke",))
    assert experiment_jobs(dry) == {"finetune": 1, "prune_s": 1, "lottery": 3, "swap": 2}
    bad = snakemake(tree, "-n", glue=glue, config=("plan=smoke", "tasks=CoLA"), check=False)
    assert bad.returncode != 0 and "task CoLA is not in plan 'smoke'" in bad.stdout + bad.stderr
    bad = snakemake(tree, "-n", glue=glue, config=("plan=nope",), check=False)
    assert bad.returncode != 0 and "no plan 'nope'" in bad.stdout + bad.stderr


def test_committed_only_draws_what_is_there_and_computes_nothing(story, tmp_path):
    clone = fresh_clone(tmp_path / "partial")
    write_test_plan(clone)
    # half a grid: the fine-tuning results only (a long grid still running elsewhere)
    src = story["tree"] / RUN / "finetune"
    shutil.copytree(src, clone / RUN / "finetune")
    dry = snakemake(clone, "-n", "--forcerun", "figure", "--", "figures", glue=story["glue"],
                    config=(f"plan={PLAN}", "committed_only=1"))
    assert experiment_jobs(dry) == {}, dry.stdout[-3000:]
    assert scheduled(dry).get("figure", 0) > 0
    assert "result files of plan 'wftest' exist" in dry.stderr
    # without it, the same call would run the rest of the grid first
    dry = snakemake(clone, "-n", "--forcerun", "figure", "--", "figures", glue=story["glue"], config=(f"plan={PLAN}",))
    assert experiment_jobs(dry).get("retrain", 0) > 0


def test_gpu_resource_is_declared_only_when_asked(story):
    tree, glue = story["tree"], story["glue"]
    dry = snakemake(tree, "-n", "--forcerun", "finetune", "--", f"{RUN}/finetune/metrics.json", glue=glue,
                    config=(f"plan={PLAN}",))
    assert "gpu=0" in dry.stdout
    dry = snakemake(tree, "-n", "--forcerun", "finetune", "--", f"{RUN}/finetune/metrics.json", glue=glue,
                    config=(f"plan={PLAN}", "gpu=1"))
    assert "gpu=1" in dry.stdout


# --- figures -----------------------------------------------------------------------------------------------

FIGURE_OK = """
import json, os
from pathlib import Path
metrics = json.loads((Path(os.environ["LOTTERY_RESULTS"]) / plan / "MRPC" / "seed_1337" / "finetune" / "metrics.json").read_text())
print(metrics["metrics"])
"""


def figure_notebook(path: Path, code: str) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('plan = "smoke"  # plan')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# A figure"), params, nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_figure_notebooks_execute_and_a_failed_one_fails_the_workflow(story, tmp_path):
    # a tree of its own: this figure set replaces the book's (which needs the whole smoke plan)
    tree = tmp_path / "repo"
    shutil.copytree(story["tree"], tree, ignore=shutil.ignore_patterns(".snakemake", "logs", "checkpoints"))
    shutil.rmtree(tree / "notebooks" / "figures", ignore_errors=True)
    shutil.rmtree(tree / "book" / "figures", ignore_errors=True)
    figure_notebook(tree / "notebooks" / "figures" / "ok.ipynb", FIGURE_OK)
    figure_notebook(tree / "notebooks" / "figures" / "broken.ipynb", "raise RuntimeError('this figure is broken')")
    glue = story["glue"]

    run = snakemake(tree, "--cores", "2", "--keep-going", "--forcerun", "figure", "--", "figures", glue=glue,
                    check=False)
    assert run.returncode != 0
    assert experiment_jobs(run) == {}  # the results are there: only figures ran
    assert (tree / "book" / "figures" / "ok.ipynb").is_file()
    assert not (tree / "book" / "figures" / "broken.ipynb").exists()  # never reaches the book
    log = json.loads((tree / "logs" / PLAN / "figures" / "broken.ipynb").read_text())
    assert log["metadata"]["papermill"]["exception"] is True  # the executed notebook is kept as the log
    executed = json.loads((tree / "book" / "figures" / "ok.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["plan"] == PLAN
    assert "acc" in json.dumps(executed["cells"][-1]["outputs"])

    (tree / "notebooks" / "figures" / "broken.ipynb").unlink()
    before = (tree / "book" / "figures" / "ok.ipynb").stat().st_mtime_ns
    snakemake(tree, "--cores", "2", "--forcerun", "figure", "--", "figures", glue=glue)
    assert (tree / "book" / "figures" / "ok.ipynb").stat().st_mtime_ns > before  # --forcerun: always re-executed

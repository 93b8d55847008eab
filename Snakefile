# lotterybook workflow: every run of a plan -> the figure notebooks -> the book.
#
#   snakemake --cores 2                                  # the whole grid of the default plan (smoke)
#   snakemake --cores 2 --config plan=demo               # another plan (plans/<name>.yaml, or a path to one)
#   snakemake --cores 2 --config plan=demo tasks=MRPC,RTE seeds=1337     # a subset of its tasks and seeds
#   snakemake --cores 2 --config plan=demo -- beyond_paper   # only the runs of METHOD.md section 10 (and their inputs)
#   snakemake --cores 2 --forcerun figure -- figures     # (re-)execute the figure notebooks into book/figures/
#   snakemake -n                                         # what would run, and why
#
# `make book` runs the experiments, then the figures (always re-executed: --forcerun figure), then the strict
# Jupyter Book build, with --rerun-incomplete and --rerun-triggers mtime (see "Up to date" below).
#
# Every job runs one stage notebook with papermill:
#   papermill notebooks/<stage>.ipynb logs/<plan>/<task>/seed_<seed>/<stage>.ipynb --cwd notebooks -k python3 -p ...
# The executed notebook is the job's log (logs/ is not committed; it is kept when a job fails: look there first).
#
# Up to date. The result files under results/<plan>/ are committed; checkpoints/ is not. On a fresh clone every
# file gets its checkout time, so every input (notebook templates, the plan, upstream result files) is wrapped in
# ancient(): a job runs only when one of its outputs is missing (or incomplete, see below), never because an
# input is newer. Checkpoints are never inputs: a stage that needs a missing checkpoint re-creates it by
# fine-tuning again with the run's seed (and checks the dev metric against the committed one).
# Consequence: re-running a stage does not re-run what follows it. To redo a stage and everything after it,
# delete its result files (or --forcerun every downstream rule); to redo a whole plan, delete results/<plan>/.
# Snakemake also re-runs jobs whose rule code or params changed since it last ran them (metadata in .snakemake/,
# not committed); `make book` passes --rerun-triggers mtime so that editing a notebook's prose does not redo a
# demo grid.
#
# Failures. lotterylib writes every result file atomically (temporary file, then rename): a result file is whole
# or absent. Snakemake deletes the declared outputs of a failed job, and flags outputs as incomplete while their
# job runs: after a killed run (Ctrl-C, a time limit) the next invocation with --rerun-incomplete (`make book`
# and the profiles pass it) deletes and redoes them; without it Snakemake stops with IncompleteFilesException.
# A hard kill (kill -9, a crashed machine) also leaves Snakemake's lock: `snakemake --unlock` (`make unlock`)
# lifts it. A job's executed notebook (logs/) is kept when it fails: the error is at its failing cell.
# A killed job's fine-tune is not lost: every 10 minutes ($LOTTERY_RESUME_EVERY seconds) it writes its state
# under <checkpoints>/<plan>/<task>/seed_<seed>/resume/, and the redone job goes on from there, to the same
# result bit for bit (lotterylib.run.resume).
#
# Config (all optional, --config key=value):
#   plan         plan name in plans/ or path to a plan YAML file                       (default: smoke)
#   tasks        subset of the plan's tasks, comma-separated or a YAML list            (default: all)
#   seeds        subset of the plan's seeds                                            (default: all)
#                (the super-survivor stages need every seed of the plan: with a strict subset of the seeds they
#                are left out of the targets)
#   results      results root        (default: $LOTTERY_RESULTS, else results)
#   checkpoints  checkpoints root    (default: $LOTTERY_CHECKPOINTS, else checkpoints)
#   logs         executed notebooks  (default: logs)
#   threads      threads per job (OMP/MKL/torch threads)                               (default: 1)
#   gpu          GPUs per experiment job, declared as resources: gpu=<n>               (default: 0)
#   papermill_args  extra papermill options for every job                              (default: --no-progress-bar)
#   committed_only  1: no result file is a target or an input, so no experiment job can be scheduled: the figure
#                notebooks draw the result files that are there and say how many. `make book` passes it (with
#                --nolock) for the demo plan, whose grid runs for CPU-hours: `make experiments PLAN=demo` runs it.
#
# GPUs. Experiment jobs declare `resources: gpu=<config gpu>` (0 by default, so CPU runs need nothing). The
# multigpu profile sets it (one machine, several GPUs; set-resources gpu: 1 per experiment rule and
# `resources: gpu=<n GPUs>` to cap them); with profiles/slurm, `--config gpu=1` asks SLURM for one GPU per
# experiment job (sbatch --gpus=1; without it the jobs ask for none). By hand:
#   snakemake --cores 16 --config plan=demo gpu=1 threads=4 --resources gpu=4
# A job with gpu > 0 runs under tools/gpu_slot.sh, which takes a free GPU slot (a lock file per GPU and slot;
# `jobs_per_gpu` slots per GPU, 1 unless a profile sets it: profiles/gpu shares one GPU among several jobs) and
# sets CUDA_VISIBLE_DEVICES; on a machine without GPUs, or under SLURM, it runs the command unchanged.

import os
import shlex
import sys
from pathlib import Path

from lotterylib.config import plans as _plans
from lotterylib.errors import ConfigError
from lotterylib.config.plans import Plan
from lotterylib.config.tasks import get_task
from lotterylib.store import layout as L

from lotterylib.method.pruning import METHODS
from lotterylib.method.subnetworks import SUBNETWORKS, SWAP_VARIANTS


# --- configuration -------------------------------------------------------------------------------------------

def _plan_path(arg: str) -> Path:
    """A plan name resolves against this repository's plans/ folder; a .yaml/.yml argument is a path."""
    path = Path(arg)
    if path.suffix in (".yaml", ".yml"):
        return path.resolve()
    local = Path(workflow.basedir) / "plans" / f"{arg}.yaml"
    return local if local.exists() else path  # Plan.load gives the error that lists the known plans


def _as_list(value) -> list | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)):
        return list(value)
    return str(value).replace(",", " ").split()


# --config keys: each one known, each value checked before anything runs (a typo must not run a whole grid).
CONFIG_KEYS = ("plan", "tasks", "seeds", "results", "checkpoints", "logs", "threads", "gpu", "papermill_args",
               "committed_only")
_unknown = sorted(set(config) - set(CONFIG_KEYS))
if _unknown:
    raise ConfigError(f"unknown --config key{'s' if len(_unknown) > 1 else ''} {_unknown}; known: {list(CONFIG_KEYS)} "
                      "(see the Snakefile's header)")


def _config_int(key: str, default: int, low: int) -> int:
    value = config.get(key, default)
    try:
        number = int(str(value))
    except ValueError:
        number = None
    if number is None or number < low or isinstance(value, bool):
        raise ConfigError(f"--config {key}={value!r}: use an integer >= {low}")
    return number


PLAN_ARG = str(config.get("plan", "smoke"))
PLAN_FILE = _plan_path(PLAN_ARG)
PLAN = Plan.load(PLAN_FILE)
P = PLAN.name
# What the notebooks get as `plan`: the bare name where lotterylib resolves it to this very file, else the path.
# (The jobs import lotterylib from this tree, as this file does: see _ENV.)
_lib_file = _plans.PLANS_DIR / f"{P}.yaml"
PLAN_PARAM = P if _lib_file.exists() and _lib_file.resolve() == Path(PLAN_FILE).resolve() else str(PLAN_FILE)

TASKS = [get_task(t).name for t in (_as_list(config.get("tasks")) or PLAN.tasks)]
_seed_args = _as_list(config.get("seeds")) or PLAN.seeds
if not all(str(s).isdigit() for s in _seed_args):
    raise ConfigError(f"--config seeds={config.get('seeds')!r}: use seeds of plan {P!r} {list(PLAN.seeds)}, "
                      "comma-separated (seeds=42,86)")
SEEDS = [int(s) for s in _seed_args]
for _t in TASKS:
    if _t not in PLAN.tasks:
        raise ConfigError(f"--config tasks: task {_t} is not in plan {P!r} (tasks: {list(PLAN.tasks)})")
for _s in SEEDS:
    if _s not in PLAN.seeds:
        raise ConfigError(f"--config seeds: seed {_s} is not in plan {P!r} (seeds: {list(PLAN.seeds)})")
WITH_SUPER = set(SEEDS) == set(PLAN.seeds) and "super" in PLAN.stages
if set(SEEDS) != set(PLAN.seeds) and "super" in PLAN.stages:
    print(f"lotterybook: seeds {SEEDS} are a subset of plan {P!r}'s seeds {list(PLAN.seeds)}: the "
          "super-survivor stages (which need every seed) are left out of the targets", file=sys.stderr)

RESULTS = str(config.get("results") or os.environ.get("LOTTERY_RESULTS") or "results")
CHECKPOINTS = str(config.get("checkpoints") or os.environ.get("LOTTERY_CHECKPOINTS") or "checkpoints")
LOGS = str(config.get("logs") or "logs")
THREADS = _config_int("threads", 1, 1)
GPU = _config_int("gpu", 0, 0)
PAPERMILL_ARGS = str(config.get("papermill_args", "--no-progress-bar"))

# Result paths come from lotterylib.store.layout (the one module that spells the layout), as Snakemake patterns:
# every part a wildcard, e.g. RESULT("finetune_file", L.METRICS) = results/<plan>/{task}/seed_{seed}/finetune/metrics.json


def RESULT(kind: str, *args, task="{task}", seed="{seed}") -> str:
    """The pattern (or, with task and seed given, the path) of a result file: ``layout.<kind>(plan, task, seed,
    *args)`` under this workflow's results root."""
    return str(getattr(L, kind)(P, task, seed, *args, root=RESULTS))


def SUPER_MASK(sub: str, ext: str, task="{task}") -> str:
    return str(L.mask_file(P, task, None, "super", sub, ext, root=RESULTS))


RUN_LOGS = f"{LOGS}/{P}/{{task}}/seed_{{seed}}"

wildcard_constraints:
    task=r"[^/]+",
    seed=r"\d+",
    method="|".join(METHODS),
    sub="|".join(SUBNETWORKS),
    swap="|".join(SWAP_VARIANTS),
    fraction=r"\d\.\d\d",
    name=r"[^/]+",


# --- the shell of every job ----------------------------------------------------------------------------------

_q = shlex.quote
# The command templates below name these through {placeholders} that Snakemake fills in when a job runs (it formats
# shell commands with the Snakefile's globals too). So the recorded command text (Snakemake's "code" rerun
# trigger) does not change with the folder the repository sits in or the Python environment that runs it.
SH_PYTHON = _q(sys.executable)
SH_JUPYTER_BOOK = _q(str(Path(sys.executable).parent / "jupyter-book"))
SH_BASE = _q(str(Path(workflow.basedir)))
SH_RESULTS = _q(os.path.abspath(RESULTS))
SH_CHECKPOINTS = _q(os.path.abspath(CHECKPOINTS))
SH_PLAN = _q(PLAN_PARAM)
# Every job sees the same roots as the notebooks' parameters (the figure notebooks read them from the environment),
# and imports lotterylib from this tree, as this Snakefile did (Snakemake puts its folder first on sys.path), even
# where the environment holds another copy (an editable install of another checkout).
_ENV = ("export LOTTERY_RESULTS={SH_RESULTS} LOTTERY_CHECKPOINTS={SH_CHECKPOINTS} "
        "PYTHONPATH={SH_BASE}${{PYTHONPATH:+:$PYTHONPATH}} OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}; ")
# Several GPUs on one machine: a job that declares a GPU runs under tools/gpu_slot.sh, which takes a free GPU
# (one lock file per GPU) and sets CUDA_VISIBLE_DEVICES; without a GPU, or under SLURM, it changes nothing.
_GPU_SLOT = ('slot=""; if [ "{resources.gpu}" -gt 0 ]; then '
             'slot="bash {SH_BASE}/tools/gpu_slot.sh --jobs-per-gpu {resources.jobs_per_gpu}"; fi; $slot ')
_PAPERMILL = "{SH_PYTHON} -m papermill " + PAPERMILL_ARGS.replace("{", "{{").replace("}", "}}") + " -k python3"


def stage(notebook: str, params: str) -> str:
    """The shell command of a stage job: papermill, executed notebook as the log, roots as parameters."""
    return (_ENV + _GPU_SLOT + f"{_PAPERMILL} notebooks/{notebook}.ipynb {{log}} --cwd notebooks "
            f"-p plan {{SH_PLAN}} {params} -p results {{SH_RESULTS}} -p checkpoints {{SH_CHECKPOINTS}}")


def plan_inputs(notebook: str) -> dict:
    """Inputs every stage has: its notebook template and the plan file, both ancient (see the header)."""
    return {"notebook": ancient(f"notebooks/{notebook}.ipynb"), "plan": ancient(str(PLAN_FILE))}


# --- targets -------------------------------------------------------------------------------------------------

def run_results(task: str, seed: int) -> list[str]:
    """Every result file a rule declares for one (task, seed), for the plan's stages."""
    at = {"task": task, "seed": seed}
    files = []
    if "finetune" in PLAN.stages:
        files += [RESULT("finetune_file", f, **at) for f in (L.METRICS, L.ATTENTION, L.GALLERY)]
    if "prune" in PLAN.stages:
        files += [RESULT("search_file", m, **at) for m in METHODS]
    if "retrain" in PLAN.stages:
        files += [RESULT("retrain_file", m, s, **at) for m in METHODS for s in SUBNETWORKS]
    if WITH_SUPER:
        files += [RESULT("retrain_file", "super", s, **at) for s in SUBNETWORKS]
    return files


BEYOND = PLAN.beyond_paper


def beyond_results(task: str, seed: int) -> list[str]:
    """The result files of METHOD.md section 10 (lottery curves, component swap) for one (task, seed) of the
    plan's beyond_paper section; none for the others."""
    if task not in BEYOND.tasks or int(seed) not in BEYOND.seeds:
        return []
    at = {"task": task, "seed": seed}
    files = []
    if "lottery" in PLAN.stages:
        files += [RESULT("lottery_file", f, s, **at) for f in BEYOND.head_fractions for s in SUBNETWORKS]
    if "swap" in PLAN.stages:
        files += [RESULT("swap_file", v, **at) for v in SWAP_VARIANTS]
    return files


def super_results(task: str) -> list[str]:
    return [SUPER_MASK(s, ext, task=task) for s in SUBNETWORKS for ext in ("npz", "json")]


RESULT_FILES = [f for t in TASKS for s in SEEDS for f in run_results(t, s) + beyond_results(t, s)]
if WITH_SUPER:
    RESULT_FILES += [f for t in TASKS for f in super_results(t)]
BEYOND_FILES = [f for t in TASKS for s in SEEDS for f in beyond_results(t, s)]
COMMITTED_ONLY = str(config.get("committed_only", "0")).lower() in ("1", "true", "yes")
if COMMITTED_ONLY:
    # No result file is a target or an input: Snakemake cannot schedule (or, on failure, delete) any experiment
    # job, not even one it finds flagged incomplete because a grid is running in this folder right now.
    _there = sum(Path(f).exists() for f in RESULT_FILES)
    print(f"lotterybook: committed_only: {_there} of the {len(RESULT_FILES)} result files of plan {P!r} exist; "
          "the figures draw those, and no run is computed", file=sys.stderr)
    RESULT_FILES = BEYOND_FILES = []

# Figure notebooks: every notebooks/figures/<name>.ipynb, executed into book/figures/<name>.ipynb.
FIGURES = sorted(p.stem for p in Path("notebooks/figures").glob("*.ipynb"))

localrules: all, experiments, beyond_paper, figures, figure, book


rule all:
    """Every result file of the plan (or of the chosen tasks and seeds)."""
    input: RESULT_FILES


rule experiments:
    """The same as `all`."""
    input: RESULT_FILES


rule beyond_paper:
    """Only the runs of METHOD.md section 10 (the plan's beyond_paper section: heads-only lottery curves and the
    component swap), with the fine-tunes and searches they start from; no other re-fine-tune."""
    input: BEYOND_FILES


# --- stages --------------------------------------------------------------------------------------------------

rule finetune:
    """Fine-tune the full model; dev metrics, attention statistics (and single removals for some seeds)."""
    input:
        **plan_inputs("finetune"),
    output:
        metrics=RESULT("finetune_file", L.METRICS),
        attention=RESULT("finetune_file", L.ATTENTION),
        gallery=RESULT("finetune_file", L.GALLERY),
    log: f"{RUN_LOGS}/finetune.ipynb"
    threads: THREADS
    resources: gpu=GPU, jobs_per_gpu=1
    shell: stage("finetune", "-p task {wildcards.task} -p seed {wildcards.seed}")


for _method in METHODS:
    rule:
        """The m- or s-pruning search, then good/random/bad evaluated pruned only."""
        name: f"prune_{_method}"
        input:
            **plan_inputs("prune"),
            finetuned=ancient(RESULT("finetune_file", L.METRICS)),
        output: RESULT("search_file", _method)
        log: f"{RUN_LOGS}/prune_{_method}.ipynb"
        # (the shell is evaluated when the job runs, after the loop: the method must come through params)
        params: method=_method
        threads: THREADS
        resources: gpu=GPU, jobs_per_gpu=1
        shell: stage("prune", "-p task {wildcards.task} -p seed {wildcards.seed} -p method {params.method}")


rule retrain:
    """Rewind, mask with one m- or s-pruning subnetwork, fine-tune again, evaluate."""
    input:
        **plan_inputs("retrain"),
        search=ancient(RESULT("search_file", "{method}")),
    output: RESULT("retrain_file", "{method}", "{sub}")
    log: f"{RUN_LOGS}/retrain_{{method}}_{{sub}}.ipynb"
    threads: THREADS
    resources: gpu=GPU, jobs_per_gpu=1
    shell:
        stage("retrain", "-p task {wildcards.task} -p seed {wildcards.seed} "
              "-p method {wildcards.method} -p subnetwork {wildcards.sub}")


rule super_masks:
    """Super-survivors of a task (kept by s-pruning in every seed of the plan) and their random and bad twins."""
    input:
        **plan_inputs("super"),
        searches=[ancient(RESULT("search_file", "s", seed=s)) for s in PLAN.seeds],
    output: [SUPER_MASK(s, ext) for s in SUBNETWORKS for ext in ("npz", "json")]
    log: f"{LOGS}/{P}/{{task}}/super_masks.ipynb"
    threads: 1
    resources: gpu=0, jobs_per_gpu=1
    shell: stage("super", "-p task {wildcards.task}")


rule retrain_super:
    """Rewind, mask with one super-survivor subnetwork of the task, fine-tune again with this seed, evaluate."""
    input:
        **plan_inputs("retrain"),
        masks=ancient(SUPER_MASK("{sub}", "json")),
        search=ancient(RESULT("search_file", "s")),
    output: RESULT("retrain_file", "super", "{sub}")
    log: f"{RUN_LOGS}/retrain_super_{{sub}}.ipynb"
    threads: THREADS
    resources: gpu=GPU, jobs_per_gpu=1
    shell:
        stage("retrain", "-p task {wildcards.task} -p seed {wildcards.seed} -p method super -p subnetwork {wildcards.sub}")


rule lottery:
    """One point of a heads-only lottery curve (METHOD.md section 10): remove a fraction of the heads by the full
    model's importance (good, bad) or at random, keep every MLP, re-fine-tune."""
    input:
        **plan_inputs("lottery"),
        search=ancient(RESULT("search_file", "s")),
    output: RESULT("lottery_file", "{fraction}", "{sub}")
    log: f"{RUN_LOGS}/lottery_f{{fraction}}_{{sub}}.ipynb"
    threads: THREADS
    resources: gpu=GPU, jobs_per_gpu=1
    shell:
        stage("lottery", "-p task {wildcards.task} -p seed {wildcards.seed} -p fraction {wildcards.fraction} "
              "-p variant {wildcards.sub}")


rule swap:
    """The component swap (METHOD.md section 10): good heads with random MLPs, random heads with good MLPs."""
    input:
        **plan_inputs("swap"),
        search=ancient(RESULT("search_file", "s")),
    output: RESULT("swap_file", "{swap}")
    log: f"{RUN_LOGS}/swap_{{swap}}.ipynb"
    threads: THREADS
    resources: gpu=GPU, jobs_per_gpu=1
    shell: stage("swap", "-p task {wildcards.task} -p seed {wildcards.seed} -p variant {wildcards.swap}")


# --- figures and the book ------------------------------------------------------------------------------------
# The figure notebooks read only result files and run in seconds. `make book` re-executes them every time
# (--forcerun figure): their inputs are ancient, so Snakemake alone would not notice new results or a new plan.
# papermill writes the executed notebook into logs/ first (kept there when it fails) and only a successful run is
# copied to book/figures/, the folder the book renders (not committed).

# papermill tags its injected-parameters cell with that tag only: lotterylib.report.views hides it from the page.
FIGURE_SHELL = (_ENV + _PAPERMILL + " {input.notebook} {log} --cwd notebooks/figures -p plan {SH_PLAN} && "
                "{SH_PYTHON} -m lotterylib.report.views {log} && cp {log} {output}")


rule figure:
    """Execute one figure notebook on the plan's results."""
    input:
        notebook=ancient("notebooks/figures/{name}.ipynb"),
        results=[ancient(f) for f in RESULT_FILES],
    output: "book/figures/{name}.ipynb"
    log: f"{LOGS}/{P}/figures/{{name}}.ipynb"
    threads: 1
    shell: FIGURE_SHELL


rule figures:
    """Every figure notebook, executed (use with --forcerun figure to re-execute them)."""
    input: expand("book/figures/{name}.ipynb", name=FIGURES)


rule book:
    """The strict Jupyter Book build of the executed figure notebooks (use with --forcerun figure book)."""
    input: rules.figures.input
    output: "_build/html/index.html"
    threads: 1
    shell: "{SH_JUPYTER_BOOK} build . --all -W -n --keep-going"

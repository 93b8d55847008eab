"""The cluster path, run: the smoke grid of one task and seed through ``snakemake --profile profiles/slurm`` on a
real one-node SLURM cluster (Debian's slurm-wlm and munge, started by ``tools/slurm_cluster.sh up``), checked
against a local run of the same jobs.

- Every result file of the SLURM run exists and matches the local run: JSON values equal (numbers to 1e-6), apart
  from provenance and wall-clock times; arrays equal (subnetwork masks exactly, other arrays to 1e-6).
- A job cancelled mid-run (``scancel``) fails its invocation, and the next invocation redoes it and nothing else:
  every other result file keeps its modification time.
- The GPU switch (``--config gpu=1``) submits with ``--gpus=1`` and SLURM grants the job a GPU (a stand-in on a
  machine without one: the job runs on the CPU and gives the same results).

Needs root (the cluster's daemons). Without root, or without the packages (``tools/slurm_cluster.sh install``),
or on a machine whose /etc/slurm/slurm.conf belongs to a real cluster, it skips; under CI (``CI`` set, as
``.ci/run`` does) it fails instead. It brings the cluster up with one stand-in GPU and, unless the cluster was
already up, takes it down at the end. About 3-5 minutes on 2 cores.

    pytest -m slurm tests/test_slurm.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tools" / "slurm_cluster.sh"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TASK, SEED = "RTE", 1337
RUN = f"smoke/{TASK}/seed_{SEED}"
# the smoke plan's jobs for one task and a strict subset of its seeds: no super-survivor stages, and RTE has no
# beyond-paper stages
STAGES = ["finetune", "prune_m", "prune_s"] + [f"retrain_{m}_{s}" for m in "ms" for s in ("good", "random", "bad")]
VICTIM = "retrain_s_good"  # the job cancelled mid-run
# JSON keys that differ between two runs of the same job: provenance and wall-clock times
VOLATILE = {"created", "git_commit", "seconds", "train_seconds"}
TOL = 1e-6
# Short waits between status checks (the profile keeps the plugin's defaults, 40 s and more, fit for a busy cluster)
FAST_POLL = ["--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2"]
CLUSTER_TIMEOUT_S = 900  # `up` may install the packages first
RUN_TIMEOUT_S = 1500


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str):
    if _under_ci():
        pytest.fail(f"SLURM cluster unavailable under CI: {reason}")
    pytest.skip(reason)


def _cluster(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CLUSTER), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster():
    """A running one-node cluster with one (stand-in) GPU; down again afterwards unless it was up before."""
    if os.geteuid() != 0:
        _unavailable("needs root to start munged, slurmctld and slurmd")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _unavailable('snakemake-executor-plugin-slurm is not installed (pip install -e ".[slurm]")')
    installed = all(subprocess.run(["bash", "-c", f"command -v {c}"], capture_output=True).returncode == 0
                    for c in ("slurmctld", "slurmd", "sbatch", "munged"))
    if not installed and not _under_ci():
        pytest.skip("SLURM is not installed: run `tools/slurm_cluster.sh install` (as root) to enable this test")
    was_up = _cluster("status").returncode == 0
    up = _cluster("up", "--gpus", "1", timeout=CLUSTER_TIMEOUT_S)
    if up.returncode == 3:
        _unavailable(f"not touching this machine's SLURM configuration: {up.stderr.strip()}")
    if up.returncode != 0:
        _unavailable(f"`tools/slurm_cluster.sh up` failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
    yield
    if not was_up:
        down = _cluster("down")
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="module")
def env(glue_root) -> dict:
    return {**os.environ, "LOTTERY_GLUE_DIR": str(glue_root), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def config(root: Path, *extra: str) -> list[str]:
    return ["--config", "plan=smoke", f"tasks={TASK}", f"seeds={SEED}", f"results={root}/results",
            f"checkpoints={root}/checkpoints", f"logs={root}/logs", *extra]


def slurm_command(root: Path, *extra: str) -> list[str]:
    """The tested command: the profile as written, plus quick status checks and the SLURM logs beside the run."""
    return [SNAKEMAKE, "--profile", "profiles/slurm", *FAST_POLL, "--slurm-logdir", str(root / "slurm_logs"),
            *extra]


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def finish(proc: subprocess.Popen, log: Path, timeout: float = RUN_TIMEOUT_S) -> int:
    """The exit status of a run; on a timeout the run (its process group) is killed and the test fails."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"{' '.join(proc.args[:3])} ... ran over {timeout} s; its log ends:\n{tail(log)}")


def tail(log: Path, n: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


def jobs() -> dict[str, tuple[str, str]]:
    """SLURM job id -> (state, comment) of every job slurmctld still knows (finished ones for MinJobAge s)."""
    out = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i|%T|%k"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return {i: (state, comment) for i, state, comment in (line.split("|", 2) for line in out.splitlines())}


def job_comment(stage: str) -> str:
    """The comment the plugin gives a job (rule name and wildcard values)."""
    if stage.startswith("retrain_"):  # rule retrain, wildcards task, seed, method, sub
        return f"rule_retrain_wildcards_{TASK}_{SEED}_{stage.removeprefix('retrain_')}"
    return f"rule_{stage}_wildcards_{TASK}_{SEED}"


def result_files(root: Path) -> dict[str, int]:
    """Every file under the run's results folder -> its modification time (ns)."""
    base = root / "results" / RUN
    return {str(p.relative_to(base)): p.stat().st_mtime_ns for p in sorted(base.rglob("*")) if p.is_file()}


def assert_same_json(a, b, where: str):
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys differ"
        for key in a:
            if key not in VOLATILE:
                assert_same_json(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_json(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=TOL, rel=0, nan_ok=True), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_results(local: Path, cluster: Path, only: list[str] | None = None):
    """The cluster's result files are the local run's: same files, same values."""
    a, b = local / "results" / RUN, cluster / "results" / RUN
    names = sorted(result_files(local))
    if only is not None:
        names = [n for n in names if n.split("/")[0] in only]
        assert names
    else:
        assert sorted(result_files(cluster)) == names
    for name in names:
        if name.endswith(".json"):
            assert_same_json(json.loads((a / name).read_text()), json.loads((b / name).read_text()), name)
        elif name.endswith(".npz"):
            with np.load(a / name) as x, np.load(b / name) as y:
                assert x.files == y.files, name
                for key in x.files:
                    if "/masks/" in f"/{name}" or x[key].dtype.kind not in "fc":
                        np.testing.assert_array_equal(x[key], y[key], err_msg=f"{name}:{key}")
                    else:
                        np.testing.assert_allclose(x[key], y[key], rtol=0, atol=TOL, err_msg=f"{name}:{key}")
        else:
            pytest.fail(f"unexpected result file {name}")


def test_smoke_grid_through_the_slurm_profile(cluster, env, tmp_path):
    local, onslurm, gpu = tmp_path / "local", tmp_path / "slurm", tmp_path / "gpu"
    for root in (local, onslurm, gpu):
        root.mkdir()
    known = set(jobs())

    # 1. The grid under SLURM (with no retry, so that the cancelled job stays failed), and the same jobs run
    #    locally beside it. One job is cancelled as soon as its notebook has started.
    run_a = start(slurm_command(onslurm, "--retries", "0", *config(onslurm)), env, tmp_path / "slurm_a.log")
    run_local = start([SNAKEMAKE, "--cores", "2", *config(local)], env, tmp_path / "local.log")
    victim_log = onslurm / "logs" / RUN / f"{VICTIM}.ipynb"
    deadline, victim = time.monotonic() + RUN_TIMEOUT_S, None
    while victim is None and run_a.poll() is None and time.monotonic() < deadline:
        running = [i for i, (state, comment) in jobs().items()
                   if i not in known and state == "RUNNING" and comment == job_comment(VICTIM)]
        if running and victim_log.exists():
            victim = running[0]
            subprocess.run(["scancel", victim], check=True, timeout=30)
        time.sleep(0.5)
    assert victim is not None, f"{VICTIM} never ran under SLURM; the run's log ends:\n{tail(tmp_path / 'slurm_a.log')}"
    assert finish(run_a, tmp_path / "slurm_a.log") != 0, "the invocation with a cancelled job succeeded"
    assert finish(run_local, tmp_path / "local.log") == 0, tail(tmp_path / "local.log")
    assert jobs()[victim][0] == "CANCELLED"

    # Every other job finished; the cancelled one left no result.
    after_a = result_files(onslurm)
    assert not any(name.startswith(f"{VICTIM}/") for name in after_a)
    assert {name.split("/")[0] for name in after_a} == set(STAGES) - {VICTIM}, tail(tmp_path / "slurm_a.log")

    # 2. The next invocation (the profile as written) redoes the cancelled job and nothing else. Beside it, the
    #    GPU switch: fine-tuning with `gpu=1`, on the cluster's stand-in GPU.
    known = set(jobs())
    run_b = start(slurm_command(onslurm, *config(onslurm)), env, tmp_path / "slurm_b.log")
    gpu_target = str(gpu / "results" / RUN / "finetune" / "metrics.json")
    run_gpu = start(slurm_command(gpu, *config(gpu, "gpu=1"), "--", gpu_target), env, tmp_path / "gpu.log")
    assert finish(run_b, tmp_path / "slurm_b.log") == 0, tail(tmp_path / "slurm_b.log")
    assert finish(run_gpu, tmp_path / "gpu.log") == 0, tail(tmp_path / "gpu.log")

    after_b = result_files(onslurm)
    assert {name: after_b[name] for name in after_a} == after_a, "a finished result file was redone"
    assert any(name.startswith(f"{VICTIM}/") for name in after_b)
    redone = {i: c for i, (state, c) in jobs().items() if i not in known and c == job_comment(VICTIM)}
    assert len(redone) == 1 and all(jobs()[i][0] == "COMPLETED" for i in redone)

    # Every result file of the SLURM run is the local run's.
    assert_same_results(local, onslurm)

    # The GPU job asked SLURM for one GPU and got it; the CPU jobs asked for none.
    gpu_jobs = [i for i, (state, c) in jobs().items() if i not in known and c == job_comment("finetune")]
    assert len(gpu_jobs) == 1
    shown = subprocess.run(["scontrol", "show", "job", gpu_jobs[0]], capture_output=True, text=True,
                           check=True).stdout
    assert "gres:gpu:1" in shown and "JobState=COMPLETED" in shown, shown
    for i in redone:
        shown = subprocess.run(["scontrol", "show", "job", i], capture_output=True, text=True, check=True).stdout
        assert "gres:gpu" not in shown and "JobState=COMPLETED" in shown, shown
    assert_same_results(local, gpu, only=["finetune"])

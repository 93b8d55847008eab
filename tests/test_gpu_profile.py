"""The GPU path is configuration of the one workflow: profiles/gpu shares a GPU among several stage jobs through
Snakemake resources, and tools/gpu_slot.sh hands each job one slot of one GPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SLOT = REPO / "tools" / "gpu_slot.sh"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
EXPERIMENT_RULES = {"finetune", "prune_m", "prune_s", "retrain", "retrain_super", "lottery", "swap"}


def _slot_env(tmp_path: Path, gpus: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES")}
    return {**env, "LOTTERY_GPUS": gpus, "LOTTERY_GPU_LOCK_DIR": str(tmp_path / "locks")}


def _job(tmp_path: Path, name: str, env: dict, per_gpu: int) -> subprocess.Popen:
    log = tmp_path / f"{name}.log"
    script = f'echo "$CUDA_VISIBLE_DEVICES $(date +%s.%N)" > {log}; sleep 2; echo "end $(date +%s.%N)" >> {log}'
    return subprocess.Popen(["bash", str(SLOT), "--jobs-per-gpu", str(per_gpu), "bash", "-c", script], env=env)


def _spans(tmp_path: Path, names) -> dict[str, tuple[str, float, float]]:
    out = {}
    for name in names:
        first, last = (tmp_path / f"{name}.log").read_text().split("\n")[:2]
        gpu, start = first.split()
        out[name] = (gpu, float(start), float(last.split()[1]))
    return out


def test_one_gpu_runs_as_many_jobs_as_it_has_slots_and_no_more(tmp_path):
    env = _slot_env(tmp_path, "0")
    names = ["a", "b", "c"]
    procs = []
    for name in names:
        procs.append(_job(tmp_path, name, env, per_gpu=2))
        time.sleep(0.3)
    assert all(p.wait(timeout=60) == 0 for p in procs)
    spans = _spans(tmp_path, names)
    assert {gpu for gpu, _, _ in spans.values()} == {"0"}
    # a and b share GPU 0 at once; c waits until one of them has ended
    assert spans["b"][1] < spans["a"][2]
    assert spans["c"][1] >= min(spans["a"][2], spans["b"][2])


def test_jobs_spread_over_the_gpus_before_sharing_one(tmp_path):
    env = _slot_env(tmp_path, "0,1")
    procs = []
    for name in ("a", "b"):
        procs.append(_job(tmp_path, name, env, per_gpu=4))
        time.sleep(0.3)
    assert all(p.wait(timeout=60) == 0 for p in procs)
    assert sorted(gpu for gpu, _, _ in _spans(tmp_path, ["a", "b"]).values()) == ["0", "1"]


@pytest.mark.parametrize("bad", ["0", "x", ""])
def test_a_bad_slot_count_is_refused_naming_the_option(tmp_path, bad):
    out = subprocess.run(["bash", str(SLOT), "--jobs-per-gpu", bad, "true"], env=_slot_env(tmp_path, "0"),
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "--jobs-per-gpu" in out.stderr


def test_without_a_gpu_the_command_runs_unchanged(tmp_path):
    env = {**_slot_env(tmp_path, ""), "PATH": "/usr/bin:/bin"}  # no nvidia-smi on this PATH
    out = subprocess.run(["bash", str(SLOT), "--jobs-per-gpu", "4", "bash", "-c", "echo ran:$CUDA_VISIBLE_DEVICES"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ran:"


def test_the_profile_gives_every_experiment_stage_a_gpu_slot():
    profile = yaml.safe_load((REPO / "profiles" / "gpu" / "config.yaml").read_text())
    slots = dict(item.split("=") for item in profile["resources"])
    per_rule = profile["set-resources"]
    assert set(per_rule) == EXPERIMENT_RULES
    per_gpu = {r["jobs_per_gpu"] for r in per_rule.values()}
    assert all(r["gpu"] == 1 for r in per_rule.values()) and len(per_gpu) == 1
    assert int(slots["gpu"]) % per_gpu.pop() == 0  # whole GPUs' worth of slots


def test_the_workflow_runs_each_stage_job_in_a_slot_under_the_profile(tmp_path):
    env = {**os.environ, "LOTTERY_RESULTS": str(tmp_path / "r")}
    out = subprocess.run([SNAKEMAKE, "-n", "-p", "--profile", "profiles/gpu", "--cores", "4", "--config", "plan=smoke",
                          f"results={tmp_path / 'r'}", f"checkpoints={tmp_path / 'c'}", f"logs={tmp_path / 'l'}",
                          "--", "experiments"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    jobs = [block for block in text.split("rule ")[1:] if block.split(":")[0] in EXPERIMENT_RULES]
    assert jobs, "no experiment job in the dry run"
    assert all("gpu=1, jobs_per_gpu=8" in block for block in jobs)
    assert text.count("tools/gpu_slot.sh --jobs-per-gpu 8") >= len(jobs)

"""Run a plan's whole experiment grid on one machine with one GPU, many stage jobs at once.

    python tools/device_grid.py PLAN [--workers N] [--deadline SECONDS] [--out DIR] [--tasks ..] [--seeds ..]

The same stage functions as the notebooks (lotterylib.run.experiment: finetune, prune, retrain, super_masks) write
the same result files under $LOTTERY_RESULTS, but without papermill and Snakemake (a GPU machine may have
neither). A small model leaves a GPU idle between its kernel launches, so several worker processes share it;
each job runs in one of them, one CPU thread each.

Order: every fine-tune first, then the searches, then the m-pruned re-fine-tunes (their weight masks live
beside the checkpoints, which never leave the machine), then the super-survivor masks and the s-pruned and
super-survivor re-fine-tunes (these need only committed files, so a CPU can finish them). Within a stage, the
plan's seed order, and the longest task first.

Resumable: a ledger (``device_ledger.jsonl`` in the results root) records each job's start and end; a job that
started and did not end is redone from scratch, a job whose result files are all there counts as done.

--deadline: no job starts after ``deadline - --start-margin`` seconds; at the deadline the jobs still running
are stopped (their partial files deleted) and what is done is packed. --out: where the packs go (one
``results_seed_<seed>.tar.gz`` per seed, ``results_super.tar.gz``, ``jobs.json``), rewritten every
``--pack-every`` seconds, so a run cut off by its machine still brings back what it finished.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import json
import multiprocessing as mp
import os
import shutil
import sys
import tarfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SUBNETWORKS = ("good", "random", "bad")
STAGE_ORDER = {"finetune": 0, "prune": 1, "retrain_m": 2, "super_masks": 3, "retrain_s": 4, "retrain_super": 5,
               "lottery": 6, "swap": 6}
SWAP_VARIANTS = ("good_heads_random_mlps", "random_heads_good_mlps")
# Longest first within a stage (training-set sizes of the demo plan; unknown tasks go last).
TASK_WEIGHT = {"SST-2": 0, "CoLA": 1, "QQP": 0, "MNLI": 0, "QNLI": 0, "STS-B": 2, "MRPC": 3, "RTE": 4, "WNLI": 5}


@dataclass(frozen=True)
class Job:
    kind: str  # finetune | prune | retrain | super_masks | lottery | swap (lottery: method = the fraction)
    task: str
    seed: int | None = None
    method: str | None = None
    sub: str | None = None

    @property
    def name(self) -> str:
        parts = [self.kind, self.task] + [str(p) for p in (self.seed, self.method, self.sub) if p is not None]
        return " ".join(parts)

    @property
    def stage(self) -> str:
        return f"retrain_{self.method}" if self.kind == "retrain" else self.kind

    def folder(self, plan: str) -> Path:
        """The one folder this job writes (deleted when the job is redone)."""
        from lotterylib.run.experiment import super_dir
        from lotterylib.store.files import run_dir

        if self.kind == "super_masks":
            return super_dir(plan, self.task) / "masks"
        run = run_dir(plan, self.task, self.seed)
        if self.kind == "lottery":
            return run / "lottery" / f"f{float(self.method):.2f}_{self.sub}"
        if self.kind == "swap":
            return run / "swap" / self.sub
        return run / {"finetune": "finetune", "prune": f"prune_{self.method}"}.get(
            self.kind, f"retrain_{self.method}_{self.sub}")

    def outputs(self, plan: str) -> list[Path]:
        """The files Snakemake's rule declares (the Snakefile's run_results / super_results)."""
        folder = self.folder(plan)
        if self.kind == "finetune":
            return [folder / f for f in ("metrics.json", "attention.npz", "gallery.npz")]
        if self.kind == "prune":
            return [folder / "search.json"]
        if self.kind == "super_masks":
            return [folder / f"{s}.{ext}" for s in SUBNETWORKS for ext in ("npz", "json")]
        return [folder / "metrics.json"]


def grid(plan, tasks, seeds) -> tuple[list[Job], dict[Job, list[Job]]]:
    """Every job of the plan (super-survivors only when every seed is in) and what each one needs."""
    jobs, needs = [], {}
    with_super = set(seeds) == set(plan.seeds)
    for task in tasks:
        for seed in seeds:
            ft = Job("finetune", task, seed)
            jobs.append(ft)
            needs[ft] = []
            for method in ("m", "s"):
                pr = Job("prune", task, seed, method)
                jobs.append(pr)
                needs[pr] = [ft]
                for sub in SUBNETWORKS:
                    rt = Job("retrain", task, seed, method, sub)
                    jobs.append(rt)
                    needs[rt] = [pr]
        if with_super:
            sm = Job("super_masks", task)
            jobs.append(sm)
            needs[sm] = [Job("prune", task, s, "s") for s in plan.seeds]
            for seed in seeds:
                for sub in SUBNETWORKS:
                    rt = Job("retrain", task, seed, "super", sub)
                    jobs.append(rt)
                    needs[rt] = [sm, Job("prune", task, seed, "s")]
        beyond = plan.beyond_paper
        for seed in seeds:  # METHOD.md section 10 (the Snakefile's beyond_results)
            if task not in beyond.tasks or seed not in beyond.seeds:
                continue
            extra = [Job("lottery", task, seed, f"{f:.2f}", sub) for f in beyond.head_fractions
                     for sub in SUBNETWORKS] + [Job("swap", task, seed, None, v) for v in SWAP_VARIANTS]
            for job in extra:
                jobs.append(job)
                needs[job] = [Job("prune", task, seed, "s")]
    return jobs, needs


def priority(job: Job, seeds: list[int]) -> tuple:
    seed_rank = seeds.index(job.seed) if job.seed in seeds else 0
    return (STAGE_ORDER[job.stage], seed_rank, TASK_WEIGHT.get(job.task, 9), job.name)


# --- the workers ---------------------------------------------------------------------------------------------

_STATE: dict = {}


def _init_worker(plan_arg: str) -> None:
    import torch

    torch.set_num_threads(1)
    from lotterylib.config.plans import Plan

    _STATE["plan"] = Plan.load(plan_arg)
    _STATE["encoded"] = {}


def _run(task: str, seed: int):
    """A Run whose tokenised data is shared by every job of the task in this worker."""
    from lotterylib.run.experiment import Run

    run = Run(_STATE["plan"], task, seed, progress=False)
    cache = _STATE["encoded"].setdefault(task, {})
    for attr in ("tokenizer", "train_split", "dev_split", "train_encoded", "dev_encoded"):
        if attr not in cache:
            cache[attr] = getattr(run, attr)
        run.__dict__[attr] = cache[attr]
    return run


def _work(job: Job) -> dict:
    from lotterylib.run import experiment

    start = time.perf_counter()
    try:
        if job.kind == "super_masks":
            experiment.super_masks(_STATE["plan"], job.task)
        else:
            run = _run(job.task, job.seed)
            if job.kind == "finetune":
                experiment.finetune(run)
            elif job.kind == "prune":
                experiment.prune(run, job.method)
            elif job.kind == "lottery":
                experiment.lottery(run, float(job.method), job.sub)
            elif job.kind == "swap":
                experiment.swap(run, job.sub)
            else:
                experiment.retrain(run, job.method, job.sub)
        return {"ok": True, "seconds": time.perf_counter() - start, "pid": os.getpid()}
    except Exception:  # noqa: BLE001 (the driver reports it and goes on with the rest)
        return {"ok": False, "seconds": time.perf_counter() - start, "pid": os.getpid(),
                "error": traceback.format_exc(limit=8)}


# --- the driver ----------------------------------------------------------------------------------------------

class Ledger:
    def __init__(self, path: Path):
        self.path = path
        self.started: set[str] = set()
        self.ended: dict[str, dict] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                event = json.loads(line)
                if event["event"] == "start":
                    self.started.add(event["job"])
                elif event["event"] == "end":
                    self.ended[event["job"]] = event

    def write(self, **event) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps({"time": time.time(), **event}) + "\n")


def is_done(job: Job, plan: str, ledger: Ledger) -> bool:
    if job.name in ledger.started and not ledger.ended.get(job.name, {}).get("ok"):
        return False  # started here and never finished: redo it
    return all(p.exists() for p in job.outputs(plan))


def pack(out: Path, plan: str, done: set[Job], records: list[dict], meta: dict) -> None:
    """The done jobs' folders, one tar.gz per seed (and one for super-survivor masks), plus jobs.json."""
    from lotterylib.store.files import results_root

    root = results_root()
    groups: dict[str, list[Job]] = {}
    for job in done:
        groups.setdefault("super" if job.seed is None else f"seed_{job.seed}", []).append(job)
    out.mkdir(parents=True, exist_ok=True)
    for group, jobs in groups.items():
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for job in sorted(jobs, key=lambda j: j.name):
                folder = job.folder(plan)
                if folder.exists():
                    tar.add(folder, arcname=str(folder.relative_to(root)),
                            filter=lambda info: None if info.name.endswith(".tmp") else info)
        tmp = out / f".results_{group}.tar.gz.tmp"
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, out / f"results_{group}.tar.gz")
    tmp = out / ".jobs.json.tmp"
    tmp.write_text(json.dumps({**meta, "jobs": records}, indent=1))
    os.replace(tmp, out / "jobs.json")


def gpu_sample() -> str | None:
    """One line of nvidia-smi: GPU utilisation (%), memory used (MiB); None without a GPU."""
    if not shutil.which("nvidia-smi"):
        return None
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("plan")
    parser.add_argument("--workers", type=int, default=max(1, min(12, (os.cpu_count() or 2) - 2)))
    parser.add_argument("--deadline", type=float, default=None, help="seconds from now to stop")
    parser.add_argument("--start-margin", type=float, default=20.0,
                        help="start no job later than this many seconds before the deadline")
    parser.add_argument("--out", type=Path, default=None, help="folder for the packs (default: none)")
    parser.add_argument("--pack-every", type=float, default=60.0)
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--seeds", nargs="*", type=int, default=None)
    args = parser.parse_args(argv)

    from lotterylib.config.plans import Plan
    from lotterylib.store.files import provenance, results_root

    t0 = time.monotonic()
    plan = Plan.load(args.plan)
    tasks = [t for t in plan.tasks if args.tasks is None or t in args.tasks]
    seeds = [s for s in plan.seeds if args.seeds is None or s in args.seeds]
    jobs, needs = grid(plan, tasks, seeds)
    ledger = Ledger(results_root() / plan.name / "device_ledger.jsonl")
    done = {j for j in jobs if is_done(j, plan.name, ledger)}
    todo = sorted((j for j in jobs if j not in done), key=lambda j: priority(j, seeds))
    meta = {"plan": plan.name, "workers": args.workers, "provenance": provenance(), "n_jobs": len(jobs),
            "already_done": len(done)}
    print(f"[device_grid] plan {plan.name}: {len(jobs)} jobs, {len(done)} done already, {len(todo)} to run, "
          f"{args.workers} workers, device {meta['provenance']['device']}", flush=True)
    records: list[dict] = []
    failed: set[Job] = set()

    def elapsed() -> float:
        return time.monotonic() - t0

    def blocked(job: Job) -> bool:
        return any(n not in done for n in needs[job])

    def cut_off(job: Job) -> bool:
        return any(n in failed for n in needs[job])

    pool = cf.ProcessPoolExecutor(max_workers=args.workers, mp_context=mp.get_context("spawn"),
                                  initializer=_init_worker, initargs=(args.plan,))
    running: dict[cf.Future, tuple[Job, float]] = {}
    last_pack = last_sample = elapsed()
    samples: list[dict] = []
    meta["gpu_samples"] = samples
    stopped = False
    try:
        while todo or running:
            may_start = args.deadline is None or elapsed() < args.deadline - args.start_margin
            for job in list(todo):
                if len(running) >= args.workers or not may_start:
                    break
                if cut_off(job):
                    todo.remove(job)
                    failed.add(job)
                    records.append({"job": job.name, "ok": False, "error": "a job it needs failed"})
                    continue
                if blocked(job):
                    continue
                folder = job.folder(plan.name)
                if folder.exists():
                    shutil.rmtree(folder)  # a half-written earlier attempt
                ledger.write(event="start", job=job.name)
                running[pool.submit(_work, job)] = (job, elapsed())
                todo.remove(job)
            if not running:
                if todo and may_start:
                    raise RuntimeError(f"nothing can start: {[j.name for j in todo[:5]]} wait for jobs that "
                                       "will never run (this is a bug in the dependency graph)")
                break
            timeout = None if args.deadline is None else max(0.1, args.deadline - elapsed())
            finished, _ = cf.wait(list(running), timeout=min(timeout or 30.0, 30.0),
                                  return_when=cf.FIRST_COMPLETED)
            for future in finished:
                job, began = running.pop(future)
                result = future.result()
                ledger.write(event="end", job=job.name, ok=result["ok"], seconds=result["seconds"])
                records.append({"job": job.name, "stage": job.stage, "task": job.task, "seed": job.seed,
                                "began": round(began, 1), **result})
                if result["ok"]:
                    done.add(job)
                    print(f"[device_grid {elapsed():6.0f}s] done {job.name} in {result['seconds']:.1f}s "
                          f"({len(done)}/{len(jobs)})", flush=True)
                else:
                    failed.add(job)
                    print(f"[device_grid {elapsed():6.0f}s] FAILED {job.name}:\n{result['error']}", flush=True)
            if args.deadline is not None and elapsed() >= args.deadline and running:
                stopped = True
                break
            if elapsed() - last_sample >= 15 and (line := gpu_sample()):
                samples.append({"t": round(elapsed()), "util_mem": line, "running": len(running)})
                print(f"[device_grid {elapsed():6.0f}s] gpu util %, MiB: {line}; {len(running)} jobs running",
                      flush=True)
                last_sample = elapsed()
            if args.out and elapsed() - last_pack >= args.pack_every:
                pack(args.out, plan.name, done, records, {**meta, "elapsed": elapsed()})
                last_pack = elapsed()
    finally:
        if running:
            print(f"[device_grid {elapsed():6.0f}s] deadline: stopping {len(running)} running jobs "
                  f"({', '.join(j.name for j, _ in running.values())}); they are redone next time", flush=True)
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            for job, _ in running.values():
                shutil.rmtree(job.folder(plan.name), ignore_errors=True)
        pool.shutdown(wait=not running, cancel_futures=True)
    left = [j.name for j in todo] + [j.name for j, _ in running.values()]
    meta.update(elapsed=elapsed(), stopped_at_deadline=stopped, left=left,
                failed=sorted(j.name for j in failed))
    if args.out:
        pack(args.out, plan.name, done, records, meta)
    n_here = sum(1 for r in records if r["ok"])
    print(f"[device_grid {elapsed():6.0f}s] {n_here} jobs done here, {len(failed)} failed, "
          f"{len(left)} left", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

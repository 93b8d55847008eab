"""bf16 matrix products on this CPU: torch's own kernels against float32 products of the bf16 operands
(lotterylib.run.cpu_bf16), the way a fine-tune runs them where the CPU has no bfloat16 units.

(a) speed: training all-MiniLM-L6-v2 on MRPC examples under bfloat16 autocast with either kernel, side by side
    (A B A B ..., medians), and fp32 beside them;
(b) the same run re-made: one re-fine-tune of the demo grid that was made on a CPU with torch's kernels is made
    again with float32 products, from the same committed masks and seed, in a scratch copy of the plan's results
    (the committed files are not touched), and the two are compared: dev score, dev predictions, training loss.

Results go to ``benchmarks/results/cpu_bf16_cpu.json``; the engine page shows them.

    python benchmarks/bench_cpu_bf16.py --threads 1   # about 15 minutes on one CPU core
    python benchmarks/bench_cpu_bf16.py --run RTE 1337 s bad
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from lotterylib import __version__
from lotterylib.model.data import encode, load_glue, make_batches, subsample
from lotterylib.model.models import DEFAULT_MODEL, load_model, load_tokenizer
from lotterylib.run import cpu_bf16
from lotterylib.run.train import TrainConfig, fine_tune
from lotterylib.store import layout
from lotterylib.store.files import read_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import RESULTS, alternate, machine  # noqa: E402


def _with_kernel(choice: str, fn):
    """``fn`` run with ``$LOTTERY_CPU_BF16_MATMUL`` set to ``choice``."""
    def run():
        with mock.patch.dict(os.environ, {cpu_bf16.ENV: choice}):
            return fn()
    return run


def bench_speed(model_name, subset, repeats) -> dict:
    n = len(subset.lengths)

    def trainer(precision):
        model = load_model(model_name, num_labels=2, seed=1)
        config = TrainConfig(lr=1e-4, epochs=1, precision=precision)
        batches = lambda epoch: make_batches(subset, config.batch_size, shuffle=True, seed=epoch)
        return lambda: fine_tune(model, batches, config, seed=1)

    fns = {"bf16, torch's kernels": _with_kernel("torch", trainer("bf16")),
           "bf16, float32 products": _with_kernel("float32", trainer("bf16")),
           "fp32": trainer("fp32")}
    times = alternate(fns, repeats)
    rates = {k: n / statistics.median(t) for k, t in times.items()}
    return {"n_examples": n, "repeats": repeats, "seconds": times, "examples_per_s": rates,
            "speedup_vs_torch_kernels": rates["bf16, float32 products"] / rates["bf16, torch's kernels"],
            "speed_vs_fp32": rates["bf16, float32 products"] / rates["fp32"]}


def remake(plan: str, task: str, seed: int, method: str, sub: str) -> dict:
    """Make one committed re-fine-tune again with float32 products, in a scratch copy of the plan's results, and
    compare it with the committed one."""
    from lotterylib.run.experiment import Run, retrain

    stage = f"retrain_{method}_{sub}"
    committed_dir = layout.stage_dir(plan, task, seed, stage)
    committed = read_json(committed_dir / layout.METRICS)
    made_with = committed.get("bf16_matmul", cpu_bf16.TORCH)
    if committed["provenance"]["device"] != "cpu" or made_with != cpu_bf16.TORCH:
        raise SystemExit(f"{committed_dir} was not made on a CPU with torch's bf16 kernels "
                         f"(device {committed['provenance']['device']}, bf16_matmul {made_with}): pick a run that was "
                         f"(its metrics.json has device cpu and no bf16_matmul, or bf16_matmul torch)")
    with tempfile.TemporaryDirectory(prefix="bench_cpu_bf16_") as scratch:
        root = Path(scratch) / "results"
        shutil.copytree(layout.results_root() / plan, root / plan)
        shutil.rmtree(root / plan / task / f"seed_{seed}" / stage)
        env = {"LOTTERY_RESULTS": str(root), "LOTTERY_CHECKPOINTS": str(Path(scratch) / "checkpoints"),
               cpu_bf16.ENV: "float32"}
        with mock.patch.dict(os.environ, env):
            retrain(Run(plan, task, seed), method, sub)
            again_dir = layout.stage_dir(plan, task, seed, stage)
            again = read_json(again_dir / layout.METRICS)
            preds_again = np.load(again_dir / layout.PREDICTIONS)["predictions"]
    preds = np.load(committed_dir / layout.PREDICTIONS)["predictions"]
    loss = np.array([p["loss"] for p in committed["curve"]])
    loss_again = np.array([p["loss"] for p in again["curve"]])
    # class ids must be equal; a regressor's scores within 0.01 (its metric, a correlation, is given beside)
    agree = (preds == preds_again) if preds.dtype.kind in "iu" else np.isclose(preds, preds_again, rtol=0, atol=1e-2)
    return {
        "plan": plan, "task": task, "seed": seed, "method": method, "subnetwork": sub,
        "committed": {"metric": committed["metric"], "metrics": committed["metrics"], "seconds": committed["seconds"],
                      "git_commit": committed["provenance"]["git_commit"], "bf16_matmul": made_with},
        "again": {"metric": again["metric"], "metrics": again["metrics"], "seconds": again["seconds"],
                  "git_commit": again["provenance"]["git_commit"], "bf16_matmul": again.get("bf16_matmul")},
        "n_dev": int(len(preds)), "predictions_equal": int(agree.sum()),
        "predictions": "class ids" if preds.dtype.kind in "iu" else "scores (equal: within 0.01)",
        "max_abs_prediction_difference": float(np.abs(preds.astype(float) - preds_again.astype(float)).max()),
        "max_abs_training_loss_difference": float(np.abs(loss - loss_again).max()),
        "n_loss_points": int(len(loss)),
    }


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--examples", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own choice; the grid's jobs run one thread each)")
    parser.add_argument("--run", nargs=4, metavar=("TASK", "SEED", "METHOD", "SUBNETWORK"), action="append",
                        help="a demo re-fine-tune to make again; repeat for more (default: RTE 1337 s bad, "
                             "a classifier, and STS-B 42 s random, a regressor)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if cpu_bf16.cpu_has_bf16_kernels():
        print("note: this CPU has bfloat16 units; torch's kernels are the fast ones here", file=sys.stderr)
    tokenizer = load_tokenizer(args.model)
    subset = encode(subsample(load_glue("MRPC", "train"), args.examples, seed=0), tokenizer, max_length=128)
    runs = args.run or [["RTE", "1337", "s", "bad"], ["STS-B", "42", "s", "random"]]
    report = {
        "benchmark": "cpu_bf16", "model": args.model, "task": "MRPC", "device": "cpu",
        "lotterylib_version": __version__, "machine": machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_has_bf16_kernels": cpu_bf16.cpu_has_bf16_kernels(),
        "speed": bench_speed(args.model, subset, args.repeats),
        "remade": [remake("demo", task, int(seed), method, sub) for task, seed, method, sub in runs],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "cpu_bf16_cpu.json"
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps({"speedup_vs_torch_kernels": report["speed"]["speedup_vs_torch_kernels"],
                      "remade": [{k: r[k] for k in ("committed", "again", "predictions_equal", "n_dev",
                                                     "max_abs_training_loss_difference")}
                                 for r in report["remade"]]}, indent=1))
    print(f"written to {out}")
    return out


if __name__ == "__main__":
    main()

"""Engine benchmark: all-MiniLM-L6-v2 on MRPC, every comparison run side by side in one process.

(a) training examples/s: our batching (length-grouped, padded per batch) vs padding every batch
    to 128 tokens (the paper's setting);
(b) exact per-example importance in one batched pass vs the batch-size-1 loop (same scores), and
    vs the authors' per-batch variant (time only: it computes a different quantity);
(c) evaluation with all-ones gates attached vs no hooks.

Each pair is timed in alternation (A B A B ...) and the median is kept, so drift of the machine
hits both sides alike. Results go to ``benchmarks/results/<name>.json``.

    python benchmarks/bench_engine.py                # full run (about 10 minutes on 2 CPU cores)
    python benchmarks/bench_engine.py --quick        # a smaller run, for a first look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from lotterylib import __version__
from lotterylib.model.data import encode, load_glue, make_batches, subsample
from lotterylib.method.importance import compute_importance
from lotterylib.model.masking import gates, ones_masks
from lotterylib.model.models import DEFAULT_MODEL, load_model, load_tokenizer
from lotterylib.model.structure import ModelStructure
from lotterylib.run.train import TrainConfig, fine_tune, predict

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(fns: dict, repeats: int) -> dict[str, list[float]]:
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn))
    return times


def bench_training(model_name, tokenizer, train, repeats, n_examples) -> dict:
    subset = encode(subsample(train, n_examples, seed=0), tokenizer, max_length=128)

    def run(pad_to):
        config = TrainConfig(lr=2e-5, epochs=1, pad_to=pad_to, group_by_length=pad_to is None)
        model = load_model(model_name, num_labels=2, seed=1)
        batches = lambda epoch: make_batches(subset, config.batch_size, shuffle=True, seed=epoch,
                                             group_by_length=config.group_by_length, pad_to=pad_to)
        return lambda: fine_tune(model, batches, config, seed=1)

    times = alternate({"ours": run(None), "pad128": run(128)}, repeats)
    # a fresh model per call would time loading too: the closures above reuse one model each
    ours, paper = statistics.median(times["ours"]), statistics.median(times["pad128"])
    tokens = subset.lengths
    return {
        "n_examples": n_examples, "repeats": repeats, "seconds": times,
        "examples_per_s": {"ours": n_examples / ours, "pad128": n_examples / paper},
        "speedup": paper / ours,
        "mean_tokens_per_example": float(np.mean(tokens)),
    }


def bench_importance(model, dev, repeats) -> dict:
    grouped = make_batches(dev, 32)
    singles = make_batches(dev, 1)
    results = {}
    exact = compute_importance(model, grouped)
    loop = compute_importance(model, singles)
    rel = max(np.max(np.abs(exact.head - loop.head) / np.abs(loop.head).max()),
              np.max(np.abs(exact.mlp - loop.mlp) / np.abs(loop.mlp).max()))
    times = alternate({
        "batched_exact": lambda: compute_importance(model, grouped),
        "batch1_loop": lambda: compute_importance(model, singles),
        "authors_per_batch": lambda: compute_importance(model, grouped, abs_per="batch"),
    }, repeats)
    med = {k: statistics.median(v) for k, v in times.items()}
    results.update(
        n_examples=len(dev), batch_size=32, repeats=repeats, seconds=times,
        max_relative_difference_vs_loop=float(rel),
        speedup_vs_loop=med["batch1_loop"] / med["batched_exact"],
        extra_time_vs_per_batch=med["batched_exact"] / med["authors_per_batch"] - 1.0,
    )
    return results


def bench_gates(model, dev, repeats) -> dict:
    batches = make_batches(dev, 128)
    head, mlp = ones_masks(ModelStructure.of(model))

    def gated():
        with gates(model, head, mlp):
            predict(model, batches)

    plain_out = predict(model, batches)
    with gates(model, head, mlp):
        same = np.array_equal(plain_out, predict(model, batches))
    times = alternate({"no_hooks": lambda: predict(model, batches), "all_ones_gates": gated}, repeats)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"n_examples": len(dev), "repeats": repeats, "seconds": times, "predictions_equal": bool(same),
            "overhead": med["all_ones_gates"] / med["no_hooks"] - 1.0}


def machine() -> dict:
    return {
        "platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": sys.version.split()[0],
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--quick", action="store_true", help="fewer examples and repeats")
    parser.add_argument("--out", default=None, help="results file name (default: engine_<device>.json)")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    repeats = 1 if args.quick else 3
    tokenizer = load_tokenizer(args.model)
    train = load_glue("MRPC", "train")
    dev_split = load_glue("MRPC", "dev")
    dev = encode(subsample(dev_split, 96, seed=0) if args.quick else dev_split, tokenizer, max_length=128)
    model = load_model(args.model, num_labels=2, seed=1).to(device)
    report = {
        "benchmark": "engine", "model": args.model, "task": "MRPC", "device": device,
        "lotterylib_version": __version__, "machine": machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training": bench_training(args.model, tokenizer, train, repeats, 64 if args.quick else 256),
        "importance": bench_importance(model, dev, repeats),
        "gates": bench_gates(model, dev, 3 if args.quick else 7),
    }
    goals = {
        "training_speedup_at_least_2x": report["training"]["speedup"] >= 2.0,
        "importance_same_scores_rel_below_1e-4": report["importance"]["max_relative_difference_vs_loop"] < 1e-4,
        "importance_exact_at_most_10pct_over_per_batch": report["importance"]["extra_time_vs_per_batch"] <= 0.10,
        "gates_at_most_5pct_slower": report["gates"]["overhead"] <= 0.05,
    }
    report["goals_met"] = goals
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / (args.out or f"engine_{device}{'_quick' if args.quick else ''}.json")
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps({"training_speedup": report["training"]["speedup"],
                      "importance_speedup_vs_loop": report["importance"]["speedup_vs_loop"],
                      "importance_rel_diff": report["importance"]["max_relative_difference_vs_loop"],
                      "importance_extra_vs_per_batch": report["importance"]["extra_time_vs_per_batch"],
                      "gate_overhead": report["gates"]["overhead"], "goals_met": goals}, indent=1))
    print(f"written to {out}")
    return out


if __name__ == "__main__":
    main()

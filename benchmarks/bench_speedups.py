"""The two speed-ups the demo grid uses, each timed side by side against its baseline (A B A B ..., medians):

(d) training under bfloat16 autocast vs fp32 (the full model, MRPC training examples);
(e) re-fine-tuning an s-pruned subnetwork with its heads and MLPs removed from the weights vs gated (the same
    function: the removed model computes zeros where the gates multiply by zero).

The subnetwork is a real one: the good s-pruning mask of a committed demo run (``--mask``, default MRPC seed
1337), and its random twin (same size). Results go to ``benchmarks/results/speedups_<device>.json``.

    python benchmarks/bench_speedups.py            # about 3 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from lotterylib import __version__
from lotterylib.model.data import encode, load_glue, make_batches, subsample
from lotterylib.model.masking import gates
from lotterylib.store.masks import load_mask
from lotterylib.model.models import DEFAULT_MODEL, load_model, load_tokenizer
from lotterylib.store import layout
from lotterylib.model.shrink import remove_components
from lotterylib.run.train import TrainConfig, fine_tune

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import RESULTS, alternate, machine  # noqa: E402


def _trainer(model_name, subset, config, masks=None, remove=False):
    model = load_model(model_name, num_labels=2, seed=1)
    kwargs = {}
    if masks is not None and remove:
        remove_components(model, masks["head_mask"], masks["mlp_mask"])
    elif masks is not None:
        kwargs = {"head_mask": masks["head_mask"], "mlp_mask": masks["mlp_mask"]}
    batches = lambda epoch: make_batches(subset, config.batch_size, shuffle=True, seed=epoch)
    return lambda: fine_tune(model, batches, config, seed=1, **kwargs)


def _median_rate(times: list[float], n: int) -> float:
    return n / statistics.median(times)


def bench_precision(model_name, subset, repeats) -> dict:
    n = len(subset.lengths)
    fns = {p: _trainer(model_name, subset, TrainConfig(lr=1e-4, epochs=1, precision=p)) for p in ("fp32", "bf16")}
    times = alternate(fns, repeats)
    rates = {p: _median_rate(t, n) for p, t in times.items()}
    return {"n_examples": n, "repeats": repeats, "seconds": times, "examples_per_s": rates,
            "speedup": rates["bf16"] / rates["fp32"]}


def bench_removal(model_name, subset, dev, masks_by_name: dict, repeats) -> dict:
    n = len(subset.lengths)
    out = {}
    for name, masks in masks_by_name.items():
        config = TrainConfig(lr=1e-4, epochs=1, precision="bf16")  # as the demo grid trains
        fns = {"gated": _trainer(model_name, subset, config, masks),
               "removed": _trainer(model_name, subset, config, masks, remove=True)}
        times = alternate(fns, repeats)
        rates = {k: _median_rate(t, n) for k, t in times.items()}
        # the same function: a removed and a gated copy of one model predict alike on dev
        gated, removed = load_model(model_name, num_labels=2, seed=1), load_model(model_name, num_labels=2, seed=1)
        summary = remove_components(removed, masks["head_mask"], masks["mlp_mask"])
        batches = make_batches(dev, 64)
        with torch.no_grad(), gates(gated, masks["head_mask"], masks["mlp_mask"]):
            want = torch.cat([gated(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
                              for b in batches])
        with torch.no_grad():
            got = torch.cat([removed(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
                             for b in batches])
        out[name] = {
            "heads_kept": int(np.sum(masks["head_mask"])), "mlps_kept": int(np.sum(masks["mlp_mask"])),
            "parameters_before": summary["parameters_before"], "parameters_after": summary["parameters_after"],
            "seconds": times, "examples_per_s": rates, "speedup": rates["removed"] / rates["gated"],
            "max_abs_logit_difference": float((got - want).abs().max()),
            "same_predictions": bool(torch.equal(got.argmax(-1), want.argmax(-1))),
        }
    return out


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--mask", default=None, help="folder of a run's s-pruning masks "
                        "(default: results/demo/MRPC/seed_1337/prune_s/masks)")
    parser.add_argument("--examples", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    folder = Path(args.mask) if args.mask else layout.masks_dir("demo", "MRPC", 1337, "s")
    if not (folder / "good.npz").exists():
        raise SystemExit(f"no s-pruning masks in {folder}: run the demo plan's MRPC seed 1337 s-pruning stage "
                         "first, or pass --mask <folder with good.npz and random.npz>")
    masks = {name: load_mask(folder / name).arrays for name in ("good", "random")}
    tokenizer = load_tokenizer(args.model)
    subset = encode(subsample(load_glue("MRPC", "train"), args.examples, seed=0), tokenizer, max_length=128)
    dev = encode(subsample(load_glue("MRPC", "dev"), 128, seed=0), tokenizer, max_length=128)
    report = {
        "benchmark": "speedups", "model": args.model, "task": "MRPC", "device": "cpu",
        "mask_folder": str(folder), "lotterylib_version": __version__, "machine": machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "precision": bench_precision(args.model, subset, args.repeats),
        "removal": bench_removal(args.model, subset, dev, masks, args.repeats),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "speedups_cpu.json"
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps({"bf16_speedup": report["precision"]["speedup"],
                      **{f"removal_speedup_{k}": v["speedup"] for k, v in report["removal"].items()},
                      **{f"removal_max_logit_diff_{k}": v["max_abs_logit_difference"]
                         for k, v in report["removal"].items()}}, indent=1))
    print(f"written to {out}")
    return out


if __name__ == "__main__":
    main()

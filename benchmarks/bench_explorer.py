"""Explorer update time: all-MiniLM-L6-v2 on MRPC, the live explorer's default fixed dev subset.

Times what a reader waits for after clicking a head toggle: re-scoring the model on the dev subset
(sdpa attention) and redrawing the selected head's attention map (an eager copy). The classifier is
freshly initialised (compute is the same as for a fine-tuned one; the score itself is not the point).
Writes ``benchmarks/results/explorer_<device>.json``.

    python benchmarks/bench_explorer.py
"""

from __future__ import annotations

import json
import statistics
import time

import torch

from bench_engine import RESULTS, machine
from lotterylib.model.data import encode, load_glue, make_batches, subsample
from lotterylib.report.explorer import Explorer, ExplorerModel
from lotterylib.model.models import DEFAULT_MODEL, load_model, load_tokenizer


def main(n_examples: int = 128, clicks: int = 12) -> None:
    tokenizer = load_tokenizer(DEFAULT_MODEL)
    dev = encode(subsample(load_glue("MRPC", "dev"), n_examples, seed=0), tokenizer)
    model = load_model(DEFAULT_MODEL, num_labels=2, seed=1)
    eager = load_model(DEFAULT_MODEL, num_labels=2, seed=1, attn_implementation="eager")
    state = ExplorerModel(model, make_batches(dev, 32), "MRPC", attention_batch=make_batches(dev, 8)[0],
                          tokenizer=tokenizer, attention_model=eager)
    explorer = Explorer(state)
    update, score = [], []
    for i in range(clicks):
        layer, head = i % state.structure.n_layers, (3 * i) % state.structure.n_heads
        start = time.perf_counter()
        explorer.head_buttons[layer][head].value = not explorer.head_buttons[layer][head].value
        update.append(time.perf_counter() - start)
        score.append(state.last_seconds)
    report = {"benchmark": "explorer", "model": DEFAULT_MODEL, "task": "MRPC", "dev_examples": n_examples,
              "clicks": clicks, "update_seconds": update, "score_seconds": score,
              "median_update_seconds": statistics.median(update), "median_score_seconds": statistics.median(score),
              "machine": machine()}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = RESULTS / f"explorer_{device}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"median update {report['median_update_seconds']:.2f} s (score {report['median_score_seconds']:.2f} s) "
          f"-> {out}")


if __name__ == "__main__":
    main()

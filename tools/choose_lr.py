"""Choose the demo plan's learning rate once, on the full model (METHOD.md section 8).

The paper's lr (2e-5) was chosen for bert-base; a smaller model may need another. We fine-tune the full
all-MiniLM-L6-v2 on two small tasks (MRPC, RTE) with seed 1337 and every other hyperparameter of the
demo plan, for each candidate lr, score on dev (the paper's searches and evaluation use dev too), and
keep the lr with the best mean score over the two tasks. Never tuned per subnetwork.

Resumable: finished (task, lr) pairs are kept in results/demo/lr_choice.json and skipped on a re-run.

    python tools/choose_lr.py            # then set train.lr in plans/demo.yaml to the printed choice
"""

from __future__ import annotations

import dataclasses
import time

from lotterylib.run.experiment import Run
from lotterylib.method.metrics import search_metric
from lotterylib.store import layout
from lotterylib.store.files import read_json, write_json
from lotterylib.run.train import evaluate, fine_tune

CANDIDATES = (2e-5, 5e-5, 1e-4)
TASKS = ("MRPC", "RTE")
SEED = 1337


def main() -> None:
    path = layout.plan_dir("demo") / "lr_choice.json"
    done = read_json(path)["runs"] if path.exists() else []
    for task in TASKS:
        for lr in CANDIDATES:
            if any(r["task"] == task and r["lr"] == lr for r in done):
                continue
            run = Run("demo", task, SEED)
            run.train_config = dataclasses.replace(run.train_config, lr=lr)
            start = time.perf_counter()
            model = run.new_model()
            curve = fine_tune(model, run.epoch_batches, run.train_config, seed=SEED, progress=True)
            metrics = evaluate(model, run.dev_batches, task)
            done.append({"task": task, "lr": lr, "seed": SEED, "metric": search_metric(task),
                         "score": metrics[search_metric(task)], "metrics": metrics,
                         "final_loss": curve[-1]["loss"], "seconds": time.perf_counter() - start})
            scores = {(r["task"], r["lr"]): r["score"] for r in done}
            means = {lr_: sum(scores[t, lr_] for t in TASKS) / len(TASKS) for lr_ in CANDIDATES
                     if all((t, lr_) in scores for t in TASKS)}
            choice = max(means, key=means.get) if len(means) == len(CANDIDATES) else None
            write_json(path, {"candidates": CANDIDATES, "tasks": TASKS, "seed": SEED, "runs": done,
                              "mean_by_lr": {str(k): v for k, v in means.items()}, "choice": choice},
                       {"plan": "demo", "what": "learning-rate choice on the full model"})
            print(f"{task} lr={lr}: {metrics}", flush=True)
    print("choice:", read_json(path)["choice"])


if __name__ == "__main__":
    main()

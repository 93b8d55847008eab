"""The read side never loads the model stack: collecting result files, the analyses, the scorecard and the figures
run in a process where torch is never imported. Only the stages (lotterylib.run, lotterylib.model's model code,
lotterylib.method.attention/importance) and the live explorer need it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import lotterylib

REPO = Path(__file__).resolve().parents[1]
# The model stack: the only modules that may import torch.
MODEL_STACK = {"lotterylib.run.train", "lotterylib.run.experiment", "lotterylib.run.precision", "lotterylib.run.cpu_bf16",
               "lotterylib.run.resume",
               "lotterylib.model.models", "lotterylib.model.masking",
               "lotterylib.model.shrink", "lotterylib.model.data", "lotterylib.model.forward", "lotterylib.method.attention",
               "lotterylib.method.importance", "lotterylib.report.explorer"}


def read_side_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(lotterylib.__path__, "lotterylib.")]
    return sorted(n for n in names if n not in MODEL_STACK)


def _run_without_torch(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter, then fail if it imported torch (and say which module pulled it in)."""
    prologue = ("import sys, builtins\n"
                "_real = builtins.__import__\n"
                "def _guard(name, *a, **k):\n"
                "    if (name == 'torch' or name.startswith('torch.')) and 'torch' not in sys.modules:\n"
                "        import traceback; traceback.print_stack(limit=12)\n"
                "        raise SystemExit('torch imported by the read side: ' + name)\n"
                "    return _real(name, *a, **k)\n"
                "builtins.__import__ = _guard\n"
                "import matplotlib; matplotlib.use('Agg')\n")
    epilogue = "\nassert 'torch' not in sys.modules, 'torch imported'\nprint('no torch')\n"
    return subprocess.run([sys.executable, "-c", prologue + code + epilogue], cwd=REPO, capture_output=True,
                          text=True, timeout=900)


def test_the_model_stack_list_names_real_modules():
    names = {m.name for m in pkgutil.walk_packages(lotterylib.__path__, "lotterylib.")}
    assert MODEL_STACK <= names
    assert {"lotterylib.read.collect", "lotterylib.report.scorecard", "lotterylib.store.layout"} <= set(read_side_modules())


def test_every_read_side_module_imports_without_torch():
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in read_side_modules())
    out = _run_without_torch(code)
    assert out.returncode == 0 and "no torch" in out.stdout, out.stderr[-3000:]


@pytest.mark.parametrize("plan", ["smoke", "demo"])
def test_collecting_the_scorecard_and_the_figures_run_without_torch(plan):
    code = f"""
import matplotlib.pyplot as plt
from lotterylib.read import collect, predictions, pattern_data, pattern_stats
from lotterylib.report import beyond, plots, scorecard
plan = {plan!r}
collect.scale_statement(plan)
scores = collect.subnetwork_scores(plan)
full = collect.full_scores(plan)
collect.traces(plan); collect.importance_scores(plan); collect.s_masks(plan); collect.super_masks(plan)
predictions.constant_counts(predictions.run_constancy(plan))
heads = pattern_data.head_table(plan)
pattern_stats.type_shares(heads)
card = scorecard.build(plan, n_perm=20)
assert card.findings
ev = beyond.gather(plan)
beyond.lottery_figure(ev); beyond.gaps_figure(ev); beyond.conclusions(ev)
if len(scores):
    plots.subnetwork_bars(scores, full, "s")
plots.importance_histogram(collect.importance_scores(plan))
plt.close('all')
"""
    out = _run_without_torch(code)
    assert out.returncode == 0 and "no torch" in out.stdout, out.stderr[-3000:]

"""The engine page (``engine_benchmark``): benchmark tables, speed-ups and the grid's calls."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lotterylib.config.plans import Plan
from lotterylib.read import collect
from lotterylib.report.views._common import _plan_name
from lotterylib.store import layout as L

BENCH_RESULTS = L.REPO / "benchmarks" / "results"


def _bench_files(prefix: str, folder: Path | None = None) -> list[Path]:
    return sorted((folder or BENCH_RESULTS).glob(f"{prefix}_*.json"))


def engine_table(folder: Path | None = None) -> pd.DataFrame:
    """One row per engine benchmark file (benchmarks/bench_engine.py): speed-ups, agreement, overheads."""
    rows = []
    for path in _bench_files("engine", folder):
        r = json.loads(path.read_text())
        m = r["machine"]
        rows.append({
            "file": path.name, "date": r["date"], "device": r["device"] if not m["cuda"] else m["cuda"],
            "CPU threads": m["torch_threads"],
            "training ex/s (ours)": r["training"]["examples_per_s"]["ours"],
            "training ex/s (pad 128)": r["training"]["examples_per_s"]["pad128"],
            "training speed-up": r["training"]["speedup"],
            "importance speed-up vs batch-1 loop": r["importance"]["speedup_vs_loop"],
            "max relative difference vs loop": r["importance"]["max_relative_difference_vs_loop"],
            "exact vs per-batch time": r["importance"]["extra_time_vs_per_batch"],
            "all-ones gates overhead": r["gates"]["overhead"],
            "predictions equal with gates": r["gates"]["predictions_equal"],
        })
    return pd.DataFrame(rows)


def engine_table_transposed(folder: Path | None = None) -> pd.DataFrame:
    """:func:`engine_table` with one column per file (the measures as rows), as the page shows it."""
    table = engine_table(folder)
    if table.empty:
        return table
    out = table.set_index("file").T.astype(object)
    out.insert(0, "measure", out.index)
    return out.reset_index(drop=True)


def engine_text(folder: Path | None = None) -> str:
    """One paragraph per benchmark file, each measure beside its goal."""
    paragraphs = []
    for _, row in engine_table(folder).iterrows():
        paragraphs.append(
            f"**{row['file']}** ({row['device']}, {row['CPU threads']} threads, {row['date']}): training "
            f"{row['training speed-up']:.2f}x faster than padding to 128 (goal: at least 2x); exact importance "
            f"{row['importance speed-up vs batch-1 loop']:.2f}x faster than the batch-size-1 loop with scores equal "
            f"to a relative {row['max relative difference vs loop']:.1e} (goal: below 1e-4) and "
            f"{row['exact vs per-batch time']:+.0%} time against the authors' per-batch variant (goal: at most "
            f"+10 %); all-ones gates cost {row['all-ones gates overhead']:+.1%} (goal: at most +5 %).")
    return "\n\n".join(paragraphs) or "*No engine benchmark results committed.*"


def engine_ratios(folder: Path | None = None) -> pd.Series:
    """The latest engine benchmark as four speed ratios (above 1: ours faster)."""
    table = engine_table(folder)
    if table.empty:
        return pd.Series(dtype=float)
    last = table.iloc[-1]
    s = pd.Series({"training\n(vs pad 128)": last["training speed-up"],
                   "importance\n(vs batch-1 loop)": last["importance speed-up vs batch-1 loop"],
                   "importance\n(vs per-batch)": 1 / (1 + last["exact vs per-batch time"]),
                   "evaluation\n(gates vs none)": 1 / (1 + last["all-ones gates overhead"])})
    s.name = last["file"]
    return s


def engine_figure(folder: Path | None = None):
    import matplotlib.pyplot as plt

    bars = engine_ratios(folder)
    if bars.empty:
        return None
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.barh(bars.index, bars.values, color="#457b9d")
    ax.axvline(1, color="black", lw=1)
    ax.set_xlabel("speed ratio (higher: ours faster)")
    ax.set_title(str(bars.name))
    return fig


def _bench_heading(path: Path, r: dict, timed: dict) -> str:
    """The opening of a timing benchmark's paragraph, without its closing parenthesis: file, device, threads, date,
    model, task, and the examples and repeats of ``timed`` (one of its timed sections)."""
    threads = r["machine"]["torch_threads"]
    return (f"**{path.name}** ({r['machine'].get('cuda') or 'CPU'}, {threads} thread{'s' if threads != 1 else ''}, "
            f"{r['date'][:10]}, {r['model']}, {r['task']}, {timed['n_examples']} training examples, median of "
            f"{timed['repeats']}")


def speedups_text(folder: Path | None = None) -> str:
    """The bfloat16 and head-removal speed-ups of each benchmarks/bench_speedups.py result."""
    blocks = []
    for path in _bench_files("speedups", folder):
        r = json.loads(path.read_text())
        p = r["precision"]
        mask = "/".join(Path(r["mask_folder"]).parts[-5:-2])
        lines = [_bench_heading(path, r, p) + "):",
                 (f"- bfloat16 autocast: {p['examples_per_s']['bf16']:.1f} vs {p['examples_per_s']['fp32']:.1f} "
                  f"examples/s in fp32: **{p['speedup']:.2f}x**.")]
        for name, x in r["removal"].items():
            lines.append(
                f"- {name} subnetwork of `{mask}` ({x['heads_kept']} heads, {x['mlps_kept']} MLPs kept; "
                f"{x['parameters_after'] / x['parameters_before']:.0%} of the parameters, embeddings included): removed "
                f"{x['examples_per_s']['removed']:.1f} vs gated {x['examples_per_s']['gated']:.1f} examples/s: "
                f"**{x['speedup']:.2f}x**; largest logit difference {x['max_abs_logit_difference']:.1e}, "
                f"predictions {'identical' if x['same_predictions'] else 'NOT identical'}.")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "*No speed-up benchmark results committed.*"


def cpu_bf16_text(folder: Path | None = None) -> str:
    """What each benchmarks/bench_cpu_bf16.py result measured: the training speed of bf16 with torch's CPU kernels
    and with float32 products (lotterylib.run.cpu_bf16), side by side, and demo re-fine-tunes made again with float32
    products beside the committed ones made with torch's kernels (their run times are not compared: the two ran
    under different loads of the machine)."""
    blocks = []
    for path in _bench_files("cpu_bf16", folder):
        r = json.loads(path.read_text())
        s = r["speed"]
        rate = s["examples_per_s"]
        fast, slow = rate["bf16, float32 products"], rate["bf16, torch's kernels"]
        lines = [_bench_heading(path, r, s) + f"; bfloat16 units: {'yes' if r['cpu_has_bf16_kernels'] else 'no'}):",
                 (f"- training under bf16 autocast: {fast:.2f} examples/s with float32 products, {slow:.2f} with "
                  f"torch's kernels: "
                  f"**{s['speedup_vs_torch_kernels']:.1f}x**; fp32 training: {rate['fp32']:.2f} examples/s.")]
        for x in r["remade"]:
            c, a = x["committed"], x["again"]
            lines.append(
                f"- {x['task']} seed {x['seed']} {x['method']}-{x['subnetwork']} re-fine-tune, made again with float32 "
                f"products: dev {_metric_name(c)} {a['metric']:.4f} vs {c['metric']:.4f} committed (torch's kernels, "
                f"commit {c['git_commit'][:7]}); {_agreement(x)}; "
                f"training loss at most {x['max_abs_training_loss_difference']:.1e} apart over {x['n_loss_points']} "
                f"logged points.")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "*No bf16 kernel benchmark results committed.*"


def _agreement(remade: dict) -> str:
    """How many dev predictions of a re-made run match the committed ones: class ids equal, or a regressor's scores
    within 0.01 (with the largest difference)."""
    n, of = remade["predictions_equal"], remade["n_dev"]
    if remade.get("predictions", "class ids") == "class ids":
        return f"{n} of {of} dev predictions the same"
    return f"{n} of {of} dev scores within 0.01 (largest difference {remade['max_abs_prediction_difference']:.3f})"


def _metric_name(record: dict) -> str:
    """The name of the metric a re-fine-tune record's ``metric`` holds (the one of its ``metrics`` equal to it)."""
    return next((k for k, v in record["metrics"].items() if v == record["metric"]), "score")


def grid_calls_table(plan: Plan | str) -> pd.DataFrame:
    """Each logged grid call: device, workers, jobs done, wall time, summed job time, jobs at once."""
    calls = collect.grid_calls(plan)
    if calls.empty:
        return pd.DataFrame()
    shown = calls.assign(**{"wall (min)": calls["wall_seconds"] / 60, "job time (h)": calls["job_seconds"] / 3600,
                            "jobs at once": calls["job_seconds"] / calls["wall_seconds"]})
    return shown[["call", "device", "workers", "jobs_done", "wall (min)", "job time (h)", "jobs at once"]]


def grid_calls_text(plan: Plan | str) -> str:
    calls = collect.grid_calls(plan)
    name = _plan_name(plan)
    if calls.empty:
        return (f"*No grid log for plan `{name}`: its runs were made by the Snakemake workflow, one job per "
                "notebook (each result file's provenance says where).*")
    per_device = calls.groupby("device").agg(jobs=("jobs_done", "sum"), wall=("wall_seconds", "sum"))
    n_jobs = len(collect.grid_logs(plan).drop_duplicates("job"))
    return ("Altogether: " + "; ".join(f"**{int(r.jobs)} jobs in {r.wall / 60:.1f} min of wall time on {device}**"
                                       for device, r in per_device.iterrows())
            + f". The plan has {n_jobs} jobs in these logs.")


def grid_stages_table(plan: Plan | str) -> pd.DataFrame:
    """Per device and stage: jobs finished, median job time (s), total job time (min)."""
    jobs = collect.grid_logs(plan)
    if jobs.empty:
        return pd.DataFrame()
    return (jobs[jobs["ok"]].groupby(["device", "stage"])["seconds"]
            .agg(jobs="count", median_s="median", total_min=lambda s: s.sum() / 60))


def explorer_bench_text(folder: Path | None = None) -> str:
    lines = []
    for path in _bench_files("explorer", folder):
        r = json.loads(path.read_text())
        lines.append(
            f"**{path.name}** ({r['machine']['cuda'] or 'CPU'}, {r['machine']['torch_threads']} threads): "
            f"median update **{r['median_update_seconds']:.2f} s** over {r['clicks']} clicks, of which re-scoring "
            f"{r['dev_examples']} dev examples takes {r['median_score_seconds']:.2f} s ({r['model']}, {r['task']}).")
    return "\n\n".join(lines) or "*No explorer benchmark results committed.*"


def engine_takeaway(folder: Path | None = None) -> str:
    bars = engine_ratios(folder)
    if bars.empty:
        return "No engine benchmark results committed."
    ratios = ", ".join(f"{' '.join(k.split())} {v:.2f}x" for k, v in bars.items())
    return f"Speed ratios of the latest run: {ratios}."

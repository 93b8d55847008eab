"""The chapter "Why the small model answers differently" (METHOD.md section 10), on synthetic result trees: the
readers count every expected run (present or not), the tables apply the one comparison rule, and the plain-words
conclusions follow the data, complete or missing. The paper's side is the real published data
($LOTTERY_PAPER_DIR, else ../shared/paper_reference)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import yaml

matplotlib.use("Agg")

from lotterylib.report import beyond  # noqa: E402
from lotterylib.read.compare import INCONCLUSIVE, ON_PAR, WORSE  # noqa: E402
from lotterylib.read.paper import load_paper_results, paper_reference_dir  # noqa: E402
from lotterylib.config.plans import Plan  # noqa: E402
from lotterylib.method.metrics import search_metric  # noqa: E402
from lotterylib.store import layout  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TASKS = ("CoLA", "MRPC", "STS-B", "WNLI")
BEYOND_TASKS = ("CoLA", "MRPC", "STS-B")
SEEDS = (1, 2, 3)
FRACTIONS = (0.25, 0.5, 0.75)
METRIC = {"CoLA": "mcc", "MRPC": "acc", "STS-B": "pearson", "WNLI": "acc"}
FULL = {"CoLA": 0.30, "MRPC": 0.80, "STS-B": 0.86, "WNLI": 0.30}
MAJORITY = {"CoLA": 0.0, "MRPC": 0.68, "STS-B": 0.0, "WNLI": 0.56}
GOOD = {"CoLA": (0.28, 0.29, 0.27), "MRPC": (0.77, 0.78, 0.76), "STS-B": (0.84, 0.845, 0.835), "WNLI": (0.3,) * 3}
# good minus random per seed: CoLA and MRPC near the paper's relative gaps (0.17, 0.12); STS-B (0.48) so far above
# its -0.05 that the difference outlasts the paper's spread (its good runs' std is 0.23)
RANDOM_GAP = {"CoLA": (0.05, 0.06, 0.055), "MRPC": (0.10, 0.11, 0.105), "STS-B": (0.40, 0.41, 0.39),
              "WNLI": (0.0,) * 3}
DEVICE = "cuda:Test GPU"


def _write(path: Path, payload: dict, device: str = DEVICE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**payload, "provenance": {"device": device, "created": "2025-01-01T00:00:00"}}))


def _score_file(path: Path, task: str, score: float, **extra) -> None:
    _write(path, {"metrics": {METRIC[task]: score, "other": 0.5}, "metric": score, **extra})


def _mask(path: Path, heads_removed: int, mlps_removed: int) -> tuple[np.ndarray, np.ndarray]:
    head, mlp = np.ones((6, 12), np.float32), np.ones(6, np.float32)
    head.ravel()[:heads_removed] = 0
    mlp[:mlps_removed] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, head_mask=head, mlp_mask=mlp)
    return head, mlp


def _lottery_score(task: str, i: int, fraction: float, variant: str) -> float:
    """good drops a little with the fraction; random keeps up at 25 %, falls behind at 75 %; bad collapses."""
    good = GOOD[task][i] - 0.02 * fraction
    return {"good": good, "random": good - (0.0005 * i if fraction < 0.5 else 0.1 + 0.005 * i),
            "bad": good - 0.2 - 0.01 * i}[variant]


def _swap_score(task: str, i: int, variant: str) -> float:
    """CoLA: heads carry the gap; MRPC: MLPs do; STS-B: both parts do."""
    good, rand = GOOD[task][i], GOOD[task][i] - RANDOM_GAP[task][i]
    heads_carry = {"CoLA": True, "MRPC": False, "STS-B": True}[task]
    mlps_carry = {"CoLA": False, "MRPC": True, "STS-B": True}[task]
    carries = heads_carry if variant == "random_heads_good_mlps" else mlps_carry
    return rand if carries else good - 0.001 * i


def make_tree(root: Path, *, random=True, lottery=True, swap=True, lottery_seeds=SEEDS, random_seeds=SEEDS) -> Plan:
    """A plan (4 tasks x 3 seeds, section 10 on CoLA, MRPC, STS-B) and its result tree under ``root``."""
    smoke = yaml.safe_load((REPO / "plans" / "smoke.yaml").read_text())
    smoke.update(name="beyondtest", description="synthetic", tasks=list(TASKS), seeds=list(SEEDS),
                 beyond_paper={"tasks": list(BEYOND_TASKS), "seeds": list(SEEDS), "head_fractions": list(FRACTIONS)})
    smoke["records"]["single_removal_seeds"] = [SEEDS[0]]
    plan_file = root / "beyondtest.yaml"
    plan_file.write_text(yaml.safe_dump(smoke))
    results = root / "results" / "beyondtest"
    for task in TASKS:
        for i, seed in enumerate(SEEDS):
            run = results / task / f"seed_{seed}"
            _write(run / "finetune" / "metrics.json",
                   {"reported_metric": METRIC[task], "search_metric": METRIC[task],
                    "metrics": {METRIC[task]: FULL[task] + 0.01 * i, search_metric(task): FULL[task] + 0.01 * i},
                    "majority_baseline": {METRIC[task]: MAJORITY[task]},
                    "structure": {"n_layers": 6, "n_heads": 12}, "n_train": 64, "n_dev": 48})
            removed = (72, 6) if task == "WNLI" else (21 + 7 * i, 1 + i)
            _mask(run / "prune_s" / "masks" / "good.npz", *removed)
            _score_file(run / "retrain_s_good" / "metrics.json", task, GOOD[task][i], method="s", subnetwork="good")
            if random and seed in random_seeds:
                _score_file(run / "retrain_s_random" / "metrics.json", task, GOOD[task][i] - RANDOM_GAP[task][i],
                            method="s", subnetwork="random")
            if task not in BEYOND_TASKS:
                continue
            if lottery and seed in lottery_seeds:
                for f in FRACTIONS:
                    for v in ("good", "random", "bad"):
                        _score_file(run / "lottery" / f"{layout.fraction_label(f)}_{v}" / "metrics.json", task,
                                    _lottery_score(task, i, f, v), experiment="lottery", fraction=f, variant=v,
                                    heads_kept=72 - round(72 * f), mlps_kept=6)
            if swap:
                for v in beyond.SWAP_VARIANTS:
                    _score_file(run / "swap" / v / "metrics.json", task, _swap_score(task, i, v), experiment="swap",
                                variant=v, heads_kept=50, mlps_kept=4)
                    # seed 1 of CoLA keeps its good mask's MLPs in "good heads + random MLPs"
                    _mask(run / "swap" / v / "mask.npz", *(removed if (task, seed, v) == (
                        "CoLA", 1, "good_heads_random_mlps") else (removed[0] + 1, removed[1])))
    return Plan.load(plan_file)


@pytest.fixture
def results_root(tmp_path, monkeypatch):
    monkeypatch.setenv("LOTTERY_RESULTS", str(tmp_path / "results"))
    return tmp_path


@pytest.fixture
def paper_dir():
    path = paper_reference_dir()
    if not (path / "evaluate_masked").is_dir():
        pytest.skip("the authors' published data is not here: set LOTTERY_PAPER_DIR")
    return path


# --- readers and counts --------------------------------------------------------------------------------------

def test_fraction_labels_and_paper_settings_match_the_modules_that_own_them():
    from lotterylib.report.paper_figures import FIG2_SERIES

    assert [layout.fraction_label(f) for f in (0.25, 0.5, "0.75", 0.1)] == ["f0.25", "f0.50", "f0.75", "f0.10"]
    assert beyond.PAPER_S_SETTINGS == {sub: FIG2_SERIES[("s", sub, "retrained")][0] for sub in ("good", "random")}


def test_the_module_imports_no_torch():
    code = "import sys, lotterylib.report.beyond; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_readers_give_one_row_per_expected_run(results_root, paper_dir):
    plan = make_tree(results_root, lottery_seeds=(1,), random_seeds=(1, 2))
    ev = beyond.gather(plan)
    assert ev.scope.beyond_tasks == BEYOND_TASKS and ev.scope.fractions == FRACTIONS
    assert len(ev.lottery) == 3 * 3 * 3 * 3  # tasks x seeds x fractions x variants
    done = ev.lottery[ev.lottery["status"] == "done"]
    assert len(done) == 27 and set(done["seed"]) == {1}
    assert {"task", "seed", "fraction", "variant", "score", "heads_kept", "device"} <= set(ev.lottery.columns)
    row = done[(done["task"] == "MRPC") & (done["fraction"] == 0.5) & (done["variant"] == "bad")].iloc[0]
    assert row["metric"] == "acc" and row["score"] == pytest.approx(_lottery_score("MRPC", 0, 0.5, "bad"))
    assert row["heads_kept"] == 36 and row["device"] == DEVICE
    assert len(ev.swap) == 3 * 3 * 2 and (ev.swap["status"] == "done").all()
    same = ev.swap[ev.swap["same_as_good"] == 1]
    assert list(zip(same["task"], same["seed"], same["variant"])) == [("CoLA", 1, "good_heads_random_mlps")]
    assert len(ev.s) == 4 * 3 * 2


def test_counts_say_what_is_missing_and_what_has_no_score(results_root, paper_dir):
    plan = make_tree(results_root, lottery_seeds=(1,), random_seeds=(1, 2))
    run = results_root / "results" / "beyondtest" / "STS-B" / "seed_3" / "swap" / "random_heads_good_mlps"
    _write(run / "metrics.json", {"experiment": "swap", "variant": "random_heads_good_mlps",
                                  "no_subnetwork": "the search removed nothing"})
    counts = beyond.run_counts(beyond.gather(plan)).set_index("experiment")
    assert counts.loc["heads-only lottery curve", ["expected", "with a score", "missing"]].tolist() == [81, 27, 54]
    swap = counts.loc["component swap"]
    assert (swap["expected"], swap["with a score"], swap["recorded without a score"]) == (18, 17, 1)
    assert swap["why no score"] == "the search removed nothing"
    random = counts.loc["s-pruning random, re-fine-tuned"]
    assert (random["expected"], random["with a score"], random["missing"]) == (12, 8, 4)


# --- tables -------------------------------------------------------------------------------------------------------

def test_lottery_summary_and_comparisons(results_root, paper_dir):
    ev = beyond.gather(make_tree(results_root))
    summary = beyond.lottery_summary(ev)
    cell = summary[(summary["task"] == "CoLA") & (summary["fraction"] == 0.25) & (summary["variant"] == "good")].iloc[0]
    expected = [_lottery_score("CoLA", i, 0.25, "good") for i in range(3)]
    assert cell["n"] == 3 and cell["mean"] == pytest.approx(np.mean(expected))
    assert cell["std"] == pytest.approx(np.std(expected, ddof=1)) and cell["min"] == pytest.approx(min(expected))
    comp = beyond.lottery_comparisons(ev).set_index(["task", "fraction", "other"])
    assert comp.loc[("CoLA", 0.25, "random"), "verdict"] == ON_PAR
    assert comp.loc[("CoLA", 0.75, "random"), "verdict"] == WORSE
    assert (comp.xs("bad", level="other")["verdict"] == WORSE).all()
    row = comp.loc[("MRPC", 0.75, "random")]
    assert row["rel_gap"] == pytest.approx(row["gap"] / row["reference_mean"])


def test_swap_table_compares_every_arm_with_good(results_root, paper_dir):
    ev = beyond.gather(make_tree(results_root))
    table = beyond.swap_table(ev).set_index(["task", "arm"])
    assert list(table.loc["CoLA"].index) == list(beyond.SWAP_ARMS)
    good = table.loc[("CoLA", "good")]
    assert good["n"] == 3 and good["mean"] == pytest.approx(np.mean(GOOD["CoLA"]))
    assert table.loc[("CoLA", "random_heads_good_mlps"), "vs_good_verdict"] == WORSE
    assert table.loc[("CoLA", "good_heads_random_mlps"), "vs_good_verdict"] == ON_PAR
    assert table.loc[("MRPC", "good_heads_random_mlps"), "vs_good_verdict"] == WORSE
    rand = table.loc[("STS-B", "random")]
    assert rand["vs_good_gap"] == pytest.approx(np.mean(RANDOM_GAP["STS-B"]))
    assert rand["vs_good_n"] == 3 and rand["std"] == pytest.approx(np.std(
        np.subtract(GOOD["STS-B"], RANDOM_GAP["STS-B"]), ddof=1))
    assert table.loc[("CoLA", "good_heads_random_mlps"), "same_as_good"] == 1


def test_removed_shares_beside_the_papers_masks(results_root, paper_dir):
    ev = beyond.gather(make_tree(results_root))
    shares = beyond.removed_shares(ev).set_index("task")
    assert shares.loc["CoLA", "ours_heads"] == pytest.approx(np.mean([21, 28, 35]) / 72)
    assert shares.loc["CoLA", "ours_mlps"] == pytest.approx(np.mean([1, 2, 3]) / 6)
    assert shares.loc["WNLI", "ours_heads"] == 1.0 and shares.loc["CoLA", "paper_seeds"] == 5
    from lotterylib.read.paper import load_paper_masks

    paper = load_paper_masks("heads_mlps", tasks=["MRPC"], allow_download=False)["MRPC"]
    assert shares.loc["MRPC", "paper_heads"] == pytest.approx(1 - paper["head_mask"].sum((1, 2)).mean() / 144)
    assert shares.loc["MRPC", "paper_mlps"] == pytest.approx(1 - paper["mlp_mask"].sum(1).mean() / 12)
    steps = beyond.step_sizes(ev).set_index("model")
    assert steps.loc["tiny-bert", "share of MLPs per step"] == pytest.approx(1 / 6)
    assert steps.loc["bert-base-uncased", "share of MLPs per step"] == pytest.approx(1 / 12)
    assert steps.loc["tiny-bert", "heads per step"] == 7 and steps.loc["bert-base-uncased", "heads per step"] == 14


def test_compare_unpaired_is_welchs_interval_under_the_same_rule():
    from scipy import stats

    a, b = np.array([0.80, 0.82, 0.79, 0.81, 0.83]), np.array([0.70, 0.78, 0.65, 0.74, 0.72])
    c = beyond.compare_unpaired(a.mean(), a.std(ddof=1), 5, b.mean(), b.std(ddof=1), 5)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (c.low, c.high) == pytest.approx((ci.low, ci.high))
    assert c.gap == pytest.approx(a.mean() - b.mean()) and c.tau == pytest.approx(0.1 * a.mean())
    assert c.verdict == INCONCLUSIVE  # [0.02, 0.14] straddles tau = 0.081
    assert beyond.compare_unpaired(0.8, 0.01, 5, 0.5, 0.01, 5).verdict == WORSE
    assert beyond.compare_unpaired(0.8, 0.01, 1, 0.5, 0.01, 1).label == "inconclusive at 1 seed"
    assert beyond.compare_unpaired(0.8, 0.01, 5, np.nan, np.nan, 0).n == 0


def test_gaps_on_one_scale_ours_and_the_papers(results_root, paper_dir):
    ev = beyond.gather(make_tree(results_root))
    table = beyond.gaps(ev)
    assert list(dict.fromkeys(table["task"])) == ["CoLA", "MRPC", "STS-B"]  # WNLI: not testable
    t = table.set_index(["task", "source"])
    ours = t.loc[("CoLA", "ours")]
    assert ours["n"] == 3 and ours["gap"] == pytest.approx(np.mean(RANDOM_GAP["CoLA"]))
    assert ours["rel_gap"] == pytest.approx(ours["gap"] / np.mean(GOOD["CoLA"]))
    assert ours["random_std"] == pytest.approx(np.std(np.subtract(GOOD["CoLA"], RANDOM_GAP["CoLA"]), ddof=1))
    assert ours["verdict"] == WORSE
    for task in ("CoLA", "MRPC", "STS-B"):  # the paper's side, straight from its published results
        good, rand = (load_paper_results(s, allow_download=False).set_index(["task", "metric"])
                      .loc[(task, {"CoLA": "mcc", "MRPC": "acc", "STS-B": "pearson"}[task])]
                      for s in ("head_mlp_retrained", "head_mlp_random_retrained"))
        paper = t.loc[(task, "paper, unpaired")]
        assert paper["gap"] == pytest.approx(good["mean"] - rand["mean"])
        assert paper["rel_gap"] == pytest.approx((good["mean"] - rand["mean"]) / good["mean"])
        assert paper["random_std"] == pytest.approx(rand["std"]) and paper["n"] == 5
    # the numbers the issue quoted for the paper: gaps .087, .094, -.039; random std .234, .206
    assert [round(t.loc[(k, "paper, unpaired"), "gap"], 3) for k in ("CoLA", "MRPC", "STS-B")] == [0.087, 0.094, -0.039]
    assert [round(t.loc[(k, "paper, unpaired"), "random_std"], 3) for k in ("CoLA", "MRPC")] == [0.234, 0.206]
    readings = beyond.gap_readings(ev, table).set_index("task")["reading"]
    assert readings.to_dict() == {"CoLA": "spread", "MRPC": "spread", "STS-B": "departure"}
    fig = beyond.gaps_figure(ev, table)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["CoLA", "MRPC", "STS-B"]


def test_gaps_with_our_random_runs_missing(results_root, paper_dir):
    ev = beyond.gather(make_tree(results_root, random=False))
    t = beyond.gaps(ev).set_index(["task", "source"])
    assert t.loc[("CoLA", "ours"), "n"] == 0 and np.isnan(t.loc[("CoLA", "ours"), "gap"])
    assert t.loc[("CoLA", "ours"), "good"] == pytest.approx(np.mean(GOOD["CoLA"]))  # good is there
    assert t.loc[("CoLA", "paper, unpaired"), "n"] == 5
    assert set(beyond.gap_readings(ev)["reading"]) == {"not yet"}
    html = beyond.gaps_view(ev).to_html()
    assert "not yet computed (0 of 3 runs)" in html and "nan" not in html.lower()


# --- conclusions -----------------------------------------------------------------------------------------------------

def test_conclusions_with_complete_data(results_root, paper_dir):
    ev = beyond.gather(make_tree(results_root))
    text = beyond.conclusions(ev)
    joined = "\n".join(text)
    assert "not yet computed" not in joined
    lottery = next(s for s in text if s.startswith("**Heads-only lottery curve**"))
    assert "random against good at matched shares of heads removed (every MLP kept): at 25 %, on par on 3 of 3 " \
           "tasks (CoLA, MRPC, STS-B); at 50 %, on par on 0 of 3 tasks, worse on 3 (CoLA, MRPC, STS-B)" in lottery
    assert "CoLA gap/good" in lottery and ", n = 3" in lottery  # the numbers behind it
    assert "bad (the most important heads removed) is worse than good at 9 of 9" in joined
    swap = next(s for s in text if s.startswith("**Component swap**"))
    assert "the heads carry the gap on CoLA; the MLPs carry the gap on MRPC; both parts open a gap, each on its " \
           "own, on STS-B." in swap
    assert "in 1 of 3 seeds good heads + random MLPs is the good mask itself" in swap
    spread = next(s for s in text if s.startswith("**Spread, not effect size**"))
    assert "from the paper's on CoLA, MRPC:" in spread and "0.234" in spread and "0.206" in spread
    stds = {t: np.std(np.subtract(GOOD[t], RANDOM_GAP[t]), ddof=1) for t in ("CoLA", "MRPC")}
    assert f"the paper's random runs' std is {0.234139 / stds['CoLA']:.1f} times (CoLA)" in spread
    departure = next(s for s in text if s.startswith("**A real departure**"))
    assert "differs from the paper's on STS-B, beyond both sides' spread" in departure
    assert "scored above its good ones" in departure and "ours minus the paper's 0.5" in departure
    removed = next(s for s in text if s.startswith("**Removed shares**"))
    assert "1 of 6 MLPs (16.7 %) against 1 of 12 (8.3 %)" in removed
    assert "every accepted search step takes 2.0 times bert-base's share of the MLPs" in removed
    box = beyond.verdict_box(ev)
    assert box.startswith("````{admonition}") and box.rstrip().endswith("````") and "\n- **Component swap**" in box
    assert "gap/good" not in box  # the box summarises; the numbers follow on the page


def test_conclusions_with_missing_data(results_root, paper_dir):
    ev = beyond.gather(make_tree(results_root, random=False, lottery=False, swap=False))
    text = "\n".join(beyond.conclusions(ev))
    assert "**Heads-only lottery curve**: does random keep up with good at matched shares of heads removed? not yet " \
           "computed (0 of 81 runs)." in text
    assert "**Component swap**: do heads or MLPs carry the good-random gap? not yet computed (0 of 18 runs)." in text
    assert "our s-pruning random re-fine-tunes of CoLA, MRPC, STS-B: not yet computed (0 of 9 runs)" in text
    assert "CoLA 0.172 (inconclusive at 5 seeds; its random runs' std 0.234)" in text
    assert "**Removed shares**" in text and "Spread" not in text


def test_conclusions_with_partial_data_say_how_far_they_got(results_root, paper_dir):
    ev = beyond.gather(make_tree(results_root, lottery_seeds=(1, 2), random_seeds=(1, 2)))
    text = "\n".join(beyond.conclusions(ev))
    assert "**Heads-only lottery curve (54 of 81 runs so far)**" in text
    assert "2 of 3 random runs" in text  # the gap readings say on how many runs they stand


def test_the_rerun_text_counts_the_missing_runs_and_says_when_none_is(results_root, paper_dir):
    from lotterylib.report import views

    views.clear_cache()
    partial = views.why_small_rerun_text(make_tree(results_root, lottery=False, swap=False))
    assert partial.startswith("**Compute the missing runs** (99 not on file yet).")  # 81 lottery + 18 swap
    assert "-- beyond_paper" in partial and "make experiments PLAN=beyondtest" in partial
    views.clear_cache()
    complete = views.why_small_rerun_text(make_tree(results_root))
    assert complete.startswith("**Every run this page reads is on file.**") and "missing" not in complete
    assert "-- beyond_paper" in complete  # the commands stay, for a results folder without the runs


def test_an_inconclusive_lottery_point_says_on_how_many_seeds(results_root, paper_dir):
    ev = beyond.gather(make_tree(results_root, lottery_seeds=(1,)))
    text = "\n".join(beyond.conclusions(ev))
    assert "at 50 %, on par on 0 of 3 tasks, inconclusive on 3 (CoLA at 1 seed, MRPC at 1 seed, STS-B at 1 seed)" \
        in text


def test_without_the_papers_data_our_side_still_reads(results_root, monkeypatch, tmp_path):
    empty = tmp_path / "no_paper"
    empty.mkdir()
    monkeypatch.setenv("LOTTERY_PAPER_DIR", str(empty))
    monkeypatch.setenv("LOTTERY_CACHE", str(empty))
    monkeypatch.setenv("LOTTERY_OFFLINE", "1")
    ev = beyond.gather(make_tree(results_root))
    assert ev.paper.missing and not len(ev.paper.scores)
    assert set(beyond.gaps(ev)["source"]) == {"ours", "ours, unpaired"}
    assert beyond.conclusions(ev) and "paper's side is empty" in beyond.untestable_note(ev)
    assert beyond.removed_shares(ev)["paper_seeds"].eq(0).all()


# --- the page's pieces ----------------------------------------------------------------------------------------

def _texts(fig):
    return [t for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip() and t.get_visible()]


@pytest.mark.parametrize("kind", ["complete", "empty"])
def test_figures_and_views_render_readably(results_root, paper_dir, kind):
    plan = make_tree(results_root) if kind == "complete" else make_tree(
        results_root, random=False, lottery=False, swap=False)
    ev = beyond.gather(plan)
    fig = beyond.lottery_figure(ev)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title().split("\n")[0] for ax in panels] == list(BEYOND_TASKS)  # GLUE order
    assert all(t.get_fontsize() >= 9 for t in _texts(fig))
    assert fig.legends and not any(ax.get_legend() for ax in panels)  # one legend, outside the panels
    titles = " ".join(ax.get_title() for ax in panels)
    assert ("n = 3 seeds per point" in titles) == (kind == "complete")
    if kind == "empty":
        assert "not yet computed\n(0 of 27 runs)" in [t.get_text() for t in _texts(fig)]
    assert all(t.get_fontsize() >= 9 for t in _texts(beyond.gaps_figure(ev)))
    for view in (beyond.run_counts_view, beyond.lottery_view, beyond.swap_view, beyond.removed_view,
                 beyond.steps_view, beyond.gaps_view):
        html = view(ev).to_html()
        assert "nan" not in html.lower() and "None" not in html, view.__name__
    statement = beyond.scale_statement(ev)
    assert "tiny-bert" in statement and "6 layers x 12 heads = 72 heads, 6 MLPs" in statement
    assert ("ran on cuda:Test GPU (99 runs)" in statement) == (kind == "complete")
    command = beyond.rerun_command(ev)
    assert command.splitlines() == ["snakemake --cores 2 --rerun-incomplete --config plan=beyondtest -- beyond_paper",
                                    "make experiments PLAN=beyondtest"]
    plt_close()


def plt_close():
    import matplotlib.pyplot as plt

    plt.close("all")


def test_the_chapter_is_in_the_toc_after_fig2():
    toc = (REPO / "_toc.yml").read_text().splitlines()
    files = [line.split("file:")[1].strip() for line in toc if "file:" in line]
    assert files[files.index("book/figures/fig2_subnetworks") + 1] == "book/figures/why_small_model"


# --- the notebook ------------------------------------------------------------------------------------------------

NOTEBOOK = REPO / "notebooks" / "figures" / "why_small_model.ipynb"


def test_notebook_is_thin_and_committed_clean():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.cells[0].source.startswith("# Why the small model answers differently\n")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].source.startswith('plan: str = "smoke"')
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    verdict = next(c for c in code if 'scorecard.verdict_markdown(plan, "why_small_model")' in c.source)
    assert verdict.metadata["mystnb"]["markdown_format"] == "myst"  # the admonition renders as one
    assert code.index(verdict) == 2  # the imports, the parameters, then the verdict: the finding first


@pytest.mark.slow
def test_notebook_executes_on_a_synthetic_plan(results_root, paper_dir, tmp_path):
    papermill = pytest.importorskip("papermill")
    import nbformat

    plan = make_tree(results_root, lottery_seeds=(1, 2))
    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), parameters={"plan": str(results_root / "beyondtest.yaml")},
                               kernel_name="python3", cwd=str(NOTEBOOK.parent), progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    problems = [o for o in outputs if o["output_type"] == "error" or o.get("name") == "stderr"]
    assert not problems, problems
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
    markdown = "\n".join(o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {}))
    assert "{admonition} Verdict" in markdown and "54 of 81 runs so far" in markdown
    assert plan.name in markdown


def test_a_task_whose_full_model_learned_nothing_is_left_out_and_said_so(results_root, paper_dir):
    plan = make_tree(results_root)
    for seed in SEEDS:  # MRPC's full model no better than its majority baseline
        path = results_root / "results" / "beyondtest" / "MRPC" / f"seed_{seed}" / "finetune" / "metrics.json"
        data = json.loads(path.read_text())
        data["majority_baseline"]["acc"] = 0.9
        path.write_text(json.dumps(data))
    ev = beyond.gather(plan)
    ok, why = beyond.testable_tasks(ev)
    assert ok == ["CoLA", "STS-B"] and set(why) == {"MRPC", "WNLI"} and "majority baseline" in why["MRPC"]
    text = "\n".join(beyond.conclusions(ev))
    assert "at 25 %, on par on 2 of 2 tasks (CoLA, STS-B)" in text
    assert text.count("MRPC is left out: the full model") == 2  # lottery curve and swap
    assert "MRPC" not in set(beyond.gaps(ev)["task"])


def test_first_runs_in_say_what_they_cannot_tell_yet(results_root, paper_dir):
    plan = make_tree(results_root, lottery=False, swap=False, random_seeds=(1, 2))
    run = results_root / "results" / "beyondtest" / "CoLA" / "seed_1" / "lottery" / "f0.25_random" / "metrics.json"
    _score_file(run, "CoLA", 0.27, experiment="lottery", fraction=0.25, variant="random", heads_kept=54, mlps_kept=6)
    ev = beyond.gather(plan)
    text = "\n".join(beyond.conclusions(ev))
    assert "**Heads-only lottery curve (1 of 81 runs so far)**" in text
    assert "no seed has both a good and a random run at any share yet" in text
    readings = beyond.gap_readings(ev).set_index("task")["reading"]
    assert set(readings) <= {"undecided", "spread", "agree", "departure"}  # two random runs: an interval exists
    fig = beyond.lottery_figure(ev)
    assert fig.axes[0].get_title() == "CoLA\nn = 0-1 seeds per point"


def test_a_gap_on_one_seed_is_drawn_as_such(results_root, paper_dir):
    ev = beyond.gather(make_tree(results_root, random_seeds=(1,)))
    fig = beyond.gaps_figure(ev)
    assert "n = 1, no interval" in [t.get_text() for t in _texts(fig)]


def test_each_figure_caption_says_what_its_own_section_finds(results_root, paper_dir):
    """The caption of a figure carries the finding of its part of the page, whatever its reading is named (the
    gap figure's findings are titled by reading: spread, departure, ...)."""
    from lotterylib.report import views

    plan = make_tree(results_root)
    ev = beyond.gather(plan)
    for section in beyond.SECTIONS:
        found = beyond.findings(ev, section)
        assert found and all(c.section == section for c in found)
        caption = views.why_small_takeaway(plan, section)
        assert caption != "Not computed yet." and all(c.summary in caption for c in found)
    gaps = views.why_small_takeaway(plan, "gaps")
    assert gaps.startswith("Spread, not effect size: ") and "A real departure: the gap itself differs from the paper's on STS-B" in gaps
    assert "Heads-only" not in gaps and "Component swap" not in gaps
    assert [c.section for c in beyond.findings(ev)] == sorted(
        (c.section for c in beyond.findings(ev)), key=list(beyond.SECTIONS).index)
    with pytest.raises(ValueError, match="the sections are lottery, swap, gaps, removed"):
        beyond.findings(ev, "Good minus random")


def test_swap_says_what_one_arm_tells_when_the_other_cannot_tell_yet(results_root, paper_dir):
    """Where one arm is decided and the other inconclusive, the swap still says what the decided arm shows."""
    plan = make_tree(results_root)
    for i, seed in enumerate(SEEDS):  # MRPC: random heads + good MLPs now spread too wide to call
        path = results_root / "results" / "beyondtest" / "MRPC" / f"seed_{seed}" / "swap" / "random_heads_good_mlps"
        _score_file(path / "metrics.json", "MRPC", GOOD["MRPC"][i] - (0.0, 0.15, 0.0)[i], experiment="swap",
                    variant="random_heads_good_mlps", heads_kept=50, mlps_kept=4)
    swap = next(c for c in beyond.findings(beyond.gather(plan), "swap"))
    assert "the heads carry the gap on CoLA" in swap.summary
    assert "random MLPs alone open a gap, random heads alone inconclusive at 3 seeds on MRPC" in swap.summary
    assert "both parts open a gap, each on its own, on STS-B" in swap.summary

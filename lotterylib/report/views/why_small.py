"""The chapter "Why the small model answers differently" (``why_small_model``): its evidence and sentences."""

from __future__ import annotations

from lotterylib.config.plans import Plan
from lotterylib.report.views._common import _cached, rerun_command


def evidence(plan: Plan | str):
    """Every result file the why-small-model page reads, read once (:func:`lotterylib.report.beyond.gather`)."""
    from lotterylib.report import beyond

    return _cached("beyond", plan, lambda: beyond.gather(plan))


def why_small_rerun_text(plan: Plan | str) -> str:
    """The commands that compute the missing section-10 runs, then rebuild the book (Markdown code block). Where
    every run the page reads is on file, it says so, and gives the same commands for a results folder without them."""
    from lotterylib.report import beyond

    ev = evidence(plan)
    counts = beyond.run_counts(ev)
    missing = int(counts.loc[~counts["experiment"].str.startswith("of which"), "missing"].sum())  # no subset twice
    if missing:
        head = (f"**Compute the missing runs** ({missing} not on file yet). The first command computes the section 10 "
                "runs still missing (with the fine-tunes and searches they start from), the second every run of the "
                "plan still missing (resumable: run it again to go on):")
    else:
        head = ("**Every run this page reads is on file.** Where they are not (a fresh results folder, "
                "`LOTTERY_RESULTS=...`), the first command computes the section 10 runs (with the fine-tunes and "
                "searches they start from), the second every run of the plan (resumable: run it again to go on):")
    return head + "\n\n```bash\n" + beyond.rerun_command(ev) + "\n```\n\n" + rerun_command("why_small_model", plan)


def why_small_takeaway(plan: Plan | str, section: str) -> str:
    """The summaries of what one part of the page finds (a key of :data:`lotterylib.report.beyond.SECTIONS`:
    "lottery", "swap", "gaps", "removed"), each with its topic, as one line for a figure's caption."""
    from lotterylib.report import beyond

    found = [f"{c.topic}: {c.summary}" for c in beyond.findings(evidence(plan), section)]
    return " ".join(found) or "Not computed yet."

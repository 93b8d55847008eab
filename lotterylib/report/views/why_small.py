"""The chapter "Why the small model answers differently" (``why_small_model``): its evidence and sentences."""

from __future__ import annotations

from lotterylib.config.plans import Plan
from lotterylib.report.views._common import _cached, rerun_command


def evidence(plan: Plan | str):
    """Every result file the why-small-model page reads, read once (:func:`lotterylib.report.beyond.gather`)."""
    from lotterylib.report import beyond

    return _cached("beyond", plan, lambda: beyond.gather(plan))


def why_small_rerun_text(plan: Plan | str) -> str:
    """The commands that compute the missing section-10 runs, then rebuild the book (Markdown code block)."""
    from lotterylib.report import beyond

    return ("**Re-run this page.** The first command computes the section 10 runs still missing (with any earlier "
            "stage they need); the second re-executes every figure notebook and builds the book:\n\n```bash\n"
            + beyond.rerun_command(evidence(plan)) + "\n```\n\n" + rerun_command("why_small_model", plan))


def why_small_takeaway(plan: Plan | str, topic: str) -> str:
    """The page's finding whose topic starts with ``topic`` (e.g. "Heads-only", "Good minus random"), one line."""
    from lotterylib.report import beyond

    found = [c.summary for c in beyond.findings(evidence(plan)) if c.topic.startswith(topic)]
    return " ".join(found) or "Not computed yet."

"""Random streams for every draw of a subnetwork (METHOD.md section 7).

Every draw has its own stream, keyed by the run's seed and by what is drawn: the task, the method
(``m``, ``s``, ``super``, ``lottery``, ``swap``), the variant (``random``, ``bad``, ...) and a draw
index (0 for heads or weights, 1 for MLPs, ...). The key is hashed with SHA-256, never Python's
``hash`` (salted per process), so the same inputs give the same masks in every process, while no two
tasks, methods or variants share noise: a random mask of task A is not a subset or superset of task
B's by construction, and "bad" never reuses the draws of "random".
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_hash(*parts: object) -> int:
    """A 64-bit integer from the parts' text, the same in every Python process.

    >>> stable_hash("CoLA", "s", "random", 0) == stable_hash("CoLA", "s", "random", 0)
    True
    """
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def draw_key(seed: int, task: str, method: str, variant: str, draw: int = 0) -> list[int]:
    """The entropy of one draw's stream: ``[seed, stable_hash(task, method, variant, draw)]``."""
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return [int(seed), stable_hash(task, method, variant, int(draw))]


def rng_for(seed: int, task: str, method: str, variant: str, draw: int = 0) -> np.random.Generator:
    """The generator of one draw (numpy ``SeedSequence`` over :func:`draw_key`)."""
    return np.random.default_rng(np.random.SeedSequence(draw_key(seed, task, method, variant, draw)))

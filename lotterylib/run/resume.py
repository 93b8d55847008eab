"""Resuming a fine-tune that was stopped part-way, bit for bit.

A stage job that is killed (a session or SLURM time limit, Ctrl-C, a lost machine) starts its fine-tune again
from step 0, which on a CPU can mean hours lost. With a :class:`Resume`, :func:`lotterylib.run.train.fine_tune`
writes its whole state every ``every_s`` seconds (model and optimizer tensors, learning-rate schedule, step,
running loss, training curve, every random generator) to one file, and a later call with the same file goes on
from the last state written. Steps are taken in the same order with the same batches and the same random
numbers, so on the same machine and thread count the result is the one an uninterrupted run gives, bit for
bit (``tests/test_resume.py`` checks it). A long run also writes its last state, so a job killed while it
evaluates does not train again; the caller deletes the file (:meth:`Resume.finish`) once its results are written.

A state file from other settings (another plan, seed, training setting or model shape) is never used: it is
set aside with a warning, and the fine-tune starts from step 0.
"""

from __future__ import annotations

import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lotterylib.store.files import atomic_write

#: Seconds between two states written, unless ``$LOTTERY_RESUME_EVERY`` says otherwise.
DEFAULT_EVERY_S = 600.0


def every_from_env() -> float:
    """``$LOTTERY_RESUME_EVERY`` (seconds, > 0), else :data:`DEFAULT_EVERY_S`."""
    raw = os.environ.get("LOTTERY_RESUME_EVERY", "").strip()
    if not raw:
        return DEFAULT_EVERY_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"LOTTERY_RESUME_EVERY={raw!r} is not a number of seconds > 0: set it to e.g. 600, "
                         f"or unset it for the default ({DEFAULT_EVERY_S:g} s)")
    return value


@dataclass
class Resume:
    """Where a fine-tune keeps its state, and how often it writes it.

    After :func:`~lotterylib.run.train.fine_tune` returns, ``resumed_from_step`` is the step it went on from
    (``None`` for a run from step 0) and ``seconds_before`` the training seconds spent before that."""

    path: Path
    every_s: float = field(default_factory=every_from_env)
    resumed_from_step: int | None = None
    seconds_before: float = 0.0

    def __post_init__(self):
        self.path = Path(self.path)
        if not self.every_s > 0:
            raise ValueError(f"Resume.every_s must be > 0 seconds, got {self.every_s!r}")

    def finish(self) -> None:
        """What the fine-tune was for is written: its state file is no longer needed."""
        self.path.unlink(missing_ok=True)


def _rng_states() -> dict:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def fingerprint(model: torch.nn.Module, config, seed: int, total_steps: int, steps_per_epoch: int) -> dict:
    """What must agree between the run that wrote a state and the run that reads it."""
    shapes = {name: list(t.shape) for name, t in model.state_dict().items()}
    return {"seed": int(seed), "config": repr(config), "total_steps": int(total_steps),
            "steps_per_epoch": int(steps_per_epoch), "shapes": shapes}


def save_state(resume: Resume, *, fingerprint: dict, model, optimizer, scheduler, step: int,
               running: torch.Tensor, seen: int, curve: list[dict], seconds: float) -> None:
    """Write the whole training state after ``step`` steps (atomically: a kill leaves the last state whole)."""
    state = {
        "fingerprint": fingerprint,
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "running": running.detach().clone(),
        "seen": seen,
        "curve": list(curve),
        "seconds": float(seconds),
        "rng": _rng_states(),
        "written": time.time(),
    }
    atomic_write(resume.path, lambda tmp: torch.save(state, tmp))


def load_state(resume: Resume, fingerprint: dict) -> dict | None:
    """The state in ``resume.path`` if there is one written by a run with this ``fingerprint``; else ``None``
    (a state from other settings, or an unreadable file, is renamed ``*.stale`` with a warning)."""
    path = resume.path
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        same = state.get("fingerprint") == fingerprint
        why = "it was written by a run with other settings"
    except Exception as err:  # noqa: BLE001 - any unreadable file is set aside, never trusted
        state, same, why = None, False, f"it cannot be read ({type(err).__name__}: {err})"
    if same:
        return state
    stale = path.with_name(path.name + ".stale")
    os.replace(path, stale)
    warnings.warn(f"the fine-tune state {path} was not used: {why}. It was moved to {stale} and this "
                  f"fine-tune starts from step 0 (delete the .stale file when you no longer need it).",
                  RuntimeWarning, stacklevel=3)
    return None


def restore(state: dict, model, optimizer, scheduler) -> None:
    """Put a loaded state back into the model, the optimizer, the schedule and the random generators (the
    tensors go to the devices of the model's parameters)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_states(state["rng"])



"""A fine-tune stopped part-way goes on from its saved state to the result of an uninterrupted run, bit for bit."""

import numpy as np
import pytest
import torch

from lotterylib.model.masking import prunable_tensors
from lotterylib.model.models import tiny_bert
from lotterylib.run.resume import Resume, every_from_env
from lotterylib.run.train import TrainConfig, fine_tune

from conftest import make_batches_by_hand

CONFIG = TrainConfig(lr=5e-3, epochs=2.5, batch_size=8)  # a fractional last epoch: 5 + 5 + 2 steps (round(12.5))


class Killed(Exception):
    """Stands for the kill of a job (a time limit, a lost machine)."""


class _StopsAfter(list):
    """An epoch's batches that raise :class:`Killed` before the batch ``at``."""

    def __init__(self, batches, at):
        super().__init__(batches)
        self.at = at

    def __iter__(self):
        for i, batch in enumerate(list.__iter__(self)):
            if i == self.at:
                raise Killed
            yield batch


def batches(epoch):
    return make_batches_by_hand(40, 8, 8, seed=epoch)


def killed_in(epoch_killed, at):
    return lambda epoch: _StopsAfter(batches(epoch), at) if epoch == epoch_killed else batches(epoch)


def masks_of(model, kind):
    if kind == "weights":
        rng = np.random.default_rng(0)
        return {"weight_mask": {k: rng.random(v.shape) > 0.3 for k, v in prunable_tensors(model).items()}}
    if kind == "heads":
        head_mask = np.ones((2, 4))
        head_mask[0, 1] = head_mask[1, 3] = 0
        return {"head_mask": head_mask, "mlp_mask": np.array([1.0, 0.0])}
    return {}


def assert_same(a, b, curve_a, curve_b):
    assert curve_a == curve_b
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("kind", ["full", "weights", "heads"])
@pytest.mark.parametrize("where", [(0, 3), (1, 0), (2, 1)])
def test_a_killed_fine_tune_goes_on_to_the_uninterrupted_result(tmp_path, kind, where):
    straight = tiny_bert(seed=1)
    expected = fine_tune(straight, batches, CONFIG, seed=3, log_every=2, **masks_of(straight, kind))

    resume = Resume(tmp_path / "state.pt", every_s=1e-9)  # a state after every step
    first = tiny_bert(seed=1)
    with pytest.raises(Killed):
        fine_tune(first, killed_in(*where), CONFIG, seed=3, log_every=2, resume=resume, **masks_of(first, kind))
    assert resume.path.is_file() and resume.resumed_from_step is None

    again = Resume(resume.path, every_s=3600)
    model = tiny_bert(seed=1)  # a new process: the pre-trained model, then the state
    curve = fine_tune(model, batches, CONFIG, seed=3, log_every=2, resume=again, **masks_of(model, kind))
    assert again.resumed_from_step == where[0] * 5 + where[1]
    assert_same(straight, model, expected, curve)
    again.finish()
    assert not resume.path.exists()


def test_a_long_run_keeps_its_last_state_until_finish_and_it_restores_the_trained_model(tmp_path):
    resume = Resume(tmp_path / "state.pt", every_s=1e-9)
    first = tiny_bert(seed=1)
    curve = fine_tune(first, batches, CONFIG, seed=3, resume=resume)
    assert resume.path.is_file()  # the job can still be killed while it evaluates: it does not train again
    again = Resume(resume.path, every_s=1e-9)
    second = tiny_bert(seed=1)
    assert fine_tune(second, batches, CONFIG, seed=3, resume=again) == curve
    assert again.resumed_from_step == 12
    assert_same(first, second, curve, curve)


def test_a_state_from_other_settings_is_set_aside_not_used(tmp_path):
    resume = Resume(tmp_path / "state.pt", every_s=1e-9)
    with pytest.raises(Killed):
        fine_tune(tiny_bert(seed=1), killed_in(1, 2), CONFIG, seed=3, resume=resume)
    straight = tiny_bert(seed=1)
    expected = fine_tune(straight, batches, CONFIG, seed=4)
    other = Resume(resume.path, every_s=3600)
    model = tiny_bert(seed=1)
    with pytest.warns(RuntimeWarning, match=r"was not used: it was written by a run with other settings.*\.stale"):
        curve = fine_tune(model, batches, CONFIG, seed=4, resume=other)  # another seed
    assert other.resumed_from_step is None
    assert_same(straight, model, expected, curve)
    assert (tmp_path / "state.pt.stale").is_file()


def test_an_unreadable_state_is_set_aside(tmp_path):
    path = tmp_path / "state.pt"
    path.write_bytes(b"half a file")
    resume = Resume(path, every_s=3600)
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        fine_tune(tiny_bert(seed=1), batches, CONFIG, seed=3, resume=resume)
    assert resume.resumed_from_step is None and (tmp_path / "state.pt.stale").read_bytes() == b"half a file"


def test_the_interval_comes_from_the_environment_and_bad_values_are_refused(monkeypatch):
    monkeypatch.delenv("LOTTERY_RESUME_EVERY", raising=False)
    assert every_from_env() == 600
    monkeypatch.setenv("LOTTERY_RESUME_EVERY", "30")
    assert Resume("x.pt").every_s == 30
    for bad in ("0", "-5", "ten", "nan"):
        monkeypatch.setenv("LOTTERY_RESUME_EVERY", bad)
        with pytest.raises(ValueError, match=r"LOTTERY_RESUME_EVERY=.* is not a number of seconds > 0"):
            every_from_env()

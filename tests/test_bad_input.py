"""Bad input at the engine's entry points: each gets an error of the project's own type naming the field or file,
and nothing already computed is lost."""


import numpy as np
import pytest
import torch

from lotterylib.errors import LotteryError, MaskError, MissingError, ResultFileError
from lotterylib.model.masking import apply_weight_masks, gates, prunable_tensors
from lotterylib.store.masks import load_mask, save_mask
from lotterylib.model.models import tiny_bert
from lotterylib.store.files import read_json, read_npz, staged, write_json, write_npz
from lotterylib.model.structure import ModelStructure


@pytest.fixture(scope="module")
def model():
    return tiny_bert(seed=0).eval()


def batch(n=3, t=5):
    return {"input_ids": torch.randint(5, 50, (n, t)), "attention_mask": torch.ones(n, t, dtype=torch.long)}


def test_a_weight_mask_of_one_half_is_refused_when_applied(model):
    masks = {name: np.full(tuple(t.shape), 0.5, dtype=np.float32) for name, t in prunable_tensors(model).items()}
    name = next(iter(masks))
    with pytest.raises(MaskError, match=f"{name}.*other than 0 and 1"):
        apply_weight_masks(model, {name: masks[name]})


def test_gates_may_scale_but_never_with_nan_or_inf(model):
    s = ModelStructure.of(model)
    with gates(model, head_mask=np.full((s.n_layers, s.n_heads), 0.5)):  # scaling is allowed
        model(**batch())
    for bad in (np.nan, np.inf):
        head = np.ones((s.n_layers, s.n_heads))
        head[0, 0] = bad
        with pytest.raises(MaskError, match="head_mask holds NaN or inf"):
            with gates(model, head_mask=head):
                pass


def test_per_example_gates_must_match_the_batch(model):
    s = ModelStructure.of(model)
    with pytest.raises(MaskError, match="per-example mlp_mask has 2 rows.*3 examples"):
        with gates(model, mlp_mask=np.ones((2, s.n_layers))):
            model(**batch(3))


def test_masks_must_be_binary_when_saved_and_loaded(tmp_path, model):
    s = ModelStructure.of(model)
    head = np.ones((s.n_layers, s.n_heads))
    head[0, 1] = 0.5
    with pytest.raises(MaskError, match="head_mask holds values other than 0 and 1"):
        save_mask(tmp_path / "m", {"head_mask": head, "mlp_mask": np.ones(s.n_layers)}, s, "structured")
    save_mask(tmp_path / "ok", {"head_mask": np.ones((s.n_layers, s.n_heads)), "mlp_mask": np.ones(s.n_layers)}, s,
              "structured")
    with open(tmp_path / "ok.npz", "wb") as handle:  # someone edits the file by hand
        np.savez(handle, head_mask=head, mlp_mask=np.ones(s.n_layers))
    with pytest.raises(MaskError, match="ok: head_mask holds values other than 0 and 1"):
        load_mask(tmp_path / "ok")


def test_truncated_npz_and_json_name_the_file_and_the_fix(tmp_path):
    write_npz(tmp_path / "a.npz", x=np.arange(1000))
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "a.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ResultFileError, match=r"a\.npz is corrupt or half-written.*re-run"):
        read_npz(tmp_path / "a.npz")
    write_json(tmp_path / "m.json", {"x": 1})
    text = (tmp_path / "m.json").read_text()
    (tmp_path / "m.json").write_text(text[:10])
    with pytest.raises(ResultFileError, match=r"m\.json is corrupt or half-written.*re-run"):
        read_json(tmp_path / "m.json")
    with pytest.raises(MissingError, match="nope.json is missing"):
        read_json(tmp_path / "nope.json")


def test_a_mask_of_another_run_is_refused(tmp_path, model):
    s = ModelStructure.of(model)
    save_mask(tmp_path / "good", {"head_mask": np.ones((s.n_layers, s.n_heads)), "mlp_mask": np.ones(s.n_layers)},
              s, "structured", model="tiny-bert", plan="smoke", task="RTE", seed=42, method="s")
    with pytest.raises(ResultFileError, match="seed=42, expected 1337"):
        load_mask(tmp_path / "good", expect={"model": "tiny-bert", "plan": "smoke", "task": "RTE", "seed": 1337})


def test_a_failed_stage_leaves_the_previous_complete_result(tmp_path):
    folder = tmp_path / "retrain_s_good"
    with staged(folder) as tmp:
        write_json(tmp / "metrics.json", {"metric": 0.8})
        write_npz(tmp / "predictions.npz", predictions=np.zeros(3))
    with pytest.raises(RuntimeError):
        with staged(folder) as tmp:
            write_json(tmp / "metrics.json", {"metric": 0.1})
            raise RuntimeError("killed mid-stage")
    assert read_json(folder / "metrics.json")["metric"] == 0.8
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.json", "predictions.npz"]
    assert [p.name for p in tmp_path.iterdir()] == ["retrain_s_good"]  # no half-written folder left beside it
    with staged(folder) as tmp:  # a successful stage replaces the old files all together
        write_json(tmp / "metrics.json", {"metric": 0.9})
    assert [p.name for p in folder.iterdir()] == ["metrics.json"]


def test_every_error_derives_from_the_project_root():
    for kind in (MaskError, MissingError, ResultFileError):
        assert issubclass(kind, LotteryError)

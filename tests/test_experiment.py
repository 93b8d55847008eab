"""Plans, result files and the experiment stages on the smoke plan (through the Python API)."""

import json

import numpy as np
import pytest
import yaml

from lotterylib.read import collect
from lotterylib.run import experiment
from lotterylib.model.masking import prunable_tensors
from lotterylib.model.models import tiny_bert
from lotterylib.config.plans import Plan
from lotterylib.store.files import atomic_write, read_json, write_json
from lotterylib.model.structure import ModelStructure
from lotterylib.method.subnetworks import structured_weight_count


def test_plans_load_and_validate(tmp_path):
    smoke = Plan.load("smoke")
    assert smoke.model == "tiny-bert" and smoke.tasks and smoke.seeds
    demo = Plan.load("demo")
    assert demo.tasks == ("CoLA", "SST-2", "MRPC", "STS-B", "RTE", "WNLI")
    assert demo.seeds == (1337, 42, 86, 71, 166)
    with pytest.raises(FileNotFoundError, match="known plans"):
        Plan.load("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "model": "tiny-bert", "tasks": ["MRPC"], "seeds": [1]}))
    with pytest.raises(ValueError, match="lacks"):
        Plan.load(bad)
    bad.write_text(yaml.safe_dump({"name": "bad", "model": "tiny-bert", "tasks": ["MRPC"], "seeds": [1],
                                   "train": {"lr": 1e-3}, "trian": {}}))
    with pytest.raises(ValueError, match="unknown keys"):
        Plan.load(bad)


def test_task_overrides_apply_to_one_task(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "p", "model": "tiny-bert", "tasks": ["MRPC", "SST-2"], "seeds": [1],
                                    "train": {"lr": 1e-3}, "data": {"max_train": 100},
                                    "task_overrides": {"SST-2": {"data": {"max_train": 50}, "train": {"epochs": 1}}}}))
    plan = Plan.load(path)
    assert plan.settings("MRPC").data.max_train == 100
    assert plan.settings("SST-2").data.max_train == 50
    assert plan.train_config("SST-2").epochs == 1 and plan.train_config("SST-2").lr == 1e-3
    with pytest.raises(ValueError, match="not in plan"):
        plan.settings("RTE")


def test_one_size_unit_counts_every_prunable_weight():
    model = tiny_bert(n_layers=3, n_heads=4, hidden_size=32, intermediate_size=48)
    s = ModelStructure.of(model)
    n = sum(t.numel() for t in prunable_tensors(model).values())
    kept, total = structured_weight_count(s, np.ones((3, 4)), np.ones(3))
    assert kept == total == n
    assert structured_weight_count(s, np.zeros((3, 4)), np.zeros(3))[0] == 0


def test_atomic_writes_leave_no_half_files(tmp_path):
    target = tmp_path / "a" / "x.json"
    with pytest.raises(RuntimeError):
        atomic_write(target, lambda tmp: (open(tmp, "w").write("half"), (_ for _ in ()).throw(RuntimeError())))
    assert not target.exists() and not list((tmp_path / "a").iterdir())
    write_json(target, {"value": np.float32(0.5)}, {"k": 1})
    data = read_json(target)
    assert data["value"] == 0.5 and data["provenance"]["config"] == {"k": 1}
    assert data["provenance"]["lotterylib_version"]
    with pytest.raises(FileNotFoundError, match="run the stage"):
        read_json(tmp_path / "missing.json")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, glue_root):
    import os

    root = tmp_path_factory.mktemp("results")
    old = {k: os.environ.get(k) for k in ("LOTTERY_RESULTS", "LOTTERY_CHECKPOINTS")}
    os.environ["LOTTERY_RESULTS"] = str(root / "results")
    os.environ["LOTTERY_CHECKPOINTS"] = str(root / "checkpoints")
    run = experiment.Run("smoke", "MRPC", 1337, progress=False)
    experiment.finetune(run)
    experiment.prune(run, "s")
    experiment.prune(run, "m")
    yield run
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_stages_write_their_files_with_provenance(smoke_run):
    folder = smoke_run.dir
    metrics = read_json(folder / "finetune" / "metrics.json")
    assert metrics["provenance"]["config"]["task"] == "MRPC" and metrics["curve"]
    assert set(metrics["metrics"]) >= {"acc", "f1"}
    attention = np.load(folder / "finetune" / "attention.npz")
    s = metrics["structure"]
    assert attention["finetuned_cls"].shape[1:] == (s["n_layers"], s["n_heads"])
    removal = read_json(folder / "finetune" / "single_removal.json")
    assert np.shape(removal["head_removed"]) == (s["n_layers"], s["n_heads"])
    for method in ("s", "m"):
        pruned = read_json(folder / f"prune_{method}" / "pruned.json")
        sizes = {sub: rec["weights_kept_share"] for sub, rec in pruned["subnetworks"].items()}
        assert sizes["good"] == pytest.approx(sizes["random"]) == pytest.approx(sizes["bad"])
    assert not list(folder.rglob("*.tmp"))


def test_missing_m_masks_are_recreated_identically(smoke_run):
    from lotterylib.store.masks import load_mask

    originals = {sub: load_mask(experiment.m_mask_path(smoke_run, sub)).arrays for sub in ("good", "random", "bad")}
    search = (smoke_run.dir / "prune_m" / "search.json").read_text()
    for sub in originals:
        for suffix in (".npz", ".json"):
            experiment.m_mask_path(smoke_run, sub).with_suffix(suffix).unlink()
    masks = experiment.load_subnetwork(smoke_run, "m", "bad")["weight_mask"]
    assert all(np.array_equal(masks[k], originals["bad"][k]) for k in masks)
    for sub, arrays in originals.items():
        again = load_mask(experiment.m_mask_path(smoke_run, sub)).arrays
        assert all(np.array_equal(again[k], arrays[k]) for k in arrays)
    assert (smoke_run.dir / "prune_m" / "search.json").read_text() == search  # committed file untouched


def test_retrain_and_a_missing_checkpoint_is_recreated(smoke_run):
    smoke_run.checkpoint.unlink()
    out = experiment.retrain(smoke_run, "s", "random")
    assert "metrics" in out or "skipped" in out
    if "metrics" in out:  # s-pruned re-fine-tuning cuts the removed heads and MLPs out of the weights
        removed = out["removed"]
        assert removed["parameters_after"] <= removed["parameters_before"]
        assert removed["heads_removed"] + removed["mlps_removed"] > 0 or removed["parameters_after"] == removed[
            "parameters_before"]
    # prune needs the fine-tuned model: it is re-created and checked against the committed metric
    experiment.prune(smoke_run, "s")
    assert smoke_run.checkpoint.exists()


def test_collect_reads_the_stage_outputs(smoke_run):
    full = collect.full_scores("smoke")
    assert len(full) == 1 and full["task"].iloc[0] == "MRPC"
    scores = collect.subnetwork_scores("smoke")
    assert set(scores["stage"]) >= {"pruned"}
    missing = collect.missing_runs("smoke")
    assert len(missing) > 0 and "smoke" in collect.scale_statement("smoke")
    kinds = collect.devices_by_kind("smoke").set_index("kind")
    assert kinds.loc["fine-tunes", "n"] == 1 and kinds.loc["searches", "n"] == 2 and kinds["device"].eq("CPU").all()
    assert "on CPU: fine-tunes 1, searches 2" in collect.device_statement("smoke")


def test_restore_refuses_a_checkpoint_that_disagrees(smoke_run):
    path = smoke_run.dir / "finetune" / "metrics.json"
    original = path.read_text()
    data = json.loads(original)
    data["metrics"]["acc"] += 0.5
    path.write_text(json.dumps(data))
    try:
        smoke_run.checkpoint.unlink()
        with pytest.raises(RuntimeError, match="committed"):
            experiment.restore_checkpoint(smoke_run)
    finally:
        path.write_text(original)


def test_bad_stage_arguments_are_refused(smoke_run):
    with pytest.raises(ValueError, match="method must be"):
        experiment.prune(smoke_run, "x")
    with pytest.raises(ValueError, match="subnetwork one of"):
        experiment.load_subnetwork(smoke_run, "s", "best")


def test_m_random_mask_is_redrawn_from_the_size_alone(smoke_run):
    """m-random needs no fine-tuned checkpoint: its count and the tensors' shapes suffice, and it is the same mask."""
    from lotterylib.store.masks import load_mask

    path = experiment.m_mask_path(smoke_run, "random")
    original = load_mask(path).arrays
    path.with_suffix(".npz").unlink()
    ckpt = smoke_run.checkpoint.read_bytes() if smoke_run.checkpoint.exists() else None
    if ckpt is not None:
        smoke_run.checkpoint.unlink()
    try:
        experiment.load_subnetwork(smoke_run, "m", "random")
        assert not smoke_run.checkpoint.exists()  # no fine-tune was needed
        again = load_mask(path).arrays
        assert all(np.array_equal(again[k], original[k]) for k in original)
        assert load_mask(path).meta["streams"] == experiment.STREAMS
    finally:
        if ckpt is not None:
            smoke_run.checkpoint.write_bytes(ckpt)


def test_redraw_brings_old_masks_to_todays_streams_and_is_idempotent(smoke_run):
    from lotterylib.store.masks import load_mask

    masks = smoke_run.dir / "prune_s" / "masks"
    today = {sub: load_mask(masks / sub).arrays for sub in ("random", "bad")}
    # a mask from before the streams: no 'streams' in its sidecar, other values
    sidecar = json.loads((masks / "random.json").read_text())
    sidecar.pop("streams")
    (masks / "random.json").write_text(json.dumps(sidecar))
    (smoke_run.dir / "retrain_s_random").mkdir(exist_ok=True)
    (smoke_run.dir / "retrain_s_random" / "metrics.json").write_text("{}")
    changed = experiment.redraw(smoke_run)
    assert any("s: re-drew" in c for c in changed)
    assert not (smoke_run.dir / "retrain_s_random").exists()  # the old re-fine-tune is gone, to be redone
    for sub, arrays in today.items():
        again = load_mask(masks / sub).arrays
        assert all(np.array_equal(again[k], arrays[k]) for k in arrays)
    pruned = read_json(smoke_run.dir / "prune_s" / "pruned.json")
    assert pruned["subnetworks"]["random"]["streams"] == experiment.STREAMS
    assert experiment.redraw(smoke_run) == [] or all("m:" in c or "retrain_m" in c for c in experiment.redraw(smoke_run))
    assert experiment.redraw(smoke_run) == []


def test_a_search_that_removed_nothing_has_no_subnetwork(smoke_run):
    search = {"skipped": None, "accepted_steps": 0, "threshold": 0.5, "trace": [{"metric": 0.4, "passed": False}]}
    assert "removed nothing" in experiment.no_subnetwork_reason(search)
    assert experiment.no_subnetwork_reason({**search, "accepted_steps": 2}) is None
    path = smoke_run.dir / "prune_m" / "search.json"
    original = path.read_text()
    data = json.loads(original)
    data.update(accepted_steps=0, trace=[{**data["trace"][0], "passed": False}])
    path.write_text(json.dumps(data))
    try:
        out = experiment.retrain(smoke_run, "m", "good")
        assert "no_subnetwork" in out and "metrics" not in out
        assert "no_subnetwork" in read_json(smoke_run.dir / "retrain_m_good" / "metrics.json")
        scores = collect.subnetwork_scores("smoke")
        assert not ((scores["method"] == "m") & (scores["stage"] == "retrained")).any()
    finally:
        path.write_text(original)


def test_a_killed_retrain_job_goes_on_from_its_state_to_the_same_result(smoke_run, monkeypatch):
    class Killed(Exception):
        pass

    monkeypatch.setenv("LOTTERY_RESUME_EVERY", "1e-9")  # a state after every step
    states = smoke_run.ckpt_dir / "resume"
    straight = experiment.retrain(smoke_run, "m", "good")
    assert not list(states.glob("*.pt"))  # a finished job leaves no state behind
    folder = smoke_run.dir / "retrain_m_good"
    written = (folder / "metrics.json").read_text()

    class KilledAfterOneBatch(list):
        def __iter__(self):
            yield self[0]
            raise Killed

    epoch_batches = smoke_run.epoch_batches
    monkeypatch.setattr(smoke_run, "epoch_batches", lambda epoch: KilledAfterOneBatch(epoch_batches(epoch)))
    with pytest.raises(Killed):
        experiment.retrain(smoke_run, "m", "good")
    assert (folder / "metrics.json").read_text() == written  # nothing already computed is lost
    assert [p.name for p in states.glob("*.pt")] == ["retrain_m_good.pt"]
    monkeypatch.undo()
    again = experiment.retrain(smoke_run, "m", "good")
    assert again["resumed_from_step"] == 1
    assert again["metrics"] == straight["metrics"] and again["curve"] == straight["curve"]
    assert read_json(folder / "metrics.json")["resumed_from_step"] == 1
    assert not list(states.glob("*.pt"))

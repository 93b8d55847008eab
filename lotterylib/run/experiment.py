"""The experiment stages the notebooks call: fine-tune, prune (m and s), re-fine-tune, super-survivors.

Each stage reads what earlier stages wrote, computes, and writes small result files with
provenance under ``results/<plan>/<task>/seed_<seed>/``:

| stage | writes |
| --- | --- |
| ``finetune`` | ``finetune/metrics.json`` (dev metrics, majority baseline, training curve), ``finetune/attention.npz`` (per-head attention statistics, fine-tuned and pre-trained), ``finetune/gallery.npz`` (a few raw maps), ``finetune/single_removal.json`` (seeds the plan names) |
| ``prune`` (s) | ``prune_s/search.json`` (trace), ``prune_s/pruned.json`` (good/random/bad, pruned only), ``prune_s/masks/*`` |
| ``prune`` (m) | ``prune_m/search.json``, ``prune_m/pruned.json`` (with per-layer weight shares); the weight masks themselves (MBs) go beside the checkpoint |
| ``retrain`` | ``retrain_<method>_<subnetwork>/metrics.json`` and ``predictions.npz`` |
| ``super_masks`` | ``results/<plan>/<task>/super/masks/*`` (needs every seed's s-pruning) |
| ``lottery`` | ``lottery/f<fraction>_<variant>/metrics.json``, ``predictions.npz``, ``mask.*`` (METHOD.md section 10) |
| ``swap`` | ``swap/<variant>/metrics.json``, ``predictions.npz``, ``mask.*`` (METHOD.md section 10) |

Every evaluation keeps its dev predictions (class ids, or scores for STS-B) beside its metrics, written
before the metrics file, so a metrics file implies its predictions. A search that removed nothing (its
first step already failed the 90 % rule) has no subnetwork: its re-fine-tuning stages record why
(``no_subnetwork``) instead of training the full model again.

The fine-tuned checkpoint lives in ``checkpoints/`` (not committed). A stage that needs it and
finds none re-creates it by fine-tuning again with the run's seed and checks the dev metric
against the committed one.
"""

from __future__ import annotations

import hashlib
import time
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from lotterylib.method.layer_shares import weight_share_by_layer
from lotterylib.method.attention import attention_stats
from lotterylib.model.data import encode, get_task, load_glue, make_batches, subsample
from lotterylib.model.forward import device_of
from lotterylib.errors import ConfigError
from lotterylib.method.importance import compute_importance
from lotterylib.model.masking import ones_masks, prunable_tensors
from lotterylib.store.masks import load_mask, save_mask
from lotterylib.method.metrics import majority_baseline, reported_metric, search_metric
from lotterylib.model.models import load_model, load_tokenizer
from lotterylib.config.plans import Plan
from lotterylib.method.pruning import METHODS, m_prune_search, no_subnetwork_reason, s_prune_search
from lotterylib.store import layout as L
from lotterylib.store.files import provenance, read_json, staged, write_json, write_npz
from lotterylib.model.shrink import remove_components
from lotterylib.model.structure import ModelStructure
from lotterylib.method.seeding import rng_for
from lotterylib.method.subnetworks import (
    SUBNETWORKS, heads_removed_mask, magnitude_order, random_weight_mask, structured_subnetwork,
    structured_weight_count, super_survivor_masks, swap_subnetwork, weight_mask_keeping, weight_subnetwork,
    SWAP_VARIANTS,
)
from lotterylib.run.resume import Resume
from lotterylib.run.train import bf16_matmul, default_device, evaluate, evaluate_with_predictions, fine_tune

RETRAIN_METHODS = ("m", "s", "super")
# Which random streams a mask's draws came from (lotterylib.method.seeding): masks drawn otherwise are re-drawn.
STREAMS = "seed+task+method+variant+draw (sha256)"
LOTTERY_VARIANTS = SUBNETWORKS
# Fixed sample seed: every seed of a task records attention on the same dev examples.
SAMPLE_SEED = 0


class Run:
    """One (plan, task, seed): its settings, data, models and file locations."""

    def __init__(self, plan: Plan | str, task: str, seed: int, progress: bool = True):
        self.plan = plan if isinstance(plan, Plan) else Plan.load(plan)
        self.task = get_task(task).name
        self.seed = int(seed)
        self.settings = self.plan.settings(self.task)
        self.train_config = self.plan.train_config(self.task)
        self.progress = progress

    # --- places --------------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        return L.run_dir(self.plan.name, self.task, self.seed)

    def file(self, stage: str, name: str) -> Path:
        """A file of one of this run's stage folders (names from :mod:`lotterylib.store.layout`)."""
        return self.dir / stage / name

    @property
    def ckpt_dir(self) -> Path:
        return L.checkpoint_dir(self.plan.name, self.task, self.seed)

    def resume(self, folder: Path | str) -> Resume:
        """Where the fine-tune that makes the stage folder ``folder`` keeps its state while it runs (under
        :attr:`ckpt_dir`, never committed): a killed job goes on from there (:mod:`lotterylib.run.resume`)."""
        folder = Path(folder)
        try:
            name = "__".join(folder.resolve().relative_to(self.dir.resolve()).parts)
        except ValueError:  # a folder outside the run's: named by its path
            name = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
        return Resume(self.ckpt_dir / "resume" / f"{name}.pt")

    def config(self, **extra) -> dict:
        return {"plan": self.plan.name, "model": self.plan.model, "task": self.task, "seed": self.seed,
                "settings": self.settings.as_dict(), **extra}

    # --- data ---------------------------------------------------------------------------------
    @cached_property
    def spec(self):
        return get_task(self.task)

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.plan.model)

    def _split(self, split: str, limit_key: str):
        data = load_glue(self.task, split)
        limit = getattr(self.settings.data, limit_key)
        return subsample(data, limit, seed=SAMPLE_SEED) if limit else data

    @cached_property
    def train_split(self):
        return self._split("train", "max_train")

    @cached_property
    def dev_split(self):
        return self._split("dev", "max_dev")

    @cached_property
    def train_encoded(self):
        return encode(self.train_split, self.tokenizer, self.train_config.max_length)

    @cached_property
    def dev_encoded(self):
        return encode(self.dev_split, self.tokenizer, self.train_config.max_length)

    @cached_property
    def dev_batches(self) -> list[dict]:
        return make_batches(self.dev_encoded, self.train_config.eval_batch_size)

    @cached_property
    def importance_batches(self) -> list[dict]:
        return make_batches(self.dev_encoded, self.settings.importance.batch_size)

    def dev_sample_batches(self, n: int, batch_size: int) -> list[dict]:
        sample = subsample(self.dev_split, n, seed=SAMPLE_SEED)
        return make_batches(encode(sample, self.tokenizer, self.train_config.max_length), batch_size)

    def epoch_batches(self, epoch: int) -> list[dict]:
        c = self.train_config
        return make_batches(self.train_encoded, c.batch_size, shuffle=True, seed=self.seed * 1000 + epoch,
                            group_by_length=c.group_by_length, pad_to=c.pad_to)

    # --- models -------------------------------------------------------------------------------
    @cached_property
    def device(self) -> torch.device:
        """Where this run's models live (:func:`lotterylib.run.train.default_device`: ``$LOTTERY_DEVICE``, else a
        GPU if there is one)."""
        return default_device()

    def new_model(self, eager: bool = False) -> torch.nn.Module:
        """The pre-trained model with a classifier from this run's seed (= rewound), on :attr:`device`."""
        return load_model(self.plan.model, num_labels=self.spec.num_labels, seed=self.seed,
                          attn_implementation="eager" if eager else "sdpa",
                          tiny_kwargs=self.settings.model_options or None,
                          weights=self.settings.model_weights).to(self.device)

    @property
    def checkpoint(self) -> Path:
        return self.ckpt_dir / "model.safetensors"

    def finetuned_model(self, eager: bool = False) -> torch.nn.Module:
        from safetensors.torch import load_file

        if not self.checkpoint.exists():
            restore_checkpoint(self)
        model = self.new_model(eager)
        model.load_state_dict(load_file(self.checkpoint))
        return model.eval()

    def metric(self, model, batches=None, **masks) -> float:
        metrics = evaluate(model, batches or self.dev_batches, self.task, **masks)
        return metrics[search_metric(self.task)]


def _log(run: Run, message: str) -> None:
    if run.progress:
        print(f"[{run.plan.name} {run.task} seed {run.seed}] {message}", flush=True)


def _prediction_array(run: Run, predictions: np.ndarray) -> np.ndarray:
    """Class ids as int16, regression scores as float32: a few KB per evaluation."""
    return predictions.astype(np.float32 if run.spec.num_labels == 1 else np.int16)


def _write_predictions(run: Run, path: Path, **predictions: np.ndarray) -> None:
    write_npz(path, **{k: _prediction_array(run, v) for k, v in predictions.items()})


# --- fine-tuning ------------------------------------------------------------------------------

def _train(run: Run, resume: Resume | None = None) -> tuple[torch.nn.Module, list[dict]]:
    model = run.new_model()
    curve = fine_tune(model, run.epoch_batches, run.train_config, seed=run.seed, progress=run.progress,
                      resume=resume)
    return model, curve


def _how_trained(run: Run, model, resume: Resume) -> dict:
    """What a result file says of how its fine-tune ran, where it matters: the step it went on from after a
    stop (``resumed_from_step``), and how a CPU computed its bf16 matrix products (``bf16_matmul``, see
    :mod:`lotterylib.run.cpu_bf16`). Nothing for a run from step 0 in fp32 or on a GPU."""
    out = {}
    if resume.resumed_from_step is not None:
        out["resumed_from_step"] = resume.resumed_from_step
    kernel = bf16_matmul(device_of(model), run.train_config)
    if kernel is not None:
        out["bf16_matmul"] = kernel
    return out


def _save_checkpoint(run: Run, model) -> None:
    from safetensors.torch import save_file

    from lotterylib.store.files import atomic_write

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(run.checkpoint, lambda tmp: save_file(state, tmp))


def restore_checkpoint(run: Run, tolerance: float = 1e-6) -> None:
    """Re-create a missing checkpoint by fine-tuning again; refuse if the dev metric disagrees."""
    recorded = read_json(run.file(L.FINETUNE, L.METRICS))
    _log(run, "no checkpoint here: fine-tuning again with the run's seed")
    model, _ = _train(run)
    key = search_metric(run.task)
    again = evaluate(model, run.dev_batches, run.task)[key]
    if abs(again - recorded["metrics"][key]) > tolerance:
        raise RuntimeError(
            f"re-created checkpoint of {run.task} seed {run.seed} scores {key}={again:.6f}, the committed "
            f"results say {recorded['metrics'][key]:.6f} (another machine or library version?). Re-run the "
            "whole run instead: snakemake --forcerun finetune ...")
    _save_checkpoint(run, model)


def finetune(run: Run) -> dict:
    """Fine-tune the full model, evaluate it and record what later chapters need."""
    start = time.perf_counter()
    resume = run.resume(run.dir / L.FINETUNE)
    model, curve = _train(run, resume)
    train_seconds = resume.seconds_before + time.perf_counter() - start
    metrics, predictions = evaluate_with_predictions(model, run.dev_batches, run.task)
    _save_checkpoint(run, model)
    baseline = majority_baseline(run.task, run.train_split.labels, run.dev_split.labels)
    out = {
        "task": run.task, "seed": run.seed, "metrics": metrics, "majority_baseline": baseline,
        "reported_metric": reported_metric(run.task), "search_metric": search_metric(run.task),
        "n_train": len(run.train_split), "n_dev": len(run.dev_split), "curve": curve,
        "train_seconds": train_seconds, "structure": ModelStructure.of(model).describe(),
        **_how_trained(run, model, resume),
    }
    with staged(run.dir / L.FINETUNE) as folder:  # the stage's files replace the old ones only all together
        _write_predictions(run, folder / L.PREDICTIONS, full=predictions)
        write_json(folder / L.METRICS, out, run.config())
        _log(run, f"fine-tuned: {metrics}")
        record_attention(run, model, folder)
        if run.seed in run.settings.records.single_removal_seeds:
            record_single_removal(run, model, folder)
    resume.finish()
    out["seconds"] = time.perf_counter() - start
    return out


def record_attention(run: Run, finetuned: torch.nn.Module | None = None, folder: Path | None = None) -> None:
    """Per-head attention statistics on a fixed dev sample, fine-tuned and pre-trained weights."""
    records = run.settings.records
    batches = run.dev_sample_batches(records.attention_examples, 16)
    sep_id = run.tokenizer.sep_token_id
    eager = run.new_model(eager=True)
    pre_stats, pre_gallery = attention_stats(eager, batches, sep_id, n_maps=records.attention_gallery)
    if finetuned is not None:
        eager.load_state_dict(finetuned.state_dict())
    else:
        eager = run.finetuned_model(eager=True)
    ft_stats, ft_gallery = attention_stats(eager, batches, sep_id, n_maps=records.attention_gallery)
    arrays = {f"finetuned_{k}": v for k, v in ft_stats.items()}
    arrays.update({f"pretrained_{k}": v for k, v in pre_stats.items()})
    arrays["example_index"] = np.sort(np.concatenate([b["index"].numpy() for b in batches]))
    folder = folder or run.dir / L.FINETUNE
    write_npz(folder / L.ATTENTION, **arrays)
    gallery = {}
    for which, items in (("finetuned", ft_gallery), ("pretrained", pre_gallery)):
        for i, item in enumerate(items):
            gallery[f"{which}_{i}_maps"] = item["maps"]
            gallery[f"{which}_{i}_tokens"] = np.asarray(item["tokens"])
    write_npz(folder / L.GALLERY, **gallery)


def record_single_removal(run: Run, model: torch.nn.Module, folder: Path | None = None) -> dict:
    """The dev metric with each single head, and each single MLP, removed (on a dev subset)."""
    records = run.settings.records
    batches = run.dev_sample_batches(records.single_removal_dev, run.train_config.eval_batch_size)
    s = ModelStructure.of(model)
    head_full, mlp_full = ones_masks(s)
    key = search_metric(run.task)
    base = evaluate(model, batches, run.task)[key]
    heads = np.zeros((s.n_layers, s.n_heads))
    mlps = np.zeros(s.n_layers)
    for layer in range(s.n_layers):
        for head in range(s.n_heads):
            mask = head_full.copy()
            mask[layer, head] = 0
            heads[layer, head] = evaluate(model, batches, run.task, head_mask=mask)[key]
        mask = mlp_full.copy()
        mask[layer] = 0
        mlps[layer] = evaluate(model, batches, run.task, mlp_mask=mask)[key]
    out = {"metric": key, "n_examples": int(sum(len(b["index"]) for b in batches)), "full": base,
           "head_removed": heads, "mlp_removed": mlps}
    write_json((folder or run.dir / L.FINETUNE) / L.SINGLE_REMOVAL, out, run.config())
    return out


# --- pruning ----------------------------------------------------------------------------------

def _kept_share_of_weights(structure: ModelStructure, head_mask, mlp_mask) -> float:
    """Share of m-prunable weights inside kept heads and MLPs: one size unit for both methods."""
    kept, total = structured_weight_count(structure, head_mask, mlp_mask)
    return kept / total


def prune(run: Run, method: str) -> dict:
    """The search of ``method`` ('m' or 's'), then good/random/bad evaluated pruned only."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    start = time.perf_counter()
    model = run.finetuned_model()
    full = run.metric(model)
    with staged(run.dir / L.prune_stage(method)) as folder:  # replaces the old search's files only all together
        search = _s_search(run, model, full, folder) if method == "s" else _m_search(run, model, full, folder)
    out = {"method": method, "full_metric": full, **search, "seconds": time.perf_counter() - start}
    _log(run, f"{method}-pruning done: {out.get('pruned', {}).get('good', {}).get('metric')}")
    return out


def _evaluate_subnetworks(run: Run, model, masks_by_sub: dict, kind: str, folder: Path) -> dict:
    """Each subnetwork's dev metrics with the fine-tuned weights (predictions to ``folder/predictions.npz``)."""
    key = search_metric(run.task)
    out, predictions = {}, {}
    for sub, masks in masks_by_sub.items():
        kwargs = {"weight_mask": masks} if kind == "weights" else {"head_mask": masks[0], "mlp_mask": masks[1]}
        metrics, predictions[sub] = evaluate_with_predictions(model, run.dev_batches, run.task, **kwargs)
        out[sub] = {"metrics": metrics, "metric": metrics[key]}
    _write_predictions(run, folder / L.PREDICTIONS, **predictions)
    return out


def _record_search(run: Run, result, folder: Path, full: float) -> dict | None:
    """Write a search's summary and trace; the stage's answer when it has no subnetwork to go on with, else None."""
    summary = {**result.summary(), "trace": result.trace}
    write_json(folder / L.SEARCH, summary, run.config())
    if result.skipped:
        return {"skipped": result.skipped}
    reason = no_subnetwork_reason(summary)
    return _no_subnetwork(run, folder, full, reason) if reason else None


def _no_subnetwork(run: Run, folder: Path, full: float, reason: str) -> dict:
    write_json(folder / L.PRUNED, {"full_metric": full, "no_subnetwork": reason, "subnetworks": {}},
               run.config())
    _log(run, reason)
    return {"no_subnetwork": reason}


def draw_structured(run: Run, head_mask, mlp_mask, structure: ModelStructure, folder: Path | None = None) -> dict:
    """Good, random and bad s-pruning masks of one run from its good mask, saved with their provenance."""
    opts = run.settings.search
    masks = {sub: structured_subnetwork(sub, head_mask, mlp_mask, seed=run.seed, task=run.task, method="s",
                                        bernoulli=opts.bernoulli_random) for sub in SUBNETWORKS}
    for sub, (head, mlp) in masks.items():
        save_mask((folder or run.dir / L.prune_stage("s")) / L.MASKS / sub, {"head_mask": head, "mlp_mask": mlp}, structure,
                  "structured", model=run.plan.model, task=run.task, seed=run.seed, method="s", subnetwork=sub,
                  plan=run.plan.name, heads_kept=int(head.sum()), mlps_kept=int(mlp.sum()), streams=STREAMS,
                  bernoulli=opts.bernoulli_random, provenance=provenance(run.config()))
    return masks


def _s_search(run: Run, model, full: float, folder: Path) -> dict:
    opts = run.settings.search
    s = ModelStructure.of(model)
    abs_per = run.settings.importance.abs_per
    result = s_prune_search(
        importance=lambda h, m: compute_importance(model, run.importance_batches, h, m, abs_per=abs_per),
        evaluate=lambda h, m: run.metric(model, head_mask=h, mlp_mask=m),
        full_metric=full, n_layers=s.n_layers, n_heads=s.n_heads, fraction=opts.fraction,
        head_step=opts.head_step, halve_phase2=opts.halve_phase2,
        progress=(lambda r: _log(run, f"s step {r['step']} {r['phase']}: {r['metric']:.4f} "
                                      f"{'ok' if r['passed'] else 'stop'}")) if run.progress else None,
    )
    stopped = _record_search(run, result, folder, full)
    if stopped:
        return stopped
    masks = draw_structured(run, result.head_mask, result.mlp_mask, s, folder)
    pruned = _evaluate_subnetworks(run, model, masks, "structured", folder)
    for sub, (head, mlp) in masks.items():
        pruned[sub].update(heads_kept=int(head.sum()), mlps_kept=int(mlp.sum()),
                           weights_kept_share=_kept_share_of_weights(s, head, mlp))
    write_json(folder / L.PRUNED, {"full_metric": full, "subnetworks": pruned}, run.config())
    return {"pruned": pruned, "search": result.summary()}


def m_mask_path(run: Run, sub: str) -> Path:
    return run.ckpt_dir / L.MASKS / f"m_{sub}"


def _save_m_masks(run: Run, masks: dict, structure: ModelStructure) -> None:
    for sub, mask in masks.items():
        save_mask(m_mask_path(run, sub), mask, structure, "weights", model=run.plan.model, task=run.task,
                  seed=run.seed, method="m", subnetwork=sub, plan=run.plan.name, streams=STREAMS,
                  provenance=provenance(run.config()))


def _m_pruned_count(run: Run) -> int:
    search = read_json(run.file(L.prune_stage("m"), L.SEARCH))
    passed = [r for r in search["trace"] if r["passed"]]
    return passed[-1]["n_pruned"] if passed else 0


def restore_m_masks(run: Run, subs: tuple[str, ...] = SUBNETWORKS) -> None:
    """Re-create m-pruning masks (they live beside the checkpoint, not in git) from the committed search.

    The good mask is the global magnitude cut at the last passing step's count and bad its inverse, so
    no search and no evaluation is needed, and no committed file is rewritten. The random mask needs
    only that count and the tensors' shapes, so it is re-drawn from the pre-trained model without the
    fine-tuned checkpoint.
    """
    n_pruned = _m_pruned_count(run)
    _log(run, f"re-creating m-pruning masks {list(subs)} ({n_pruned} weights pruned)")
    if set(subs) <= {"random"}:
        model = run.new_model()
        s = ModelStructure.of(model)
        shapes = {k: tuple(v.shape) for k, v in prunable_tensors(model, s).items()}
        n_kept = sum(int(np.prod(shape)) for shape in shapes.values()) - n_pruned
        _save_m_masks(run, {"random": random_weight_mask(shapes, n_kept, rng_for(run.seed, run.task, "m", "random"))},
                      s)
        return
    model = run.finetuned_model()
    s = ModelStructure.of(model)
    weights = {k: v.detach().cpu().numpy() for k, v in prunable_tensors(model, s).items()}
    good = weight_mask_keeping(weights, magnitude_order(weights), n_pruned)
    _save_m_masks(run, {sub: weight_subnetwork(sub, good, weights, seed=run.seed, task=run.task)
                        for sub in subs}, s)


def _m_search(run: Run, model, full: float, folder: Path) -> dict:
    opts = run.settings.search
    s = ModelStructure.of(model)
    weights = {k: v.detach().cpu().numpy() for k, v in prunable_tensors(model, s).items()}
    result = m_prune_search(
        weights, evaluate=lambda mask: run.metric(model, weight_mask=mask), full_metric=full,
        fraction=opts.fraction, max_steps=opts.m_max_steps,
        progress=(lambda r: _log(run, f"m step {r['step']} sparsity {r['sparsity']:.3f}: {r['metric']:.4f}"))
        if run.progress else None,
    )
    stopped = _record_search(run, result, folder, full)
    if stopped:
        return stopped
    masks = {sub: weight_subnetwork(sub, result.weight_mask, weights, seed=run.seed, task=run.task)
             for sub in SUBNETWORKS}
    _save_m_masks(run, masks, s)
    pruned = _evaluate_subnetworks(run, model, masks, "weights", folder)
    for sub, mask in masks.items():
        shares = weight_share_by_layer(mask, s)
        kept, total = int(shares["kept"].sum()), int(shares["total"].sum())
        pruned[sub].update(weights_kept=kept, weights_total=total, weights_kept_share=kept / total,
                           by_layer=shares.to_dict(orient="records"))
    write_json(folder / L.PRUNED, {"full_metric": full, "subnetworks": pruned}, run.config())
    return {"pruned": pruned, "search": result.summary()}


# --- re-fine-tuning ---------------------------------------------------------------------------

def _expected(run: Run, method: str) -> dict:
    """What a mask's sidecar must say to be used by this run: same model, plan, task, method (and seed)."""
    out = {"model": run.plan.model, "plan": run.plan.name, "task": run.task, "method": method}
    return out if method == "super" else {**out, "seed": run.seed}


def load_subnetwork(run: Run, method: str, sub: str) -> dict:
    """The masks of one subnetwork as keyword arguments for training/evaluation."""
    if method not in RETRAIN_METHODS or sub not in SUBNETWORKS:
        raise ValueError(f"method must be one of {RETRAIN_METHODS} and subnetwork one of {SUBNETWORKS}; "
                         f"got {method!r}, {sub!r}")
    if method == "m":
        path = m_mask_path(run, sub)
        if not path.with_suffix(".npz").exists() or \
                read_json(path.with_suffix(".json")).get("streams") != STREAMS:
            restore_m_masks(run, ("random",) if sub == "random" else SUBNETWORKS)
        return {"weight_mask": load_mask(path, expect=_expected(run, "m")).arrays}
    folder = L.masks_dir(run.plan.name, run.task, run.seed, method)
    arrays = load_mask(folder / sub, expect=_expected(run, method)).arrays
    return {"head_mask": arrays["head_mask"], "mlp_mask": arrays["mlp_mask"]}


def refinetune(run: Run, folder: Path, masks: dict, save=None, **record) -> dict:
    """The one re-fine-tuning path of every stage: rewind to the pre-trained weights (classifier from the
    run's seed), apply the masks (heads and MLPs cut out of the weights, weight masks as
    parametrisations), fine-tune with the plan's settings and seed, evaluate on dev; writes
    ``predictions.npz`` and ``metrics.json`` (and what ``save(folder)`` writes) into a temporary folder that
    replaces ``folder`` only when all are written."""
    masks = dict(masks)
    start = time.perf_counter()
    resume = run.resume(folder)
    model = run.new_model()
    removed = None
    if "head_mask" in masks:  # heads and MLPs: cut out of the weights, the same function at the subnetwork's size
        removed = remove_components(model, masks.pop("head_mask"), masks.pop("mlp_mask"))
    curve = fine_tune(model, run.epoch_batches, run.train_config, seed=run.seed, progress=run.progress,
                      resume=resume, **masks)
    metrics, predictions = evaluate_with_predictions(model, run.dev_batches, run.task, **masks)
    out = {**record, "metrics": metrics, "metric": metrics[search_metric(run.task)], "curve": curve,
           "seconds": resume.seconds_before + time.perf_counter() - start, **_how_trained(run, model, resume)}
    if removed is not None:
        out["removed"] = removed
    with staged(folder) as tmp:
        if save is not None:
            save(tmp)
        _write_predictions(run, tmp / L.PREDICTIONS, predictions=predictions)
        write_json(tmp / L.METRICS, out, run.config(**record))
    resume.finish()
    _log(run, f"re-fine-tuned {record}: {metrics}")
    return out


def _record_no_subnetwork(run: Run, folder: Path, search: dict, **record) -> dict | None:
    """Write why there is nothing to re-fine-tune (search skipped, or it removed nothing); None if there is."""
    if search.get("skipped"):
        out = {"skipped": search["skipped"], **record}
    elif no_subnetwork_reason(search):
        out = {"no_subnetwork": no_subnetwork_reason(search), **record}
    else:
        return None
    write_json(folder / L.METRICS, out, run.config(**record))
    return out


def retrain(run: Run, method: str, sub: str) -> dict:
    """Rewind to the pre-trained weights, apply the subnetwork's mask, fine-tune, evaluate."""
    folder = L.retrain_dir(run.plan.name, run.task, run.seed, method, sub)
    search = read_json(run.file(L.prune_stage("s" if method == "super" else method), L.SEARCH))
    if method == "super":
        search = {k: v for k, v in search.items() if k != "accepted_steps"}  # super masks pool every seed
    nothing = _record_no_subnetwork(run, folder, search, method=method, subnetwork=sub)
    if nothing is not None:
        return nothing
    return refinetune(run, folder, load_subnetwork(run, method, sub), method=method, subnetwork=sub)


# --- beyond the paper (METHOD.md section 10) ----------------------------------------------------

def _check_beyond(run: Run) -> dict:
    opts = run.plan.beyond_paper
    if run.task not in opts.tasks or run.seed not in opts.seeds:
        raise ConfigError(f"{run.task} seed {run.seed} is not in plan {run.plan.name!r}'s beyond_paper runs "
                          f"(tasks {list(opts.tasks)}, seeds {list(opts.seeds)}): add them to the plan's "
                          "beyond_paper section")
    return opts


def lottery_dir(run: Run, fraction: float, variant: str) -> Path:
    return L.lottery_dir(run.plan.name, run.task, run.seed, fraction, variant)


def swap_dir(run: Run, variant: str) -> Path:
    return L.swap_dir(run.plan.name, run.task, run.seed, variant)


def full_model_head_scores(run: Run) -> np.ndarray:
    """Normalised head importance of the fine-tuned full model: the s-search's first step scored exactly
    this (every head and MLP on, the plan's importance settings), so it is read from the committed trace."""
    search = read_json(run.file(L.prune_stage("s"), L.SEARCH))
    trace = search.get("trace") or []
    if not trace or "head_scores" not in trace[0]:
        raise RuntimeError(f"{run.file(L.prune_stage('s'), L.SEARCH)} has no first-step head scores: re-run the "
                           "s-pruning stage of this run")
    return np.asarray(trace[0]["head_scores"], dtype=np.float64)


def lottery(run: Run, fraction: float, variant: str) -> dict:
    """One point of the heads-only lottery curve: remove ``fraction`` of all heads (every MLP kept) by the
    full model's importance (good: the least important; bad: the most important; random: uniformly, its own
    stream), one shot, then re-fine-tune from the pre-trained weights."""
    opts = _check_beyond(run)
    if variant not in LOTTERY_VARIANTS:
        raise ValueError(f"lottery variant must be one of {LOTTERY_VARIANTS}, got {variant!r}")
    if not any(abs(float(fraction) - f) < 1e-9 for f in opts.head_fractions):
        raise ConfigError(f"head fraction {fraction} is not in the plan's beyond_paper.head_fractions "
                          f"{list(opts.head_fractions)}")
    folder = lottery_dir(run, fraction, variant)
    record = {"experiment": "lottery", "fraction": float(fraction), "variant": variant}
    search = read_json(run.file(L.prune_stage("s"), L.SEARCH))
    if search.get("skipped"):
        out = {"skipped": search["skipped"], **record}
        write_json(folder / L.METRICS, out, run.config(**record))
        return out
    scores = full_model_head_scores(run)
    head = heads_removed_mask(variant, scores, float(fraction), seed=run.seed, task=run.task)
    mlp = np.ones(scores.shape[0], dtype=np.float32)
    structure = ModelStructure.from_description(read_json(run.file(L.FINETUNE, L.METRICS))["structure"])
    def save(tmp: Path) -> None:
        save_mask(tmp / "mask", {"head_mask": head, "mlp_mask": mlp}, structure, "structured",
                  model=run.plan.model, task=run.task, seed=run.seed, method="lottery", subnetwork=variant,
                  fraction=float(fraction), plan=run.plan.name, heads_kept=int(head.sum()), mlps_kept=int(mlp.sum()),
                  streams=STREAMS, provenance=provenance(run.config(**record)))
    return refinetune(run, folder, {"head_mask": head, "mlp_mask": mlp}, save, **record,
                      heads_kept=int(head.sum()), mlps_kept=int(mlp.sum()))


def swap(run: Run, variant: str) -> dict:
    """The component swap: good heads with a random MLP set of the good size, or random heads (the good
    count) with the good MLP set; re-fine-tuned like every subnetwork."""
    _check_beyond(run)
    if variant not in SWAP_VARIANTS:
        raise ValueError(f"swap variant must be one of {SWAP_VARIANTS}, got {variant!r}")
    folder = swap_dir(run, variant)
    record = {"experiment": "swap", "variant": variant}
    nothing = _record_no_subnetwork(run, folder, read_json(run.file(L.prune_stage("s"), L.SEARCH)), **record)
    if nothing is not None:
        return nothing
    good = load_mask(L.masks_dir(run.plan.name, run.task, run.seed, "s") / "good", expect=_expected(run, "s"))
    head, mlp = swap_subnetwork(variant, good.arrays["head_mask"], good.arrays["mlp_mask"], seed=run.seed,
                                task=run.task)
    structure = ModelStructure.from_description(good.meta["structure"])
    def save(tmp: Path) -> None:
        save_mask(tmp / "mask", {"head_mask": head, "mlp_mask": mlp}, structure, "structured",
                  model=run.plan.model, task=run.task, seed=run.seed, method="swap", subnetwork=variant,
                  plan=run.plan.name, heads_kept=int(head.sum()), mlps_kept=int(mlp.sum()), streams=STREAMS,
                  provenance=provenance(run.config(**record)))
    return refinetune(run, folder, {"head_mask": head, "mlp_mask": mlp}, save, **record,
                      heads_kept=int(head.sum()), mlps_kept=int(mlp.sum()))


def super_masks(plan: Plan | str, task: str) -> dict:
    """Super-survivors of a task (kept in every seed) and their random and bad variants."""
    plan = plan if isinstance(plan, Plan) else Plan.load(plan)
    task = get_task(task).name
    heads, mlps, seeds, good = [], [], [], None
    for seed in plan.seeds:
        folder = L.prune_dir(plan.name, task, seed, "s")
        if no_subnetwork_reason(read_json(folder / L.SEARCH)):
            continue  # no subnetwork: the search was skipped or removed nothing (recorded in search.json)
        good = load_mask(folder / L.MASKS / "good", expect={"model": plan.model, "plan": plan.name, "task": task,
                                                            "seed": seed, "method": "s"})
        heads.append(good.arrays["head_mask"])
        mlps.append(good.arrays["mlp_mask"])
        seeds.append(seed)
    if good is None:
        raise RuntimeError(f"no seed of {task} in plan {plan.name!r} has an s-pruning subnetwork (every search "
                           "was skipped, see prune_s/search.json): there are no super-survivors to find")
    heads, mlps = np.stack(heads), np.stack(mlps)  # (S, L, H), (S, L)
    resize = plan.settings(task).search.super_resize
    variants = super_survivor_masks(heads, mlps, seed=min(plan.seeds), task=task, resize=resize)
    structure = ModelStructure.from_description(good.meta["structure"])
    config = {"plan": plan.name, "model": plan.model, "task": task, "seeds": seeds, "resize": resize}
    with staged(L.masks_dir(plan.name, task, None, "super")) as folder:
        for sub, (head, mlp) in variants.items():
            save_mask(folder / sub, {"head_mask": head, "mlp_mask": mlp}, structure, "structured",
                      model=plan.model, task=task, seeds=seeds, method="super", subnetwork=sub,
                      plan=plan.name, heads_kept=int(head.sum()), mlps_kept=int(mlp.sum()), resize=resize,
                      streams=STREAMS, provenance=provenance(config))
    return {sub: {"heads_kept": int(h.sum()), "mlps_kept": int(m.sum())} for sub, (h, m) in variants.items()}


# --- re-drawing committed subnetworks under today's streams -----------------------------------

def _stale(sidecar: Path) -> bool:
    return not sidecar.exists() or read_json(sidecar).get("streams") != STREAMS


def _remove(folder: Path) -> bool:
    """Remove a folder or a file; True if there was one."""
    import shutil

    if folder.is_dir():
        shutil.rmtree(folder)
        return True
    if folder.exists():
        folder.unlink()
        return True
    return False


def _not_evaluated(entry: dict, why: str) -> dict:
    return {**{k: v for k, v in entry.items() if k not in ("metrics", "metric")}, "metrics": None, "metric": None,
            "not_evaluated": why}


NO_CHECKPOINT = ("the fine-tuned checkpoint of this run is not here (checkpoints are not committed, and a run made "
                 "on another device cannot be re-created bit for bit): the pruned-only score of this re-drawn "
                 "mask was not computed; its re-fine-tuned score is in retrain_*")


def redraw(run: Run) -> list[str]:
    """Bring one committed run's random and bad subnetworks to today's streams (METHOD.md section 7).

    Re-draws the s-pruning random and bad masks from the committed good mask, rewrites ``pruned.json``
    (sizes from the new masks; the pruned-only score evaluated when the fine-tuned checkpoint is here, else
    marked not evaluated), and removes the re-fine-tunes those masks made so the workflow redoes them. A
    search that removed nothing gets ``no_subnetwork`` records instead. Idempotent: masks already drawn from
    today's streams are left alone. Returns what it changed.
    """
    changed: list[str] = []
    for method in METHODS:
        folder = L.prune_dir(run.plan.name, run.task, run.seed, method)
        search = read_json(folder / L.SEARCH)
        if search.get("skipped"):
            continue
        reason = no_subnetwork_reason(search)
        pruned_file = folder / L.PRUNED
        pruned = read_json(pruned_file) if pruned_file.exists() else {}
        if reason:
            if "no_subnetwork" not in pruned:
                write_json(pruned_file, {"full_metric": search["full_metric"], "no_subnetwork": reason,
                                         "subnetworks": {}}, run.config())
                _remove(folder / L.MASKS)
                changed.append(f"{method}: no subnetwork")
            for sub in SUBNETWORKS:
                metrics = L.retrain_file(run.plan.name, run.task, run.seed, method, sub)
                if not metrics.exists() or "no_subnetwork" not in read_json(metrics):
                    _remove(metrics.parent)
                    _record_no_subnetwork(run, metrics.parent, search, method=method, subnetwork=sub)
                    changed.append(f"retrain_{method}_{sub}: no subnetwork")
            continue
        if method == "s":
            if not _stale(folder / L.MASKS / "random.json") and not _stale(folder / L.MASKS / "bad.json"):
                continue
            good = load_mask(folder / L.MASKS / "good", expect=_expected(run, "s"))
            structure = ModelStructure.from_description(good.meta["structure"])
            masks = draw_structured(run, good.arrays["head_mask"], good.arrays["mlp_mask"], structure)
            redrawn = ("random", "bad")
            for sub in redrawn:
                head, mlp = masks[sub]
                entry = pruned["subnetworks"][sub]
                entry.update(heads_kept=int(head.sum()), mlps_kept=int(mlp.sum()),
                             weights_kept_share=_kept_share_of_weights(structure, head, mlp))
        else:
            entry = pruned["subnetworks"].get("random", {})
            if entry.get("streams") == STREAMS:
                continue
            redrawn = ("random",)
            restore_m_masks(run, ("random",))
            mask = load_mask(m_mask_path(run, "random")).arrays
            structure = ModelStructure.from_description(read_json(run.file(L.FINETUNE, L.METRICS))["structure"])
            shares = weight_share_by_layer(mask, structure)
            kept, total = int(shares["kept"].sum()), int(shares["total"].sum())
            entry.update(weights_kept=kept, weights_total=total, weights_kept_share=kept / total,
                         by_layer=shares.to_dict(orient="records"))
        if run.checkpoint.exists():
            model = run.finetuned_model()
            kind = "structured" if method == "s" else "weights"
            subs = {sub: (masks[sub] if method == "s" else load_mask(m_mask_path(run, sub)).arrays) for sub in redrawn}
            fresh = _evaluate_subnetworks(run, model, subs, kind, folder / "redrawn")
            for sub in redrawn:
                pruned["subnetworks"][sub].update(fresh[sub])
        else:
            for sub in redrawn:
                pruned["subnetworks"][sub] = _not_evaluated(pruned["subnetworks"][sub], NO_CHECKPOINT)
        for sub in redrawn:
            pruned["subnetworks"][sub]["streams"] = STREAMS
        pruned.pop("provenance", None)
        write_json(pruned_file, pruned, run.config())
        _remove(folder / L.PREDICTIONS)  # (pruned-only predictions of masks that are gone)
        for sub in redrawn:
            if _remove(L.retrain_dir(run.plan.name, run.task, run.seed, method, sub)):
                changed.append(f"retrain_{method}_{sub}: removed, to be re-fine-tuned")
        changed.append(f"{method}: re-drew {list(redrawn)}")
    return changed


def redraw_super(plan: Plan | str, task: str) -> list[str]:
    """Re-draw a task's super-survivor masks under today's streams and sizing; remove every seed's re-fine-tune of
    a variant whose mask changed (the workflow redoes them). Idempotent."""
    plan = plan if isinstance(plan, Plan) else Plan.load(plan)
    folder = L.masks_dir(plan.name, task, None, "super")
    if not any(_stale(folder / f"{sub}.json") for sub in SUBNETWORKS):
        return []
    old = {sub: load_mask(folder / sub).arrays if (folder / f"{sub}.npz").exists() else None for sub in SUBNETWORKS}
    super_masks(plan, task)
    changed = []
    for sub in SUBNETWORKS:
        new = load_mask(folder / sub).arrays
        same = old[sub] is not None and all(np.array_equal(old[sub][k], new[k]) for k in new)
        if not same:
            for seed in plan.seeds:
                _remove(L.retrain_dir(plan.name, task, seed, "super", sub))
            changed.append(f"super {sub}: re-drawn, re-fine-tunes removed")
    return changed

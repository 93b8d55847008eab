"""The strict plan schema: every bad plan is refused when it loads, naming the file, key path, value and the rule."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lotterylib.errors import ConfigError, LotteryError
from lotterylib.model.models import WEIGHT_VARIANTS as MODEL_WEIGHT_VARIANTS
from lotterylib.config.plans import WEIGHT_VARIANTS, Plan, TrainConfig

REPO = Path(__file__).resolve().parents[1]


def smoke() -> dict:
    return yaml.safe_load((REPO / "plans" / "smoke.yaml").read_text())


def load(tmp_path, plan: dict, name: str = "p.yaml") -> Plan:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(plan))
    return Plan.load(path)


def refused(tmp_path, plan: dict, *needles: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, plan)
    message = str(info.value)
    assert "p.yaml" in message, message  # the file
    for needle in needles:
        assert needle in message, message
    return message


def with_(section: str, **values) -> dict:
    plan = smoke()
    plan[section] = {**plan.get(section, {}), **values}
    return plan


def test_every_committed_plan_loads():
    for path in sorted((REPO / "plans").glob("*.yaml")):
        plan = Plan.load(path)
        assert plan.name == path.stem and plan.settings(plan.tasks[0]).train.lr > 0


def test_settings_are_attributes_and_overrides_apply():
    demo = Plan.load("demo")
    assert demo.settings("SST-2").data.max_train == 10000 and demo.settings("MRPC").data.max_train is None
    assert demo.settings("MRPC").search.fraction == 0.9 and demo.train_config("CoLA").precision == "bf16"
    assert demo.beyond_paper.tasks == ("CoLA", "MRPC", "STS-B")


def test_a_typo_in_a_section_key_is_refused(tmp_path):
    plan = smoke()
    plan["search"] = {"fracton": 0.5}
    refused(tmp_path, plan, "search", "fracton", "fraction")


def test_unknown_top_level_key(tmp_path):
    refused(tmp_path, {**smoke(), "trian": {}}, "trian")


def test_seeds_as_a_string_are_refused(tmp_path):
    refused(tmp_path, {**smoke(), "seeds": "42"}, "seeds", "'42'", "list")


@pytest.mark.parametrize("key, value", [("tasks", []), ("seeds", []), ("seeds", [1, 1]), ("tasks", ["MRPC", "mrpc"]),
                                        ("seeds", [-1]), ("seeds", [1.5]), ("tasks", ["NOPE"])])
def test_empty_duplicate_or_bad_task_and_seed_lists(tmp_path, key, value):
    refused(tmp_path, {**smoke(), key: value}, key)


@pytest.mark.parametrize("section, key, value", [
    ("search", "fraction", 1.5), ("search", "fraction", 0), ("search", "fraction", float("nan")),
    ("search", "head_step", 0.0), ("search", "m_max_steps", 0), ("search", "super_resize", "bizzaro"),
    ("train", "lr", 0), ("train", "lr", -1e-3), ("train", "lr", "1e-3"), ("train", "batch_size", 0),
    ("train", "epochs", 0), ("train", "max_grad_norm", 0), ("train", "eval_batch_size", 0),
    ("train", "precision", "fp16"), ("train", "group_by_length", "yes"), ("train", "batch_size", 8.5),
    ("train", "batch_size", True), ("data", "max_train", 0), ("data", "max_dev", -3),
    ("importance", "abs_per", "token"), ("importance", "batch_size", 0), ("records", "attention_examples", 0),
])
def test_out_of_range_or_wrong_type_values(tmp_path, section, key, value):
    message = refused(tmp_path, with_(section, **{key: value}), f"{section}.{key}")
    assert "use" in message  # says what is allowed


def test_yaml_1_1_exponent_hint(tmp_path):
    refused(tmp_path, with_("train", lr="1e-3"), "1.0e-3")


def test_task_overrides(tmp_path):
    plan = {**smoke(), "task_overrides": {"SST-2": {"data": {"max_train": 5}}}}
    refused(tmp_path, plan, "task_overrides.SST-2", "MRPC")  # not a task of the plan
    plan = {**smoke(), "task_overrides": {"MRPC": {"data": {"max_trian": 5}}}}
    refused(tmp_path, plan, "task_overrides.MRPC.data", "max_trian")
    plan = {**smoke(), "task_overrides": {"MRPC": {"model": "x"}}}
    refused(tmp_path, plan, "task_overrides.MRPC", "model")
    plan = {**smoke(), "task_overrides": {"MRPC": {"train": {"lr": float("inf")}}}}
    refused(tmp_path, plan, "task_overrides.MRPC.train.lr")


@pytest.mark.parametrize("name", ["../../x", "a/b", "", "..", " x"])
def test_plan_names_must_be_plain(tmp_path, name):
    refused(tmp_path, {**smoke(), "name": name}, "name")
    with pytest.raises(ConfigError, match="plain name"):
        Plan.load(name)  # also as the name given to Plan.load, Snakemake's --config plan=... or a notebook
    with pytest.raises(LotteryError, match="known plans"):
        Plan.load("nosuchplan")


def test_records_and_beyond_name_the_plans_own_seeds_and_tasks(tmp_path):
    refused(tmp_path, with_("records", single_removal_seeds=[7]), "records.single_removal_seeds", "7")
    refused(tmp_path, {**smoke(), "beyond_paper": {"tasks": ["CoLA"]}}, "beyond_paper", "CoLA")
    refused(tmp_path, {**smoke(), "beyond_paper": {"head_fractions": [1.0]}}, "beyond_paper.head_fractions[0]")


def test_model_weights_and_model_options(tmp_path):
    refused(tmp_path, {**smoke(), "model_weights": "float8"}, "model_weights", "float16")
    refused(tmp_path, {**smoke(), "model_options": {"n_layers": 0}}, "model_options.n_layers")
    assert set(WEIGHT_VARIANTS) == set(MODEL_WEIGHT_VARIANTS)


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ntasks: [MRPC\n")
    with pytest.raises(ConfigError, match="broken.yaml.*not valid YAML"):
        Plan.load(path)


def test_train_config_built_in_code_is_checked_too():
    with pytest.raises(ConfigError, match="train.lr"):
        TrainConfig(lr=0)
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 1e-3})


def test_plans_import_no_torch():
    code = "import sys; from lotterylib.config.plans import Plan; Plan.load('demo'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("config, needle", [("sedes=1337", "sedes"), ("seeds=abc", "seeds"), ("threads=0", "threads"),
                                            ("tasks=NOPE", "NOPE")])
def test_snakemake_config_keys_are_checked(config, needle):
    out = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--config", "plan=smoke", config],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode != 0 and needle in out.stdout + out.stderr


@pytest.mark.parametrize("value, needle", [("finetune", "YAML list"), ([], "non-empty"), (["train"], "use one of"),
                                           (["finetune", "retrain"], "needs ['prune']"),
                                           (["finetune", "finetune"], "once")])
def test_stages_are_a_list_of_known_stages_with_what_they_need(tmp_path, value, needle):
    refused(tmp_path, {**smoke(), "stages": value}, "stages", needle)


def test_stages_default_to_all_and_keep_the_pipeline_order(tmp_path):
    from lotterylib.config.plans import STAGES

    assert load(tmp_path, smoke()).stages == tuple(STAGES)
    assert load(tmp_path, {**smoke(), "stages": ["prune", "finetune"]}).stages == ("finetune", "prune")


def test_plan_of_takes_a_plan_a_name_or_a_path():
    plan = Plan.load("smoke")
    assert Plan.of(plan) is plan
    assert Plan.of("smoke") == plan
    assert Plan.of(plan.path).name == "smoke"
    with pytest.raises(LotteryError, match="known plans"):
        Plan.of("no_such_plan")

"""environment.yml (conda) and requirements/lock.txt stay in step with pyproject.toml."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch", "matplotlib-base": "matplotlib"}


def split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", requirement).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += [r for r in extra if not r.startswith("lotterylib")]
    out = {}
    for name, spec in map(split, reqs):
        assert out.get(name, spec) == spec, f"{name} has two specifiers in pyproject.toml"
        out[name] = spec
    return out


def conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            out.update(split(r) for r in dep["pip"] if not r.startswith("-e"))
        else:
            name, spec = split(dep)
            out[CONDA_TO_PIP.get(name, name)] = spec
    return out


def test_environment_yml_matches_pyproject():
    conda = conda_requirements()
    python = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert conda.pop("python") == python
    conda.pop("pip")
    assert conda == pyproject_requirements()


def test_lock_pins_every_requirement_and_torch_2_13():
    lock = dict(split(line) for line in (REPO / "requirements/lock.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert lock["torch"] == "==2.13.0"
    missing = sorted(set(pyproject_requirements()) - set(lock))
    assert not missing, f"requirements/lock.txt lacks {missing}: run `make lock`"
    assert all(spec.startswith("==") for spec in lock.values())

"""The package's floors, checked against its imports (every import statement, also those inside functions).

    errors < config < model < store < method < run          (the stages: the model stack)
                                            \\ < read < report  (the read side: no torch, never run.*)

A floor imports only from floors below it and from itself; read and run never import each other; the read side
(config, store, read, report and the torch-free modules below them) never imports the model stack. The one
exception is the live explorer (report.explorer), which re-applies masks to a loaded model.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lotterylib

PACKAGE = Path(lotterylib.__file__).parent
FLOOR = {"errors": 0, "config": 1, "model": 2, "store": 3, "method": 4, "run": 5, "read": 5, "report": 6}
MODEL_STACK = {"lotterylib.run", "lotterylib.model.models", "lotterylib.model.masking", "lotterylib.model.shrink",
               "lotterylib.model.data", "lotterylib.model.forward", "lotterylib.method.attention",
               "lotterylib.method.importance"}
LIVE = {"lotterylib.report.explorer"}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(p for p in parts if p != "__init__")
        yield name, path


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (imports for annotations only, never executed)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _imports(path: Path) -> list[str]:
    out = []
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lotterylib"):
            out += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("lotterylib") or a.name.split(".")[0] == "torch"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "torch":
            out.append(node.module)
    return out


def _floor(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOOR else None


def _in_stack(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in MODEL_STACK) or name.split(".")[0] == "torch"


def test_every_module_sits_on_a_floor():
    loose = [name for name, _ in _modules() if name != "lotterylib" and _floor(name) is None
             and name != "lotterylib.errors"]
    assert not loose, f"modules outside the floors {sorted(FLOOR)}: {loose}"


def test_no_floor_imports_from_above_and_read_and_run_stay_apart():
    wrong = []
    for name, path in _modules():
        here = _floor(name)
        if here is None:
            continue
        for target in _imports(path):
            there = _floor(target)
            if there is None or there == here:
                continue
            if FLOOR[there] > FLOOR[here] or {here, there} == {"read", "run"} or (here == "report" and there == "run"
                                                                               and name not in LIVE):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_read_side_never_reaches_the_model_stack():
    """Transitively: no module the read side imports (at any depth, within the package) is in the model stack."""
    graph = {name: [t for t in _imports(path)] for name, path in _modules()}
    known = set(graph)

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    read_side = [n for n in graph if _floor(n) in ("config", "store", "read", "report") and n not in LIVE]
    wrong = []
    for start in read_side:
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            for target in graph.get(current, []):
                if _in_stack(target):
                    wrong.append(f"{start} reaches {target} (through {current})")
                    continue
                module = resolve(target)
                if module and module not in seen:
                    seen.add(module)
                    todo.append(module)
    assert not wrong, "\n".join(sorted(set(wrong)))

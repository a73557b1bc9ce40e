"""Imports run one way, down the layers, and form no cycle (issue 26), read from the source with `ast`:
every import counts, also one inside a function (a lazy import is still a dependency).

    package-root modules -> data -> models -> training -> evaluation / deploy -> cli

`python tests/test_layers.py` prints each climb and cycle. Exempt: the package's `__init__` and
`_registration.py` (the import hook that registers the models' custom objects when keras loads), which
name modules of every layer by design.

One allowance: a head (`affect_keras/heads/`, a package-root module) keeps its layers, loss, metrics and
report section in one class, so each method imports the code of the stage that calls it (keras and the
hierarchical layer in `build`, the losses in `loss`, the metrics and plots in `report`). A head's imports
inside a function may therefore reach any layer, and are not edges of the graph (the stage calls the
head, not the other way round); its module-level imports are checked like any other module's."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "affect_keras"
LAYERS = {"data": 1, "models": 2, "training": 3, "evaluation": 4, "deploy": 4, "cli": 5}
EXEMPT = {"affect_keras", "affect_keras._registration"}
PLUG_INS = "affect_keras.heads."  # modules whose imports inside functions serve the stage that calls them


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def resolve(name: str) -> str | None:
    """The module an imported name lives in: the longest prefix that is a module of the package."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in MODULES:
            return ".".join(parts[:end])
    return None


def _nodes(tree: ast.AST, module: str):
    """The import statements of a module that count: all of them, but for a head, only those outside
    functions."""
    if not module.startswith(PLUG_INS):
        yield from ast.walk(tree)
        return
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack += [
            child
            for child in ast.iter_child_nodes(node)
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        ]


def imports() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        found = set()
        for node in _nodes(ast.parse(path.read_text()), module):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            found |= {target for target in map(resolve, names) if target and target != module}
        graph[module] = found
    return graph


def climbs(graph) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module not in EXEMPT
        for target in targets
        if layer(target) > layer(module)
    )


def cycles(graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), a package and its own submodules aside:
    a package's `__init__` importing its submodules is not a cycle unless a submodule imports it back."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w in EXEMPT:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index and v not in EXEMPT:
            visit(v)
    return groups


def test_no_module_imports_one_above_its_layer():
    assert climbs(imports()) == []


def test_there_are_no_import_cycles():
    assert cycles(imports()) == []


def test_a_head_reaches_up_only_inside_a_method():
    code = (
        "import affect_keras.options\n"
        "from affect_keras.training.losses import LOSSES\n"
        "def loss():\n    from affect_keras.evaluation import metrics\n"
    )
    in_head = {
        node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
        for node in _nodes(ast.parse(code), "affect_keras.heads.x")
        if isinstance(node, (ast.Import, ast.ImportFrom))
    }
    assert in_head == {"affect_keras.options", "affect_keras.training.losses"}  # the module level only
    elsewhere = {
        node.module for node in _nodes(ast.parse(code), "affect_keras.data.x") if isinstance(node, ast.ImportFrom)
    }
    assert "affect_keras.evaluation" in elsewhere  # a lazy import anywhere else still counts
    graph = {"affect_keras.heads.x": {"affect_keras.training.losses"}}
    assert climbs(graph) == ["affect_keras.heads.x -> affect_keras.training.losses"]


def test_the_check_sees_a_climb_and_a_cycle():
    graph = {"affect_keras.data.a": {"affect_keras.models.b"}, "affect_keras.models.b": {"affect_keras.data.a"}}
    assert climbs(graph) == ["affect_keras.data.a -> affect_keras.models.b"]
    assert cycles(graph) == [["affect_keras.data.a", "affect_keras.models.b"]]


if __name__ == "__main__":
    graph = imports()
    for line in climbs(graph):
        print("climb:", line)
    for group in cycles(graph):
        print("cycle:", " <-> ".join(group))

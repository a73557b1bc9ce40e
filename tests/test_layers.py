"""Imports run one way, down the layers, and form no cycle (issues 26, 42), read from the source with `ast`:
every import counts, also one inside a function (a lazy import is still a dependency), and so does an
`importlib.import_module` call (a module named in the call, or every module under the package a name built
in the call starts with: the head registry's `f"{__name__}.{name}"`).

    package-root modules (heads/ and tasks.py among them) -> data -> models -> evaluation -> training,
    deploy -> cli

`python tests/test_layers.py` prints each climb and cycle. Exempt: the package's `__init__` (its lazy
public names) and `_registration.py` (the import hook that registers the models' custom objects when keras
loads), which name modules of every layer by design."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "affect_keras"
LAYERS = {"data": 1, "models": 2, "evaluation": 3, "training": 4, "deploy": 4, "serve": 5, "cli": 6}
EXEMPT = {"affect_keras", "affect_keras._registration"}


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


def _dynamic(node: ast.Call, module: str) -> list[str]:
    """The modules an `import_module(...)` call may import: the one a constant names, or every module of
    the package that a built name starts with (`__name__` read as the calling module's name)."""
    if not node.args:
        return []
    argument = node.args[0]
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return [argument.value]
    if isinstance(argument, ast.JoinedStr):
        prefix = ""
        for part in argument.values:
            if isinstance(part, ast.Constant):
                prefix += part.value
            elif isinstance(part.value, ast.Name) and part.value.id == "__name__" and not prefix:
                prefix = module
            else:
                break
        return [name for name in MODULES if prefix and name.startswith(prefix) and name != module]
    return []


def _targets(tree: ast.AST, module: str):
    """Every module name a module's code imports: statements and `import_module` calls, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            yield from _dynamic(node, module)


def imports(sources: dict[str, str] | None = None) -> dict[str, set[str]]:
    """module -> the package's modules it imports; `sources` ({module: code}) replaces files' code."""
    sources = sources or {}
    graph = {}
    for module, path in MODULES.items():
        code = sources.get(module, path.read_text() if path else "")
        found = map(resolve, _targets(ast.parse(code), module))
        graph[module] = {target for target in found if target and target != module}
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


def test_the_check_sees_a_climb_through_a_head_and_a_cycle_through_the_registry(monkeypatch):
    """A head's import inside a method counts like any other; the registry's `import_module` loop makes
    heads/__init__ import each head module, so a head that imports the package back is a cycle."""
    head = "affect_keras.heads.expression"
    climbing = MODULES[head].read_text() + "\n\ndef report():\n    from affect_keras.evaluation import metrics\n"
    assert climbs(imports({head: climbing})) == [f"{head} -> affect_keras.evaluation.metrics"]
    assert "affect_keras.heads.expression" in imports()["affect_keras.heads"]  # through import_module
    monkeypatch.setitem(MODULES, "affect_keras.heads.planted", None)
    back = "from affect_keras.heads import HEADS\n"
    planted = imports({"affect_keras.heads.planted": back})
    assert cycles(planted) == [["affect_keras.heads", "affect_keras.heads.planted"]]
    reference = imports()["affect_keras.cli.reference"]  # f"affect_keras.cli.{command}": every command's module
    assert {"affect_keras.cli.train", "affect_keras.cli.predict"} <= reference


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

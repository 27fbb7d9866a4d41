"""The shape of the code: no import cycles (function-level imports included), dependencies point one way,
and the core imports no training stack."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from tests.conftest import REPO

PACKAGES = ("reasongym", "envs", "trainers")
LAYER = {"reasongym": 0, "envs": 1, "trainers": 2}  # trainers -> envs -> reasongym


def _modules() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(REPO, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    module = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                    found[module.removesuffix(".__init__")] = path
    return found


def _imports(modules: dict[str, str]) -> dict[str, set[str]]:
    """module -> project modules it imports anywhere in its body (TYPE_CHECKING and function level too)."""
    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                target = resolve(name) if name.split(".")[0] in PACKAGES else None
                if target and target != module:
                    graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]], modules: dict[str, str]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            real = [m for m in component if not modules[m].endswith("__init__.py")]  # a package re-exporting itself
            if len(real) > 1:
                out.append(sorted(real))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_counting_function_level_imports():
    modules = _modules()
    assert not _cycles(_imports(modules), modules)


def test_dependencies_point_one_way():
    modules = _modules()
    backwards = [(a, b) for a, targets in _imports(modules).items() for b in targets
                 if LAYER[b.split(".")[0]] > LAYER[a.split(".")[0]]
                 and not (a == "envs" and b.startswith("envs."))]
    assert not backwards, backwards


def test_core_and_envs_import_no_training_stack():
    code = ("import sys, reasongym as rg; env = rg.make('countdown-3to4'); t = env.tasks(n=1)[0]; "
            "env.score(env.reference_completion(t), t); import reasongym.testing, reasongym.telemetry, reasongym.cli; "
            "print(sorted(m for m in ('torch', 'trl', 'transformers', 'deepspeed', 'vllm', 'accelerate') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "[]"

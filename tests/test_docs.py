"""The examples in README.md and docs/ run as written."""

from __future__ import annotations

import os
import re

import reasongym as rg
from reasongym import registry
from tests.conftest import REPO


def _python_blocks(path: str) -> list[str]:
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.DOTALL)


def test_readme_example_runs(capsys):
    (block,) = _python_blocks("README.md")
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "1.0 {'format': 1.0, 'correct': 1.0}"
    assert out[1] == "Outcome.UNPARSEABLE"


def test_testing_guide_catches_the_sloppy_verifier(capsys):
    _, block = _python_blocks("docs/testing.md")
    exec(compile(block, "docs/testing.md", "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    with open(os.path.join(REPO, "docs/testing.md"), encoding="utf-8") as f:
        assert f"It prints `{printed}`" in f.read()  # the page shows what the block prints
    assert printed.startswith("False [") and "'hedge'" in printed


def test_testing_guide_example_runs_as_a_test():
    block, _ = _python_blocks("docs/testing.md")
    assert len(block.strip().splitlines()) <= 40
    namespace: dict = {}
    try:
        exec(compile(block, "docs/testing.md", "exec"), namespace)
        namespace["test_double_it"]()
        env = rg.make("double-it")
        assert env.score("<think>x</think><answer>5</answer>", env.tasks(n=1)[0]).reward < 1.0
    finally:
        registry.deregister("double-it")


def test_multi_turn_guide_example_runs(capsys):
    blocks = _python_blocks("docs/multi-turn.md")
    example = next(b for b in blocks if "class Guess" in b)
    assert len(example.strip().splitlines()) <= 40
    try:
        exec(compile(example, "docs/multi-turn.md", "exec"), {})
        out = capsys.readouterr().out.strip().splitlines()
        assert out[-1] in ("Higher. False False", "Lower. False False")
    finally:
        registry.deregister("guess")

"""HumanEval+ and MBPP+: release files, expected outputs from the canonical solution, plus inputs that matter."""

from __future__ import annotations

import gzip
import json

import pytest

import reasongym as rg
from envs.code.plus import literal
from reasongym.errors import DatasetUnavailable


def _answer(code: str) -> str:
    return f"<think>\nx\n</think>\n<answer>\n```python\n{code}```\n</answer>"


def test_expected_outputs_come_from_the_canonical_solution_and_plus_inputs_catch_overfitting():
    env = rg.make("humaneval-plus", source="sample")
    task = next(t for t in env.tasks("test", n=None, seed=None) if "add_digits" in t.question["prompt"])
    _, tests, entry = env.tests_for(task)
    assert entry == "add_digits" and len(tests) == 6
    assert {t.expr: t.expected for t in tests}["candidate(9999)"] == 36  # run here, never written in the data
    base_only = "def add_digits(n):\n    return {0: 0, 123: 6}.get(n, 0)\n"  # passes the two base inputs
    score = env.score(_answer(base_only), task)
    assert score.outcome is rg.Outcome.WRONG and score.parsed["tests"][:2] == [True, True]
    assert not all(score.parsed["tests"])


def test_plus_tests_cap_and_tolerance():
    env = rg.make("mbpp-plus", source="sample", plus_tests=1)
    task = next(t for t in env.tasks("test", n=None, seed=None) if "circle" in t.question["prompt"])
    _, tests, _ = env.tests_for(task)
    assert len(tests) == 3 and all(t.tolerance == 1e-6 for t in tests)  # 2 base inputs + 1 plus input
    close = "def circle_area(r):\n    return 3.14159265 * r * r\n"  # within 1e-6 for these radii
    assert env.score(_answer(close), task).outcome is rg.Outcome.CORRECT
    assert "circle_area(1)" in task.question["example"]  # the release's assertion, shown in the prompt


def test_release_files_load_and_bad_rows_are_refused(tmp_path):
    row = {"task_id": "HumanEval/0", "prompt": "def inc(x):\n    \"\"\"x + 1\"\"\"\n", "entry_point": "inc",
           "canonical_solution": "    return x + 1\n", "base_input": [[1], [2]], "plus_input": [[float("inf")], [-5]],
           "atol": 0}
    path = tmp_path / "HumanEvalPlus.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(row) + "\n")
    env = rg.make("humaneval-plus", data_files=str(path))
    [task] = env.tasks("test", n=None, seed=None)
    assert task.metadata["calls"][2] == "candidate(float('inf'))"
    assert env.score(env.reference_completion(task), task).outcome is rg.Outcome.CORRECT
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({k: v for k, v in row.items() if k != "plus_input"}) + "\n")
    with pytest.raises(ValueError, match="lacks plus_input"):
        rg.make("humaneval-plus", data_files=str(bad))
    with pytest.raises(DatasetUnavailable, match="HumanEvalPlus.jsonl.gz"):
        rg.make("humaneval-plus")


def test_literal_round_trips_json_values():
    for value in ([1, "a", None, True, 2.5], {"k": [float("-inf")]}, "quote ' and \" both"):
        assert eval(literal(value)) == value  # noqa: S307 - our own literal of test data, not model output

"""BIG-Bench Hard: whole-answer exact match after a per-kind normalisation, so hedges are wrong by construction."""

from __future__ import annotations

import json

import pytest

import reasongym as rg
from envs.bbh import TASKS
from envs.bbh.env import normalize, target_form
from reasongym.testing import check_verifier


@pytest.mark.parametrize("answer, target, right", [
    ("(A)", "(A)", True), ("A", "(A)", True), ("**a**", "(A)", True), ("The answer is (A).", "(A)", True),
    ("B", "(A)", False), ("(A) or (B)", "(A)", False), ("True", "True", True), ("true.", "True", True),
    ("True, False", "True", False), ("-21.0", "-21", True), ("-21 -22", "-21", False), ("valid", "valid", True),
    ("invalid", "valid", False), ("apple mango pear", "apple mango pear", True), ("Yes or no", "yes", False),
])
def test_normalised_exact_match(answer, target, right):
    assert (normalize(answer, target) == target_form(target)) is right


def test_the_sample_keeps_the_verifier_contract_and_every_task_is_registered():
    env = rg.make("bbh", source="sample")
    assert env.task_count("test") == 10 and check_verifier(env, examples=30, raise_on_failure=False).ok
    ids = {s.id for s in rg.list_envs()}
    assert len(TASKS) == 27 and all(f"bbh/{t}" in ids for t in TASKS)


def test_local_files_and_rows_without_a_target(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps({"input": "1 + 1 =", "target": "2", "task": "multistep_arithmetic_two"}) + "\n")
    env = rg.make("bbh/multistep_arithmetic_two", data_files=str(path))
    task = env.tasks("test", n=1)[0]
    assert env.score("x</think><answer>2</answer>", task).outcome is rg.Outcome.CORRECT
    bad = tmp_path / "bad" / "test.jsonl"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"input": "?", "target": " ", "task": "navigate"}) + "\n")
    with pytest.raises(ValueError, match="no target"):
        rg.make("bbh", data_files=str(bad))

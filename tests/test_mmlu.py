"""MMLU: one option named in any common form is read; several named are a hedge; files in the hub's format load."""

from __future__ import annotations

import json

import pytest

import reasongym as rg
from envs.mmlu import SUBJECTS
from envs.mmlu.env import choice_letter
from reasongym.testing import check_verifier

CHOICES = ["Venus", "Earth", "Mercury", "Mars"]


@pytest.mark.parametrize("answer", ["C", "(C)", "C)", "C.", "**C**", "The answer is (C).", "Answer: C", "C. Mercury",
                                    "Mercury", "mercury.", "C because it is closest"])
def test_one_option_in_any_common_form(answer):
    assert choice_letter(answer, CHOICES) == ("C", "")


@pytest.mark.parametrize("answer", ["C or D", "A, C", "C/D", "(A) (C)", "C C C", "A B C D"])
def test_several_options_are_a_hedge(answer):
    letter, why = choice_letter(answer, CHOICES)
    assert letter is None and why.startswith("several")


def test_scores_and_outcomes_on_the_sample():
    env = rg.make("mmlu", source="sample")
    task = env.tasks("test", n=None, seed=None)[1]  # Mercury, C
    assert env.score(env.reference_completion(task), task).reward == env.full_reward
    assert env.score("x</think><answer>C or B</answer>", task).outcome is rg.Outcome.WRONG
    assert env.score("x</think><answer>B</answer>", task).outcome is rg.Outcome.WRONG
    assert env.score("x</think><answer>no idea</answer>", task).outcome is rg.Outcome.UNPARSEABLE
    assert check_verifier(env, examples=30, raise_on_failure=False).ok


def test_subjects_are_registered_and_files_in_the_hub_format_load(tmp_path):
    ids = {s.id for s in rg.list_envs()}
    assert len(SUBJECTS) == 57 and all(f"mmlu/{s}" in ids for s in SUBJECTS)
    rows = [{"question": "2 + 2?", "subject": "elementary_mathematics", "choices": ["3", "4", "5", "6"], "answer": 1},
            {"question": "Capital of France?", "subject": "high_school_geography", "choices": ["Rome", "Paris", "Oslo",
                                                                                              "Bern"], "answer": 1}]
    path = tmp_path / "test.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert rg.make("mmlu", data_files=str(path)).task_count("test") == 2
    one = rg.make("mmlu/elementary_mathematics", data_files=str(path))
    assert one.task_count("test") == 1 and one.tasks("test", n=1)[0].answer == "B"
    bad = tmp_path / "bad" / "test.jsonl"
    bad.parent.mkdir()
    bad.write_text(json.dumps({**rows[0], "choices": ["1", "2"]}) + "\n")
    with pytest.raises(ValueError, match="4 choices"):
        rg.make("mmlu", data_files=str(bad))
    with pytest.raises(ValueError, match="unknown MMLU subject"):
        rg.make("mmlu", subject="astrology", source="sample")

"""No env runs model text as code: our verifiers for the reasoning-gym tasks whose scorer evals, the one
scoring gate for scorers that do, and the code-injection probe on every registered id."""

from __future__ import annotations

import pytest

import reasongym as rg
from reasongym.errors import UnsafeScoringRefused
from reasongym.testing.probes import run_probes
from tests.conftest import make_builtin

pytest.importorskip("reasoning_gym", reason="the reasoning-gym extra is not installed")

EVAL_TASKS = ["binary_matrix", "intermediate_integration", "n_queens", "polynomial_multiplication",
              "simple_integration", "spiral_matrix", "string_insertion"]


def _answer(text: str) -> str:
    return f"<think>x</think>\n<answer>{text}</answer>"


def test_no_registered_env_runs_an_injected_answer():
    """The code-injection probe (Python, eval/exec strings, sympy payloads) on every id, reasoning-gym's
    106 included: a marker file would show that an answer ran."""
    failures = []
    for spec in rg.list_envs():
        env = make_builtin(spec.id)
        result = run_probes(env, env.tasks(n=1, seed=0), names=("code_injection",))[0]
        if not result.passed:
            failures.append((spec.id, result.detail, result.worst))
    assert not failures


def test_the_probe_sees_code_run_when_a_scorer_evals():
    """The probe can fail: reasoning-gym's own n_queens scorer, with consent, runs the payload."""
    env = rg.make("reasoning-gym/n_queens", scorer="reasoning-gym", allow_unsafe_scoring=True)
    result = run_probes(env, env.tasks(n=1), names=("code_injection",))[0]
    assert not result.passed and "ran as code" in result.detail


@pytest.mark.parametrize("name", EVAL_TASKS)
def test_scoring_with_reasoning_gyms_scorer_needs_consent_at_make_time(name, tmp_path):
    env = rg.make(f"reasoning-gym/{name}", scorer="reasoning-gym")
    assert "eval" in env.executes_model_text
    task = env.tasks(n=1)[0]
    marker = tmp_path / "ran"
    payload = _answer(f"__import__('os').system('touch {marker}')")
    with pytest.raises(UnsafeScoringRefused, match="allow_unsafe_scoring=True"):
        env.score(payload, task)
    with pytest.raises(UnsafeScoringRefused):
        env.score_batch([payload], [task])
    assert not marker.exists()


@pytest.mark.parametrize("name", EVAL_TASKS)
def test_our_verifier_keeps_the_gold_and_refuses_injections(name, tmp_path):
    env = rg.make(f"reasoning-gym/{name}")
    assert not env.executes_model_text and not env.unsafe_reason
    tasks = [t for t in env.tasks(n=20, seed=1) if env.reference_completion(t)]
    scores = env.score_batch([env.reference_completion(t) for t in tasks], tasks)
    assert all(s.reward == env.full_reward for s in scores), [s.detail for s in scores if s.reward < env.full_reward]
    marker = tmp_path / "ran"
    for payload in (f"__import__('os').system('touch {marker}')", f"[__import__('os').system('touch {marker}')]",
                    f"Function('f')(__import__('os').system('touch {marker}'))", f"eval(\"open('{marker}', 'w')\")"):
        score = env.score(_answer(payload), tasks[0])
        assert score.components["correct"] == 0.0 and score.outcome is not rg.Outcome.ERROR
    assert not marker.exists()


def test_list_spellings_keep_reasoning_gyms_partial_credit_without_eval():
    spiral = rg.make("reasoning-gym/spiral_matrix")
    task = spiral.tasks(n=1)[0]
    as_list = "[" + ", ".join(task.answer.split()) + "]"
    score = spiral.score(_answer(as_list), task)
    assert score.outcome is rg.Outcome.WRONG and score.components["partial"] == 0.1
    queens = rg.make("reasoning-gym/n_queens")
    task = queens.tasks(n=1)[0]
    board = [row.split() for row in task.answer.splitlines()]
    assert queens.score(_answer(repr(board)), task).components["partial"] == 0.5
    # whitespace does not matter for a board: spaces doubled, a trailing newline
    assert queens.score(_answer(task.answer.replace(" ", "  ") + "\n"), task).outcome is rg.Outcome.CORRECT


def test_polynomials_must_be_expanded_and_equal():
    env = rg.make("reasoning-gym/polynomial_multiplication")
    task = env.tasks(n=1)[0]
    question = task.metadata["entry"]["metadata"]["polynomial_expr"]
    assert env.score(_answer(question), task).outcome is rg.Outcome.UNPARSEABLE  # the factored question echoed
    terms = task.answer.replace(" - ", " + -").split(" + ")
    reordered = " + ".join(reversed(terms))  # same polynomial, other order
    assert env.score(_answer(reordered), task).outcome is rg.Outcome.CORRECT
    assert env.score(_answer(task.answer + " + 1"), task).outcome is rg.Outcome.WRONG
    assert env.score(_answer("(" * 3000 + "x" + ")" * 3000), task).outcome is rg.Outcome.UNPARSEABLE
    assert env.score(_answer("((9**256)**256)**256"), task).outcome is rg.Outcome.UNPARSEABLE


def test_antiderivatives_count_up_to_a_constant_and_nothing_else():
    env = rg.make("reasoning-gym/simple_integration")
    task = env.tasks(n=1)[0]
    gold = task.answer.replace(" + C", "")
    for right in (f"{gold} + C", gold, f"{gold} + 7", f"C + {gold}"):
        assert env.score(_answer(right), task).outcome is rg.Outcome.CORRECT, right
    variable = task.metadata["entry"]["metadata"]["variable"]
    for wrong in (f"{gold} + {variable}", f"2*({gold})", f"{gold} + C*{variable}", task.metadata["entry"]["metadata"]["integrand"]):
        assert env.score(_answer(wrong), task).components["correct"] == 0.0, wrong


@pytest.mark.parametrize("name, hedge", [("advanced_geometry", "{gold}, 1, 2, 3"), ("word_sorting", "{gold}, 1, 2, 3"),
                                         ("polynomial_equations", "{gold} or 7"), ("cryptarithm", "{gold},{gold}")])
def test_extra_items_after_the_answer_score_wrong(name, hedge):
    env = rg.make(f"reasoning-gym/{name}")
    for task in env.tasks(n=5, seed=3):
        assert env.score(env.reference_completion(task), task).reward == env.full_reward
        assert env.score(_answer(hedge.format(gold=task.answer)), task).components["correct"] == 0.0


def test_gymnasium_reset_works_on_reasoning_gym_envs_and_they_take_max_turns():
    import gymnasium as gym

    env = rg.make("reasoning-gym/basic_arithmetic", max_turns=2)
    assert env.max_turns == 2
    for seed in range(5):
        observation, info = env.reset(seed=seed)
        assert observation and info["task"].question["question"]
    observation, info = gym.make("reasongym/reasoning-gym.ab").reset(seed=1)
    assert info["task"].id.startswith("reasoning-gym/ab:")

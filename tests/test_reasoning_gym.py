"""reasoning-gym datasets as envs: lazy ids, every id makes, splits, scoring only in workers, safety, training."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import reasongym as rg
from reasongym.testing import check_verifier
from tests.conftest import REPO, run_in_process

pytest.importorskip("reasoning_gym", reason="the reasoning-gym extra is not installed")

# Ten tasks across reasoning-gym's categories, including the two we verify ourselves.
SAMPLE = ["countdown", "puzzle24", "basic_arithmetic", "gcd", "chain_sum", "letter_counting", "word_sorting",
          "family_relationships", "propositional_logic", "number_sorting"]


def test_ids_are_listed_without_importing_reasoning_gym():
    code = ("import sys, reasongym as rg; ids = [s.id for s in rg.list_envs() if s.family == 'reasoning-gym']; "
            "print(len(ids), 'reasoning_gym' in sys.modules, 'reasoning-gym/countdown' in ids)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.split() == ["106", "False", "True"]


def test_every_reasoning_gym_id_makes_and_yields_tasks():
    from envs.reasoning_gym import NAMES
    from reasoning_gym.factory import DATASETS

    assert set(NAMES) == set(DATASETS)  # the static id list matches the installed registry
    for name in NAMES:
        env = rg.make(f"reasoning-gym/{name}")
        task = env.tasks("train", n=1, seed=0)[0]
        assert task.question["question"] and task.metadata["entry"]["question"] == task.question["question"], name


def test_tasks_are_deterministic_and_splits_disjoint():
    env = rg.make("reasoning-gym/gcd")
    train, test = env.tasks("train", n=60, seed=3), env.tasks("test", n=10, seed=3)
    assert train == rg.make("reasoning-gym/gcd").tasks("train", n=60, seed=3)
    assert not {t.id for t in train} & {t.id for t in test}
    assert all(env.split_of(t.metadata["entry"]) == "test" for t in test)
    assert json.loads(json.dumps(train[0].to_dict()))  # tasks travel as JSON (TRL columns, workers)


def test_levels_come_from_the_curriculum_and_config_fields_pass_through():
    env = rg.make("reasoning-gym/chain_sum", levels=[0, 2])
    tasks = env.tasks("train", n=4)
    assert [t.difficulty for t in tasks] == [0, 2, 0, 2]
    assert env.config_for(0) != env.config_for(2)
    fixed = rg.make("reasoning-gym/chain_sum", min_terms=2, max_terms=2)
    assert all(t.question["question"].count("+") + t.question["question"].count("-") >= 1 for t in fixed.tasks(n=5))
    with pytest.raises(TypeError, match="no_such_field"):
        rg.make("reasoning-gym/chain_sum", no_such_field=1)


def test_scoring_never_runs_in_the_calling_process():
    env = rg.make("reasoning-gym/gcd")
    task = env.tasks(n=1)[0]
    env.score_timeout = 1.0
    dataset = env._dataset(task.metadata["seed"], task.difficulty)
    dataset.score_answer = lambda answer, entry: time.sleep(60)  # a scorer that hangs: only a worker can be killed
    start = time.perf_counter()
    score = env.score(env.reference_completion(task), task)
    assert score.outcome is rg.Outcome.TIMEOUT and time.perf_counter() - start < 10


def test_own_verifier_closes_reasoning_gym_countdown_and_puzzle24_holes():
    for name in ("countdown", "puzzle24"):
        env = rg.make(f"reasoning-gym/{name}")
        task = env.tasks(n=1)[0]
        assert env.score(env.reference_completion(task), task).reward == 1.0
        meta = task.metadata["entry"]["metadata"]
        for hack in ("1.5*10", f"({meta['numbers'][0]}**2)", "__import__('os').getpid()"):
            assert env.score(f"<think>x</think><answer>{hack}</answer>", task).components["correct"] == 0.0
    puzzle = rg.make("reasoning-gym/puzzle24")
    task = puzzle.tasks(n=1)[0]
    other_numbers = "(1 + 2 + 3) * 4"  # reasoning-gym pays any four in-range numbers that make 24
    if sorted(task.metadata["entry"]["metadata"]["numbers"]) != [1, 2, 3, 4]:
        assert puzzle.score(f"<think>x</think><answer>{other_numbers}</answer>", task).components["correct"] == 0.0


@pytest.mark.parametrize("name", SAMPLE)
def test_sample_keeps_the_verifier_contract(name):
    env = rg.make(f"reasoning-gym/{name}")
    report = check_verifier(env, examples=20, n_tasks=10, raise_on_failure=False)
    failed = [c for c in report.checks if not c.passed and c.name != "near_miss"] + [p for p in report.probes if not p.passed]
    assert not failed, report.failures


@pytest.mark.parametrize("slow_shape", ["¬" * 10_000 + "P", "(" * 5000 + "P" + ")" * 5000, "P ∧ " * 2500 + "P",
                                        "(" * 40 + "P" + ")" * 40, "¬" * 20 + "P"])
def test_propositional_logic_refuses_answers_its_parser_would_spend_seconds_on(slow_shape):
    # reasoning-gym's parser took 68 s on 10,000 '¬' and killed a 5 s worker on 10,000 '(' in CI
    env = rg.make("reasoning-gym/propositional_logic")
    task = env.tasks(n=1)[0]
    score = env.score(f"<think>x</think><answer>{slow_shape}</answer>", task)
    assert score.outcome is rg.Outcome.UNPARSEABLE and score.reward < 1.0
    # refused by the limits, so reasoning-gym's parser never ran (no timing assertion: CI boxes vary)
    assert any(word in score.detail for word in ("longer than", "nested deeper", "a run of")), score.detail
    premise = task.metadata["entry"]["metadata"]["premises"][0]  # a premise follows from the premises
    assert env.score(f"<think>x</think><answer>{premise}</answer>", task).outcome is rg.Outcome.CORRECT
    assert env.score(f"<think>x</think><answer>¬¬({premise})</answer>", task).outcome is rg.Outcome.CORRECT


def test_reasoning_gym_scorer_that_evals_a_power_tower_costs_one_timeout():
    # reasoning-gym's own spiral_matrix scorer eval()s the answer: only with consent, and only in a worker
    env = rg.make("reasoning-gym/spiral_matrix", scorer="reasoning-gym", allow_unsafe_scoring=True)
    env.score_timeout = 2.0
    task = env.tasks(n=1)[0]
    start = time.perf_counter()
    assert env.score("<think>x</think><answer>9**9**9**9</answer>", task).outcome is rg.Outcome.TIMEOUT
    assert time.perf_counter() - start < 8
    assert env.score(env.reference_completion(task), task).reward == 1.0  # the worker was replaced


def test_check_cli_works_on_a_reasoning_gym_id():
    proc = subprocess.run([sys.executable, "-m", "reasongym", "check", "reasoning-gym/gcd", "--examples", "10"],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "keep the verifier contract" in proc.stdout


def test_training_refuses_an_unsafe_task_without_consent(tiny_model, tmp_path):
    from trainers import grpo
    from trainers.common import preflight

    env = rg.make("reasoning-gym/knights_knaves")  # its scorer pays a hedge
    assert env.unsafe_reason and "hedge" in env.unsafe_reason
    with pytest.raises(preflight.PreflightError, match="--allow-unsafe-env true"):
        preflight.check_env_safety(env, allowed=False)
    preflight.check_env_safety(env, allowed=True)
    code = grpo.main(["--env", "reasoning-gym/knights_knaves", "--model", tiny_model, "--output-dir", str(tmp_path)])
    assert code == 2


def test_every_entry_point_refuses_a_scorer_that_runs_model_text_before_loading_a_model(tmp_path):
    from trainers import evaluate, grpo

    kwargs = json.dumps({"scorer": "reasoning-gym"})
    missing_model = str(tmp_path / "no-such-model")  # never reached: the gate stops the run first
    for main in (grpo.main, evaluate.main):
        assert main(["--env", "reasoning-gym/n_queens", "--env-kwargs", kwargs, "--model", missing_model,
                     "--output-dir", str(tmp_path / "out")]) == 2
    proc = subprocess.run([sys.executable, "-m", "reasongym", "check", "reasoning-gym/n_queens", "--env-kwargs", kwargs,
                           "--examples", "5"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 1 and "allow_unsafe_scoring" in proc.stdout, proc.stdout[-2000:]


@pytest.mark.slow
def test_grpo_trains_on_a_reasoning_gym_task_with_an_adaptive_curriculum(tiny_model, tmp_path):
    out = tmp_path / "rg"
    proc = run_in_process(["trainers.grpo", "--env", "reasoning-gym/basic_arithmetic", "--env-kwargs", '{"levels": [0, 1, 2]}',
                       "--curriculum", "adaptive", "--model", tiny_model, "--output-dir", str(out), "--max_steps", "2",
                       "--per_device_train_batch_size", "4", "--num_generations", "4", "--max_completion_length", "8",
                       "--use_cpu", "true", "--bf16", "false", "--train_size", "60"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward" in r]
    assert len(steps) == 2 and any(k.startswith("curriculum/weight/") for k in steps[-1])
    assert "rewards/partial/mean" in steps[-1]  # reasoning-gym's partial credit is logged as a component

"""Countdown: generator, solver, verifier (hacks closed), reward modes, templates, hub source."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reasongym as rg
from envs.countdown import arith
from envs.countdown.env import TEMPLATES, check_expression
from envs.countdown.generator import CountdownParams, generate, split_of
from envs.countdown.solver import reachable, solvable, solve

CD = rg.make("countdown-3to4")
TASK = rg.Task(id="t", question={"nums": [44, 19, 35], "target": 98, "operators": "+-*/"}, answer=98, difficulty=3)


def answer(expr: str, think: str = " 44 + 19 = 63, 63 + 35 = 98") -> str:
    return f"{think}\n</think>\n<answer>{expr}</answer>"


# ---- generator ---------------------------------------------------------------------------
@pytest.mark.parametrize("env_id,counts", [("countdown-3to4", {3, 4}), ("countdown-3", {3}), ("countdown-4", {4})])
def test_reference_completion_full_reward_on_10k_tasks(env_id, counts):
    env = rg.make(env_id)
    tasks = env.tasks("train", n=10_000, seed=0)
    assert {t.difficulty for t in tasks} == counts
    for task in tasks:
        score = env.score(env.reference_completion(task), task)
        assert score.reward == 1.0, (task, score)


def test_generator_statistics_match_tinyzero_data():
    tasks = CD.tasks("train", n=4000, seed=1)
    nums = [n for t in tasks for n in t.question["nums"]]
    targets = [t.question["target"] for t in tasks]
    assert min(nums) >= 1 and max(nums) <= 99 and min(targets) >= 10 and max(targets) <= 100
    share_three = sum(t.difficulty == 3 for t in tasks) / len(tasks)
    assert 0.45 < share_three < 0.55  # the real data: 4,927 of 10,002 rows have 3 numbers
    assert len(set(targets)) > 80  # targets spread over 10..100
    assert any(len(set(t.question["nums"])) < len(t.question["nums"]) for t in tasks)  # repeats allowed
    assert all(solvable(t.question["nums"], t.question["target"]) for t in tasks)


def test_generation_is_deterministic_and_splits_disjoint():
    params = CountdownParams()
    assert generate(params, "train", 5, 0) == generate(params, "train", 5, 0)
    assert generate(params, "train", 5, 0) != generate(params, "train", 5, 1)
    train = {t.id for t in CD.tasks("train", n=3000, seed=0)} | {t.id for t in CD.tasks("train", n=3000, seed=9)}
    test = {t.id for t in CD.tasks("test", n=1000, seed=0)}
    assert not train & test
    for task in CD.tasks("test", n=200):
        assert split_of(task.question["nums"], task.question["target"], params.test_permille) == "test"


def test_parametrised_family_knobs():
    env = rg.make("countdown", counts=[2], num_range=[1, 9], target_range=[1, 20], operators="+-")
    for task in env.tasks(n=200):
        assert len(task.question["nums"]) == 2 and all(1 <= n <= 9 for n in task.question["nums"])
        assert 1 <= task.question["target"] <= 20
        assert env.score(env.reference_completion(task), task).reward == 1.0
    prompt = env.prompt(env.tasks(n=1)[0])[1]["content"]
    assert "(+, -)" in prompt
    a, b = env.tasks(n=1)[0].question["nums"]
    multiply = env.tasks(n=1)[0]
    assert check_expression(f"{a} * {b}", multiply.question)[0] in (rg.Outcome.WRONG,)
    with pytest.raises(ValueError):
        rg.make("countdown", operators="+^")


# ---- solver ------------------------------------------------------------------------------
def test_evaluator_precedence_exactness_and_errors():
    assert arith.evaluate_text("2 + 3 * 4").value == 14
    assert arith.evaluate_text("(2 + 3) * 4").value == 20
    assert arith.evaluate_text("10 - 4 - 3").value == 3  # left associative
    assert arith.evaluate_text("8 / 4 / 2").value == 1
    assert arith.evaluate_text("1 / 3 * 3").value == 1 and arith.evaluate_text("7 / 2").value == Fraction(7, 2)
    assert arith.evaluate_text("3 - 5").value == -2 and arith.evaluate_text("4 / (3 - 5)").value == -2
    assert arith.evaluate_text("5 / (3 - 3)").divides_by_zero
    assert arith.evaluate_text("2 × 3 ÷ 6 x 1").value == 1
    for bad, message in [("2 ** 3", "power"), ("7 // 2", "floor"), ("1.5 * 2", "decimal"), ("-3 + 4", "unary"),
                         ("05 + 3", "leading zero"), ("(1 + 2", "unbalanced"), ("1 + 2)", "unbalanced"), ("1 + ()", "unexpected"),
                         ("", "empty"), ("1 +", "ends too early"), ("2 3", "missing operator"),
                         ("1234567 + 1", "digits"), ("abs(3)", "character"), ("(" * 40 + "1" + ")" * 40, "deeper")]:
        with pytest.raises(arith.ExprError, match=message):
            arith.evaluate_text(bad)
    with pytest.raises(arith.WrongNumbers):
        arith.evaluate_text("1 + 2 + 3 + 4", numbers=[1, 2, 3])
    with pytest.raises(arith.WrongNumbers):  # checked before evaluating: nothing is computed
        arith.evaluate_text("999999 * 999999 * 999999", numbers=[1, 2, 3])


def test_solver_finds_valid_expressions_and_proves_impossible():
    expr = solve([44, 19, 35], 98)
    assert expr is not None and check_expression(expr, TASK.question)[0] is rg.Outcome.CORRECT
    assert solve([1, 1, 1], 100) is None and not solvable([1, 1, 1], 100)
    assert solve([98, 98, 23, 23], 58) is None and not solvable([98, 98, 23, 23], 58)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=2, max_size=4), st.integers(0, 100))
def test_fast_solvable_agrees_with_exhaustive_reachability(nums, target):
    expected = target in reachable(tuple(sorted(nums)))
    assert solvable(nums, target) == expected
    found = solve(nums, target)
    assert (found is not None) == expected
    if found is not None:
        result = arith.evaluate_text(found)
        assert sorted(result.literals) == sorted(nums) and result.equals(target)


# ---- verifier: the reference's hole table (tasks.md §A5) ----------------------------------
HACKS = [
    ([4, 3, 2], 4096, "4**(3*2)"),
    ([458, 7], 65, "458//7"),
    ([1, 5, 2], 3, "1.5*2"),
    ([1, 5, 10], 15, "1.5*10"),
    ([3, 5, 4], 8, "-(3-5)*4"),
    ([3, 5, 4], 8, "+(5-3)*4"),
    ([9, 9, 9, 9], 10, "9**9**9**9"),
    ([95, 87, 64], 10, "95**87**64"),
    ([5, 3, 3], 5, "5/(3-3)"),
    ([5, 3], 8, "05+3"),
    ([1, 2, 3], 6, "__import__('os')"),
    ([1, 2, 4], 7, "(lambda: 7)()"),
    ([1, 2, 3], 6, "1+2+3+0"),
    ([1, 2, 3], 6, "1+2+3 = 7"),
    ([1, 2, 3], 6, "1+2+3 = 6 = 6"),
    ([10, 10, 2], 5, "10/(10-2)*4"),
]


@pytest.mark.parametrize("nums,target,expr", HACKS)
@pytest.mark.parametrize("mode", ["default", "tinyzero", "mini-r1"])
def test_known_hacks_never_earn_full_reward(nums, target, expr, mode):
    env = rg.make("countdown-3to4", reward_mode=mode)
    task = rg.Task(id="h", question={"nums": nums, "target": target, "operators": "+-*/"}, answer=target)
    start = time.perf_counter()
    score = env.score(answer(expr), task)
    assert time.perf_counter() - start < 0.1
    assert score.components["correct"] == 0.0 and score.reward < env.full_reward


def test_accepted_surface_forms():
    for expr in ["44 + 19 + 35", "(44+19)+35", "35 + (19 + 44)", "44 + 19 + 35 = 98", "44+19+35\n"]:
        assert CD.score(answer(expr), TASK).reward == 1.0, expr
    mult = rg.Task(id="m", question={"nums": [2, 3, 4], "target": 24, "operators": "+-*/"}, answer=24)
    for expr in ["2*3*4", "2 x 3 x 4", "2 × 3 × 4", "(2*3)*4"]:
        assert CD.score(answer(expr), mult).reward == 1.0, expr
    div = rg.Task(id="d", question={"nums": [1, 3, 3], "target": 1, "operators": "+-*/"}, answer=1)
    assert CD.score(answer("1/3*3"), div).reward == 1.0  # exact rational arithmetic
    assert CD.score(answer("3 ÷ 3 * 1"), div).reward == 1.0


def test_answer_placement_rules():
    ok = answer("44 + 19 + 35")
    assert CD.score(ok + "\nDone. The answer is above.", TASK).reward == 1.0  # trailing text ignored
    assert CD.score(ok + "\n", TASK).reward == 1.0  # TinyZero scored this 0 (last line only)
    inside = " <answer>44 + 19 + 35</answer>\n</think>\n"
    assert CD.score(inside, TASK).components["correct"] == 0.0
    unclosed = " thinking <answer>44 + 19 + 35</answer>"
    assert CD.score(unclosed, TASK).outcome is rg.Outcome.UNPARSEABLE
    two = answer("1 + 2") + "\n<answer>44 + 19 + 35</answer>"
    score = CD.score(two, TASK)
    assert score.components == {"format": 0.0, "correct": 1.0}
    first = rg.make("countdown-3to4", answer="first")
    assert first.score(two, TASK).components["correct"] == 0.0


def test_reward_modes_follow_their_originals():
    tz = rg.make("countdown-3to4", reward_mode="tinyzero")
    assert tz.score("no answer at all", TASK).reward == 0.0
    assert tz.score(answer("44 + 19"), TASK).reward == pytest.approx(0.1)
    assert tz.score(answer("44 + 19 + 35"), TASK).reward == pytest.approx(1.0)
    mini = rg.make("countdown-3to4", reward_mode="mini-r1")
    assert mini.reward_range == (0.0, 2.0)
    assert mini.score(answer("44 + 19 + 35"), TASK).reward == 2.0
    assert mini.score(answer("44 + 19 + 35") + " trailing", TASK).reward == 1.0  # Mini-R1 anchors at </answer>
    assert mini.score(" a\n</think><answer>44 + 19 + 35</answer>", TASK).components["format"] == 0.0
    default = rg.make("countdown-3to4")
    multi_line = " line one\nline two\n\n</think>\n<answer>44 + 19 + 35</answer>"
    assert default.score(multi_line, TASK).components == {"format": 1.0, "correct": 1.0}


def test_templates_match_the_reference_strings():
    q = {"nums": [44, 19, 35], "target": 98, "operators": "+-*/"}
    base = TEMPLATES["base"].render(q)
    assert base == (
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
        "assistant first thinks about the reasoning process in the mind and then provides the user with the answer.\n"
        "User: Using the numbers [44, 19, 35], create an equation that equals 98. You can use basic arithmetic "
        "operations (+, -, *, /) and each number can only be used once. Show your work in <think> </think> tags. "
        "And return the final answer in <answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>.\n"
        "Assistant: Let me solve this step by step.\n<think>"
    )
    chat = TEMPLATES["chat"].render(q)
    assert [m["role"] for m in chat] == ["system", "user", "assistant"]
    assert chat[2]["content"] == "Let me solve this step by step.\n<think>"
    assert chat[1]["content"].endswith("for example <answer> (1 + 2) / 3 </answer>. Think step by step inside <think> tags.")
    assert TEMPLATES["tinyzero-instruct"].render(q)[1]["content"].startswith(" Using the numbers [44, 19, 35]")
    assert CD.template.name == "chat"


# ---- verifier properties -------------------------------------------------------------------
TEXT = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["9**9**9**9", "(" * 3000 + "1" + ")" * 3000, "1" * 100_000, "\x00</answer>", "a" * 1_000_000]),
)


@settings(max_examples=200, deadline=None)
@given(TEXT, TEXT)
def test_never_raises_bounded_and_deterministic(think, ans):
    completion = f"{think}</think><answer>{ans}</answer>"
    start = time.perf_counter()
    a = CD.score(completion, TASK)
    assert time.perf_counter() - start < 1.0
    assert a == CD.score(completion, TASK)
    assert 0.0 <= a.reward <= 1.0 and a.outcome is not rg.Outcome.ERROR


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), max_size=200),
       st.text(alphabet=st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), max_size=200))
def test_think_body_and_trailing_text_do_not_change_the_score(body, suffix):
    reference = CD.reference_completion(TASK)
    assert CD.score(f" {body}\n{reference}" + suffix, TASK).reward == 1.0


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 9), st.integers(0, 9), st.integers(1, 99))
def test_decimal_glue_never_earns_credit(a, b, c):
    """Glue any two numbers: 'a.b op c' must never be correct, whatever the target."""
    for op in "+-*/":
        expr = f"{a}.{b}{op}{c}"
        task = rg.Task(id="g", question={"nums": [a, b, c], "target": 50, "operators": "+-*/"}, answer=50)
        assert CD.score(answer(expr), task).components["correct"] == 0.0


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10_000))
def test_wrong_targets_never_score_full(shift):
    task = CD.tasks(n=50)[shift % 50]
    reference = CD.reference_completion(task)
    wrong_target = task.question["target"] + 1 + shift % 7
    moved = rg.Task(id="w", question={**task.question, "target": wrong_target}, answer=wrong_target)
    assert CD.score(reference, moved).reward < 1.0


# ---- hub source ---------------------------------------------------------------------------
def test_hub_source_reads_local_parquet(tmp_path):
    import datasets

    rows = [{"target": 98, "nums": [44, 19, 35]}] + [{"target": 10 + i, "nums": [i + 1, 9, 1]} for i in range(39)]
    path = tmp_path / "train.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    env = rg.make("countdown-3to4", source="hub", data_files=str(path))
    assert env.task_count("train") == 36 and env.task_count("test") == 4
    first = env.tasks("train", n=1, seed=None)[0]
    assert first.question["nums"] == [44, 19, 35] and first.question["target"] == 98
    split = rg.make("countdown-3to4", source="hub", data_files={"train": str(path), "test": str(path)})
    assert split.task_count("test") == 40
    assert env.score(env.reference_completion(first), first).reward == 1.0


def test_hub_source_offline_error_names_the_option(tmp_path):
    with pytest.raises(RuntimeError, match="data_files"):
        rg.make("countdown-3to4", source="hub", data_files=str(tmp_path / "missing.parquet"))
    with pytest.raises(RuntimeError, match="data_files="):
        rg.make("countdown-3to4", source="hub")  # HF_HUB_OFFLINE=1 in tests: the hub is unreachable


def test_search_completion_states_true_values_of_wrong_tries_then_the_solver_s_answer():
    import re

    env = rg.make("countdown-3to4")
    for task in env.tasks("train", n=40, seed=3):
        nums, target = task.question["nums"], task.question["target"]
        for tries in (1, 2, 3):
            text = env.search_completion(task, wrong_tries=tries)
            assert text == env.search_completion(task, wrong_tries=tries)  # deterministic
            assert env.score(text, task).reward == 1.0
            wrong = re.findall(r"Trying (.+) = (-?\d+)\. Not (\d+)\.", text)
            assert 1 <= len(wrong) <= tries and len({w[0] for w in wrong}) == len(wrong)
            for expression, value, stated_target in wrong:  # every attempt is true arithmetic on the given numbers
                evaluated = arith.evaluate_text(expression, nums)
                assert evaluated.value == int(value) != target and int(stated_target) == target
            assert text.endswith(env.reference_completion(task).split("\n", 2)[-1])  # the reference's last try and answer

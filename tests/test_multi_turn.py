"""Multi-turn episodes (retry with feedback) and the countdown calculator tool env."""

from __future__ import annotations

import json
import os

import pytest

import reasongym as rg
from envs.countdown.solver import solve
from reasongym.testing import check_env, check_verifier
from tests.conftest import run_in_process, teach_completion


def _answer(text: str) -> str:
    return f" working </think>\n<answer>{text}</answer>"


def test_single_turn_envs_are_unchanged():
    env = rg.make("countdown-3to4")
    obs, info = env.reset(seed=1)
    _, reward, terminated, truncated, info = env.step(_answer("1+1"))
    assert (terminated, truncated, info["turn"]) == (True, False, 1) and info["feedback"] == ""


def test_retry_with_feedback_decays_the_reward():
    env = rg.make("countdown-3to4", max_turns=3, turn_decay=0.8)
    obs, info = env.reset(seed=1)
    task = info["task"]
    nums, target = task.question["nums"], task.question["target"]
    obs, reward, terminated, truncated, info = env.step(_answer(f"{nums[0]} + {nums[0]}"))
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert f"uses {nums[0]} twice" in info["feedback"] and info["feedback"] in obs[-2]["content"]
    assert obs[-1] == {"role": "assistant", "content": env.template.prefill}  # the next answer continues a pre-fill
    value = sum(nums)
    obs, reward, terminated, truncated, info = env.step(_answer(" + ".join(map(str, nums))))
    if value != target:
        assert f"evaluates to {value}, not {target}" in info["feedback"]
    obs, reward, terminated, truncated, info = env.step(env.reference_completion(task))
    assert terminated and not truncated and reward == pytest.approx(0.8**2) and info["success_turn"] == 3
    with pytest.raises(Exception, match="reset"):
        env.step("more")


def test_the_last_turn_truncates_and_feedback_never_names_the_gold():
    env = rg.make("gsm8k", source="sample", max_turns=2)
    obs, info = env.reset(seed=0)
    gold = str(info["task"].answer)
    _, _, terminated, truncated, info = env.step("no answer at all")
    assert not terminated and not truncated and info["feedback"].startswith("No final answer found")
    _, reward, terminated, truncated, info = env.step(_answer("123456789"))
    assert truncated and not terminated and info["feedback"] == "That is not correct. Try again."
    assert gold not in info["feedback"] and info["episode_reward"] == reward


@pytest.mark.parametrize("env_id", ["countdown-3to4", "gsm8k", "math-500", "countdown-3to4-tool"])
def test_check_env_covers_multi_turn(env_id):
    kwargs = {} if env_id.startswith("countdown") else {"source": "sample"}
    check_env(rg.make(env_id, **kwargs, **({} if env_id.endswith("tool") else {"max_turns": 3})), n_tasks=5)
    with pytest.raises(ValueError, match="max_turns"):
        rg.make(env_id, **kwargs, max_turns=0)


def test_feedback_leak_check_catches_a_leaky_env():
    from envs.gsm8k.env import GSM8KEnv

    class Leaky(GSM8KEnv):
        def feedback(self, score, task):
            return f"close! the answer is {task.answer}"

    class Arithmetic(GSM8KEnv):
        def feedback(self, score, task):
            value = int(str(task.answer))
            return f"hint: try {value - 3} + 3"

    for cls in (Leaky, Arithmetic):
        report = check_verifier(cls(source="sample", max_turns=2), examples=15, raise_on_failure=False, probes=False)
        leak = [c for c in report.checks if c.name == "feedback_no_leak"]
        assert leak and not leak[0].passed, cls.__name__
    clean = check_verifier(rg.make("countdown-3to4", max_turns=2), examples=30, raise_on_failure=False, probes=False)
    assert all(c.passed for c in clean.checks)


def test_calculator_tool_env():
    env = rg.make("countdown-3to4-tool", tool_budget=3)
    obs, info = env.reset(seed=0)
    assert "calculate tool (at most 3 calls)" in obs[-1]["content"]
    call = '<tool_call>{"name": "calculate", "arguments": {"expression": "%s"}}</tool_call>'
    obs, reward, terminated, truncated, info = env.step(call % "(12 + 4) * 3")
    assert obs[-1] == {"role": "tool", "name": "calculate", "content": "48"} and not terminated
    obs, *_ = env.step(call % "9**9**9**9" + "<tool_call>not json</tool_call>")  # errors come back as messages
    assert obs[-2]["content"].startswith("error: '**'") and obs[-1]["content"].startswith("error: a tool call")
    _, reward, terminated, truncated, info = env.step(call % "1+1")
    assert terminated and reward == 0.0 and "tool budget exceeded" in info["score"].detail
    obs, info = env.reset(seed=0)
    _, reward, terminated, _, info = env.step(env.reference_completion(info["task"]))
    assert terminated and reward == 1.0


def test_episode_tools_for_trl():
    from reasongym.adapters.trl import CalculatorEpisodeTool, RetryEpisodeTool, episode_reward_func, episode_tools

    env = rg.make("countdown-3", max_turns=2)
    task = env.tasks(n=1)[0]
    tool = episode_tools(env)()
    assert isinstance(tool, RetryEpisodeTool)
    assert "2 attempts" in tool.reset(task=task.to_json())
    assert "1 attempt left" in tool.submit_answer("1.5*10")
    assert tool.submit_answer(solve(task.question["nums"], task.question["target"])) == "Correct."
    assert tool.submit_answer("again") == "The episode is over: no more attempts."
    metrics = {}
    rewards = episode_reward_func(2)(["p"], [[{"role": "assistant", "content": "done"}]], environments=[tool],
                                     log_metric=metrics.__setitem__)
    assert rewards == [0.5] and metrics["episodes/success_by_turn_1"] == 0 and metrics["episodes/success_by_turn_2"] == 1

    tool_env = rg.make("countdown-3to4-tool", tool_budget=1)
    calc = episode_tools(tool_env)()
    assert isinstance(calc, CalculatorEpisodeTool)
    task = tool_env.tasks(n=1)[0]
    calc.reset(task=task.to_json())
    assert calc.calculate("6 / 4") == "3/2" and "budget exceeded" in calc.calculate("1+1")
    assert calc._result(tool_env.reference_completion(task))["reward"] == 0.0  # over budget: unrewarded


def test_evaluate_reports_success_by_turn():
    from trainers.evaluate import evaluate
    from trainers.rollout.generation import Sampling

    env = rg.make("countdown-3", max_turns=3)
    tasks = env.tasks(n=4, seed=0)

    class SecondTry:
        """A policy that answers wrongly first, then (having read the feedback) with the solver's equation."""
        tokenizer = None

        def generate(self, prompts, n, sampling):
            out = []
            for prompt in prompts:
                task = next(t for t in tasks if str(t.question["nums"]) in str(prompt))
                tries = str(prompt).count("Try again.")
                out.append([_answer("1.5*10") if tries == 0 else _answer(solve(task.question["nums"], task.question["target"]))])
            return out

    from transformers import AutoTokenizer  # noqa: F401 - the text path needs no tokenizer: chats are rendered below

    class Chat:
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize=False, continue_final_message=False, add_generation_prompt=False):
            return json.dumps(messages)

    report = evaluate(env, SecondTry(), tasks, samples=1, sampling=Sampling(temperature=0.0), tokenizer=Chat())
    assert report.success_by_turn == {"pass@turn-1": 0.0, "pass@turn-2": 1.0, "pass@turn-3": 1.0}
    assert report.accuracy == 1.0 and report.mean_reward == pytest.approx(0.5)


@pytest.mark.slow
@pytest.mark.parametrize("env_id,env_kwargs", [("countdown-3", {"max_turns": 3}), ("countdown-3to4-tool", {"counts": [3]})])
def test_grpo_trains_multi_turn_and_tool_envs_through_the_environment_factory(env_id, env_kwargs, tiny_model, tmp_path):
    import trl
    from transformers import AutoTokenizer

    from reasongym.adapters.trl import episode_prompt, episode_tools

    template = os.path.join(os.path.dirname(trl.__file__), "chat_templates", "qwen2_5.jinja")
    env = rg.make(env_id, **env_kwargs)
    task = env.tasks("train", n=8, seed=0)[0]  # the first task the run's dataset holds
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    with open(template) as f:
        tokenizer.chat_template = f.read()
    tool = episode_tools(env)()
    methods = [getattr(tool, name) for name in ("submit_answer", "calculate") if hasattr(tool, name)]
    messages = episode_prompt(env, task)
    messages[-1]["content"] += tool.reset(task=task.to_json()) or ""  # what TRL's loop does with reset()'s text
    prompt = tokenizer.apply_chat_template(messages, tools=methods, add_generation_prompt=True, tokenize=False)
    name, args = (("submit_answer", {"answer": "1.5*10"}) if "submit_answer" in dir(tool)
                  else ("calculate", {"expression": "12 * 4"}))
    call = "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>" + tokenizer.eos_token
    policy = teach_completion(tiny_model, tokenizer, prompt, call, str(tmp_path / "policy"))
    # without a tool-calling template the pre-flight stops before any model loads, and names the fix
    plain = run_in_process(["trainers.grpo", "--env", env_id, "--env-kwargs", json.dumps(env_kwargs), "--model", tiny_model,
                        "--output-dir", str(tmp_path / "x")], tmp_path)
    assert plain.returncode == 2 and "--chat-template" in plain.stdout
    out = tmp_path / "run"
    proc = run_in_process(["trainers.grpo", "--env", env_id, "--env-kwargs", json.dumps(env_kwargs), "--model", policy,
                       "--config", "none", "--chat-template", template, "--output-dir", str(out), "--max_steps", "1",
                       "--per_device_train_batch_size", "4", "--num_generations", "4", "--max_completion_length", "96",
                       "--temperature", "0.5", "--use_cpu", "true", "--bf16", "false", "--train_size", "1",
                       "--shuffle_dataset", "false"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    step = next(r for r in rows if "reward" in r)
    assert step["tools/call_frequency"] > 0 and "episodes/turns" in step and "episodes/success_by_turn_1" in step


def test_rejection_sampling_keeps_whole_successful_conversations(tiny_model):
    """A second-turn success: the conversation up to the right answer is the prompt, the right answer the completion."""
    from transformers import AutoTokenizer

    from dataclasses import replace

    from trainers.common.options import RejectionSamplingOptions
    from trainers.rejection_sampling import sample_round

    env = rg.make("countdown-3", max_turns=2)
    tasks = env.tasks(n=3, seed=0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)

    class SecondTry:  # a scripted policy: wrong first, then the solver's equation
        def __init__(self):
            self.tokenizer = tokenizer

        def generate(self, prompts, n, sampling):
            return [[_answer("1.5*10") if "Try again." not in p else
                     _answer(solve(*next((t.question["nums"], t.question["target"]) for t in tasks
                                         if str(t.question["nums"]) in p)))] for p in prompts]

    options = RejectionSamplingOptions(env=env.env_id, samples=2, temperature=1.0, max_completion_length=8,
                                       max_per_prompt=2)
    rows, correct = sample_round(env, SecondTry(), tasks, options, seed=0, with_oracle=False)
    assert correct == 6 and len(rows) == 3  # two identical episodes per task: one row each
    for row, task in zip(rows, tasks):
        # the whole conversation is kept: the wrong try and the feedback are the context of the right answer ...
        assert row["prompt"].endswith("<think>") and "1.5*10" in row["prompt"]
        assert "decimal numbers are not allowed" in row["prompt"] and str(task.question["nums"]) in row["prompt"]
        # ... and SFT trains on the right answer alone, never on the wrong try
        assert "1.5*10" not in row["completion"] and "Try again" not in row["completion"]
        assert env.score(row["completion"], task).correct and row["turn"] == 2

    class HalfFirstTry(SecondTry):  # of each task's two episodes, the first is right at once, the second on retry
        def generate(self, prompts, n, sampling):
            solved = super().generate(prompts, n, sampling)
            return [[_answer(solve(*next((t.question["nums"], t.question["target"]) for t in tasks
                                         if str(t.question["nums"]) in p)))] if i % 2 == 0 and "Try again." not in p
                    else answer for i, (p, answer) in enumerate(zip(prompts, solved))]

    rows, correct = sample_round(env, HalfFirstTry(), tasks, replace(options, max_per_prompt=1), seed=0, with_oracle=False)
    assert correct == 6 and [row["turn"] for row in rows] == [2, 2, 2]  # the rarer second-turn fix wins the one slot


def test_default_policy_warm_start_teaches_second_tries(tiny_model):
    """For multi-turn envs the embedded policy's SFT data holds second tries: a near miss (the solver's equation
    with one operator swapped) and the env's feedback in the prompt, this task's reference answer as the completion."""
    from dataclasses import replace

    from transformers import AutoTokenizer

    from trainers.policies.default_policy import PRESETS, RETRY_SHARE, policy_key, retry_rows

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    env = rg.make("countdown-3")
    tasks = env.tasks("train", n=6, seed=0)
    rows = retry_rows("countdown-3", {}, tasks, tokenizer)
    assert 5 <= len(rows) <= 6
    for row in rows:
        task = next(t for t in tasks if f"Using the numbers {t.question['nums']}" in row["prompt"])
        assert "Not correct: the equation evaluates to" in row["prompt"] and row["prompt"].endswith("<think>")
        assert env.score(row["completion"], task).correct
        assert env.near_miss(task) in row["prompt"] and row["completion"] not in row["prompt"]
    # multi-turn settings share one policy, which differs from the single-turn one
    warm = PRESETS["ci"]
    assert policy_key("countdown-3", {}, replace(warm, retry_share=RETRY_SHARE)) != policy_key("countdown-3", {}, warm)


def test_countdown_near_miss_is_a_wrong_answer_with_the_right_numbers():
    env = rg.make("countdown-3to4")
    for task in env.tasks("train", n=300, seed=4):
        miss = env.near_miss(task)
        score = env.score(miss, task)
        assert score.outcome is rg.Outcome.WRONG and "must use each" not in (score.detail or ""), (task, miss, score)
    assert rg.make("gsm8k", source="sample").near_miss(rg.Task(id="x", question="q", answer=1)) is None  # the default: none


def test_default_policy_reads_a_chat_template_without_a_prefill_as_text():
    """A custom env whose chat template has no pre-fill (the docs' multi-turn example, the higher-lower
    benchmark): render_prompt keeps its prompt as messages for TRL, but the warm start's SFT rows and
    phrase finding need text, so building its default policy once failed."""
    from trainers.policies.default_policy import prompt_phrases, prompt_text
    from trainers.policies.tiny import CHATML_TEMPLATE, build_tokenizer

    class NoPrefill(rg.Env):
        templates = {"chat": rg.PromptTemplate("chat", "chat", user="Game {game}: guess a number from 1 to 8.")}
        default_template = "chat"

        def _task_at(self, split, index, seed):
            return rg.Task(id=f"np:{split}:{index}", question={"game": index}, answer=1 + index % 8)

        def verify(self, text, task):
            return self.make_score({"correct": 0.0}, rg.Outcome.WRONG)

    env = NoPrefill()
    tasks = env.tasks("train", n=3)
    tokenizer = build_tokenizer(["Game 1: guess a number from 1 to 8."] * 20, vocab_size=300)
    tokenizer.chat_template = CHATML_TEMPLATE
    text = prompt_text(env, tasks[1], tokenizer)
    assert isinstance(text, str) and "Game 1: guess a number from 1 to 8." in text
    assert text.endswith("<|im_start|>assistant\n")  # a generation prompt: the policy answers next
    assert any("guess a number from" in phrase for phrase in prompt_phrases(env, tasks, tokenizer))


def test_one_multi_turn_test_for_every_trainer_plugin_episode_classes_included():
    """A plugin env with its own episode class (and max_turns 1) is multi-turn to every trainer: evaluate and
    rejection sampling play episodes, GRPO uses TRL's tool loop, PPO refuses it; only an env with a tool budget
    gets the calculator tool."""
    from reasongym.adapters.trl import CalculatorEpisodeTool, RetryEpisodeTool, episode_tools
    from reasongym.episode import Episode

    class OwnEpisode(Episode):
        pass

    base = rg.make("countdown-3")

    class PluginEnv(type(base)):
        episode_class = OwnEpisode

    plugin = PluginEnv()
    assert not base.multi_turn and plugin.multi_turn and plugin.max_turns == 1
    assert isinstance(episode_tools(plugin)(), RetryEpisodeTool)
    tool_env = rg.make("countdown-3to4-tool")
    assert tool_env.multi_turn and isinstance(episode_tools(tool_env)(), CalculatorEpisodeTool)
    assert base.tool_budget is None and tool_env.tool_budget == 4

"""`check_env`: the API contract every reasongym env must keep, in the spirit of
Gymnasium's env checker (determinism after reset, step shape, reward range),
plus what matters for verifiable tasks (JSON round trip, oracle earns full reward).
"""

from __future__ import annotations

import json
import math

from reasongym.env import Env
from reasongym.types import Outcome, Score, Task


class EnvCheckError(AssertionError):
    """An env broke its contract; the message says which part."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise EnvCheckError(message)


def check_env(env: Env, n_tasks: int = 20, seed: int = 0) -> None:
    """Raise EnvCheckError on the first broken rule; return None when all hold."""
    _require(isinstance(env, Env), f"{type(env).__name__} is not a reasongym.Env")
    low, high = env.reward_range
    _require(math.isfinite(low) and math.isfinite(high) and low < high, f"bad reward_range {env.reward_range}")

    obs_a, info_a = env.reset(seed=seed)
    obs_b, info_b = env.reset(seed=seed)
    _require(obs_a == obs_b, "reset(seed=s) twice gave different prompts")
    _require(info_a["task"] == info_b["task"], "reset(seed=s) twice gave different tasks")
    _require(isinstance(info_a["task"], Task), "info['task'] must be a reasongym.Task")
    _require(env.observation_space.contains(obs_a), "the prompt is not inside observation_space")

    result = env.step("this is not an answer")
    _require(isinstance(result, tuple) and len(result) == 5, "step() must return a 5-tuple")
    obs, reward, terminated, truncated, info = result
    _require(isinstance(reward, float), f"reward must be a float, got {type(reward).__name__}")
    _require(low <= reward <= high, f"reward {reward} outside reward_range {env.reward_range}")
    _require(isinstance(info.get("score"), Score), "info['score'] must be a reasongym.Score")
    if env.max_turns == 1:
        _require(terminated is True and truncated is False, "a single-turn env terminates after one step")
    else:
        _check_episode(env, seed)

    for split in env.splits:
        tasks = env.tasks(split=split, n=n_tasks, seed=seed)
        again = env.tasks(split=split, n=n_tasks, seed=seed)
        _require(tasks == again, f"tasks(split={split!r}, seed={seed}) is not deterministic")
        _require(len({t.id for t in tasks}) == len(tasks), f"duplicate task ids in split {split!r}")
        for task in tasks:
            _check_task(env, task)
    if len(env.splits) > 1:
        ids = [{t.id for t in env.tasks(split=s, n=n_tasks * 5, seed=seed)} for s in env.splits]
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                _require(not (a & b), f"splits share task ids: {sorted(a & b)[:3]}")


def _check_episode(env: Env, seed: int) -> None:
    """Multi-turn: wrong answers get feedback and go on, the last turn truncates, a correct answer terminates
    with the decayed reward, and the same answers replay to the same episode."""
    def play(actions: list[str]) -> list[tuple]:
        obs, info = env.reset(seed=seed)
        steps = []
        for action in actions:
            obs, reward, terminated, truncated, info = env.step(action)
            steps.append((json.dumps(obs, sort_keys=True), reward, terminated, truncated, info.get("feedback")))
            if terminated or truncated:
                break
        return steps

    wrong = ["this is not an answer", "</think>\n<answer>?</answer>"] * env.max_turns
    first = play(wrong)
    _require(first == play(wrong), "the same answers gave a different episode (multi-turn determinism)")
    _require(len(first) == env.max_turns, f"{len(first)} turns before the end, max_turns is {env.max_turns}")
    for obs, reward, terminated, truncated, feedback in first[:-1]:
        _require(not terminated and not truncated and reward == 0.0, "a wrong answer before the last turn must go on")
        _require(isinstance(feedback, str) and feedback and feedback in obs, "feedback must join the observation")
    _require(first[-1][3] is True and first[-1][2] is False, "the last allowed turn must truncate the episode")
    _require(all(a[0] != b[0] for a, b in zip(first, first[1:])), "the observation must grow turn by turn")
    obs, info = env.reset(seed=seed)
    reference = env.reference_completion(info["task"])
    if reference is None:
        return
    env.step(wrong[0])
    obs, reward, terminated, truncated, info = env.step(reference)
    expected = env.full_reward * env.turn_decay
    _require(terminated and not truncated and abs(reward - expected) < 1e-9 and info.get("success_turn") == 2,
             f"a correct second answer must terminate with reward {expected} (decayed), got {reward}")


def _check_task(env: Env, task: Task) -> None:
    round_trip = Task.from_json(task.to_json())
    _require(round_trip == task, f"task {task.id} does not survive a JSON round trip")
    json.dumps(env.prompt(task))
    _require(env.prompt(task) == env.prompt(round_trip), f"prompt of {task.id} changes after a round trip")
    reference = env.reference_completion(task)
    if reference is None:
        return
    score = env.score(reference, task)
    again = env.score(reference, task)
    _require(score == again, f"scoring {task.id} twice gave different results")
    _require(
        score.outcome is Outcome.CORRECT and score.reward == env.full_reward,
        f"reference completion of {task.id} scored {score.reward} ({score.outcome.value}: {score.detail}), "
        f"expected full reward {env.full_reward}",
    )

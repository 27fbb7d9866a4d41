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
    _require(terminated is True and truncated is False, "a single-turn env terminates after one step")
    _require(isinstance(info.get("score"), Score), "info['score'] must be a reasongym.Score")

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

"""reasongym envs through verifiers' own loader and scoring (verifiers v1). Needs the `verifiers` extra, which
pins an older openai than vLLM's: CI runs this file in its own virtualenv with REASONGYM_REQUIRE_VERIFIERS=1,
so there a missing verifiers fails instead of skipping."""

from __future__ import annotations

import asyncio
import importlib.util
import os

import pytest

import reasongym as rg
from reasongym.types import Task

if importlib.util.find_spec("verifiers") is None:
    if os.environ.get("REASONGYM_REQUIRE_VERIFIERS", "") not in ("", "0"):
        raise RuntimeError("verifiers is not installed: pip install -e '.[verifiers]' (its own virtualenv)")
    pytest.skip("verifiers is not installed: pip install -e '.[verifiers]'", allow_module_level=True)

import verifiers.v1 as vf  # noqa: E402
from verifiers.v1.trace import AgentInfo, Trace, TraceTask  # noqa: E402
from verifiers.v1.utils.loaders import load_taskset, taskset_config_type  # noqa: E402


def _taskset(**config):
    return load_taskset(taskset_config_type("reasongym-verifiers")(**config))


def _scored(task, reply: str) -> Trace:
    trace = Trace(task=TraceTask(type=type(task).__name__, data=task.data), agent=AgentInfo(config=vf.AgentConfig()))
    trace.root_reply = reply  # what a harness records as the agent's final answer
    asyncio.run(task.score(trace))
    return trace


def test_verifiers_loads_our_taskset_by_id_with_our_prompts():
    tasks = list(_taskset(env="countdown-3to4", n=5, split="test", seed=3))
    env = rg.make("countdown-3to4")
    ours = env.tasks("test", n=5, seed=3)
    assert [t.data.id for t in tasks] == [t.id for t in ours]
    assert [Task.from_json(t.data.task) for t in tasks] == ours  # the task round-trips exactly
    user = [m for m in env.prompt(ours[0]) if m["role"] == "user"][-1]["content"]
    assert tasks[0].data.prompt[-1].content == user  # the assistant pre-fill is left to the engine
    assert len({t.key for t in tasks}) == 5


@pytest.mark.parametrize("env_id,env_kwargs", [("countdown-3to4", {}), ("gsm8k", {"source": "sample"})])
def test_rewards_are_the_envs_scores_and_hedges_get_nothing(env_id, env_kwargs):
    env = rg.make(env_id, **env_kwargs)
    for task in list(_taskset(env=env_id, env_kwargs=env_kwargs, n=3, split="test")):
        gold = env.reference_completion(Task.from_json(task.data.task))
        right = _scored(task, gold)
        assert right.rewards["reasongym"].score == pytest.approx(env.full_reward)
        assert right.metrics["reasongym/correct"] == 1.0 and right.info["reasongym_outcome"] == "correct"
        for bad in ("", "no answer here", gold + "\n<answer>0</answer>" * 3, "<answer>" + "9" * 100_000):
            trace = _scored(task, bad)
            assert trace.rewards["reasongym"].score < env.full_reward and trace.metrics["reasongym/correct"] == 0.0

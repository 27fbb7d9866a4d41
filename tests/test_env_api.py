"""The Env contract on a test-only toy env and on every built-in env."""

from __future__ import annotations

import json

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import reasongym as rg
from reasongym import registry
from reasongym.parsing import read_layout
from reasongym.testing import EnvCheckError, check_env
from tests.conftest import make_builtin


class ParityEnv(rg.Env):
    """Toy: is the number even? Exercises every hook of the base class."""

    templates = {"chat": rg.PromptTemplate("chat", "chat", user="Is {n} even? Answer yes or no in <answer></answer>.")}
    default_template = "chat"
    reward_modes = {"default": {"format": 0.2, "correct": 0.8}}
    invariances = ("trailing_text",)

    def _task_count(self, split):
        return {"train": 50, "test": 10}[split]

    def _task_at(self, split, index, seed):
        n = index * 2 + (1 if split == "test" else 0) + 1000 * (split == "test")
        return rg.Task(id=f"parity:{split}:{n}", question={"n": n}, answer="yes" if n % 2 == 0 else "no",
                       difficulty=1)

    def verify(self, text, task):
        answer = read_layout(text).answer()
        if answer is None:
            return self.make_score({}, rg.Outcome.UNPARSEABLE)
        ok = answer.strip().lower() == task.answer
        return self.make_score({"format": 1.0, "correct": float(ok)},
                               rg.Outcome.CORRECT if ok else rg.Outcome.WRONG, parsed=answer.strip())

    def reference_completion(self, task):
        return f"<answer>{task.answer}</answer>"


@pytest.fixture()
def parity():
    rg.register("test-parity", ParityEnv, description="toy parity env")
    yield rg.make("test-parity")
    registry.deregister("test-parity")


def test_toy_env_full_api(parity):
    obs, info = parity.reset(seed=7)
    assert isinstance(obs, list) and obs[0]["role"] == "user"
    task = info["task"]
    assert parity.prompt(task) == obs
    obs2, reward, terminated, truncated, info2 = parity.step(parity.reference_completion(task))
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info2["score"].outcome is rg.Outcome.CORRECT
    assert parity.score("<answer>maybe</answer>", task).reward == pytest.approx(0.2)
    assert parity.reward_range == (0.0, 1.0)
    assert len(parity.tasks("test", n=None)) == 10
    assert parity.tasks("train", n=5, seed=1) == parity.tasks("train", n=5, seed=1)
    assert parity.tasks("train", n=5, seed=None) == [parity._task_at("train", i, 0) for i in range(5)]
    scores = parity.score_batch(["<answer>yes</answer>", "<answer>no</answer>", "junk"],
                                parity.tasks("train", n=3, seed=None))
    assert [s.outcome.value for s in scores] == ["correct", "wrong", "unparseable"]
    check_env(parity)


def test_step_before_reset_fails(parity):
    with pytest.raises(gymnasium.error.ResetNeeded):
        parity.step("x")


def test_reset_options_pick_split_index_and_task(parity):
    _, info = parity.reset(options={"split": "test", "index": 3})
    assert info["task"].id == "parity:test:1007"
    task = parity.tasks("train", n=1)[0]
    _, info = parity.reset(options={"task": task.to_dict()})
    assert info["task"] == task
    with pytest.raises(ValueError, match="no split"):
        parity.reset(options={"split": "validation"})


def test_score_never_raises_on_non_text(parity):
    task = parity.tasks(n=1)[0]
    assert parity.score(None, task).outcome is rg.Outcome.UNPARSEABLE  # type: ignore[arg-type]

    class Broken(ParityEnv):
        def verify(self, text, task):
            raise RuntimeError("verifier bug")

    score = Broken().score("<answer>yes</answer>", task)
    assert score.outcome is rg.Outcome.ERROR and "verifier bug" in score.detail


def test_checker_catches_a_wrong_reference(parity):
    class BadOracle(ParityEnv):
        def reference_completion(self, task):
            return "<answer>definitely</answer>"

    with pytest.raises(EnvCheckError, match="expected full reward"):
        check_env(BadOracle())


def test_task_and_score_json_round_trip():
    task = rg.Task(id="t1", question={"nums": [1, 2]}, answer=3, difficulty=2, metadata={"src": "x"})
    assert rg.Task.from_json(task.to_json()) == task
    score = rg.Score(0.5, {"a": 1.0}, rg.Outcome.WRONG, parsed="3", detail="d")
    assert rg.Score.from_dict(json.loads(json.dumps(score.to_dict()))) == score


BUILTIN_IDS = [s.id for s in rg.list_envs() if s.entry_point_name.startswith("envs.") and not s.family]


@pytest.mark.parametrize("env_id", BUILTIN_IDS)
def test_builtin_envs_pass_both_checkers(env_id):
    env = make_builtin(env_id)
    check_env(env)
    gym_check_env(env, skip_render_check=True)


def _family_sample() -> list[str]:
    """The first id of every family (reasoning-gym, mmlu, bbh), every 10th reasoning-gym id, and codeio (whose
    generator raises on some items): Gymnasium's checker on all 190 family ids takes over 15 minutes on a
    2-core box, most of it in a few slow generators."""
    family = [s for s in rg.list_envs() if s.family]
    first = {s.family: s.id for s in reversed(family)}
    rg_ids = [s.id for s in family if s.id.startswith("reasoning-gym/")]
    return sorted(set(first.values()) | set(rg_ids[::10]) | {"reasoning-gym/codeio"})


@pytest.mark.slow
@pytest.mark.parametrize("env_id", _family_sample())
def test_family_envs_pass_gymnasiums_checker(env_id):
    """reset(seed=...) and step() work on family members too (reasoning-gym's draw once failed for every seed)."""
    env = make_builtin(env_id)
    gym_check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=7)
    assert obs and info["task"].id


@pytest.mark.parametrize("env_id", BUILTIN_IDS)
def test_same_seed_same_tasks_prompts_scores(env_id):
    a, b = make_builtin(env_id), make_builtin(env_id)
    assert a.reset(seed=11) == b.reset(seed=11)
    ta, tb = a.tasks("test", n=5, seed=3), b.tasks("test", n=5, seed=3)
    assert ta == tb and [a.prompt(t) for t in ta] == [b.prompt(t) for t in tb]
    refs = [a.reference_completion(t) or "" for t in ta]
    assert a.score_batch(refs, ta) == b.score_batch(refs, tb)


def test_tasks_from_a_start_position_are_that_slice_of_the_list(tmp_path):
    procedural = rg.make("countdown-3to4")
    assert [t.id for t in procedural.tasks("train", n=5, seed=2, start=5)] == \
        [t.id for t in procedural.tasks("train", n=10, seed=2)][5:]
    rows = tmp_path / "test.jsonl"
    rows.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "answer": f"#### {i + 1}"}) + "\n"
                            for i in range(8)))
    stored = rg.make("gsm8k", data_files={"test": str(rows)})
    for seed in (None, 1):
        whole = [t.id for t in stored.tasks("test", n=None, seed=seed)]
        assert [t.id for t in stored.tasks("test", n=3, seed=seed, start=2)] == whole[2:5]
        assert [t.id for t in stored.tasks("test", n=None, seed=seed, start=6)] == whole[6:]

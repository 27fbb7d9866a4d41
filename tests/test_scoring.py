"""The scoring engine: order, hard timeouts, dead workers, no leaked processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import reasongym as rg
from reasongym.scoring import ScoringEngine


class SlowEnv(rg.Env):
    """Answers are 'ok', 'hang' (never returns), 'die' (worker exits) or anything else (wrong)."""

    templates = {"t": rg.PromptTemplate("t", "text", text="{q}")}
    default_template = "t"
    cheap_verifier = False
    score_timeout = 0.5

    def _task_count(self, split):
        return 10

    def _task_at(self, split, index, seed):
        return rg.Task(id=f"{split}{index}", question={"q": index}, answer="ok")

    def verify(self, text, task):
        if text == "hang":
            while True:
                time.sleep(0.01)
        if text == "die":
            os._exit(3)
        ok = text == "ok"
        return self.make_score({"correct": float(ok)}, rg.Outcome.CORRECT if ok else rg.Outcome.WRONG, parsed=text)


def test_pool_keeps_order_kills_hung_workers_and_survives_crashes():
    env = SlowEnv()
    tasks = env.tasks(n=10, seed=None)
    completions = ["ok", "hang", "no", "ok", "die", "ok", "hang", "ok", "no", "ok"]
    with ScoringEngine(workers=2, timeout=0.5) as engine:
        start = time.perf_counter()
        result = engine.score(env, completions, tasks)
        elapsed = time.perf_counter() - start
        outcomes = [s.outcome.value for s in result.scores]
        assert outcomes == ["correct", "timeout", "wrong", "correct", "error", "correct", "timeout", "correct",
                            "wrong", "correct"]
        assert [s.parsed for s in result.scores if s.outcome.value != "timeout" and s.outcome.value != "error"] == \
            ["ok", "no", "ok", "ok", "ok", "no", "ok"]
        assert result.counts == {"correct": 5, "timeout": 2, "wrong": 2, "error": 1}
        assert elapsed < 0.5 * 2 + 3  # two timeouts, run side by side with the rest
        assert result.latency_max >= 0.5
        again = engine.score(env, ["ok", "no"], tasks[:2])  # replacements work
        assert [s.reward for s in again.scores] == [1.0, 0.0]
        workers = [w.process for w in engine._pool.workers]
    time.sleep(0.1)
    assert workers and not [p for p in workers if p.is_alive()]  # closed: no worker left behind
    assert not [p for p in mp.active_children() if p in workers]


def test_in_process_engine_for_cheap_verifiers():
    env = rg.make("countdown-3")
    tasks = env.tasks(n=20)
    refs = [env.reference_completion(t) for t in tasks]
    result = ScoringEngine(workers=0).score(env, refs, tasks)
    assert all(s.reward == 1.0 for s in result.scores) and result.counts == {"correct": 20}
    assert env.score_batch(refs, tasks) == result.scores


def test_pool_and_in_process_agree():
    env = rg.make("countdown-3to4")
    tasks = env.tasks(n=30)
    completions = [env.reference_completion(t) if i % 3 else "<answer>1+2</answer>" for i, t in enumerate(tasks)]
    with ScoringEngine(workers=2) as pool:
        assert pool.score(env, completions, tasks).scores == ScoringEngine(0).score(env, completions, tasks).scores


def test_ctrl_c_during_a_batch_leaves_no_worker(monkeypatch):
    import reasongym.scoring as scoring

    env = SlowEnv()
    tasks = env.tasks(n=4, seed=None)
    engine = ScoringEngine(workers=2, timeout=5.0)
    engine.score(env, ["ok"], tasks[:1])  # start the pool
    workers = [w.process for w in engine._pool.workers]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scoring, "wait", interrupted)
    import pytest

    with pytest.raises(KeyboardInterrupt):
        engine.score(env, ["hang", "hang"], tasks[:2])
    time.sleep(0.1)
    assert not [p for p in workers if p.is_alive()]
    engine.close()

"""`check_verifier(env)`: the verifier contract, run with hypothesis.

Contract (each a named check in the report):
  bounded      adversarial completions are scored within the timeout, without error
               (run through a hard-timeout worker first, so a hanging verifier is
               reported instead of hanging the check)
  gold         gold answers in every accepted surface form earn full reward
  range        rewards lie inside env.reward_range
  deterministic  the same completion scores the same twice
  no_error     arbitrary text never makes the verifier raise (Outcome.ERROR)
  near_miss    perturbed answers never earn full reward
  invariance   declared format invariances hold (trailing text, think whitespace)
plus the env's reward-hacking probes (reasongym.testing.probes).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from hypothesis import HealthCheck, Phase, given, seed as hseed, settings
from hypothesis import strategies as st

from reasongym.testing import strategies as rst
from reasongym.testing.probes import ProbeResult, run_probes

if TYPE_CHECKING:
    from reasongym.env import Env


class VerifierCheckFailed(AssertionError):
    """Raised by check_verifier (in pytest use) when the contract is broken."""


@dataclass
class CheckResult:
    name: str
    passed: bool
    examples: int
    failure: str = ""
    example: str = ""


@dataclass
class VerifierReport:
    env_id: str
    checks: list[CheckResult] = field(default_factory=list)
    probes: list[ProbeResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks) and all(p.passed for p in self.probes)

    @property
    def failures(self) -> list[str]:
        out = [f"{c.name}: {c.failure} | minimal example: {c.example!r}" for c in self.checks if not c.passed]
        out += [f"probe {p.name}: max reward {p.max_reward:g} of {p.full_reward:g} ({p.detail}) on {p.worst!r}"
                for p in self.probes if not p.passed]
        return out

    def raise_for_failures(self) -> None:
        if not self.ok:
            raise VerifierCheckFailed(f"{self.env_id} breaks the verifier contract:\n  " + "\n  ".join(self.failures))


def _short(text: Any, limit: int = 300) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _property(name: str, examples: int, seed: int, strategy: st.SearchStrategy, check: Callable[[Any], str | None]
              ) -> CheckResult:
    """Run `check` (returns a failure message or None) over `strategy`; keep hypothesis' minimal example."""
    state: dict[str, Any] = {"count": 0, "failure": "", "example": None}

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate, Phase.shrink),
              print_blob=False)
    @given(strategy)
    def prop(value: Any) -> None:
        state["count"] += 1
        message = check(value)
        if message:
            state["failure"], state["example"] = message, value
            raise AssertionError(message)

    try:
        prop()
    except AssertionError:
        example = state["example"]
        if isinstance(example, tuple):  # (task, completion): the completion is the interesting part
            example = example[-1]
        return CheckResult(name, False, state["count"], state["failure"], _short(example))
    except Exception as exc:  # hypothesis could not generate: report, do not crash the whole check
        return CheckResult(name, False, state["count"], f"{type(exc).__name__}: {_short(exc)}")
    return CheckResult(name, True, state["count"])


def _bounded(env: "Env", tasks: list, seed: int, timeout: float) -> CheckResult:
    from reasongym.scoring import ScoringEngine

    rng = random.Random(seed)
    completions = list(rst.ADVERSARIAL)
    pairs = [(c, rng.choice(tasks)) for c in completions]
    with ScoringEngine(workers=1, timeout=timeout) as engine:
        batch = engine.score(env, [c for c, _ in pairs], [t for _, t in pairs])
    for (completion, _), score in zip(pairs, batch.scores):
        if score.outcome.value in ("timeout", "error"):
            return CheckResult("bounded", False, len(pairs), f"{score.outcome.value}: {score.detail}", _short(completion))
    return CheckResult("bounded", True, len(pairs))


def check_verifier(env: "Env", examples: int = 100, seed: int = 0, n_tasks: int = 50,
                   raise_on_failure: bool | None = None, probes: bool = True) -> VerifierReport:
    """Run the contract and the probes on `env`; return the report.

    `raise_on_failure=None` raises VerifierCheckFailed when running under pytest, so
    `def test_my_env(): check_verifier(make("my-task"))` is a complete test.
    """
    started = time.perf_counter()
    report = VerifierReport(env.env_id)
    split = "train" if "train" in env.splits else env.splits[0]
    tasks = env.tasks(split=split, n=n_tasks, seed=seed)
    timeout = env.score_timeout
    low, high = env.reward_range

    bounded = _bounded(env, tasks, seed, timeout)
    report.checks.append(bounded)
    task_st = st.sampled_from(tasks)

    if bounded.passed:
        def in_range_and_no_error(pair: tuple) -> str | None:
            task, completion = pair
            t0 = time.perf_counter()
            score = env.score(completion, task)
            spent = time.perf_counter() - t0
            if score.outcome.value == "error":
                return f"verifier raised: {score.detail}"
            if not low <= score.reward <= high:
                return f"reward {score.reward} outside {env.reward_range}"
            if score != env.score(completion, task):
                return "scored differently the second time"
            if spent > timeout:
                return f"took {spent:.2f}s (timeout {timeout}s)"
            return None

        report.checks.append(_property("range_deterministic_no_error", examples, seed,
                                       st.tuples(task_st, rst.completions(env)), in_range_and_no_error))

    with_reference = [t for t in tasks if env.reference_completion(t) is not None]
    if with_reference:
        gold_st = st.sampled_from(with_reference).flatmap(lambda t: st.tuples(st.just(t), rst.gold_completions(env, t)))

        def gold_full(pair: tuple) -> str | None:
            task, completion = pair
            score = env.score(completion, task)
            if score.reward != env.full_reward:
                return f"gold scored {score.reward} (full {env.full_reward}): {score.outcome.value} {score.detail}"
            return None

        report.checks.append(_property("gold", examples, seed, gold_st, gold_full))

        wrong_st = st.sampled_from(with_reference).flatmap(lambda t: st.tuples(st.just(t), rst.wrong_completions(env, t)))

        def near_miss(pair: tuple) -> str | None:
            task, completion = pair
            score = env.score(completion, task)
            if score.reward >= env.full_reward:
                return f"near miss earned full reward {score.reward} (gold answer {task.answer})"
            return None

        report.checks.append(_property("near_miss", examples, seed, wrong_st, near_miss))

        if "trailing_text" in env.invariances:
            suffix_st = st.text(max_size=60).filter(lambda s: "<" not in s and ">" not in s)
            trail_st = st.tuples(st.sampled_from(with_reference), suffix_st)

            def trailing(pair: tuple) -> str | None:
                task, suffix = pair
                base = env.reference_completion(task) or ""
                a, b = env.score(base, task), env.score(base + suffix, task)
                if a.reward != b.reward:
                    return f"text after </answer> changed the reward {a.reward} -> {b.reward}"
                return None

            report.checks.append(_property("invariance_trailing_text", examples, seed, trail_st, trailing))

    if probes and env.probes:
        report.probes = run_probes(env, tasks[:5], timeout=timeout)
    report.seconds = time.perf_counter() - started
    if raise_on_failure is None:
        raise_on_failure = "PYTEST_CURRENT_TEST" in os.environ
    if raise_on_failure:
        report.raise_for_failures()
    return report

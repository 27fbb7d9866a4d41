"""`check_verifier(env)`: the verifier contract, run with hypothesis.

Contract (each a named check in the report):
  bounded                       adversarial completions are scored within the timeout, without
                                error (in a hard-timeout worker, so a hanging verifier is
                                reported instead of hanging the check; a verifier that stops
                                itself with Outcome.TIMEOUT is bounded)
  range_deterministic_no_error  on arbitrary text: rewards inside env.reward_range, the same
                                score twice (unless one is a timeout: the outcome that may vary
                                with the machine's speed), never Outcome.ERROR, within the timeout
  gold                          gold answers in every accepted surface form earn full reward
  near_miss                     perturbed answers never earn full reward
  feedback_no_leak              the multi-turn feedback after a wrong answer never reveals the gold
                                (its strings, or an arithmetic expression equal to it)
  invariance_<name>             each of the env's declared `invariances` holds:
                                trailing_text (text after </answer>), think_whitespace
plus the reward-hacking probes (reasongym.testing.probes): the generic ones on every env (hedges,
enumerations, two answer blocks, code injection, ...) less the env's reasoned opt-outs, and its own.
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
from reasongym.types import Outcome
from reasongym.testing.probes import ProbeResult, applicable, run_probes

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
    opt_outs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def warnings(self) -> list[str]:
        if not self.probes:
            return ["no reward-hacking probe applied: give the env a reference_completion so the generic "
                    "probes can build hedges and enumerations of its gold answer"]
        return []

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
    from reasongym.scoring import WORKER_KILLED, ScoringEngine

    rng = random.Random(seed)
    completions = list(rst.ADVERSARIAL)
    pairs = [(c, rng.choice(tasks)) for c in completions]
    with ScoringEngine(workers=1, timeout=timeout) as engine:
        batch = engine.score(env, [c for c, _ in pairs], [t for _, t in pairs])
    for (completion, _), score in zip(pairs, batch.scores):
        # a verifier that stops itself in time (Outcome.TIMEOUT from its own bound) is bounded; killed is not
        if score.outcome is Outcome.ERROR or WORKER_KILLED in score.detail:
            return CheckResult("bounded", False, len(pairs), f"{score.outcome.value}: {score.detail}", _short(completion))
    return CheckResult("bounded", True, len(pairs))


def _check_scores_in_range(env: "Env", tasks: list, examples: int, seed: int) -> CheckResult:
    """Arbitrary text: the reward stays in range, scoring is deterministic, nothing raises, time is bounded."""
    low, high = env.reward_range

    def check(pair: tuple) -> str | None:
        task, completion = pair
        t0 = time.perf_counter()
        score = env.score(completion, task)
        spent = time.perf_counter() - t0
        if score.outcome is Outcome.ERROR:
            return f"verifier raised: {score.detail}"
        if not low <= score.reward <= high:
            return f"reward {score.reward} outside {env.reward_range}"
        again = env.score(completion, task)
        if score != again and "timeout" not in (score.outcome.value, again.outcome.value):
            return "scored differently the second time"  # a timeout is the one outcome that may vary by machine
        if spent > env.score_timeout:
            return f"took {spent:.2f}s (timeout {env.score_timeout}s)"
        return None

    return _property("range_deterministic_no_error", examples, seed,
                     st.tuples(st.sampled_from(tasks), rst.completions(env)), check)


def _check_gold(env: "Env", tasks: list, examples: int, seed: int) -> CheckResult:
    """The gold answer in every accepted surface form earns full reward."""
    pairs = st.sampled_from(tasks).flatmap(lambda t: st.tuples(st.just(t), rst.gold_completions(env, t)))

    def check(pair: tuple) -> str | None:
        task, completion = pair
        score = env.score(completion, task)
        if score.reward != env.full_reward:
            return f"gold scored {score.reward} (full {env.full_reward}): {score.outcome.value} {score.detail}"
        return None

    return _property("gold", examples, seed, pairs, check)


def _check_near_miss(env: "Env", tasks: list, examples: int, seed: int) -> CheckResult:
    """Perturbed answers never earn full reward."""
    pairs = st.sampled_from(tasks).flatmap(lambda t: st.tuples(st.just(t), rst.wrong_completions(env, t)))

    def check(pair: tuple) -> str | None:
        task, completion = pair
        score = env.score(completion, task)
        if score.reward >= env.full_reward:
            return f"near miss earned full reward {score.reward} (gold answer {task.answer})"
        return None

    return _property("near_miss", examples, seed, pairs, check)


def _check_trailing_text(env: "Env", tasks: list, examples: int, seed: int) -> CheckResult:
    """Text after `</answer>` does not change the reward."""
    suffixes = st.text(max_size=60).filter(lambda s: "<" not in s and ">" not in s)

    def check(pair: tuple) -> str | None:
        task, suffix = pair
        base = env.reference_completion(task) or ""
        a, b = env.score(base, task), env.score(base + suffix, task)
        if a.reward != b.reward:
            return f"text after </answer> changed the reward {a.reward} -> {b.reward}"
        return None

    return _property("invariance_trailing_text", examples, seed, st.tuples(st.sampled_from(tasks), suffixes), check)


def _check_think_whitespace(env: "Env", tasks: list, examples: int, seed: int) -> CheckResult:
    """Extra spaces and newlines inside the reasoning do not change the reward."""
    spaces = st.text(alphabet=" \n\t", min_size=1, max_size=8)

    def check(triple: tuple) -> str | None:
        task, head, tail = triple
        base = env.reference_completion(task) or ""
        body, close, rest = base.partition("</think>")
        if not close:
            return None  # no reasoning block to pad
        opened = "" if env.template.scoring_prefix else "<think>"
        inner = body[len(opened):] if body.startswith(opened) else body
        padded = f"{opened}{head}{inner}{tail}{close}{rest}"
        a, b = env.score(base, task), env.score(padded, task)
        if a.reward != b.reward:
            return f"whitespace inside <think> changed the reward {a.reward} -> {b.reward}"
        return None

    triples = st.tuples(st.sampled_from(tasks), spaces, spaces)
    return _property("invariance_think_whitespace", examples, seed, triples, check)


def _arithmetic_values(text: str) -> list:
    """Values of the arithmetic expressions (digits, + - * / and parentheses, with an operator) in `text`,
    evaluated exactly by walking Python's parse tree: no eval, bounded sizes."""
    import ast
    import re
    from fractions import Fraction

    operations = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
                  ast.Div: lambda a, b: a / b}

    def value(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and abs(node.value) < 10**12:
            return Fraction(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in operations:
            return operations[type(node.op)](value(node.left), value(node.right))
        raise ValueError("not arithmetic")

    out = []
    for candidate in re.findall(r"[\d(][\d\s()+\-*/]*[+\-*/][\d\s()+\-*/]*[\d)]", text)[:20]:
        try:
            out.append(value(ast.parse(candidate[:200], mode="eval").body))
        except (ValueError, SyntaxError, ZeroDivisionError, RecursionError):
            continue
    return out


def _check_feedback(env: "Env", tasks: list, examples: int, seed: int) -> CheckResult:
    """Feedback after a wrong or unparseable answer never reveals the gold: no secret string of the task
    that the prompt does not already show, and no arithmetic expression that evaluates to a numeric gold."""
    from fractions import Fraction

    from reasongym.templates import plain_text

    pairs = st.sampled_from(tasks).flatmap(lambda t: st.tuples(st.just(t), st.one_of(
        rst.wrong_completions(env, t), rst.completions(env))))

    def check(pair: tuple) -> str | None:
        task, completion = pair
        score = env.score(completion, task)
        if score.correct:
            return None
        text = env.feedback(score, task)
        prompt = plain_text(env.prompt(task))
        for secret in env.secrets(task):
            if secret and len(secret.strip()) > 0 and secret.strip() not in prompt and secret.strip() in text:
                return f"feedback {text!r} reveals {secret!r}"
        try:
            gold = Fraction(str(task.answer).replace(",", ""))
        except (ValueError, ZeroDivisionError):
            return None
        if str(task.answer) not in prompt and gold in _arithmetic_values(text):
            return f"feedback {text!r} holds an expression equal to the gold {task.answer}"
        return None

    return _property("feedback_no_leak", examples, seed, pairs, check)


INVARIANCE_CHECKS: dict[str, Callable[["Env", list, int, int], CheckResult]] = {
    "trailing_text": _check_trailing_text,
    "think_whitespace": _check_think_whitespace,
}


def check_verifier(env: "Env", examples: int = 100, seed: int = 0, n_tasks: int = 50,
                   raise_on_failure: bool | None = None, probes: bool = True) -> VerifierReport:
    """Run the verifier contract (the module docstring's checks) and the env's probes; return the report.

    The checks run in order, each a small `_check_*` function: `bounded` first, in a
    hard-timeout worker (when it fails, the in-process checks of arbitrary text are skipped:
    they could hang);
    then range/determinism on arbitrary text, gold forms, near misses, the env's declared
    `invariances`, and its reward-hacking `probes`. `raise_on_failure=None` raises
    VerifierCheckFailed under pytest, so `def test_my_env(): check_verifier(make("my-task"))`
    is a complete test.
    """
    started = time.perf_counter()
    report = VerifierReport(env.env_id)
    tasks = env.tasks(n=n_tasks, seed=seed)
    report.checks.append(_bounded(env, tasks, seed, env.score_timeout))
    if report.checks[-1].passed:
        report.checks.append(_check_scores_in_range(env, tasks, examples, seed))
    with_reference = [t for t in tasks if env.reference_completion(t) is not None]
    if with_reference:
        report.checks.append(_check_gold(env, with_reference, examples, seed))
        report.checks.append(_check_near_miss(env, with_reference, examples, seed))
        if report.checks[0].passed:  # it scores arbitrary text in-process: only once `bounded` showed that is safe
            report.checks.append(_check_feedback(env, with_reference, examples, seed))
        for name in env.invariances:
            if name not in INVARIANCE_CHECKS:
                raise ValueError(f"{env.env_id} declares invariance {name!r}; known: {sorted(INVARIANCE_CHECKS)}")
            report.checks.append(INVARIANCE_CHECKS[name](env, with_reference, examples, seed))
    if probes:
        report.opt_outs = dict(getattr(env, "probe_opt_outs", {}) or {})
        report.probes = run_probes(env, tasks[:5], names=applicable(env), timeout=env.score_timeout)
    report.seconds = time.perf_counter() - started
    if raise_on_failure is None:
        raise_on_failure = "PYTEST_CURRENT_TEST" in os.environ
    if raise_on_failure:
        report.raise_for_failures()
    return report

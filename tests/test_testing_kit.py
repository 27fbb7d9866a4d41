"""The testing kit must catch planted verifier bugs, and pass every built-in env."""

from __future__ import annotations

import re
import time

import pytest

import reasongym as rg
from envs.countdown.env import CountdownEnv
from reasongym.parsing import read_layout
from reasongym.testing import VerifierCheckFailed, check_verifier
from reasongym.testing.probes import GENERIC, PROBES, applicable
from tests.conftest import make_builtin


class EvalCountdown(CountdownEnv):
    """TinyZero's scorer: regex whitelist + eval (the decimal-glue and `**` holes)."""

    def verify(self, text, task):
        found = re.findall(r"<answer>(.*?)</answer>", text)
        if not found:
            return self.make_score({}, rg.Outcome.UNPARSEABLE)
        eq = found[-1].strip()
        nums = sorted(int(n) for n in re.findall(r"\d+", eq))
        if nums != sorted(task.question["nums"]) or not re.match(r"^[\d+\-*/().\s]+$", eq):
            return self.make_score({"format": 1.0}, rg.Outcome.WRONG)
        if "**" in eq:  # keep the test fast: a real eval of a tower would hang
            return self.make_score({"format": 1.0, "correct": 1.0}, rg.Outcome.CORRECT)
        try:
            ok = abs(eval(eq, {"__builtins__": None}, {}) - task.question["target"]) < 1e-5  # noqa: S307 - planted bug
        except Exception:
            ok = False
        return self.make_score({"format": 1.0, "correct": float(ok)}, rg.Outcome.CORRECT if ok else rg.Outcome.WRONG)


class SingleLineCountdown(CountdownEnv):
    """X-R1's bug: the format rule only matches single-line completions."""

    def verify(self, text, task):
        score = super().verify(text, task)
        if "\n" in text.split("</think>")[0]:
            return self.make_score({"correct": score.components["correct"]}, score.outcome)
        return score


class TrailingTextCountdown(CountdownEnv):
    """Scores text after </answer>: a stray digit after the answer loses the format reward."""

    def verify(self, text, task):
        score = super().verify(text, task)
        tail = text[text.rfind("</answer>"):]
        if any(ch.isdigit() or ch.isspace() for ch in tail[9:]):
            return self.make_score({"correct": score.components["correct"]}, score.outcome)
        return score


class HangingCountdown(CountdownEnv):
    """Hangs on a power tower, as eval-based scorers do."""

    def verify(self, text, task):
        layout = read_layout(text)
        if "**" in (layout.answer() or ""):
            while True:
                time.sleep(0.01)
        return super().verify(text, task)


class GlueCountdown(CountdownEnv):
    """Reads '1.5' as the numbers 1 and 5 (reasoning-gym / TinyZero's number check)."""

    def verify(self, text, task):
        layout = read_layout(text)
        ans = layout.answer()
        if ans and "." in ans:
            from fractions import Fraction

            nums = sorted(int(n) for n in re.findall(r"\d+", ans))
            m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*\*\s*(\d+)\s*", ans)
            if m and nums == sorted(task.question["nums"]):
                value = Fraction(f"{m.group(1)}.{m.group(2)}") * int(m.group(3))
                if value == task.question["target"]:
                    return self.make_score({"format": 1.0, "correct": 1.0}, rg.Outcome.CORRECT)
        return super().verify(text, task)


def _broken(cls, **kwargs):
    env = cls(counts=(3, 4), **kwargs)
    env.score_timeout = 1.0
    return env


def _failed(report) -> set[str]:
    return {c.name for c in report.checks if not c.passed} | {f"probe {p.name}" for p in report.probes if not p.passed}


def test_kit_catches_eval_based_verifier():
    report = check_verifier(_broken(EvalCountdown), examples=30, raise_on_failure=False)
    assert {"probe decimal_glue", "probe power"} <= _failed(report)
    glue = next(p for p in report.probes if p.name == "decimal_glue")
    assert glue.max_reward == 1.0 and "." in glue.worst


def test_kit_catches_single_line_only_format():
    report = check_verifier(_broken(SingleLineCountdown), examples=60, raise_on_failure=False)
    gold = next(c for c in report.checks if c.name == "gold")
    assert not gold.passed and "\n" in gold.example


def test_kit_catches_scoring_of_trailing_text():
    report = check_verifier(_broken(TrailingTextCountdown), examples=60, raise_on_failure=False)
    trailing = next(c for c in report.checks if c.name == "invariance_trailing_text")
    assert not trailing.passed
    assert len(trailing.example) < 80  # hypothesis shrank it to a short suffix


def test_kit_catches_a_hanging_verifier_without_hanging():
    start = time.perf_counter()
    report = check_verifier(_broken(HangingCountdown), examples=20, raise_on_failure=False)
    assert time.perf_counter() - start < 60
    bounded = next(c for c in report.checks if c.name == "bounded")
    assert not bounded.passed and "timeout" in bounded.failure and "**" in bounded.example
    assert "probe power_tower" in _failed(report)


def test_kit_catches_decimal_glue_credit():
    report = check_verifier(_broken(GlueCountdown), examples=20, raise_on_failure=False)
    assert "probe decimal_glue" in _failed(report)
    assert "probe power" not in _failed(report)


def test_raises_in_pytest_with_minimal_examples():
    with pytest.raises(VerifierCheckFailed, match="decimal_glue"):
        check_verifier(_broken(EvalCountdown), examples=10)


def test_fixture_form(check_verifier):
    report = check_verifier(rg.make("countdown-3"), examples=20)
    assert report.ok


@pytest.mark.parametrize("env_id", [s.id for s in rg.list_envs() if s.entry_point_name.startswith("envs.") and not s.family])
def test_builtin_envs_keep_the_contract(env_id):
    # the contract's hanging programs (a power tower) each wait out a code env's time limit: 1 s here instead of
    # the default 3 s keeps each code env's check near 14 s instead of 36 s (`reasongym check --all` in CI runs
    # them at the defaults; test_code_envs tests the limits themselves)
    code_env = rg.spec(env_id).entry_point_name.startswith("envs.code.")
    env = make_builtin(env_id, **({"min_timeout": 1.0} if code_env else {}))
    report = check_verifier(env, examples=50)
    # every generic probe the env did not opt out of ran, with its own probes
    assert report.ok and {p.name for p in report.probes} == set(applicable(env))
    assert set(GENERIC) - set(env.probe_opt_outs) <= {p.name for p in report.probes}
    assert all(name in PROBES for name in env.probes)


def test_strategies_draw_tasks_and_completions_users_can_use_directly():
    from hypothesis import given, settings

    from reasongym.testing import strategies as rst

    env = make_builtin("math-500")  # a test-only split
    seen = []

    @settings(max_examples=10, deadline=None, database=None)
    @given(rst.tasks(env), rst.completions(env))
    def prop(task, completion):
        seen.append(task.id)
        assert env.score(completion[:2000], task).outcome is not rg.Outcome.ERROR

    prop()
    assert seen and all(t in {x.id for x in env.tasks("test", n=None)} for t in seen)


class _SloppyDouble(rg.Env):
    """A newcomer's env: what is twice n? `rule` picks one of three sloppy verifiers."""

    templates = {"chat": rg.PromptTemplate("chat", "chat", user="What is twice {n}? Answer in <answer></answer>.")}
    default_template = "chat"
    rule = "any_number"

    def _task_at(self, split, index, seed):
        n = 7 + index * 2 + (split == "test")
        return rg.Task(id=f"sloppy:{n}", question={"n": n}, answer=2 * n)

    def reference_completion(self, task):
        return f"<think>twice {task.question['n']}</think>\n<answer>{task.answer}</answer>"

    def verify(self, text, task):
        import re

        from reasongym.parsing import read_layout

        answer = read_layout(text).answer() or ""
        if self.rule == "any_number":
            ok = str(task.answer) in re.findall(r"-?\d+", answer)
        elif self.rule == "last_number":
            numbers = re.findall(r"-?\d+", text)
            ok = bool(numbers) and numbers[-1] == str(task.answer)
        else:  # case-insensitive substring
            ok = str(task.answer).casefold() in answer.casefold()
        return self.make_score({"correct": float(ok)}, rg.Outcome.CORRECT if ok else rg.Outcome.WRONG)


@pytest.mark.parametrize("rule", ["any_number", "last_number", "substring"])
def test_generic_probes_catch_sloppy_verifiers_that_declare_no_probe(rule):
    env = type(f"Sloppy_{rule}", (_SloppyDouble,), {"rule": rule})()
    assert env.probes == () and env.probe_opt_outs == {}
    report = check_verifier(env, examples=20, raise_on_failure=False)
    failed = {p.name for p in report.probes if not p.passed}
    assert not report.ok and "hedge" in failed, report.failures
    hedge = next(p for p in report.probes if p.name == "hedge")
    assert hedge.max_reward == env.full_reward and " or " in hedge.worst or ", " in hedge.worst or "/" in hedge.worst


def test_an_opt_out_needs_a_generic_name_and_a_reason_and_shows_in_the_report():
    from reasongym.testing.report import render
    from rich.console import Console

    env = type("ListAnswer", (_SloppyDouble,), {"rule": "exact", "probe_opt_outs": {"enumeration": "a list answer"}})()
    report = check_verifier(env, examples=10, raise_on_failure=False)
    assert "enumeration" not in {p.name for p in report.probes} and report.opt_outs == {"enumeration": "a list answer"}
    console = Console(record=True, width=200)
    render(report, console)
    text = console.export_text()
    assert "opted out" in text and "a list answer" in text
    for bad in ({"enumeration": " "}, {"no_such_probe": "why"}):
        with pytest.raises(ValueError, match="reason|not a generic probe"):
            check_verifier(type("Bad", (_SloppyDouble,), {"probe_opt_outs": bad})(), examples=5, raise_on_failure=False)


def test_an_env_without_reference_completions_gets_a_warning():
    env = type("NoReference", (_SloppyDouble,), {"reference_completion": lambda self, task: None})()
    report = check_verifier(env, examples=5, raise_on_failure=False)
    assert {p.name for p in report.probes} == {"code_injection"}  # the one probe that needs no gold
    env2 = type("NoReferenceNoCode", (_SloppyDouble,), {"reference_completion": lambda self, task: None,
                                                         "probe_opt_outs": {"code_injection": "pure arithmetic"}})()
    report2 = check_verifier(env2, examples=5, raise_on_failure=False)
    assert not report2.probes and "no reward-hacking probe applied" in report2.warnings[0]


def test_check_envs_side_by_side_gives_the_same_reports_in_order():
    """`reasongym check --all` checks envs in worker processes (--jobs): same tables, same order, same verdict."""
    import re

    from rich.console import Console

    from reasongym.testing.report import check_envs

    def printed(jobs: int) -> tuple[int, str]:
        console = Console(record=True, width=120, emoji=False)
        code = check_envs(["gsm8k", "countdown-3", "mmlu"], console, examples=10, jobs=jobs)
        return code, re.sub(r"\(\d+\.\d+s\)", "(time)", console.export_text())

    one_by_one, side_by_side = printed(1), printed(3)
    assert one_by_one == side_by_side and one_by_one[0] == 0
    text = one_by_one[1]
    assert text.index("contract: gsm8k") < text.index("contract: countdown-3") < text.index("contract: mmlu")
    assert "using source='sample'" in text  # a worker's fallback warning reaches the user
    assert "all 3 env(s) keep the verifier contract" in text

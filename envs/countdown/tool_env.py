"""countdown-3to4-tool: Countdown with a `calculate(expression)` tool, a budget of calls, then an answer.

A turn of the policy is one assistant message. A message with tool calls (Qwen/Hermes format,
`<tool_call>{"name": "calculate", "arguments": {"expression": "12*4"}}</tool_call>`) gets one
tool message per call back — the value, or the error, never an exception — and the episode goes
on. A message without tool calls is the answer, scored by Countdown's verifier. A call past the
budget ends the episode at once, unrewarded, with the outcome stated in the score's detail.
The calculator is Countdown's exact evaluator (no eval): +, -, *, / and parentheses on integers.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from envs.countdown import arith
from envs.countdown.env import MINI_R1_SYSTEM, CountdownEnv, ops_text
from reasongym.episode import Episode, Turn
from reasongym.templates import Prompt, PromptTemplate
from reasongym.types import Outcome, Task

TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
MAX_CALLS_PER_MESSAGE = 8


def _instruction(q: dict[str, Any]) -> str:
    return (f"Using the numbers {q['nums']}, create an equation that equals {q['target']}. You can use basic "
            f"arithmetic operations ({ops_text(q)}) and each number exactly once. You may check arithmetic with the "
            f"calculate tool (at most {q['tool_budget']} calls). Show your work in <think> </think> tags and give "
            "the final equation in <answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>.")


TOOL_TEMPLATES = {"tool": PromptTemplate("tool", "chat", system=MINI_R1_SYSTEM, user=_instruction)}


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression exactly (integers, + - * / and parentheses); an error as text."""
    try:
        result = arith.evaluate_text(str(expression).strip())
    except arith.ExprError as exc:
        return f"error: {exc}"
    if result.divides_by_zero:
        return "error: division by zero"
    value = result.value
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def parse_tool_calls(text: str) -> list[tuple[str, dict[str, Any]] | str]:
    """(name, arguments) for each `<tool_call>` block; a block that is not valid JSON becomes an error string."""
    calls: list[tuple[str, dict[str, Any]] | str] = []
    for block in TOOL_CALL.findall(text)[: MAX_CALLS_PER_MESSAGE + 1]:
        try:
            call = json.loads(block)
            calls.append((str(call["name"]), dict(call.get("arguments") or {})))
        except (ValueError, KeyError, TypeError, AttributeError):
            calls.append(f"error: a tool call must be JSON like {{\"name\": \"calculate\", \"arguments\": "
                         f"{{\"expression\": \"1 + 2\"}}}}, got {block[:80]!r}")
    return calls


def run_tool(call: tuple[str, dict[str, Any]] | str) -> str:
    if isinstance(call, str):
        return call
    name, arguments = call
    if name != "calculate":
        return f"error: unknown tool {name!r}; the only tool is calculate(expression)"
    if set(arguments) != {"expression"}:
        return "error: calculate takes one argument, expression"
    return calculate(arguments["expression"])


class ToolEpisode(Episode):
    """An episode where a turn is either tool calls (answered by tool messages) or the final answer."""

    def __init__(self, env: Any, task: Task) -> None:
        super().__init__(env, task)
        self.calls_used = 0
        self.tool_turns: list[tuple[str, list[tuple[str, str]]]] = []  # (assistant text, [(call, result)])

    @property
    def terminated(self) -> bool:
        return bool(self.turns)

    @property
    def truncated(self) -> bool:
        return False

    def observation(self) -> Prompt:
        messages = [dict(m) for m in self.env.prompt(self.task)]
        for text, results in self.tool_turns:
            messages.append({"role": "assistant", "content": text})
            messages += [{"role": "tool", "name": "calculate", "content": result} for _, result in results]
        return messages

    def step(self, action: str) -> Turn | None:
        """A final answer -> its Turn (episode over). Tool calls -> None (tool messages added), unless the
        budget runs out: then a Turn with an unparseable score that says so."""
        if self.done:
            raise RuntimeError("the episode is over: reset() before step()")
        calls = parse_tool_calls(action) if isinstance(action, str) else []
        if not calls:
            score = self.env.score(action, self.task)
            turn = Turn(action, score, "", score.reward)
            self.turns.append(turn)
            return turn
        budget = self.env.tool_budget
        if self.calls_used + len(calls) > budget:
            score = self.env.make_score({}, Outcome.UNPARSEABLE,
                                        detail=f"tool budget exceeded: {self.calls_used + len(calls)} calls, budget {budget}")
            turn = Turn(action, score, "", 0.0)
            self.turns.append(turn)
            return turn
        self.calls_used += len(calls)
        self.tool_turns.append((action, [(str(c), run_tool(c)) for c in calls]))
        return None


class CountdownToolEnv(CountdownEnv):
    templates: ClassVar[dict[str, PromptTemplate]] = TOOL_TEMPLATES
    default_template = "tool"
    episode_class = ToolEpisode
    invariances = ("trailing_text",)

    calculate = staticmethod(calculate)  # the tool TRL's loop calls through CalculatorEpisodeTool

    def __init__(self, tool_budget: int = 4, **kwargs: Any) -> None:
        if not isinstance(tool_budget, int) or isinstance(tool_budget, bool) or not 0 <= tool_budget <= 64:
            raise ValueError(f"tool_budget must be an int in 0..64, got {tool_budget!r}")
        self.tool_budget = tool_budget
        super().__init__(**kwargs)

    def _task_at(self, split: str, index: int, seed: int) -> Task:
        task = super()._task_at(split, index, seed)
        return Task(id=task.id, question={**task.question, "tool_budget": self.tool_budget}, answer=task.answer,
                    difficulty=task.difficulty, metadata=task.metadata)

    def reference_completion(self, task: Task) -> str | None:
        plain = super().reference_completion(task)
        return None if plain is None else "<think>" + plain

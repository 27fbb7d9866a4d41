"""The Countdown env family: reach a target with each given number exactly once.

Reward modes: component weights (reward = sum of weight * component) plus the rule that
decides the `format` component (FORMAT_RULES):
  default   format 0.1 + correct 0.9; format rule "layout": one think block, then one answer
            block (multi-line reasoning fine)
  tinyzero  format 0.1 + correct 0.9 (0 / 0.1 / 1 as TinyZero scores); format rule
            "answer_tag": any extracted answer
  mini-r1   format 1 + correct 1, range 0..2; format rule "mini_r1_regex": Mini-R1's exact regex
All modes share one safe verifier (envs.countdown.arith): the anchors' holes
(`**`, `//`, decimal gluing, unary minus, eval hangs) are closed in every mode.
See docs/envs/countdown.md.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from envs.countdown import arith
from envs.countdown.generator import CountdownParams, generate
from envs.countdown.solver import ALL_OPS, solve
from envs.datasets_io import DataFiles
from reasongym.env import Env
from reasongym.parsing import read_layout
from reasongym.templates import PromptTemplate
from reasongym.types import Outcome, Score, Task

MINI_R1_SYSTEM = (
    "You are a helpful assistant. You first thinks about the reasoning process in the mind "
    "and then provides the user with the answer."
)
PREFILL = "Let me solve this step by step.\n<think>"
TINYZERO_BASE_HEAD = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the answer.\n"
    "User: "
)


def ops_text(question: dict[str, Any]) -> str:
    return ", ".join(question.get("operators", ALL_OPS))


def _tinyzero_instruction(q: dict[str, Any]) -> str:
    return (
        f"Using the numbers {q['nums']}, create an equation that equals {q['target']}. "
        f"You can use basic arithmetic operations ({ops_text(q)}) and each number can only be used once. "
        "Show your work in <think> </think> tags. And return the final answer in <answer> </answer> tags, "
        "for example <answer> (1 + 2) / 3 </answer>."
    )


def _mini_r1_instruction(q: dict[str, Any]) -> str:
    return (
        f"Using the numbers {q['nums']}, create an equation that equals {q['target']}. "
        f"You can use basic arithmetic operations ({ops_text(q)}) one or multiple times but each number "
        "can only be used once. Show your work in <think> </think> tags. And return the final equation in "
        "<answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>. Think step by step inside <think> tags."
    )


TEMPLATES = {
    "chat": PromptTemplate("chat", "chat", system=MINI_R1_SYSTEM, user=_mini_r1_instruction, prefill=PREFILL),
    "tinyzero-instruct": PromptTemplate(
        "tinyzero-instruct", "chat", system=MINI_R1_SYSTEM, user=lambda q: " " + _tinyzero_instruction(q), prefill=PREFILL
    ),
    "base": PromptTemplate(
        "base", "text", text=lambda q: TINYZERO_BASE_HEAD + _tinyzero_instruction(q) + "\nAssistant: ", prefill=PREFILL
    ),
}

# Mini-R1's format rule, kept verbatim for the mini-r1 mode (it is linear: no nested ambiguity).
MINI_R1_FORMAT = re.compile(r"^<think>([^<]*(?:<(?!/?think>)[^<]*)*)<\/think>\n<answer>([\s\S]*?)<\/answer>$", re.DOTALL)


FORMAT_RULES = {"default": "layout", "tinyzero": "answer_tag", "mini-r1": "mini_r1_regex"}


class CountdownEnv(Env):
    templates: ClassVar[dict[str, PromptTemplate]] = TEMPLATES
    default_template = "chat"
    reward_modes: ClassVar[dict[str, dict[str, float]]] = {
        "default": {"format": 0.1, "correct": 0.9},
        "tinyzero": {"format": 0.1, "correct": 0.9},
        "mini-r1": {"format": 1.0, "correct": 1.0},
    }
    cheap_verifier = True
    probes = (
        "decimal_glue", "reuse_number", "omit_number", "power", "floor_division", "power_tower", "huge_literal",
        "unary_minus", "several_answers", "empty_answer", "answer_in_think", "hedge", "echo_question",
        "judge_injection", "very_long", "python_injection",
    )

    def __init__(
        self,
        counts: tuple[int, ...] | list[int] = (3, 4),
        num_range: tuple[int, int] | list[int] = (1, 99),
        target_range: tuple[int, int] | list[int] = (10, 100),
        operators: str = ALL_OPS,
        source: str | None = None,
        data_files: DataFiles | None = None,
        answer: str = "last",
        test_size: int = 1024,
        **kwargs: Any,
    ) -> None:
        """`source`: "procedural" (generated tasks; the default without data_files) or "hub"
        (TinyZero's rows: Jiayi-Pan/Countdown-Tasks-3to4, or the `data_files` given; the default
        with data_files). With rows, `counts`, `num_range` and `target_range` select the rows
        that fit them (countdown-3 on TinyZero's data: its 3-number rows)."""
        super().__init__(**kwargs)
        if answer not in ("first", "last"):
            raise ValueError(f"answer must be 'first' or 'last', got {answer!r}")
        source = source or ("hub" if data_files is not None else "procedural")
        if source not in ("procedural", "hub"):
            raise ValueError(f"source must be 'procedural' or 'hub', got {source!r}")
        if source == "procedural" and data_files is not None:
            raise ValueError("data_files holds rows to train on, but source='procedural' generates tasks: "
                             "drop source (or pass source='hub') to use the files")
        if not isinstance(test_size, int) or isinstance(test_size, bool) or test_size < 1:
            raise ValueError(f"test_size must be a positive int, got {test_size!r}")
        self.params = CountdownParams(tuple(counts), tuple(num_range), tuple(target_range), operators)
        self.answer_policy = answer
        self.format_rule = FORMAT_RULES[self.reward_mode]
        self.source = source
        self._rows: dict[str, list[dict[str, Any]]] | None = None
        if source == "hub":
            from envs.countdown.hub import load_rows

            self._rows = load_rows(data_files, test_size,
                                   keep=lambda r: self.params.fits([int(n) for n in r["nums"]], int(r["target"])))
            if not all(self._rows.values()):
                raise ValueError(f"no data row fits counts={self.params.counts}, num_range={self.params.num_range}, "
                                 f"target_range={self.params.target_range} in every split: "
                                 f"{ {k: len(v) for k, v in self._rows.items()} } rows left")
        if self.reward_mode == "mini-r1":
            self.invariances = ("think_whitespace",)  # its format regex pins the end: no trailing text

    # ----- tasks ----------------------------------------------------------------
    def _task_count(self, split: str) -> int | None:
        return None if self._rows is None else len(self._rows[split])

    def _task_at(self, split: str, index: int, seed: int) -> Task:
        if self._rows is not None:
            row = self._rows[split][index]
            nums, target = [int(n) for n in row["nums"]], int(row["target"])
        else:
            nums, target = generate(self.params, split, index, seed)
        return Task(
            id=f"countdown:{','.join(map(str, nums))}={target}",
            question={"nums": nums, "target": target, "operators": self.params.operators},
            answer=target,
            difficulty=len(nums),
        )

    def reference_completion(self, task: Task) -> str | None:
        nums, target = task.question["nums"], task.question["target"]
        expr = solve(nums, target, task.question.get("operators", ALL_OPS))
        if expr is None:
            return None
        return f" I need to combine {nums} to reach {target}.\nTrying {expr} = {target}.\n</think>\n<answer>{expr}</answer>"

    def search_completion(self, task: Task, wrong_tries: int, seed: int = 0, reference: str | None = None) -> str | None:
        """The reference completion with `wrong_tries` wrong attempts before the right one, each stated
        with its value ("Trying 12 + 45 - 7 = 50. Not 52."; values below 1000), so a policy warm-started on it has seen a
        search that checks and moves on. Attempts use every number once, left to right, with integer
        values only. Deterministic in (task, wrong_tries, seed). `reference`: this task's reference
        completion when the caller has it (saves solving the task again)."""
        import random
        from fractions import Fraction

        reference = reference or self.reference_completion(task)
        if reference is None:
            return None
        nums, target = task.question["nums"], task.question["target"]
        operators = task.question.get("operators", ALL_OPS)
        rng = random.Random(f"{task.id}:{wrong_tries}:{seed}")
        tries: list[str] = []
        for _ in range(wrong_tries * 20):
            if len(tries) == wrong_tries:
                break
            order = rng.sample(nums, len(nums))
            text, value = str(order[0]), Fraction(order[0])
            for n in order[1:]:
                op = rng.choice(operators)
                if op in "*/" and ("+" in text or "-" in text):
                    text = f"({text})"
                if op == "/" and (n == 0 or (value / n).denominator != 1):
                    break
                value = {"+": value + n, "-": value - n, "*": value * n, "/": value / n}[op]
                text = f"{text} {op} {n}"
            else:
                line = f"Trying {text} = {value}. Not {target}."
                if value != target and abs(value) < 1000 and line not in tries:
                    tries.append(line)
        statement, rest = reference.split("\n", 1)  # the task restated, then the right try and the answer
        return "\n".join([statement, *tries, rest])

    def near_miss(self, task: Task) -> str | None:
        """The solver's equation with one operator swapped: well formed, every number used once, wrong."""
        nums, target = task.question["nums"], task.question["target"]
        operators = task.question.get("operators", ALL_OPS)
        expr = solve(nums, target, operators)
        for i, char in enumerate(expr or ""):
            if char not in "+-*/" or expr[i - 1 : i] != " ":  # binary operators are spaced
                continue
            for op in operators:
                wrong = expr[:i] + op + expr[i + 1 :]
                text = f" I need to combine {nums} to reach {target}.\nTrying {wrong} = {target}.\n</think>\n<answer>{wrong}</answer>"
                if op != char and self.score(text, task).outcome is Outcome.WRONG:
                    return text
        return None

    def gold_answer_forms(self, task: Task) -> list[str]:
        expr = solve(task.question["nums"], task.question["target"], task.question.get("operators", ALL_OPS))
        if expr is None:
            return []
        forms = [expr.replace(" ", ""), f"{expr} = {task.question['target']}", f"\n{expr}\n"]
        if "*" in expr:
            forms += [expr.replace("*", "x"), expr.replace("*", "×")]
        if "/" in expr:
            forms.append(expr.replace("/", "÷"))
        return forms

    def feedback(self, score: Score, task: Task) -> str:
        """Which numbers are misused, or what the equation evaluates to: never a solution."""
        if score.outcome is Outcome.UNPARSEABLE:
            return f"No valid equation found ({score.detail}). Give one equation in <answer> </answer> tags. Try again."
        problems = number_problems(str(score.parsed or ""), list(task.question["nums"]))
        if problems:
            return f"Not correct: the equation {'; '.join(problems)}. Try again."
        return f"Not correct: the equation {score.detail}. Try again."

    def secrets(self, task: Task) -> list[str]:
        """The target is in the prompt; what feedback must not give away is a solution."""
        return self.gold_answer_forms(task)

    # ----- verifier ---------------------------------------------------------------
    def verify(self, text: str, task: Task) -> Score:
        layout = read_layout(text)
        answer = layout.answer(self.answer_policy)
        if self.format_rule == "mini_r1_regex":
            fmt = 1.0 if MINI_R1_FORMAT.search(text) else 0.0
        elif self.format_rule == "answer_tag":
            fmt = 1.0 if answer is not None else 0.0
        else:
            fmt = 1.0 if layout.well_formed else 0.0
        if answer is None:
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, detail=layout.problem or "no <answer> block")
        outcome, parsed, detail = check_expression(answer, task.question)
        correct = 1.0 if outcome is Outcome.CORRECT else 0.0
        return self.make_score({"format": fmt, "correct": correct}, outcome, parsed=parsed, detail=detail)


def number_problems(expression: str, nums: list[int]) -> list[str]:
    """How the numbers in `expression` differ from `nums` used once each: "uses 7 twice", "leaves out 9"."""
    from collections import Counter

    used, given = Counter(int(t) for t in re.findall(r"\d+", expression)), Counter(nums)
    words = {2: "twice", 3: "three times"}
    out = []
    for n in sorted(set(used) | set(given)):
        if used[n] > given[n]:
            out.append(f"uses {n} {words.get(used[n], f'{used[n]} times')}" if given[n] else f"uses {n}, which is not given")
        elif used[n] < given[n]:
            out.append(f"leaves out {n}")
    return out


def check_expression(answer: str, question: dict[str, Any]) -> tuple[Outcome, str | None, str]:
    """Judge one answer string against the task's numbers, target and operators.

    An `expr = N` tail is tolerated when N is exactly the target (models copy the
    prompt's habit of writing the result); any other `=` use is rejected.
    """
    nums, target = list(question["nums"]), int(question["target"])
    allowed = question.get("operators", ALL_OPS)  # a string (or list) of one-character operators
    text = answer.strip()
    if text.count("=") > 1:
        return Outcome.UNPARSEABLE, None, "more than one '='"
    if "=" in text:
        text, claimed = (part.strip() for part in text.split("="))
        if claimed != str(target):
            return Outcome.WRONG, text, f"claims '= {claimed}', target is {target}"
    try:
        result = arith.evaluate_text(text, numbers=nums)
    except arith.WrongNumbers as exc:
        return Outcome.WRONG, text, str(exc)
    except arith.ExprError as exc:
        return Outcome.UNPARSEABLE, None, str(exc)
    if any(op not in allowed for op in result.operators):
        return Outcome.WRONG, text, f"operator(s) {sorted(result.operators - set(allowed))} not allowed"
    if result.divides_by_zero:
        return Outcome.WRONG, text, "division by zero"
    if not result.equals(target):
        return Outcome.WRONG, text, f"evaluates to {result.value}, not {target}"
    return Outcome.CORRECT, text, ""

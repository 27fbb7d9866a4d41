"""math-750 (X-R1's training set) and math-500 (the PRM800K MATH test subset) envs.

Prediction: the last <answer> block after </think> (or, without one, the last
\\boxed{} after </think>), parsed with math-verify; gold parsed first and passed
first to `verify`. Gold answers math-verify cannot parse are never rewarded:
the score's outcome is ERROR, which the TRL adapter turns into `None` (TRL then
leaves the sample out of the group baseline) — never 1.0 as old open-r1 did.
"""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

from envs.answers import all_boxed, last_boxed, plain_value
from envs.datasets_io import DataFiles
from envs.math import verify as mv
from reasongym.env import Env
from reasongym.parsing import read_layout
from reasongym.templates import R1_SYSTEM, PromptTemplate
from reasongym.types import Outcome, Score, Task

HERE = os.path.dirname(__file__)
TEMPLATES = {"r1": PromptTemplate("r1", "chat", system=R1_SYSTEM, user="{problem}")}
DATASETS = {
    "math-750": {"hub": "xiaodongguaAIGC/X-R1-750", "columns": ("problem", "solution"),
                 "sample": os.path.join(HERE, "sample_math750.jsonl"), "splits": ("train", "test")},
    "math-500": {"hub": "HuggingFaceH4/MATH-500", "columns": ("problem", "solution", "answer"),
                 "sample": os.path.join(HERE, "sample_math500.jsonl"), "splits": ("test",)},
}
MAX_ANSWER_CHARS = 1_000  # an answer block without a box: one math answer, not a derivation
MAX_BOXED_CHARS = 1_000  # one boxed answer; the block around it may be a long derivation
MAX_BOXES = 8
# `\$` is a dollar sign, not a math delimiter ("$\$18.90$" is one span).
MATH_SPANS = re.compile(r"(?<!\\)\$\$.*?(?<!\\)\$\$|(?<!\\)\$.*?(?<!\\)\$|\\\(.*?\\\)|\\\[.*?\\\]", re.DOTALL)
_ALTERNATIVES = re.compile(r"(?<![A-Za-z])or(?![A-Za-z])|\\lor(?![A-Za-z])|\\vee(?![A-Za-z])")


_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")


def prose(answer: str) -> bool:
    """Sentences without a marked math span: math-verify would fish a number out of them
    ("... output a score of 1.0" pays when the gold is 1)."""
    return not MATH_SPANS.search(answer) and "\\boxed{" not in answer and len(_WORD.findall(answer)) > 2


def _bare(text: str) -> str:
    """Text without math delimiters, box wrappers and whitespace, for echo comparison."""
    text = re.sub(r"\\boxed\{(.*)\}", r"\1", text)
    for mark in ("$", "\\(", "\\)", "\\[", "\\]"):
        text = text.replace(mark, "")
    return re.sub(r"\s+", "", text)


def echoes_question(answer: str, problem: str, gold: str = "") -> bool:
    """The answer is an expression copied from the problem ("What is $3^4 - 2^5$?" answered with
    $3^4 - 2^5$): math-verify evaluates it and would pay an unsolved echo. An answer written exactly
    as the gold is not an echo, even when the problem states it ("Simplify ... to $\\sqrt{53}$")."""
    compact = _bare(answer.strip())
    if len(compact) < 3 or not re.search(r"[-+*/^\\a-zA-Z]", compact):
        return False  # plain numbers may legitimately appear in the problem
    if gold and compact == _bare(plain_value(gold)) or compact == _bare(gold):
        return False
    return compact in _bare(problem)


_LABEL = re.compile(r"^\s*[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(?=\S)")
_STATED = re.compile(r"(?:\bthe\s+(?:final\s+)?answer\s+is\s*:?|\bfinal\s+answer\s*:)\s*(?P<value>.+?)\s*(?:\.(?=\s|$)|\n|$)",
                     re.IGNORECASE)


def gold_parts(gold: str) -> list[str]:
    """The comma-separated parts a gold states at the top level: `(2, 2), (6, 2)` has two,
    `\\{1,2,3\\}` three (set braces opened), `(-2, 2)` one (a single interval or point)."""
    text = plain_value(gold).strip()
    for left, right in (("\\left\\{", "\\right\\}"), ("\\{", "\\}")):
        if text.startswith(left) and text.endswith(right):
            text = text[len(left): len(text) - len(right)]
            break
    depth, parts, start = 0, [], 0
    for at, char in enumerate(text):
        depth += 1 if char in "([{" else -1 if char in ")]}" else 0
        if char == "," and depth == 0:
            parts.append(text[start:at].strip())
            start = at + 1
    return [*parts, text[start:].strip()]


def stated_answer(block: str) -> tuple[str | None, str]:
    """The value of "the answer is X" / "Final Answer: X" sentences, when the block states one (value, "");
    (None, why) when it states none or several different ones (a hedge). In "The largest $n$ is 34",
    the value is what follows the last " is "."""
    values = []
    for match in _STATED.finditer(block[-4000:]):
        value = match.group("value").strip()
        if " is " in value:
            value = value.rsplit(" is ", 1)[1].strip()
        values.append(value.rstrip(".").strip())
    distinct = list(dict.fromkeys(_bare(v) for v in values if v))
    if not distinct:
        return None, "no stated answer"
    if len(distinct) > 1:
        return None, "several different stated answers"
    return values[-1], ""


def hedged(answer: str) -> bool:
    """Several candidate answers in one answer block ("1 or $5$", "$3$, $4$", two boxes).

    math-verify extracts the highest-priority match and would pay "1 or $5$" when the
    gold is 5; a single math span (or box) with no other numbers around it is required."""
    spans = MATH_SPANS.findall(answer)
    outside = MATH_SPANS.sub(" ", answer)
    boxes = outside.count("\\boxed{") + outside.count("\\fbox{")
    marked = len(spans) + boxes
    if marked > 1:
        return True
    if marked == 1:
        residue = re.sub(r"\\(?:boxed|fbox)\{(?:[^{}]|\{[^{}]*\})*\}", " ", outside)
        return bool(re.search(r"\d", residue))
    return False


class MathEnv(Env):
    templates: ClassVar[dict[str, PromptTemplate]] = TEMPLATES
    default_template = "r1"
    reward_modes: ClassVar[dict[str, dict[str, float]]] = {"default": {"format": 0.1, "correct": 0.9},
                                                           "accuracy": {"correct": 1.0}}
    cheap_verifier = False
    score_timeout = 10.0
    probes = ("several_answers", "empty_answer", "answer_in_think", "hedge", "several_boxed", "boxed_in_think",
              "boxed_hedge", "echo_question", "judge_injection", "very_long")

    def __init__(self, dataset: str = "math-750", source: str = "hub",
                 data_files: DataFiles | None = None, **kwargs: Any) -> None:
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
        info = DATASETS[dataset]
        super().__init__(**kwargs)
        from envs.datasets_io import alternate_split, files_for_source, load_splits

        self.dataset = dataset
        data_files = files_for_source(source, data_files, {split: info["sample"] for split in info["splits"]})
        rows = load_splits(info["hub"], data_files=data_files, columns=info["columns"], splits=info["splits"])
        if source == "sample" and len(info["splits"]) == 2:  # one file: even rows train, odd rows test
            rows = alternate_split(rows["train"])
        self.use_loaded_splits(info["splits"], list(rows))
        self._rows = rows
        if self.reward_mode == "accuracy":
            self.invariances = ("trailing_text",)

    def _task_count(self, split: str) -> int | None:
        return len(self._rows[split])

    def _task_at(self, split: str, index: int, seed: int) -> Task:
        row = self._rows[split][index]
        gold = row.get("answer") or last_boxed(row["solution"]) or ""
        level = row.get("level")
        return Task(id=str(row.get("unique_id") or f"{self.dataset}:{split}:{index}"),
                    question={"problem": row["problem"]}, answer=gold,
                    difficulty=int(level) if isinstance(level, (int, float)) or str(level).isdigit() else None,
                    metadata={"solution": row["solution"], "subject": row.get("subject") or row.get("type")})

    def reference_completion(self, task: Task) -> str | None:
        if not task.answer or not mv.parse_gold(str(task.answer)):
            return None
        return f"<think>\n{task.metadata.get('solution', '')}\n</think>\n<answer>${task.answer}$</answer>"

    def gold_answer_forms(self, task: Task) -> list[str]:
        gold = str(task.answer)
        return [f"\\boxed{{{gold}}}", f"$\\boxed{{{gold}}}$", f"\\({gold}\\)", f"The final answer is ${gold}$"]

    def verify(self, text: str, task: Task) -> Score:
        layout = read_layout(text)
        fmt = 1.0 if layout.well_formed else 0.0
        answer = layout.answer("last")
        if answer is None and "</think>" in text:  # no answer block: boxes after the reasoning
            region = text[text.rfind("</think>"):]
            answer = region if ("\\boxed{" in region or "\\fbox{" in region) else None
        if answer is None or not answer.strip():
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, detail=layout.problem or "no answer")
        if "\\boxed{" in answer or "\\fbox{" in answer:
            return self._verify_boxed(answer, task, fmt)
        return self._verify_unboxed(answer, task, fmt)

    def _verify_boxed(self, answer: str, task: Task, fmt: float) -> Score:
        """A block with boxes: the boxed content is the answer, the math around it is working.

        Every box must state the same value (different boxes are a hedge), and no box may
        offer alternatives (`\\boxed{3 \\text{ or } 5}`)."""
        boxes = all_boxed(answer, limit=MAX_BOXES + 1)
        if boxes is None:
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, detail="a \\boxed{ is never closed")
        if len(boxes) > MAX_BOXES:
            return self.make_score({"format": fmt}, Outcome.WRONG, detail=f"more than {MAX_BOXES} boxed answers")
        if any(len(box) > MAX_BOXED_CHARS for box in boxes):
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, detail="boxed answer too long")
        final = boxes[-1]
        if not final.strip():
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, detail="empty \\boxed{}")
        if any(_ALTERNATIVES.search(box) for box in boxes):
            return self.make_score({"format": fmt}, Outcome.WRONG, parsed=final[:100],
                                   detail="the boxed answer offers alternatives")
        if echoes_question(final, str(task.question.get("problem", "")), str(task.answer)):
            return self.make_score({"format": fmt}, Outcome.WRONG, parsed=final[:100],
                                   detail="the answer repeats an expression from the problem")
        gold = mv.parse_gold(str(task.answer))
        if not gold:
            return self.make_score({"format": fmt}, Outcome.ERROR, detail=f"gold answer {task.answer!r} cannot be parsed")
        values = list(dict.fromkeys(plain_value(box) for box in boxes))  # distinct, in order; last is the answer
        if len(values) > 1 and len(values) == len(gold_parts(str(task.answer))) > 1:
            return self._verify_parts(values, gold, task, fmt)
        parsed = [mv.parse_prediction(f"${value}$") for value in values]
        if not parsed[-1]:
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, parsed=final[:100],
                                   detail="math-verify could not parse the boxed answer")
        if any(not other or not mv.equivalent(tuple(parsed[-1]), other) for other in parsed[:-1]):
            return self.make_score({"format": fmt}, Outcome.WRONG, parsed=final[:100],
                                   detail="several different boxed answers")
        return self._verdict(gold, parsed[-1], task, fmt)

    def _verify_parts(self, values: list[str], gold: tuple, task: Task, fmt: float) -> Score:
        """Several boxes for a gold of as many parts (`\\boxed{(2, 2)}` and `\\boxed{(6, 2)}` for `(2, 2), (6, 2)`):
        together they are one answer, read with and without `x =` labels. A box per part, no more."""
        for joined in (", ".join(_LABEL.sub("", v) for v in values), ", ".join(values)):
            pred = mv.parse_prediction(f"${joined}$")
            if pred and mv.equivalent(gold, pred):
                return self.make_score({"format": fmt, "correct": 1.0}, Outcome.CORRECT, parsed=joined[:200])
        return self.make_score({"format": fmt}, Outcome.WRONG, parsed=", ".join(values)[:100],
                               detail="the boxes together do not state the gold's parts")

    def _verify_unboxed(self, answer: str, task: Task, fmt: float) -> Score:
        """No box: the block must be one math answer (the hedge, echo and prose rules), or state it in a
        closing sentence ("Therefore, the answer is 189.", "Final Answer: The largest $n$ is 34.")."""
        stated, why = stated_answer(answer)
        if stated is None and why.startswith("several"):
            return self.make_score({"format": fmt}, Outcome.WRONG, parsed=answer[-100:], detail=why)
        if stated is not None:
            answer = stated
        if len(answer) > MAX_ANSWER_CHARS:
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE,
                                   detail="answer too long: put the final answer in \\boxed{}")
        if prose(answer):
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, parsed=answer[:100],
                                   detail="prose answer: put the final answer in $...$ or \\boxed{}")
        if echoes_question(answer, str(task.question.get("problem", "")), str(task.answer)):
            return self.make_score({"format": fmt}, Outcome.WRONG, parsed=answer[:100],
                                   detail="the answer repeats an expression from the problem")
        if hedged(answer) or _ALTERNATIVES.search(answer):
            return self.make_score({"format": fmt}, Outcome.WRONG, parsed=answer[:100],
                                   detail="several candidate answers in one answer block")
        gold = mv.parse_gold(str(task.answer))
        if not gold:
            return self.make_score({"format": fmt}, Outcome.ERROR, detail=f"gold answer {task.answer!r} cannot be parsed")
        spans = MATH_SPANS.findall(answer)
        value = _unwrap_span(spans[0]) if spans else answer
        pred = mv.parse_prediction(f"${plain_value(value)}$")
        if not pred:
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, parsed=answer[:100],
                                   detail="math-verify could not parse the answer")
        return self._verdict(gold, pred, task, fmt)

    def _verdict(self, gold: tuple, pred: list, task: Task, fmt: float) -> Score:
        correct = mv.equivalent(gold, pred)
        return self.make_score({"format": fmt, "correct": float(correct)}, Outcome.CORRECT if correct else Outcome.WRONG,
                               parsed=str(pred[-1])[:200], detail="" if correct else f"not equivalent to {task.answer}")


def _unwrap_span(span: str) -> str:
    """The math inside one `$…$`, `$$…$$`, `\\(…\\)` or `\\[…\\]` span."""
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if span.startswith(left) and span.endswith(right) and len(span) >= len(left) + len(right):
            return span[len(left) : len(span) - len(right)]
    return span

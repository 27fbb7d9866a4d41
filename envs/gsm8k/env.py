"""GSM8K env: HF `openai/gsm8k` (config `main`), local files, or a small built-in sample.

Reward modes:
  numeric (default)  format 0.1 (R1 think/answer layout) + correct 0.9; the answer is read from
                     <answer>, else \\boxed{}, else `#### N`, else (last_number=True) the last
                     number; compared as an exact number (18 == 18.0 == $18 == 18.)
  strict             correct 1: the official `#### (-?[0-9.,]+)` regex, first match, commas
                     removed, string equality with the gold (grade_school_math/dataset.py)
  flexible           correct 1: lm-eval's flexible-extract (last number-like token), `,` `$`
                     and a final `.` removed from both sides, string equality
"""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

from envs.answers import all_boxed, as_number, format_number
from envs.datasets_io import DataFiles
from reasongym.env import Env
from reasongym.parsing import THINK_CLOSE, read_layout
from reasongym.templates import R1_SYSTEM, PromptTemplate
from reasongym.types import Outcome, Score, Task

HUB_ID = "openai/gsm8k"
SAMPLE_FILE = os.path.join(os.path.dirname(__file__), "sample.jsonl")
TEMPLATES = {
    "r1": PromptTemplate("r1", "chat", system=R1_SYSTEM, user="{question}"),
    "verl": PromptTemplate("verl", "chat", user='{question} Let\'s think step by step and output the final answer after "####".'),
}
OFFICIAL = re.compile(r"#### (\-?[0-9\.\,]+)")
HASHES = re.compile(r"####\s*(.{0,200})")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
CALCULATOR = re.compile(r"<<[^<>]*>>")


def gold_of(solution: str) -> str:
    """Gold = text after the last `#### `, commas removed."""
    return solution.rsplit("####", 1)[-1].strip().replace(",", "")


def clean_solution(solution: str) -> str:
    """The worked solution without calculator annotations and without the `#### N` line."""
    body = solution.rsplit("####", 1)[0]
    return CALCULATOR.sub("", body).strip()


class GSM8KEnv(Env):
    templates: ClassVar[dict[str, PromptTemplate]] = TEMPLATES
    default_template = "r1"
    reward_modes: ClassVar[dict[str, dict[str, float]]] = {
        "numeric": {"format": 0.1, "correct": 0.9},
        "strict": {"correct": 1.0},
        "flexible": {"correct": 1.0},
    }
    default_reward_mode = "numeric"
    cheap_verifier = True
    probes = ("several_answers", "empty_answer", "answer_in_think", "hedge", "several_boxed", "boxed_in_think",
              "boxed_hedge", "echo_question", "judge_injection", "very_long")

    def __init__(self, source: str = "hub", data_files: DataFiles | None = None,
                 last_number: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from envs.datasets_io import alternate_split, files_for_source, load_splits

        data_files = files_for_source(source, data_files, {"train": SAMPLE_FILE, "test": SAMPLE_FILE})
        self.source = source
        self.last_number = last_number
        if not isinstance(last_number, bool):
            raise ValueError(f"last_number must be true or false, got {last_number!r}")
        self._rows = load_splits(HUB_ID, data_files=data_files, config=None if data_files else "main",
                                 columns=("question", "answer"))
        if source == "sample":  # one file for both splits
            self._rows = alternate_split(self._rows["train"])
        self.use_loaded_splits(("train", "test"), list(self._rows))  # an evaluation file alone is fine
        if self.reward_mode != "numeric" or self.template.name == "verl":
            self.invariances = ("trailing_text",) if self.reward_mode == "numeric" else ()

    def _task_count(self, split: str) -> int | None:
        return len(self._rows[split])

    def _task_at(self, split: str, index: int, seed: int) -> Task:
        row = self._rows[split][index]
        return Task(id=f"gsm8k:{split}:{index}", question={"question": row["question"]},
                    answer=gold_of(row["answer"]), metadata={"solution": row["answer"]})

    def reference_completion(self, task: Task) -> str | None:
        steps = clean_solution(task.metadata.get("solution", ""))
        if self.template.name == "verl" or self.reward_mode != "numeric":
            return f"{steps}\n#### {task.answer}"
        return f"<think>\n{steps}\n</think>\n<answer>{task.answer}</answer>"

    def gold_answer_forms(self, task: Task) -> list[str]:
        gold = str(task.answer)
        if self.reward_mode != "numeric":
            return []
        forms = [f"{gold}.0", f"${gold}", f"{gold}.", f"\\boxed{{{gold}}}", f"${gold}.00", f"\\${gold}"]
        value = int(gold) if gold.lstrip("-").isdigit() else None
        if value is not None and abs(value) >= 1000:
            forms.append(f"{value:,}")
        return forms

    # ----- verifier ----------------------------------------------------------------
    def verify(self, text: str, task: Task) -> Score:
        if self.reward_mode == "strict":
            return self._string_verdict(self._strict(text), str(task.answer))
        if self.reward_mode == "flexible":
            return self._flexible(text, str(task.answer))
        return self._numeric(text, task)

    def _numeric(self, text: str, task: Task) -> Score:
        layout = read_layout(text)
        fmt = 1.0 if layout.well_formed else 0.0
        candidate, source = self._candidate(text, layout)
        if candidate is None:
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, detail=layout.problem or "no answer found")
        boxes = all_boxed(candidate, limit=9) if ("\\boxed{" in candidate or "\\fbox{" in candidate) else []
        if boxes:  # boxed answers are the answer, the text around them is working; they must agree
            values = {as_number(box) for box in boxes}
            if None in values or len(boxes) > 8:
                return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, parsed=boxes[-1][:100],
                                       detail="a boxed answer does not state exactly one number")
            if len(values) > 1:
                return self.make_score({"format": fmt}, Outcome.WRONG, parsed=boxes[-1][:100],
                                       detail="several different boxed answers")
            candidate = boxes[-1]
        value = as_number(candidate)
        if value is None:
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, parsed=candidate[:100],
                                   detail=f"{source} does not state exactly one number")
        gold = as_number(str(task.answer))
        correct = gold is not None and value == gold
        return self.make_score({"format": fmt, "correct": float(correct)},
                               Outcome.CORRECT if correct else Outcome.WRONG, parsed=format_number(value),
                               detail="" if correct else f"{format_number(value)} != {task.answer} (from {source})")

    def _candidate(self, text: str, layout: Any) -> tuple[str | None, str]:
        answer = layout.answer("last")
        if answer is not None:
            return answer, "<answer>"
        region = text if layout.think is None else text[text.rfind(THINK_CLOSE) + len(THINK_CLOSE):] if "</think>" in text else ""
        if "\\boxed{" in region or "\\fbox{" in region:
            return region, "\\boxed{}"
        hashes = HASHES.findall(region)
        if hashes:
            return hashes[-1].split("\n")[0], "####"
        if self.last_number:
            numbers = re.findall(r"-?[\d,]*\.?\d+", region[-2000:])
            if numbers:
                return numbers[-1], "last number"
        return None, ""

    @staticmethod
    def _strict(text: str) -> str | None:
        match = OFFICIAL.search(text)
        return None if match is None else match.group(1).strip().replace(",", "")

    def _flexible(self, text: str, gold: str) -> Score:
        matches = FLEXIBLE.findall(text[-5000:])
        if not matches:
            return self.make_score({}, Outcome.UNPARSEABLE, detail="no number")
        token = next((g for g in matches[-1] if g), "")
        return self._string_verdict(_lm_eval_clean(token), _lm_eval_clean(gold))

    def _string_verdict(self, parsed: str | None, gold: str) -> Score:
        if parsed is None:
            return self.make_score({}, Outcome.UNPARSEABLE, detail="no '#### N' answer")
        correct = parsed == gold
        return self.make_score({"correct": float(correct)}, Outcome.CORRECT if correct else Outcome.WRONG,
                               parsed=parsed, detail="" if correct else f"{parsed!r} != {gold!r}")


def _lm_eval_clean(text: str) -> str:
    out = re.sub(r"(?s).*#### ", "", text).replace(",", "").replace("$", "")
    return re.sub(r"\.$", "", out).strip().lower()

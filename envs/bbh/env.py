"""`bbh` and `bbh/<task>`: BIG-Bench Hard, scored by exact match after a per-kind normalisation.

The answer block is compared with the target as a whole, after: markdown and a leading "The answer is"
dropped, a final period dropped, case and whitespace folded; for multiple-choice targets (`(B)`), the
option may be written `B`, `(B)`, `B)` or `**B**`; numbers compare as numbers (`24` = `24.0`). A
whole-answer match means hedges (`(A) or (B)`, `True, False`, `24 25`) are wrong by construction.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from typing import Any, ClassVar

from envs.bbh import TASKS
from envs.datasets_io import DataFiles
from reasongym.env import Env
from reasongym.templates import R1_SYSTEM, PromptTemplate
from reasongym.types import Outcome, Score, Task

HUB_ID = "lukaemon/bbh"
SAMPLE_FILE = os.path.join(os.path.dirname(__file__), "sample.jsonl")
TEMPLATES = {"r1": PromptTemplate("r1", "chat", system=R1_SYSTEM, user="{input}\n\nGive the final answer alone "
                                  "inside <answer> </answer>.")}
_OPTION = re.compile(r"^\(?([A-R])\)?$")
_LEAD = re.compile(r"^(?:so,?\s+)?(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*:?\s*", re.IGNORECASE)


def normalize(text: str, target: str) -> str:
    """The answer as the target is written, for an exact comparison."""
    out = _LEAD.sub("", re.sub(r"[*`]", "", text).strip())
    out = re.sub(r"\s+", " ", out).strip().rstrip(".").strip()
    if _OPTION.match(target.strip()):
        option = re.fullmatch(r"\(?([A-Ra-r])\)?\)?", out)
        return f"({option.group(1).upper()})" if option else out.casefold()
    try:
        if len(out) <= 40 and len(target.strip()) <= 40:
            return str(Fraction(out.replace(",", ""))) if re.fullmatch(r"-?[\d,]+(?:\.\d+)?", out) else out.casefold()
    except (ValueError, ZeroDivisionError):
        pass
    return out.casefold()


def target_form(target: str) -> str:
    target = target.strip()
    if _OPTION.match(target):
        return f"({_OPTION.match(target).group(1)})"
    if re.fullmatch(r"-?[\d,]+(?:\.\d+)?", target) and len(target) <= 40:
        return str(Fraction(target.replace(",", "")))
    return re.sub(r"\s+", " ", target).casefold()


class BBHEnv(Env):
    templates: ClassVar[dict[str, PromptTemplate]] = TEMPLATES
    default_template = "r1"
    reward_modes: ClassVar[dict[str, dict[str, float]]] = {"default": {"format": 0.1, "correct": 0.9},
                                                           "accuracy": {"correct": 1.0}}
    splits: ClassVar[tuple[str, ...]] = ("test",)

    def __init__(self, task: str = "all", source: str = "hub", data_files: DataFiles | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from envs.datasets_io import files_for_source, load_splits

        if task != "all" and task not in TASKS:
            raise ValueError(f"unknown BBH task {task!r}; one of {list(TASKS)}")
        data_files = files_for_source(source, data_files, SAMPLE_FILE)
        self.task = task
        rows: list[dict[str, Any]] = []
        for name in (TASKS if task == "all" else (task,)):
            if data_files is None:
                loaded = load_splits(HUB_ID, config=name, columns=("input", "target"), splits=self.splits)
                rows += [{**r, "task": name} for r in loaded.get("test", [])]
            elif name == (TASKS[0] if task == "all" else task):  # local files: every row once, filtered below
                loaded = load_splits(HUB_ID, data_files=data_files, columns=("input", "target"), splits=self.splits)
                rows += [r for r in loaded.get("test", []) if task == "all" or r.get("task", task) == task]
        if source == "sample" and not rows:  # the sample covers a few tasks: the others get the whole sample
            rows = load_splits(HUB_ID, data_files=data_files, columns=("input", "target"), splits=self.splits)["test"]
        for i, row in enumerate(rows):
            if not str(row["target"]).strip():
                raise ValueError(f"bbh row {i} ({row.get('task')}) has no target")
        self._rows = rows
        self.use_loaded_splits(self.splits, ["test"] if rows else [])

    def _task_count(self, split: str) -> int | None:
        return len(self._rows)

    def _task_at(self, split: str, index: int, seed: int) -> Task:
        row = self._rows[index]
        name = row.get("task") or self.task
        return Task(id=f"bbh:{name}:{index}", question={"input": row["input"]}, answer=str(row["target"]).strip(),
                    metadata={"task": name})

    def reference_completion(self, task: Task) -> str | None:
        return f"<think>\nWorking it out.\n</think>\n<answer>{task.answer}</answer>"

    def verify(self, text: str, task: Task) -> Score:
        fmt, answer = self.answer_block(text, max_chars=2000, missing="no single answer")
        if isinstance(answer, Score):
            return answer
        target = str(task.answer)
        said = normalize(answer, target)
        correct = said == target_form(target)
        return self.make_score({"format": fmt, "correct": float(correct)}, Outcome.CORRECT if correct else Outcome.WRONG,
                               parsed=said[:100], detail="" if correct else "not the target")

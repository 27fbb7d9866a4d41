"""`mmlu` (57 subjects, four options) and `mmlu/<subject>`: answer with the letter of the right option.

The answer block must name one option: a letter alone (`B`, `(B)`, `B)`, `B.`, `**B**`), "The answer is
(B)", a letter followed by that option's text (`B) Paris`), or the option's text alone. A block that
names several options (`A or B`, `A, B`, `A/B`, `B B B`) is wrong: a hedge. Anything else is unparseable.
"""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

from envs.datasets_io import DataFiles
from envs.mmlu import SUBJECTS
from reasongym.env import Env
from reasongym.templates import R1_SYSTEM, PromptTemplate
from reasongym.types import Outcome, Score, Task

HUB_ID = "cais/mmlu"
SAMPLE_FILE = os.path.join(os.path.dirname(__file__), "sample.jsonl")
LETTERS = "ABCD"
TEMPLATES = {"r1": PromptTemplate("r1", "chat", system=R1_SYSTEM, user="{question}\n\n{options}\n\nAnswer with the "
                                  "letter of the correct option inside <answer> </answer>.")}
_LEAD = re.compile(r"^(?:the\s+)?(?:correct\s+|final\s+)?(?:answer|option)\s*(?:is|:)?\s*:?\s*", re.IGNORECASE)
_LETTER_FIRST = re.compile(r"^\(?([A-D])\)?(?=$|[\s.):,/-])[.):]?\s*(.*)$", re.DOTALL)
_OTHER_LETTER = re.compile(r"(?<![A-Za-z])\(?[A-D]\)?(?![A-Za-z])")


def _plain(text: str) -> str:
    return re.sub(r"[\s.]+$", "", re.sub(r"[*_`]", "", text)).strip()


def choice_letter(answer: str, choices: list[str]) -> tuple[str | None, str]:
    """(letter, "") for an answer that names one option; (None, why) otherwise ("several" marks a hedge)."""
    text = _LEAD.sub("", _plain(answer))
    folded = [_plain(c).casefold() for c in choices]
    if text.casefold() in folded and folded.count(text.casefold()) == 1:
        return LETTERS[folded.index(text.casefold())], ""
    match = _LETTER_FIRST.match(text)
    if match is None:
        return None, "no option letter"
    letter, rest = match.group(1), _plain(match.group(2))
    index = LETTERS.index(letter)
    if not rest or (index < len(folded) and rest.casefold() == folded[index]):
        return letter, ""
    if _OTHER_LETTER.search(rest):
        return None, "several options named"
    return letter, ""


class MMLUEnv(Env):
    templates: ClassVar[dict[str, PromptTemplate]] = TEMPLATES
    default_template = "r1"
    reward_modes: ClassVar[dict[str, dict[str, float]]] = {"default": {"format": 0.1, "correct": 0.9},
                                                           "accuracy": {"correct": 1.0}}
    splits: ClassVar[tuple[str, ...]] = ("test", "validation", "dev")

    def __init__(self, subject: str = "all", source: str = "hub", data_files: DataFiles | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from envs.datasets_io import files_for_source, load_splits

        if subject != "all" and subject not in SUBJECTS:
            raise ValueError(f"unknown MMLU subject {subject!r}; one of {SUBJECTS[:3]}... (57 in all) or 'all'")
        data_files = files_for_source(source, data_files, {"test": SAMPLE_FILE})
        rows = load_splits(HUB_ID, data_files=data_files, config=None if data_files else subject,
                           columns=("question", "choices", "answer"), splits=self.splits)
        self.subject = subject
        self._rows = {split: [r for r in group if subject == "all" or r.get("subject", subject) == subject]
                      for split, group in rows.items() if split in self.splits}
        if source == "sample" and not any(self._rows.values()):  # the sample holds eight subjects, not 57
            self._rows = {split: list(group) for split, group in rows.items() if split in self.splits}
        for split, group in self._rows.items():
            for i, row in enumerate(group):
                if len(row["choices"]) != 4 or not 0 <= int(row["answer"]) < 4:
                    raise ValueError(f"mmlu {split} row {i}: needs 4 choices and an answer index 0-3")
        self.use_loaded_splits(self.splits, [s for s, g in self._rows.items() if g])

    def _task_count(self, split: str) -> int | None:
        return len(self._rows[split])

    def _task_at(self, split: str, index: int, seed: int) -> Task:
        row = self._rows[split][index]
        options = "\n".join(f"{letter}. {choice}" for letter, choice in zip(LETTERS, row["choices"]))
        return Task(id=f"mmlu:{row.get('subject') or self.subject}:{split}:{index}",
                    question={"question": row["question"], "options": options}, answer=LETTERS[int(row["answer"])],
                    metadata={"choices": list(row["choices"]), "subject": row.get("subject") or self.subject})

    def reference_completion(self, task: Task) -> str | None:
        return f"<think>\nThe option that fits.\n</think>\n<answer>{task.answer}</answer>"

    def gold_answer_forms(self, task: Task) -> list[str]:
        letter = str(task.answer)
        text = task.metadata["choices"][LETTERS.index(letter)]
        return [f"({letter})", f"{letter})", f"**{letter}**", f"The answer is ({letter}).", f"{letter}. {text}", text]

    def verify(self, text: str, task: Task) -> Score:
        fmt, answer = self.answer_block(text, max_chars=2000, missing="no single answer")
        if isinstance(answer, Score):
            return answer
        letter, why = choice_letter(answer, task.metadata["choices"])
        if letter is None:
            outcome = Outcome.WRONG if why.startswith("several") else Outcome.UNPARSEABLE
            return self.make_score({"format": fmt}, outcome, parsed=answer[:100], detail=why)
        correct = letter == task.answer
        return self.make_score({"format": fmt, "correct": float(correct)}, Outcome.CORRECT if correct else Outcome.WRONG,
                               parsed=letter, detail="" if correct else f"{letter} != {task.answer}")

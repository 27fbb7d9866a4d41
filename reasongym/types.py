"""Plain data that flows between tasks, verifiers and trainers.

Everything here is JSON-serialisable so a Task can travel through a `datasets`
column, a process pool or a sample log and come back unchanged.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any


class Outcome(str, enum.Enum):
    """Why a completion earned its reward: kept apart so logs can tell a model
    that answers wrongly from one that never produces a parseable answer."""

    CORRECT = "correct"
    WRONG = "wrong"
    UNPARSEABLE = "unparseable"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True)
class Task:
    """One problem instance. `id` is unique within an env and stable across runs."""

    id: str
    question: dict[str, Any]
    answer: Any
    difficulty: float | int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(self.id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and self.to_dict() == other.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "difficulty": self.difficulty,
            "metadata": self.metadata,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Task":
        return cls(
            id=str(data["id"]),
            question=dict(data["question"]),
            answer=data["answer"],
            difficulty=data.get("difficulty"),
            metadata=dict(data.get("metadata") or {}),
        )

    @classmethod
    def from_json(cls, text: str) -> "Task":
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True, init=False)
class Score:
    """The verdict on one completion.

    `reward` is the weighted sum of `components` (weights live on the env), so a
    trainer can optimise the scalar while logging each part.
    """

    reward: float
    components: dict[str, float]
    outcome: Outcome
    parsed: Any = None
    detail: str = ""

    def __init__(self, reward: float, components: dict[str, float], outcome: Outcome, parsed: Any = None,
                 detail: str = "") -> None:
        # One Score per completion in the training loop: one __dict__ assignment takes about half
        # the time of the generated __init__'s five frozen-field assignments. Still frozen afterwards.
        object.__setattr__(self, "__dict__", {"reward": reward, "components": components, "outcome": outcome,
                                              "parsed": parsed, "detail": detail})

    @property
    def correct(self) -> bool:
        return self.outcome is Outcome.CORRECT

    def to_dict(self) -> dict[str, Any]:
        parsed = self.parsed
        try:
            json.dumps(parsed)
        except (TypeError, ValueError):
            parsed = str(parsed)
        return {
            "reward": self.reward,
            "components": dict(self.components),
            "outcome": self.outcome.value,
            "parsed": parsed,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Score":
        return cls(
            reward=float(data["reward"]),
            components={k: float(v) for k, v in data["components"].items()},
            outcome=Outcome(data["outcome"]),
            parsed=data.get("parsed"),
            detail=data.get("detail", ""),
        )

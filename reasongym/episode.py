"""One multi-turn episode of an env: the task, the turns so far, and what the policy sees next.

An env with `max_turns > 1` lets the policy try again: after a wrong or unparseable answer the
env's `feedback` (which never reveals the gold answer) joins the conversation, and the episode
goes on until an answer is correct (terminated) or `max_turns` is reached (truncated). The
episode reward is the final turn's reward times `turn_decay ** (turn - 1)`.

`Env.reset`/`Env.step` run one Episode; evaluation, rejection sampling and TRL's tool loop run
many side by side, each its own Episode over the same (stateless) env.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasongym.templates import Prompt
from reasongym.types import Outcome, Score, Task


@dataclass(frozen=True)
class Turn:
    action: str
    score: Score
    feedback: str  # "" after a correct answer
    reward: float  # what step() returned for this turn (0 until the episode ends)


@dataclass
class Episode:
    env: Any  # a reasongym.Env (not imported: env.py imports this module)
    task: Task
    turns: list[Turn] = field(default_factory=list)

    @property
    def solved(self) -> bool:
        return bool(self.turns) and self.turns[-1].score.correct

    @property
    def terminated(self) -> bool:
        """Ended by the task: a correct answer, or any answer of a single-turn env."""
        return bool(self.turns) and (self.solved or self.env.max_turns == 1)

    @property
    def truncated(self) -> bool:
        """Ended by the turn limit of a multi-turn env."""
        return not self.terminated and len(self.turns) >= self.env.max_turns

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    @property
    def success_turn(self) -> int | None:
        """The turn (1-based) of the correct answer, or None."""
        return len(self.turns) if self.solved else None

    @property
    def reward(self) -> float:
        return sum(turn.reward for turn in self.turns)

    def observation(self) -> Prompt:
        """The prompt, then each answer and the env's feedback, ready for the next answer (pre-fill included)."""
        prompt = self.env.prompt(self.task)
        if not self.turns:
            return prompt
        prefill = self.env.template.prefill
        if isinstance(prompt, str):
            text = prompt
            for turn in self.turns:
                text += f"{turn.action}\nUser: {turn.feedback}\nAssistant: {prefill}" if turn.feedback else turn.action
            return text
        messages = [dict(m) for m in prompt]
        if prefill and messages and messages[-1]["role"] == "assistant":
            messages.pop()
        for turn in self.turns:
            messages.append({"role": "assistant", "content": prefill + turn.action})
            if turn.feedback:
                messages.append({"role": "user", "content": turn.feedback})
        if prefill and self.turns[-1].feedback:
            messages.append({"role": "assistant", "content": prefill})
        return messages

    def step(self, action: str) -> Turn:
        """Score one answer; never raises on model output (the feedback hook included)."""
        if self.done:
            raise RuntimeError("the episode is over: reset() before step()")
        score = self.env.score(action, self.task)
        turn_number = len(self.turns) + 1
        feedback = "" if score.correct or self.env.max_turns == 1 else self._feedback(score)
        ends = score.correct or turn_number >= self.env.max_turns
        reward = score.reward * self.env.turn_decay ** (turn_number - 1) if ends else 0.0
        turn = Turn(action, score, feedback, reward)
        self.turns.append(turn)
        return turn

    def _feedback(self, score: Score) -> str:
        try:
            return str(self.env.feedback(score, self.task))
        except Exception as exc:  # noqa: BLE001 - a broken feedback hook must not end training
            return "That is not correct." if score.outcome is not Outcome.UNPARSEABLE else f"No answer found ({type(exc).__name__})."

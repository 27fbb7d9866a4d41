"""Linear-time reading of the R1 `<think>…</think><answer>…</answer>` layout.

Regexes with nested quantifiers are where the anchors' format rewards broke
(single-line only, or catastrophic backtracking), so this walks the text with
`str.find` and never backtracks. Every verifier shares it, so "where is the
answer" means the same thing in every env.
"""

from __future__ import annotations

from typing import NamedTuple

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"


class Layout(NamedTuple):
    """What a completion contains, structurally. (A tuple: read once per completion in the
    training loop, where a frozen dataclass's construction cost shows.)"""

    think: str | None
    answers: list[str] = []  # never mutated; read_layout always passes its own list
    well_formed: bool = False
    problem: str = ""

    def answer(self, which: str = "only") -> str | None:
        """The answer block's text. "only" (the default): None when blocks disagree (two different answers are
        a hedge, whichever one a verifier read); "first" / "last": that block, for verifiers with their own rule."""
        if not self.answers:
            return None
        if which == "only":
            return self.answers[-1] if len({a.strip() for a in self.answers}) == 1 else None
        return self.answers[0] if which == "first" else self.answers[-1]


def answer_blocks(text: str, limit: int = 64) -> list[str]:
    """Contents of every closed `<answer>` block, in order (at most `limit`)."""
    found: list[str] = []
    pos = 0
    while len(found) < limit:
        start = text.find(ANSWER_OPEN, pos)
        if start < 0:
            break
        end = text.find(ANSWER_CLOSE, start + len(ANSWER_OPEN))
        if end < 0:
            break
        found.append(text[start + len(ANSWER_OPEN) : end])
        pos = end + len(ANSWER_CLOSE)
    return found


def read_layout(text: str) -> Layout:
    """Split a completion (with the template's scoring prefix in front) into its parts.

    Answers are only read after the last `</think>`: an answer written inside
    the reasoning is not an answer. With no `<think>` at all the whole text is
    searched (plain-answer prompts). `well_formed` means: optional whitespace,
    one `<think>` block (any text, newlines included, no nested think tags),
    whitespace, exactly one `<answer>` block; anything may follow `</answer>`
    except another answer block.
    """
    open_at = text.find(THINK_OPEN)
    close_at = text.rfind(THINK_CLOSE)
    if open_at < 0 and close_at < 0:
        return Layout(think=None, answers=answer_blocks(text), problem="no <think> block")
    if close_at < 0:
        return Layout(think=text[open_at + len(THINK_OPEN) :], answers=[], problem="<think> is never closed")
    tail = text[close_at + len(THINK_CLOSE) :]
    answers = answer_blocks(tail)
    think = text[open_at + len(THINK_OPEN) : close_at] if 0 <= open_at < close_at else None
    problem = _format_problem(text, open_at, close_at, tail, answers, think)
    return Layout(think=think, answers=answers, well_formed=not problem, problem=problem)


def _format_problem(
    text: str, open_at: int, close_at: int, tail: str, answers: list[str], think: str | None
) -> str:
    if open_at < 0 or think is None:
        return "</think> without an opening <think>"
    if text[:open_at].strip():
        return "text before <think>"
    if THINK_OPEN in think or THINK_CLOSE in think:
        return "nested or repeated think tags"
    if not answers:
        return "no <answer> block after </think>"
    if len(answers) > 1:
        return "more than one <answer> block"
    if tail[: tail.find(ANSWER_OPEN)].strip():
        return "text between </think> and <answer>"
    if not answers[0].strip():
        return "empty <answer> block"
    return ""

"""Our own verifiers for reasoning-gym tasks whose scorer runs model text or pays a hedge.

reasoning-gym 0.1.25's scorers for seven tasks hand the answer to Python's `eval` or to
`sympy.parse_expr` (which evals): an answer of `__import__('os').system(...)` runs in the
scorer's process. Each gets a verifier here that reads the answer with `envs.safe_expr`
(a whitelist walk of the parse tree, never a call) and keeps the scorer's meaning:

  binary_matrix, spiral_matrix, string_insertion, n_queens   exact answer (whitespace-insensitive);
      the Python-list spelling their scorer also reads earns the same partial credit (0.1, 0.5)
  polynomial_multiplication   the same expanded polynomial (exact fractions, like terms combined)
  simple_integration, intermediate_integration   an antiderivative: equal to the reference one up
      to a constant at sample points (what "its derivative is the integrand" means)

Others are ours because their scorer pays a hedge: exact-match tasks, countdown/puzzle24
(expressions, each number once), word_sorting (extra words after the list), advanced_geometry
(extra items after a point or a number).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from envs.safe_expr import (NotAllowed, compile_function, derivative_matches, literal, polynomial,
                            same_up_to_constant)
from reasongym.types import Outcome

# reasoning-gym scores these with sympy.parse_expr and no check of which numbers were used (puzzle24)
# or a float tolerance; our countdown verifier is exact, eval-free and bounded.
# Tasks with one right answer whose reasoning-gym scorer pays a hedge ('<gold> or 0') or an eval-wrapped
# answer (substring or first-match extraction): scored here by exact match of the whole answer block
# (whitespace collapsed; "number": as exact numbers; "casefold": case-insensitive).
OWN_VERIFIER = {"countdown": "expression", "puzzle24": "expression", "gsm_symbolic": "number",
                "fraction_simplification": "exact", "letter_jumble": "exact", "spell_backward": "exact",
                "game_of_life_halting": "casefold"}
# Answer shapes refused before a third-party parser sees them, where that parser's time grows
# faster than linearly with the text: reasoning-gym 0.1.25's propositional-logic parser takes 68 s on
# 10,000 '¬' and 0.6 s on 1,000 chars of 'P ∧ P ∧ ...' (2-core box). Its premises are at most ~91
# chars at the hardest level, so a real conclusion fits well inside these limits.
ANSWER_LIMITS: dict[str, dict[str, int]] = {
    "propositional_logic": {"chars": 600, "depth": 32, "run": 16},
}


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    parsed: Any = None
    detail: str = ""
    partial: float | None = None  # the `partial` component; None: 1 when correct, else 0

    @property
    def partial_value(self) -> float:
        if self.partial is not None:
            return self.partial
        return 1.0 if self.outcome is Outcome.CORRECT else 0.0


def _meta(entry: dict[str, Any], key: str) -> Any:
    value = entry["metadata"][key]
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines() if line.strip()]


def _tokens(text: str) -> list[str]:
    return text.split()


def _literal_or_none(answer: str) -> Any:
    try:
        return literal(answer)
    except NotAllowed:
        return None


def _exact(said: bool, answer: str, list_form: Callable[[Any], bool], list_credit: float) -> Verdict:
    if said:
        return Verdict(Outcome.CORRECT, answer[:200])
    value = _literal_or_none(answer)
    if isinstance(value, (list, tuple)) and list_form(value):
        return Verdict(Outcome.WRONG, answer[:200], "right answer, written as a Python list", list_credit)
    return Verdict(Outcome.WRONG, answer[:200], "not the answer")


def _matrix_text(value: Any) -> list[list[str]] | None:
    if all(isinstance(row, (list, tuple)) for row in value):
        return [[str(x) for x in row] for row in value]
    return None


def binary_matrix(answer: str, entry: dict[str, Any]) -> Verdict:
    gold = _rows(entry["answer"])
    return _exact(_rows(answer) == gold, answer, lambda v: _matrix_text(v) == gold, 0.1)


def spiral_matrix(answer: str, entry: dict[str, Any]) -> Verdict:
    gold = _tokens(entry["answer"])
    return _exact(_tokens(answer) == gold, answer, lambda v: [str(x) for x in v] == gold, 0.1)


def string_insertion(answer: str, entry: dict[str, Any]) -> Verdict:
    gold = entry["answer"]
    return _exact(answer.strip() == gold, answer, lambda v: all(isinstance(x, str) for x in v)
                  and "".join(v) == gold, 0.1)


def n_queens(answer: str, entry: dict[str, Any]) -> Verdict:
    boards = [_rows(board) for board in _meta(entry, "valid_answers")]
    return _exact(_rows(answer) in boards, answer, lambda v: _matrix_text(v) in boards, 0.5)


def polynomial_multiplication(answer: str, entry: dict[str, Any]) -> Verdict:
    variables = _meta(entry, "variables")
    gold = polynomial(str(entry["answer"]), variables)
    try:
        said = polynomial(answer.replace("^", "**"), variables)
    except NotAllowed as exc:
        return Verdict(Outcome.UNPARSEABLE, answer[:200], f"not an expanded polynomial in {variables}: {exc}")
    return Verdict(Outcome.CORRECT, answer[:200]) if said == gold else Verdict(Outcome.WRONG, answer[:200],
                                                                               "a different polynomial")


def integration(answer: str, entry: dict[str, Any]) -> Verdict:
    """Equal to the reference antiderivative up to a constant; where reasoning-gym's reference is no closed
    form (`Integral(...)`), the answer's numerical derivative must match the integrand."""
    variable = entry["metadata"]["variable"]
    try:
        said = compile_function(answer.replace("^", "**"), variable)
    except NotAllowed as exc:
        return Verdict(Outcome.UNPARSEABLE, answer[:200], f"not a function of {variable}: {exc}")
    try:
        matches = same_up_to_constant(said, compile_function(str(entry["answer"]), variable))
    except NotAllowed:
        matches = derivative_matches(said, compile_function(entry["metadata"]["integrand"], variable, None))
    if matches:
        return Verdict(Outcome.CORRECT, answer[:200])
    return Verdict(Outcome.WRONG, answer[:200], "not an antiderivative of the integrand")


def word_sorting(answer: str, entry: dict[str, Any]) -> Verdict:
    said = [word.strip() for word in answer.split(",")]
    gold = _meta(entry, "sorted_words")
    if said == gold:
        return Verdict(Outcome.CORRECT, answer[:200])
    detail = "extra or missing words" if len(said) != len(gold) else "not in the asked order"
    return Verdict(Outcome.WRONG, answer[:200], detail)


_NUMBER = r"-?\d+(?:\.\d+)?(?:/\d+)?"
_GEOMETRY_SHAPES = {
    "orthocenter": re.compile(rf"\(?\s*{_NUMBER}\s*,\s*{_NUMBER}\s*\)?"),
    "angle_measure": re.compile(rf"{_NUMBER}\s*°?"),
    "incircle_radius": re.compile(_NUMBER),
}


def advanced_geometry_shape(answer: str, entry: dict[str, Any]) -> str:
    """Why the answer is not one point / one number ('' when it is): reasoning-gym's scorer reads the
    first two comma-separated items, so `(x, y), 1, 2, 3` would otherwise pay."""
    shape = _GEOMETRY_SHAPES.get(entry["metadata"].get("task_type", ""))
    if shape is None or shape.fullmatch(answer.strip()):
        return ""
    return "the answer must be a single point (x, y)" if entry["metadata"]["task_type"] == "orthocenter" \
        else "the answer must be a single number"


def answer_refused(name: str, answer: str) -> str:
    """Why `answer` is refused before `name`'s scorer parses it ('' when it is not): longer than the
    limit, brackets nested deeper, or a run of one prefix operator ('¬¬¬...') longer than allowed."""
    limits = ANSWER_LIMITS.get(name)
    if not limits:
        return ""
    if len(answer) > limits["chars"]:
        return f"answer longer than {limits['chars']} characters"
    depth = deepest = run = longest = 0
    previous = ""
    for char in answer:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
        run = run + 1 if char == previous and not char.isalnum() and not char.isspace() else 1
        longest = max(longest, run)
        previous = char
    if deepest > limits["depth"]:
        return f"brackets nested deeper than {limits['depth']}"
    if longest > limits["run"]:
        return f"a run of more than {limits['run']} identical operator characters"
    return ""


def own_verdict(rule: str, answer: str, entry: dict[str, Any]) -> Verdict:
    """Our verdict for the OWN_VERIFIER tasks: countdown's expression checker, or an exact match."""
    if rule == "expression":
        from envs.countdown.env import check_expression

        meta = entry["metadata"]
        return Verdict(*check_expression(answer, {"nums": meta["numbers"], "target": meta.get("target", 24)}))
    gold = str(entry["answer"])
    if rule == "number":
        from envs.answers import as_number

        value, expected = as_number(answer), as_number(gold)
        if value is None:
            return Verdict(Outcome.UNPARSEABLE, None, "the answer does not state exactly one number")
        return Verdict(Outcome.CORRECT, answer) if value == expected else Verdict(Outcome.WRONG, answer, f"{answer} != {gold}")
    said, expected = " ".join(answer.split()), " ".join(gold.split())
    if rule == "casefold":
        said, expected = said.casefold(), expected.casefold()
    return Verdict(Outcome.CORRECT, answer) if said == expected else Verdict(Outcome.WRONG, answer[:200], "not the answer")


# name -> verifier(answer, entry); run in place of reasoning-gym's scorer
SAFE_VERIFIERS: dict[str, Callable[[str, dict[str, Any]], Verdict]] = {
    **{name: functools.partial(own_verdict, rule) for name, rule in OWN_VERIFIER.items()},
    "binary_matrix": binary_matrix, "spiral_matrix": spiral_matrix, "string_insertion": string_insertion,
    "n_queens": n_queens, "polynomial_multiplication": polynomial_multiplication,
    "simple_integration": integration, "intermediate_integration": integration, "word_sorting": word_sorting,
}
# reasoning-gym's scorer `eval`s or `sympy.parse_expr`s the answer text for these (read in 0.1.25's source)
EVALS_MODEL_TEXT = {
    "binary_matrix": "eval()s the answer text", "n_queens": "eval()s the answer text",
    "spiral_matrix": "eval()s the answer text", "string_insertion": "eval()s the answer text",
    "simple_integration": "runs the answer through sympy.parse_expr (Python eval)",
    "intermediate_integration": "runs the answer through sympy.parse_expr (Python eval)",
    "polynomial_multiplication": "runs the answer through sympy.parse_expr (Python eval)",
}
def number_list_shape(answer: str, entry: dict[str, Any]) -> str:
    """reasoning-gym's polynomial_equations scorer drops comma items that are not numbers, so
    `0.5 or 2.0, 1.5` would pay for `0.5, 1.5`: every item must be a number."""
    for item in answer.split(","):
        try:
            float(item.strip())
        except ValueError:
            return f"{item.strip()[:40]!r} is not a number: give the solutions as comma-separated numbers"
    return ""


_ASSIGNMENT = re.compile(r"\s*([A-Za-z])\s*=\s*(\d)\s*")


def letter_assignment_shape(answer: str, entry: dict[str, Any]) -> str:
    """reasoning-gym's cryptarithm scorer keeps the last of two values given for one letter, so a second
    mapping after the first would pay: each item must be LETTER=DIGIT, each letter once."""
    letters = []
    for item in answer.split(","):
        match = _ASSIGNMENT.fullmatch(item)
        if not match:
            return f"{item.strip()[:40]!r} is not LETTER=DIGIT"
        letters.append(match.group(1))
    return "" if len(set(letters)) == len(letters) else "a letter is given two digits"


# answer shapes checked before reasoning-gym's scorer reads the answer (it would pay extra items)
SHAPE_CHECKS: dict[str, Callable[[str, dict[str, Any]], str]] = {
    "advanced_geometry": advanced_geometry_shape, "polynomial_equations": number_list_shape,
    "cryptarithm": letter_assignment_shape,
}

"""A closed arithmetic language for Countdown answers: no eval, bounded by construction.

Grammar (whitespace ignored):

    expr   := term (("+" | "-") term)*
    term   := factor (("*" | "x" | "×" | "/" | "÷") factor)*
    factor := INT | "(" expr ")"
    INT    := "0" | [1-9][0-9]{0,5}          (ASCII digits only; no sign, no decimal point)

Unary signs, `**`, `//`, decimals, names and everything else are rejected. The
input length, literal size and nesting depth are capped, and the literals must be
the task's numbers before anything is evaluated, so the evaluation is a handful
of exact integer-rational operations at most.

One pass (operator-precedence parsing) tokenises, checks and evaluates: the
verifier runs once per completion in the training loop, so it is kept cheaper
than the regex + `eval` scorers it replaces (benchmarks/countdown_verify.py).
"""

from __future__ import annotations

import re
from fractions import Fraction
from math import gcd
from typing import NamedTuple

MAX_EXPR_CHARS = 256
MAX_LITERAL_DIGITS = 6
MAX_DEPTH = 32

_OPS = {"+": "+", "-": "-", "*": "*", "x": "*", "×": "*", "/": "/", "÷": "/"}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_ALLOWED = re.compile(r"[0-9+\-*/x×÷()\s]*")
_TOKEN = re.compile(r"\d+|[-+*/x×÷()]")
_DIGITS = frozenset("0123456789")


class ExprError(ValueError):
    """The text is not an expression of the Countdown language."""


class WrongNumbers(ExprError):
    """The literals are not the task's numbers (as a multiset): wrong, and never evaluated."""


class Evaluated(NamedTuple):  # a tuple: built once per completion in the training loop, so it is cheap
    numerator: int
    denominator: int  # > 0; 0 marks a division by zero somewhere in the expression
    literals: list[int]
    operators: set[str]

    @property
    def divides_by_zero(self) -> bool:
        return self.denominator == 0

    @property
    def value(self) -> Fraction:
        return Fraction(self.numerator, self.denominator)

    def equals(self, target: int) -> bool:
        return not self.divides_by_zero and self.numerator == target * self.denominator


def _explain(text: str) -> str:
    for ch in text:
        if ch == ".":
            return "decimal numbers are not allowed"
        if not _ALLOWED.fullmatch(ch):
            return f"character {ch!r} is not allowed"
    return "invalid expression"


def _apply(values: list[tuple[int, int]], op: str) -> None:
    bn, bd = values.pop()
    an, ad = values.pop()
    if ad == 0 or bd == 0:
        values.append((0, 0))
        return
    if op == "+":
        n, d = an * bd + bn * ad, ad * bd
    elif op == "-":
        n, d = an * bd - bn * ad, ad * bd
    elif op == "*":
        n, d = an * bn, ad * bd
    else:
        if bn == 0:
            values.append((0, 0))
            return
        n, d = an * bd, ad * bn
        if d < 0:
            n, d = -n, -d
    g = gcd(n, d)
    values.append((n // g, d // g) if g > 1 else (n, d))


def evaluate_text(text: str, numbers: list[int] | None = None) -> Evaluated:
    """Parse and evaluate exactly; raises ExprError on anything outside the language, and
    WrongNumbers (before evaluating) when `numbers` is given and the literals differ from it."""
    if len(text) > MAX_EXPR_CHARS:
        raise ExprError(f"expression longer than {MAX_EXPR_CHARS} characters")
    if "**" in text:
        raise ExprError("'**' (power) is not allowed")
    if "//" in text:
        raise ExprError("'//' (floor division) is not allowed")
    if not _ALLOWED.fullmatch(text):
        raise ExprError(_explain(text))
    tokens = _TOKEN.findall(text)
    literals = [int(t) for t in tokens if t[0] in _DIGITS and _check_literal(t)]
    if numbers is not None and sorted(literals) != sorted(numbers):
        raise WrongNumbers(f"uses {sorted(literals)}, must use each of {sorted(numbers)} once")
    values: list[tuple[int, int]] = []
    stack: list[str] = []
    used: set[str] = set()
    depth = 0
    expect_operand = True
    literal = iter(literals)
    for token in tokens:
        if token[0] in _DIGITS:
            if not expect_operand:
                raise ExprError(f"missing operator before {token!r}")
            values.append((next(literal), 1))
            expect_operand = False
        elif token == "(":
            if not expect_operand:
                raise ExprError("missing operator before '('")
            depth += 1
            if depth > MAX_DEPTH:
                raise ExprError(f"parentheses nested deeper than {MAX_DEPTH}")
            stack.append(token)
        elif token == ")":
            if expect_operand:
                raise ExprError("unexpected ')'")
            while stack and stack[-1] != "(":
                _apply(values, stack.pop())
            if not stack:
                raise ExprError("unbalanced parentheses")
            stack.pop()
            depth -= 1
        else:
            op = _OPS[token]
            if expect_operand:
                raise ExprError("unary signs are not allowed" if op in "+-" else f"unexpected {token!r}")
            while stack and stack[-1] != "(" and _PRECEDENCE[stack[-1]] >= _PRECEDENCE[op]:
                _apply(values, stack.pop())
            stack.append(op)
            used.add(op)
            expect_operand = True
    if expect_operand:
        raise ExprError("empty expression" if not tokens else "expression ends too early")
    while stack:
        op = stack.pop()
        if op == "(":
            raise ExprError("unbalanced parentheses")
        _apply(values, op)
    numerator, denominator = values[0]
    return Evaluated(numerator, denominator, literals, used)


def _check_literal(token: str) -> bool:
    if len(token) > 1:
        if token[0] == "0":
            raise ExprError(f"leading zero in {token!r}")
        if len(token) > MAX_LITERAL_DIGITS:
            raise ExprError(f"literal with more than {MAX_LITERAL_DIGITS} digits")
    return True

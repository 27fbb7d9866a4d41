"""A closed arithmetic language for Countdown answers: no eval, bounded by construction.

Grammar (whitespace ignored):

    expr   := term (("+" | "-") term)*
    term   := factor (("*" | "x" | "×" | "/" | "÷") factor)*
    factor := INT | "(" expr ")"
    INT    := "0" | [1-9][0-9]{0,5}          (ASCII digits only; no sign, no decimal point)

Unary signs, `**`, `//`, decimals, names and everything else are rejected. The
input length, literal size and nesting depth are capped, and the literals must
match the given numbers before anything is evaluated, so evaluating a valid
expression costs a handful of exact `Fraction` operations at most.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

MAX_EXPR_CHARS = 256
MAX_LITERAL_DIGITS = 6
MAX_DEPTH = 32

_OPS = {"+": "+", "-": "-", "*": "*", "x": "*", "×": "*", "/": "/", "÷": "/"}
_DIGITS = frozenset("0123456789")


class ExprError(ValueError):
    """The text is not an expression of the Countdown language."""


@dataclass(frozen=True)
class Num:
    value: int


@dataclass(frozen=True)
class BinOp:
    op: str
    left: "Num | BinOp"
    right: "Num | BinOp"


Node = Num | BinOp


def tokenize(text: str) -> list[str]:
    if len(text) > MAX_EXPR_CHARS:
        raise ExprError(f"expression longer than {MAX_EXPR_CHARS} characters")
    if "**" in text:
        raise ExprError("'**' (power) is not allowed")
    if "//" in text:
        raise ExprError("'//' (floor division) is not allowed")
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _DIGITS:
            j = i
            while j < n and text[j] in _DIGITS:
                j += 1
            literal = text[i:j]
            if len(literal) > 1 and literal[0] == "0":
                raise ExprError(f"leading zero in {literal!r}")
            if len(literal) > MAX_LITERAL_DIGITS:
                raise ExprError(f"literal with more than {MAX_LITERAL_DIGITS} digits")
            if j < n and text[j] == ".":
                raise ExprError("decimal numbers are not allowed")
            tokens.append(literal)
            i = j
        elif ch in _OPS:
            tokens.append(_OPS[ch])
            i += 1
        elif ch in "()":
            tokens.append(ch)
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == ".":
            raise ExprError("decimal numbers are not allowed")
        else:
            raise ExprError(f"character {ch!r} is not allowed")
    if not tokens:
        raise ExprError("empty expression")
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.pos = 0

    def parse(self) -> Node:
        node = self.expr(0)
        if self.pos != len(self.tokens):
            raise ExprError(f"unexpected {self.tokens[self.pos]!r}")
        return node

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def expr(self, depth: int) -> Node:
        node = self.term(depth)
        while self.peek() in ("+", "-"):
            op = self.tokens[self.pos]
            self.pos += 1
            node = BinOp(op, node, self.term(depth))
        return node

    def term(self, depth: int) -> Node:
        node = self.factor(depth)
        while self.peek() in ("*", "/"):
            op = self.tokens[self.pos]
            self.pos += 1
            node = BinOp(op, node, self.factor(depth))
        return node

    def factor(self, depth: int) -> Node:
        token = self.peek()
        if token is None:
            raise ExprError("expression ends too early")
        if token == "(":
            if depth >= MAX_DEPTH:
                raise ExprError(f"parentheses nested deeper than {MAX_DEPTH}")
            self.pos += 1
            node = self.expr(depth + 1)
            if self.peek() != ")":
                raise ExprError("unbalanced parentheses")
            self.pos += 1
            return node
        if token[0] in _DIGITS:
            self.pos += 1
            return Num(int(token))
        if token in ("+", "-"):
            raise ExprError("unary signs are not allowed")
        raise ExprError(f"unexpected {token!r}")


def parse(text: str) -> Node:
    return _Parser(tokenize(text)).parse()


def literals(node: Node) -> list[int]:
    out: list[int] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Num):
            out.append(item.value)
        else:
            stack.extend((item.right, item.left))
    return out


def operators(node: Node) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, BinOp):
            found.add(item.op)
            stack.extend((item.left, item.right))
    return found


def evaluate(node: Node) -> Fraction:
    """Exact value; raises ZeroDivisionError on division by zero."""
    if isinstance(node, Num):
        return Fraction(node.value)
    left, right = evaluate(node.left), evaluate(node.right)
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    return left / right


def uses_exactly(node: Node, numbers: list[int]) -> bool:
    return Counter(literals(node)) == Counter(numbers)

"""Model-written math and literals read without running them: no eval, no sympy parsing.

Python's `ast.parse` only builds a tree; every reader here walks that tree against a short
whitelist (numbers, one or two names, + - * / **, a few functions, lists) and refuses the rest,
so `__import__('os').system(...)` is an unknown call, never a call. Sizes are capped before
parsing (characters, nodes, exponents), so every reader is bounded in time.

- `literal`: a list / tuple / number / string literal (what reasoning-gym's scorers `eval`).
- `polynomial`: an expanded polynomial as {exponents: coefficient} with exact fractions.
- `compile_function` + `same_up_to_constant`: a real function of one variable, compared
  numerically (antiderivatives: equal up to the integration constant).
"""

from __future__ import annotations

import ast
import math
from fractions import Fraction
from typing import Any, Callable

MAX_CHARS = 20_000
MAX_NODES = 5000
MAX_EXPONENT = 256
MAX_BITS = 100_000  # numerator or denominator of an exact coefficient


class NotAllowed(ValueError):
    """The text is not in the accepted language (the reason says which part)."""


def _tree(text: str, max_chars: int = MAX_CHARS) -> ast.AST:
    if len(text) > max_chars:
        raise NotAllowed(f"longer than {max_chars} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise NotAllowed(f"not an expression ({type(exc).__name__})") from None
    count = 0
    for _ in ast.walk(tree):
        count += 1
        if count > MAX_NODES:
            raise NotAllowed(f"more than {MAX_NODES} parts")
    return tree


def _number(node: ast.AST) -> int | float | None:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    return None


# ----- literals ---------------------------------------------------------------------------
def literal(text: str, max_chars: int = 20_000) -> Any:
    """A list / tuple of numbers and strings (nested), a number or a string; NotAllowed otherwise."""
    def walk(node: ast.AST) -> Any:
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [walk(item) for item in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float, str):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _number(node.operand) is not None:
            return -node.operand.value  # type: ignore[attr-defined]
        raise NotAllowed(f"{type(node).__name__} is not a literal")

    try:
        return walk(_tree(text, max_chars))
    except RecursionError:
        raise NotAllowed("nested too deeply") from None


# ----- polynomials ------------------------------------------------------------------------
Polynomial = dict[tuple[int, ...], Fraction]


def _bounded(value: Fraction) -> Fraction:
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_BITS:
        raise NotAllowed(f"a coefficient larger than {MAX_BITS} bits")
    return value


def _const(node: ast.AST) -> Fraction:
    value = _number(node)
    if value is None:
        raise NotAllowed("exponents and divisors must be plain numbers")
    return Fraction(value)


def polynomial(text: str, variables: list[str]) -> Polynomial:
    """An expanded polynomial in `variables`: a sum of terms, each a product of numbers and powers
    (`-3*x**2*y/4`). A product or power of a sum is refused ("not expanded"), so the factored
    question can never be echoed as its own answer. Like terms are combined; zero terms dropped."""
    index = {name: i for i, name in enumerate(variables)}
    zero = (0,) * len(variables)

    def monomial(node: ast.AST) -> tuple[Fraction, tuple[int, ...]]:
        if isinstance(node, ast.Constant):
            return _const(node), zero
        if isinstance(node, ast.Name):
            if node.id not in index:
                raise NotAllowed(f"unknown name {node.id!r}")
            return Fraction(1), tuple(int(i == index[node.id]) for i in range(len(variables)))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            coefficient, powers = monomial(node.operand)
            return (-coefficient if isinstance(node.op, ast.USub) else coefficient), powers
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            (a, pa), (b, pb) = monomial(node.left), monomial(node.right)
            return _bounded(a * b), tuple(x + y for x, y in zip(pa, pb))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            divisor = _const(node.right)
            if divisor == 0:
                raise NotAllowed("division by zero")
            a, pa = monomial(node.left)
            return _bounded(a / divisor), pa
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exponent = _const(node.right)
            if exponent.denominator != 1 or not 0 <= exponent <= MAX_EXPONENT:
                raise NotAllowed(f"exponents must be whole numbers in 0..{MAX_EXPONENT}")
            base, powers = monomial(node.left)
            if max(base.numerator.bit_length(), base.denominator.bit_length()) * int(exponent) > MAX_BITS:
                raise NotAllowed(f"a coefficient larger than {MAX_BITS} bits")
            return base ** int(exponent), tuple(p * int(exponent) for p in powers)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            raise NotAllowed("not expanded: a sum inside a product or power")
        raise NotAllowed(f"{type(node).__name__} is not allowed in a polynomial")

    def terms(node: ast.AST, sign: int, out: Polynomial) -> None:
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            terms(node.left, sign, out)
            terms(node.right, sign if isinstance(node.op, ast.Add) else -sign, out)
            return
        coefficient, powers = monomial(node)
        out[powers] = out.get(powers, Fraction(0)) + sign * coefficient

    result: Polynomial = {}
    try:
        terms(_tree(text), 1, result)
    except RecursionError:
        raise NotAllowed("nested too deeply") from None
    return {powers: c for powers, c in result.items() if c != 0}


# ----- real functions of one variable -------------------------------------------------------
FUNCTIONS: dict[str, Callable[..., float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "log": math.log, "ln": math.log,
    "sqrt": math.sqrt, "asin": math.asin, "acos": math.acos, "atan": math.atan, "sinh": math.sinh,
    "cosh": math.cosh, "tanh": math.tanh, "Abs": abs, "abs": abs, "sec": lambda v: 1 / math.cos(v),
    "csc": lambda v: 1 / math.sin(v), "cot": lambda v: 1 / math.tan(v),
}
CONSTANTS = {"E": math.e, "pi": math.pi}
_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b,
}


def compile_function(text: str, variable: str, constant: str | None = "C") -> Callable[[float, float], float]:
    """`text` as f(x, c) built from numbers, `variable`, the integration `constant`, E, pi, + - * / **
    and FUNCTIONS. Checked once here; evaluating may raise ArithmeticError/ValueError at a point
    outside the domain (the caller skips such points) and returns a float, never a complex."""
    def build(node: ast.AST) -> Callable[[float, float], float]:
        value = _number(node)
        if value is not None:
            number = float(value)
            return lambda x, c: number
        if isinstance(node, ast.Name):
            if node.id == variable:
                return lambda x, c: x
            if node.id == constant:
                return lambda x, c: c
            if node.id in CONSTANTS:
                fixed = CONSTANTS[node.id]
                return lambda x, c: fixed
            raise NotAllowed(f"unknown name {node.id!r}")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = build(node.operand)
            return (lambda x, c: -inner(x, c)) if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            op, left, right = _BINARY[type(node.op)], build(node.left), build(node.right)
            return lambda x, c: _real(op(left(x, c), right(x, c)))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS
                and len(node.args) == 1 and not node.keywords):
            function, argument = FUNCTIONS[node.func.id], build(node.args[0])
            return lambda x, c: _real(function(argument(x, c)))
        raise NotAllowed(f"{ast.dump(node)[:60]} is not allowed")

    try:
        return build(_tree(text))
    except RecursionError:
        raise NotAllowed("nested too deeply") from None


def _real(value: Any) -> float:
    if isinstance(value, complex) or not math.isfinite(value) or abs(value) > 1e150:
        raise ValueError("outside the real domain")
    return float(value)


# Near zero (asin(3*x) lives in |x| < 1/3), and out to about +-20 ((x - 9)**(3/2) lives above 9).
SAMPLE_POINTS = (0.05, 0.13, 0.21, 0.29, 0.37, 0.61, 0.89, 1.27, 1.73, 2.31, 2.93, 3.37, 3.71, 4.87, 5.51, 6.13, 8.9,
                 9.4, 10.6, 11.9, 13.3, 15.7, 19.1, -0.07, -0.17, -0.29, -0.41, -1.19, -2.23, -3.17, -3.53, -4.61,
                 -5.9, -7.33, -8.4, -9.7, -11.3, -12.6, -14.9, -18.2)


def same_up_to_constant(f: Callable[[float, float], float], g: Callable[[float, float], float],
                        constants: tuple[float, ...] = (0.0, 1.37), min_points: int = 4) -> bool:
    """True when f - g is the same number at every sample point where both are defined (at least
    `min_points` of them), whatever value the integration constant takes in f. Every pair of points is
    compared with a tolerance scaled by the values at those two points, so a large value at one point
    cannot hide a difference between two small ones."""
    for c in constants:
        points: list[tuple[float, float]] = []  # (f - g, |f| + |g|) per defined point
        for x in SAMPLE_POINTS:
            try:
                fx, gx = f(x, c), g(x, 0.0)
            except (ArithmeticError, ValueError, TypeError, RecursionError):
                continue
            points.append((fx - gx, abs(fx) + abs(gx)))
        if len(points) < min_points:
            return False
        for i, (di, si) in enumerate(points):
            for dj, sj in points[i + 1:]:
                if abs(di - dj) > 1e-8 * (si + sj) + 1e-12:
                    return False
    return True


def derivative_matches(f: Callable[[float, float], float], integrand: Callable[[float, float], float],
                       min_points: int = 4) -> bool:
    """True when f' (central differences) equals `integrand` at the sample points where both are defined:
    for tasks whose reference antiderivative is not in closed form. Looser than same_up_to_constant."""
    matched = 0
    for x in SAMPLE_POINTS:
        h = 1e-5 * max(1.0, abs(x))
        try:
            slope = (f(x + h, 0.0) - f(x - h, 0.0)) / (2 * h)
            target = integrand(x, 0.0)
        except (ArithmeticError, ValueError, TypeError, RecursionError):
            continue
        if abs(slope - target) > 1e-4 * (1.0 + abs(target)):
            return False
        matched += 1
    return matched >= min_points

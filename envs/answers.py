"""Answer extraction shared by the text-answer envs (gsm8k, math): `\\boxed{}` with
balanced braces, numbers with thousands separators, all in linear time."""

from __future__ import annotations

import re
from fractions import Fraction

MAX_NUMBER_DIGITS = 40
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def last_boxed(text: str, limit: int = 10_000) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`) with balanced braces."""
    for marker in ("\\boxed{", "\\fbox{"):
        start = text.rfind(marker)
        if start >= 0:
            break
    else:
        return None
    depth, i = 1, start + len(marker)
    end = min(len(text), i + limit)
    while i < end:
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + len(marker) : i]
        i += 1
    return None


def normalize_numeric(text: str) -> str:
    """Drop what GSM8K answers wear around a number: $, \\$, thousands commas, units in \\text{}, %, a final period."""
    out = text.strip()
    boxed = last_boxed(out)
    if boxed is not None:
        out = boxed
    out = re.sub(r"\\text\{[^{}]*\}", " ", out)
    out = out.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    out = out.replace("\\!", "").replace("{,}", ",")
    out = _THOUSANDS.sub("", out)
    return out.strip().rstrip(".").strip()


def numbers_in(text: str, limit: int = 50) -> list[Fraction]:
    """Numeric values found in `text` (at most `limit`); over-long literals are skipped."""
    values: list[Fraction] = []
    for match in _NUMBER.finditer(text):
        token = match.group()
        if len(token) > MAX_NUMBER_DIGITS:
            continue
        try:
            values.append(Fraction(token))
        except (ValueError, ZeroDivisionError):
            continue
        if len(values) >= limit:
            break
    return values


def as_number(text: str) -> Fraction | None:
    """The single number `text` states (after normalisation), or None if it states zero or several."""
    normalized = normalize_numeric(text)
    if len(normalized) > 200:
        return None
    distinct = set(numbers_in(normalized))
    return distinct.pop() if len(distinct) == 1 else None


def format_number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else str(float(value))

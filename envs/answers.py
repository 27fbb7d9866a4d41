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


def all_boxed(text: str, limit: int = 64) -> list[str] | None:
    """Contents of every `\\boxed{...}` / `\\fbox{...}` in order (at most `limit`), in one pass.

    None when a box is never closed: an unfinished box is not an answer. Boxes nested in
    a box belong to the outer one (`\\boxed{\\boxed{5}}` is one answer, `\\boxed{5}`).
    """
    found: list[str] = []
    pos = 0
    while len(found) < limit:
        starts = [(at, marker) for marker in _BOX_MARKERS if (at := text.find(marker, pos)) >= 0]
        if not starts:
            break
        start, marker = min(starts)
        depth, i = 1, start + len(marker)
        while i < len(text) and depth:
            ch = text[i]
            depth += 1 if ch == "{" else -1 if ch == "}" else 0
            i += 1
        if depth:
            return None
        inner = text[start + len(marker) : i - 1]
        nested = all_boxed(inner, 1) if any(m in inner for m in _BOX_MARKERS) else None
        found.append(nested[0] if nested and inner.strip().startswith(_BOX_MARKERS) else inner)
        pos = i
    return found


_BOX_MARKERS = ("\\boxed{", "\\fbox{")
_UNIT = re.compile(r"^(?P<value>.*?[\d}])\s*(?:\\[,;: !]|~)*\s*\\(?:text|mbox|mathrm|textrm)\{\s*[A-Za-z][A-Za-z .]*\}"
                   r"(?:\^\{?[23]\}?)?\s*$", re.DOTALL)
_DEGREE = re.compile(r"\s*(?:\^\s*\{?\s*\\circ\s*\}?|°|\\degree)\s*(?:\\text\{\s*[CF]\s*\}|[CF](?![A-Za-z]))?")
_GROUP_MARKS = re.compile(r"(?<=\d)(?:\{,\}|,\\!|\\,|\\ |\\!|~|[\u2009\u202f\u00a0])(?=\d)")
_SPACED_THIN_GROUP = re.compile(r"(?<=\d)(?:,\\!|\{,\})\s+(?=\d{3}(?!\d))")
_COMMA_GROUPED = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SPACE_GROUPED = re.compile(r"-?\d{1,3}(?: \d{3})+(?:\.\d+)?")


def plain_value(latex: str) -> str:
    """The value a final answer states, without what it wears around it.

    Drops currency (`\\$`, `$` signs inside the value), `\\%`, a trailing unit in
    `\\text{}`/`\\mbox{}` after a number, degree signs, and thousands separators written
    `{,}`, `,\\!`, `\\,`, thin or no-break spaces. Plain `,` and plain spaces count as
    thousands separators only when the whole value is grouped by threes (`32,348`,
    `1 000`); a decimal comma (`1000,99`) is left alone and reads as two numbers.
    Used on gold and prediction alike, so the two meet in the same form.
    """
    out = _SPACED_THIN_GROUP.sub("", latex.strip())  # MATH's `32,\! 349`: the space is part of the separator
    out = out.replace("\\$", "").replace("\\%", "").replace("%", "").replace("\\!", "")
    out = _DEGREE.sub("", out)
    unit = _UNIT.match(out)
    if unit and re.search(r"\d", unit.group("value")):
        out = unit.group("value")
    out = _GROUP_MARKS.sub("", out).strip()
    if _COMMA_GROUPED.fullmatch(out):
        out = out.replace(",", "")
    elif _SPACE_GROUPED.fullmatch(out):
        out = out.replace(" ", "")
    return out


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


MAX_MENTIONS = 3


def as_number(text: str) -> Fraction | None:
    """The single number `text` states (after normalisation), or None if it states zero or several, or
    repeats it more than MAX_MENTIONS times ("$18, that is 18 dollars" is one answer; fifty 18s are not)."""
    normalized = normalize_numeric(text)
    if len(normalized) > 200:
        return None
    mentioned = numbers_in(normalized)
    distinct = set(mentioned)
    return distinct.pop() if len(distinct) == 1 and len(mentioned) <= MAX_MENTIONS else None


def format_number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else str(float(value))

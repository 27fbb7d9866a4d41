"""math-verify, called the safe way.

math-verify's timeouts are SIGALRM-based: they raise in threads, silently fail
with float values, and cancel an outer alarm. So: integer timeouts only, only
from a process's main thread (the scoring engine's workers), and the engine's
hard per-item limit as the real bound. Gold is parsed first and goes first in
`verify(gold, pred)` (X-R1 had the order reversed, which lets an echoed
inequality match an interval gold).
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Any, Callable, TypeVar

from reasongym.errors import VerifierTimeout

INNER_TIMEOUT = 3  # seconds, int: math-verify's alarm() silently fails on floats
T = TypeVar("T")

logging.getLogger("math_verify").setLevel(logging.ERROR)
logging.getLogger("latex2sympy2_extended").setLevel(logging.ERROR)


def _bounded(what: str, call: Callable[[], T]) -> T:
    """math-verify reports its own timeout as "no parse" ([] or False), and its alarm can even be swallowed
    (raised inside a gc callback). Either way the call has then run for INNER_TIMEOUT: that is a timeout,
    not an unparseable or wrong answer, so say so (and keep it out of parse_gold's cache)."""
    _warm_up()
    start = time.monotonic()
    result = call()
    if time.monotonic() - start >= INNER_TIMEOUT:
        raise VerifierTimeout(f"math-verify {what} ran past its {INNER_TIMEOUT} s budget")
    return result


@lru_cache(maxsize=1)
def _warm_up() -> None:
    """math-verify's first parse and verify in a process import sympy and build the LaTeX parser: seconds on a
    slow box (a first gold parse took over 3 s in CI under heavy CPU steal). Done once, untimed, so the
    budget measures the answer's own work, not the process's start-up."""
    from math_verify import parse, verify

    gold, pred = _configs()
    verify(parse("$1$", extraction_config=gold, parsing_timeout=INNER_TIMEOUT),
           parse("$\\frac{2}{2}$", extraction_config=pred, parsing_timeout=INNER_TIMEOUT), timeout_seconds=INNER_TIMEOUT)


@lru_cache(maxsize=1)
def _configs() -> tuple[Any, Any]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    gold = [LatexExtractionConfig(), ExprExtractionConfig()]
    pred = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    return gold, pred


@lru_cache(maxsize=4096)
def parse_gold(gold: str) -> tuple:
    """Parsed gold answer; empty when math-verify cannot turn it into a math object.

    math-verify falls back to the raw string when sympy conversion fails; a
    string-only gold would then be matched by string equality, so it counts as
    unparseable here (the task is skipped, never rewarded by accident).
    """
    from math_verify import parse

    from envs.answers import all_boxed, plain_value

    boxes = all_boxed(gold) if "\\boxed" in gold else None
    value = ", ".join(boxes) if boxes else gold  # `\\boxed{1}\\boxed{2}`: one gold of two parts
    has_delimiters = "$" in value.replace("\\$", "")
    text = value if has_delimiters else f"${plain_value(value)}$"  # same normal form as predictions
    parsed = tuple(_bounded("gold parse", lambda: parse(text, extraction_config=_configs()[0],
                                                        parsing_timeout=INNER_TIMEOUT)))
    return parsed if any(not isinstance(item, str) for item in parsed) else ()


def parse_prediction(answer: str) -> list:
    """math-verify's parse of model text; [] (unparseable) when math-verify raises on it, so a completion
    never yields Outcome.ERROR. A timeout still propagates."""
    from math_verify import parse

    text = answer if ("$" in answer or "\\boxed" in answer or "\\(" in answer or "\\[" in answer) else f"${answer}$"
    try:
        return _bounded("parse", lambda: parse(text, extraction_config=_configs()[1], parsing_timeout=INNER_TIMEOUT))
    except VerifierTimeout:
        raise
    except Exception:  # noqa: BLE001 - math-verify / sympy choking on model text: the answer is unparseable
        return []


def equivalent(gold_parsed: tuple, pred_parsed: list) -> bool:
    """math-verify's verdict; False (wrong) when it raises comparing the two."""
    from math_verify import verify

    try:
        return bool(_bounded("verify", lambda: verify(list(gold_parsed), pred_parsed, timeout_seconds=INNER_TIMEOUT)))
    except VerifierTimeout:
        raise
    except Exception:  # noqa: BLE001 - an answer math-verify cannot compare is not shown equal
        return False

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
from functools import lru_cache
from typing import Any

INNER_TIMEOUT = 3  # seconds, int: math-verify's alarm() silently fails on floats

logging.getLogger("math_verify").setLevel(logging.ERROR)
logging.getLogger("latex2sympy2_extended").setLevel(logging.ERROR)


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

    from envs.answers import last_boxed, plain_value

    value = (last_boxed(gold) or gold) if "\\boxed" in gold else gold
    has_delimiters = "$" in value.replace("\\$", "")
    text = value if has_delimiters else f"${plain_value(value)}$"  # same normal form as predictions
    parsed = tuple(parse(text, extraction_config=_configs()[0], parsing_timeout=INNER_TIMEOUT))
    return parsed if any(not isinstance(item, str) for item in parsed) else ()


def parse_prediction(answer: str) -> list:
    from math_verify import parse

    text = answer if ("$" in answer or "\\boxed" in answer or "\\(" in answer or "\\[" in answer) else f"${answer}$"
    return parse(text, extraction_config=_configs()[1], parsing_timeout=INNER_TIMEOUT)


def equivalent(gold_parsed: tuple, pred_parsed: list) -> bool:
    from math_verify import verify

    return bool(verify(list(gold_parsed), pred_parsed, timeout_seconds=INNER_TIMEOUT))

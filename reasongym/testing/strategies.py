"""Hypothesis strategies for verifier testing.

    from reasongym.testing import strategies as rst
    @given(rst.completions(env))           # arbitrary and adversarial text
    @given(rst.gold_completions(env, task)) # the gold answer in every accepted surface form
    @given(rst.wrong_completions(env, task))# near misses that must not earn full reward

Gold and near-miss forms are built from the env's reference completion, its
declared `gold_answer_forms`, and the answer kind, so they work on custom envs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypothesis import strategies as st

from reasongym.parsing import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, read_layout
from reasongym.types import Task

if TYPE_CHECKING:
    from reasongym.env import Env

ADVERSARIAL = [
    "",
    "<answer>",
    "</answer>",
    "<answer></answer>",
    "<answer><answer>1</answer></answer>",
    "<think><think></think></think><answer>1</answer>",
    "</think>" * 50 + "<answer>" * 50,
    "<answer>9**9**9**9</answer>",
    "</think>\n<answer>9**9**9**9</answer>",
    "</think>\n<answer>95**87**64</answer>",
    "</think>\n<answer>" + "(" * 5000 + "1" + ")" * 5000 + "</answer>",
    "</think>\n<answer>" + "9" * 5000 + "</answer>",
    "</think>\n<answer>\\boxed{9^{9^{9^{9}}}}</answer>",
    "</think>\n<answer>$10^{10^{10^{10}}}$</answer>",
    "</think>\n<answer>\\frac{1}{0}</answer>",
    "</think>\n<answer>__import__('os').system('true')</answer>",
    "</think>\n<answer>(lambda: 7)()</answer>",
    "\x00\x01\x02</think><answer>\ud7ff\ufeff</answer>",
    "١٢٣ ²³ ①②",
    "a" * 1_000_000,
    "</think>\n<answer>1</answer>" * 2000,
]

_REASONING = st.text(alphabet=st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), max_size=80)


def tasks(env: "Env", split: str | None = None, pool: int = 200, seed: int = 0) -> st.SearchStrategy[Task]:
    """Tasks of `split` (default: train, or the env's only split), drawn from the first `pool` under `seed`."""
    return st.sampled_from(env.tasks(split=split, n=pool, seed=seed))


def completions(env: "Env") -> st.SearchStrategy[str]:
    """Arbitrary and adversarial text: unicode, control chars, tags, huge numbers, 1 MB strings."""
    tag = st.sampled_from([THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE, "\n", " ", "=", "**", "\\boxed{", "}"])
    number = st.integers(min_value=-(10**30), max_value=10**30).map(str)
    piece = st.one_of(st.text(max_size=40), tag, number)
    return st.one_of(
        st.sampled_from(ADVERSARIAL),
        st.lists(piece, max_size=30).map("".join),
        st.builds(lambda s, k: s * k, st.text(min_size=1, max_size=8), st.integers(1, 200_000)),
    )


def _gold_parts(env: "Env", task: Task) -> tuple[str, str, str] | None:
    """(text before the answer, gold answer text, text after) of the reference completion."""
    reference = env.reference_completion(task)
    if reference is None:
        return None
    layout = read_layout(env.template.scoring_prefix + reference)
    gold = layout.answer("last")
    if gold is None:
        return None
    cut = reference.rfind(ANSWER_OPEN + gold + ANSWER_CLOSE)
    if cut < 0:
        return None
    return reference[:cut], gold, reference[cut + len(ANSWER_OPEN + gold + ANSWER_CLOSE):]


def _with_think_text(reference: str, text: str) -> str:
    """Insert reasoning text right after the opening <think> (or at the start when it is pre-filled)."""
    at = reference.find(THINK_OPEN)
    if at < 0:
        return text + reference
    at += len(THINK_OPEN)
    return reference[:at] + text + reference[at:]


def gold_completions(env: "Env", task: Task) -> st.SearchStrategy[str]:
    """Well-formed completions with the gold answer in each surface form the env accepts."""
    parts = _gold_parts(env, task)
    if parts is None:
        return st.nothing()
    head, gold, tail = parts
    forms = [gold, f" {gold} ", *env.gold_answer_forms(task)]
    answer = st.sampled_from(forms)
    reasoning = st.lists(_REASONING, max_size=5).map("\n".join) if "think_whitespace" in env.invariances else st.just("")
    trailing = _REASONING.filter(lambda s: "<" not in s) if "trailing_text" in env.invariances else st.just("")

    def build(ans: str, think: str, after: str) -> str:
        body = head + ANSWER_OPEN + ans + ANSWER_CLOSE + tail
        return _with_think_text(body, think + "\n" if think else "") + after

    return st.builds(build, answer, reasoning, trailing)


def near_miss_answers(gold: str) -> list[str]:
    """Perturbations of a gold answer string: each digit changed, digits appended/dropped."""
    out: list[str] = []
    digits = [i for i, ch in enumerate(gold) if ch.isdigit()]
    for i in digits[:8]:
        new = "1" if gold[i] == "0" else str((int(gold[i]) + 1) % 10)
        out.append(gold[:i] + new + gold[i + 1 :])
    if digits:
        last = digits[-1]
        out.append(gold[: last + 1] + "7" + gold[last + 1 :])
        if len(digits) > 1:
            out.append(gold[:last] + gold[last + 1 :])
    return [o for o in out if o != gold]


_CHOICE_LETTERS = "ABCDEFGHIJ"
_OPPOSITES = {"true": "false", "false": "true", "yes": "no", "no": "yes", "valid": "invalid", "invalid": "valid"}


def _integer(text: str) -> int | None:
    stripped = text.strip()
    body = stripped[1:] if stripped[:1] == "-" else stripped
    return int(stripped) if body.isdigit() and len(body) < 40 else None


def other_values(gold: str, question: str = "", k: int = 6) -> list[str]:
    """Up to `k` values of the gold's kind that are not the gold: nearby integers (never 1, 0 or the gold's
    square, so "gold/other" is no disguised gold), the other choices of a letter answer, the opposite of a
    yes/no-style answer, other words of the question for a word answer, near misses otherwise."""
    g = gold.strip()
    number = _integer(g)
    if number is not None:
        out = [str(v) for v in (number + 1, number + 2, number - 1, number + 3, number - 2, number + 5, number + 7,
                                number + 11) if v not in (0, 1, number, number * number)]
    elif len(g) == 1 and g.upper() in _CHOICE_LETTERS:
        letters = _CHOICE_LETTERS[:max(4, _CHOICE_LETTERS.index(g.upper()) + 1)]
        out = [c if g.isupper() else c.lower() for c in letters if c != g.upper()]
    elif g.casefold() in _OPPOSITES:
        opposite = _OPPOSITES[g.casefold()]
        out = [opposite.capitalize() if g[:1].isupper() else opposite]
    elif g.isalpha():
        seen = {g.casefold()}
        out = []
        for word in (w.strip(".,;:!?()[]\"'") for w in question.split()):
            if word.isalpha() and word.casefold() not in seen:
                seen.add(word.casefold())
                out.append(word)
        out += [g[::-1], g + "s", g[1:] + g[0]]
    else:
        out = near_miss_answers(g) or [g[::-1], g + "1"]
    unique = list(dict.fromkeys(o for o in out if o.strip() and o.strip() != g))
    return unique[:k] or [g + "0"]


def same_kind(gold: str, question: str = "") -> st.SearchStrategy[str]:
    """Values of the gold's kind that are not the gold (integers near it, other choices, other words)."""
    return st.sampled_from(other_values(gold, question, k=12))


def wrong_completions(env: "Env", task: Task) -> st.SearchStrategy[str]:
    """Near misses: the reference completion with a perturbed answer, or the answer misplaced."""
    parts = _gold_parts(env, task)
    if parts is None:
        return st.nothing()
    head, gold, tail = parts
    wrong = env.wrong_answers(task) or near_miss_answers(gold)
    candidates = [head + ANSWER_OPEN + w + ANSWER_CLOSE + tail for w in wrong]
    candidates.append(head + tail)  # answer block removed
    candidates.append(_with_think_text(head, f"{ANSWER_OPEN}{gold}{ANSWER_CLOSE}\n") if THINK_CLOSE in head else head)
    return st.sampled_from(candidates)

"""Learned rewards beside the verifier.

- `--reward-model PATH`: an outcome reward model (ORM), a sequence-classification model with one
  output (e.g. a Bradley-Terry reward model): one score per completion.
- `--process-reward-model PATH`: a process reward model (PRM) in the Math-Shepherd style, a causal LM
  that reads a step tag after every reasoning step and scores the step by the probability of its
  "good" token against its "bad" token; the steps' scores are aggregated by min, last or mean.

Each becomes one more TRL reward function with its own weight, logged as `rewards/<name>/*`. A learned
reward can be gamed, so by default it pays nothing for a completion the verifier calls unparseable (or
could not score): a model cannot be paid for skipping the answer format. `--reward-model-pays-malformed
true` lifts that gate for both.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable

from reasongym.adapters.trl import completion_text
from reasongym.templates import plain_text
from reasongym.types import Outcome, Score
from trainers.common.recipes import RecipeError

UNPAID = (Outcome.UNPARSEABLE, Outcome.ERROR, Outcome.TIMEOUT)
AGGREGATES = ("min", "last", "mean")
BARE_TAG = re.compile(r"</?\w+>")
VerifierScores = Callable[[list, list, list[str], dict[str, Any]], list[Score]]


def _config(flag: str, path: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(os.path.expanduser(path))
    except Exception as exc:  # noqa: BLE001 - a missing folder, no config.json, no hub access: say what to pass
        raise RecipeError(f"{flag} {path!r} does not load ({type(exc).__name__}): pass a folder with the model's "
                          "config.json, tokenizer and weights") from None


def check_reward_model(path: str) -> None:
    """Pre-flight, before any model loads: the path has a config whose head gives exactly one score."""
    labels = getattr(_config("--reward-model", path), "num_labels", None)
    if labels != 1:
        raise RecipeError(f"--reward-model {path!r} has a head of {labels} outputs; an outcome reward model gives "
                          "one score per sequence (num_labels=1)")


def check_process_reward_model(path: str, step_tag: str, good: str, bad: str, aggregate: str) -> None:
    """Pre-flight: the PRM's config loads, its tokenizer reads the good and bad tokens as one token each
    (two different ones), and the step tag as at least one token."""
    from transformers import AutoTokenizer

    _config("--process-reward-model", path)
    if aggregate not in AGGREGATES:
        raise RecipeError(f"--prm-aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    tokenizer = AutoTokenizer.from_pretrained(os.path.expanduser(path))
    ids = {}
    for flag, text in (("--prm-good-token", good), ("--prm-bad-token", bad)):
        pieces = tokenizer.encode(text, add_special_tokens=False)
        if len(pieces) != 1:
            raise RecipeError(f"{flag} {text!r} is {len(pieces)} tokens for this PRM's tokenizer; it must be one "
                              "(Math-Shepherd: '+' and '-')")
        ids[flag] = pieces[0]
    if ids["--prm-good-token"] == ids["--prm-bad-token"]:
        raise RecipeError("--prm-good-token and --prm-bad-token are the same token")
    if not tokenizer.encode(step_tag, add_special_tokens=False):
        raise RecipeError(f"--prm-step-tag {step_tag!r} is no token at all for this PRM's tokenizer")


def steps_of(completion: str) -> list[str]:
    """The reasoning steps of a completion: its non-empty lines (Math-Shepherd writes one step per line),
    without lines that are a bare layout tag such as <think> or </think>."""
    lines = [line.strip() for line in completion.splitlines()]
    return [line for line in lines if line and not BARE_TAG.fullmatch(line)] or [completion.strip()]


def aggregate_steps(values: list[float], how: str) -> float:
    if not values:
        return 0.0
    if how == "min":
        return min(values)
    if how == "last":
        return values[-1]
    return sum(values) / len(values)


class LearnedReward:
    """A TRL reward function from a learned model, gated by the verifier's outcome."""

    __name__ = "learned_reward"

    def __init__(self, verifier_scores: VerifierScores, pays_malformed: bool) -> None:
        import torch

        self.device = torch.device(f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")
        self.verifier_scores, self.pays_malformed = verifier_scores, pays_malformed

    def values(self, prompts: list[str], completions: list[str]) -> list[float]:
        raise NotImplementedError

    def __call__(self, prompts: list, completions: list, task: list[str], **kwargs: Any) -> list[float | None]:
        values = self.values([plain_text(p) for p in prompts], [completion_text(c) for c in completions])
        if self.pays_malformed:
            return values
        verdicts = self.verifier_scores(prompts, completions, task, kwargs)
        return [0.0 if s.outcome in UNPAID else v for v, s in zip(values, verdicts)]


def _tokenizer(folder: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class OutcomeRewardModel(LearnedReward):
    """The reward model's score of prompt + completion."""

    __name__ = "reward_model"

    def __init__(self, path: str, verifier_scores: VerifierScores, pays_malformed: bool = False,
                 batch_size: int = 16, max_length: int = 2048) -> None:
        from transformers import AutoModelForSequenceClassification

        super().__init__(verifier_scores, pays_malformed)
        folder = os.path.expanduser(path)
        self.tokenizer = _tokenizer(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).to(self.device).eval()
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.batch_size, self.max_length = batch_size, max_length

    def score_texts(self, texts: list[str]) -> list[float]:
        import torch

        values: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start:start + self.batch_size], return_tensors="pt", padding=True,
                                   truncation=True, max_length=self.max_length).to(self.device)
            with torch.no_grad():
                values += self.model(**batch).logits[:, 0].float().tolist()
        return values

    def values(self, prompts: list[str], completions: list[str]) -> list[float]:
        return self.score_texts([p + c for p, c in zip(prompts, completions)])


class ProcessRewardModel(LearnedReward):
    """Math-Shepherd style: prompt, then every step followed by the step tag; a step's score is
    P(good) / (P(good) + P(bad)) at the tag's last token; the completion's is their min, last or mean."""

    __name__ = "process_reward_model"

    def __init__(self, path: str, verifier_scores: VerifierScores, pays_malformed: bool = False,
                 step_tag: str = " ки", good: str = "+", bad: str = "-", aggregate: str = "min",
                 max_length: int = 4096) -> None:
        from transformers import AutoModelForCausalLM

        super().__init__(verifier_scores, pays_malformed)
        folder = os.path.expanduser(path)
        self.tokenizer = _tokenizer(folder)
        self.model = AutoModelForCausalLM.from_pretrained(folder).to(self.device).eval()
        self.tag_ids = self.tokenizer.encode(step_tag, add_special_tokens=False)
        self.good_id, self.bad_id = (self.tokenizer.encode(t, add_special_tokens=False)[0] for t in (good, bad))
        self.aggregate, self.max_length = aggregate, max_length

    def encode(self, prompt: str, steps: list[str]) -> tuple[list[int], list[int]]:
        """Token ids of prompt + (step + tag) per step, and the position of each tag's last token
        (steps past max_length are dropped, from the end)."""
        ids = self.tokenizer.encode(prompt, add_special_tokens=False)
        positions: list[int] = []
        for step in steps:
            piece = self.tokenizer.encode(("\n" if positions else "") + step, add_special_tokens=False) + self.tag_ids
            if len(ids) + len(piece) > self.max_length:
                break
            ids += piece
            positions.append(len(ids) - 1)
        return ids, positions

    def step_scores(self, prompt: str, completion: str) -> list[float]:
        import torch

        ids, positions = self.encode(prompt, steps_of(completion))
        if not positions:
            return []
        with torch.no_grad():
            logits = self.model(torch.tensor([ids], device=self.device)).logits[0, positions]
        pair = torch.softmax(logits[:, [self.good_id, self.bad_id]].float(), dim=-1)
        return pair[:, 0].tolist()

    def values(self, prompts: list[str], completions: list[str]) -> list[float]:
        return [aggregate_steps(self.step_scores(p, c), self.aggregate) for p, c in zip(prompts, completions)]

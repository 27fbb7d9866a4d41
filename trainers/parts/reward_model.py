"""A learned outcome reward beside the verifier: `--reward-model PATH` (a sequence-classification model
with one output, e.g. a Bradley-Terry reward model).

It becomes one more TRL reward function, logged as `rewards/reward_model/*`, weighted by
`--reward-model-weight`. A learned reward can be gamed, so by default it pays nothing for a completion
the verifier calls unparseable (or could not score): the model cannot be paid for skipping the
answer format. `--reward-model-pays-malformed true` lifts that gate.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from reasongym.adapters.trl import completion_text
from reasongym.templates import plain_text
from reasongym.types import Outcome, Score
from trainers.common.recipes import RecipeError

UNPAID = (Outcome.UNPARSEABLE, Outcome.ERROR, Outcome.TIMEOUT)


def check_reward_model(path: str) -> None:
    """Pre-flight, before any model loads: the path has a config whose head gives exactly one score."""
    from transformers import AutoConfig

    folder = os.path.expanduser(path)
    try:
        config = AutoConfig.from_pretrained(folder)
    except Exception as exc:  # noqa: BLE001 - a missing folder, no config.json, no hub access: say what to pass
        raise RecipeError(f"--reward-model {path!r} does not load ({type(exc).__name__}): pass a folder with a "
                          "sequence-classification model's config.json and weights") from None
    labels = getattr(config, "num_labels", None)
    if labels != 1:
        raise RecipeError(f"--reward-model {path!r} has a head of {labels} outputs; an outcome reward model gives "
                          "one score per sequence (num_labels=1)")


class OutcomeRewardModel:
    """TRL reward function: the reward model's score of prompt + completion, gated by the verifier's outcome."""

    __name__ = "reward_model"

    def __init__(self, path: str, verifier_scores: Callable[[list, list, list[str], dict[str, Any]], list[Score]],
                 pays_malformed: bool = False, batch_size: int = 16, max_length: int = 2048) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = torch.device(f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")
        folder = os.path.expanduser(path)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).to(self.device).eval()
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.verifier_scores = verifier_scores
        self.pays_malformed = pays_malformed
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

    def __call__(self, prompts: list, completions: list, task: list[str], **kwargs: Any) -> list[float | None]:
        texts = [plain_text(p) + completion_text(c) for p, c in zip(prompts, completions)]
        values = self.score_texts(texts)
        if self.pays_malformed:
            return values
        verdicts = self.verifier_scores(prompts, completions, task, kwargs)
        return [0.0 if s.outcome in UNPAID else v for v, s in zip(values, verdicts)]

"""A learned outcome reward beside the verifier: pre-flight checks, the malformed-answer gate, a GRPO run."""

from __future__ import annotations

import json
import os

import pytest

import reasongym as rg
from reasongym.adapters.trl import RewardAdapter
from tests.conftest import run_in_process
from trainers.common.recipes import RecipeError
from trainers.parts.reward_model import OutcomeRewardModel, check_reward_model


def _reward_model(policy_dir: str, out: str, labels: int = 1) -> str:
    """A tiny sequence-classification model on the tiny policy's tokenizer and shape, built here."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(policy_dir)
    config.num_labels = labels
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    model.config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        model.score.weight.normal_(0, 1.0)  # scores far from 0, so a gated 0 cannot pass by chance
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_reward_models_that_cannot_give_one_score_fail_before_training(tiny_model, tmp_path):
    with pytest.raises(RecipeError, match="does not load"):
        check_reward_model(str(tmp_path / "missing"))
    two = _reward_model(tiny_model, str(tmp_path / "two"), labels=2)
    with pytest.raises(RecipeError, match="head of 2 outputs"):
        check_reward_model(two)


def test_the_learned_reward_pays_nothing_for_malformed_answers_unless_asked(tiny_model, tmp_path):
    path = _reward_model(tiny_model, str(tmp_path / "rm"))
    check_reward_model(path)
    env = rg.make("countdown-3to4")
    task = env.tasks("test", n=1)[0]
    adapter = RewardAdapter(env, log_samples=False)
    prompt = env.prompt(task)
    completions = [env.reference_completion(task), "I will not use any tags at all"]
    gated = OutcomeRewardModel(path, adapter.scores_for)
    values = gated([prompt, prompt], completions, [task.to_json()] * 2)
    raw = OutcomeRewardModel(path, adapter.scores_for, pays_malformed=True)([prompt, prompt], completions,
                                                                            [task.to_json()] * 2)
    assert values[0] == pytest.approx(raw[0]) and values[0] != 0.0
    assert values[1] == 0.0 and raw[1] != 0.0


def test_grpo_logs_the_reward_model_as_its_own_component(tiny_model, tmp_path):
    path = _reward_model(tiny_model, str(tmp_path / "rm"))
    out = tmp_path / "run"
    proc = run_in_process(["trainers.grpo", "--env", "countdown-3to4", "--model", tiny_model, "--config", "none",
                           "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "4",
                           "--num_generations", "4", "--max_completion_length", "16", "--train-size", "16",
                           "--reward-model", path, "--reward-model-weight", "0.5", "--report_to", "none"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    logged = [r for r in rows if "rewards/reward_model/mean" in r]
    assert len(logged) == 2 and "rewards/correct/mean" in logged[-1]

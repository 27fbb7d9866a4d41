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


def _process_reward_model(policy_dir: str, out: str) -> str:
    """A tiny causal LM on the tiny policy's tokenizer, built here, standing in for a Math-Shepherd PRM."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(policy_dir)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)  # a different model from the policy: step scores away from 0.5
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(policy_dir).save_pretrained(out)
    return out


def test_process_reward_model_scores_each_step_at_its_tag(tiny_model, tmp_path):
    """Step scores equal P(good) / (P(good) + P(bad)) read by hand from one forward pass at each tag's last
    token; min, last and mean aggregate them; malformed answers get 0 unless asked."""
    import torch

    from trainers.parts.reward_model import ProcessRewardModel, aggregate_steps, check_process_reward_model, steps_of

    path = _process_reward_model(tiny_model, str(tmp_path / "prm"))
    check_process_reward_model(path, " ки", "+", "-", "min")
    env = rg.make("countdown-3to4")
    task = env.tasks("test", n=1)[0]
    adapter = RewardAdapter(env, log_samples=False)
    prm = ProcessRewardModel(path, adapter.scores_for)
    completion = "<think>\n3 + 4 = 7\n7 * 2 = 14\n</think>\n<answer>(3 + 4) * 2</answer>"
    scores = prm.step_scores("Q: reach 14", completion)
    assert steps_of(completion) == ["3 + 4 = 7", "7 * 2 = 14", "<answer>(3 + 4) * 2</answer>"]
    assert len(scores) == 3 and all(0.0 < s < 1.0 for s in scores)
    ids, positions = prm.encode("Q: reach 14", steps_of(completion))
    with torch.no_grad():
        logits = prm.model(torch.tensor([ids])).logits[0]
    for score, at in zip(scores, positions):
        good, bad = logits[at, prm.good_id].exp(), logits[at, prm.bad_id].exp()
        assert score == pytest.approx(float(good / (good + bad)), rel=1e-4)
    assert aggregate_steps(scores, "min") == min(scores) and aggregate_steps(scores, "last") == scores[-1]
    assert min(scores) <= aggregate_steps(scores, "mean") <= max(scores)
    prompt = env.prompt(task)
    values = prm([prompt, prompt], [env.reference_completion(task), "no tags here"], [task.to_json()] * 2)
    assert values[0] > 0.0 and values[1] == 0.0


def test_process_reward_models_that_cannot_score_steps_fail_before_training(tiny_model, tmp_path):
    from trainers.parts.reward_model import check_process_reward_model

    with pytest.raises(RecipeError, match="does not load"):
        check_process_reward_model(str(tmp_path / "missing"), " ки", "+", "-", "min")
    path = _process_reward_model(tiny_model, str(tmp_path / "prm"))
    with pytest.raises(RecipeError, match="--prm-good-token .* tokens"):
        check_process_reward_model(path, " ки", "+-*/ and a long phrase", "-", "min")
    with pytest.raises(RecipeError, match="same token"):
        check_process_reward_model(path, " ки", "+", "+", "min")
    with pytest.raises(RecipeError, match="--prm-aggregate must be one of"):
        check_process_reward_model(path, " ки", "+", "-", "median")


@pytest.mark.parametrize("kind", ["reward_model", "process_reward_model"])
def test_grpo_logs_a_learned_reward_as_its_own_component(kind, tiny_model, tmp_path):
    if kind == "reward_model":
        flags = ["--reward-model", _reward_model(tiny_model, str(tmp_path / kind)), "--reward-model-weight", "0.5"]
    else:
        flags = ["--process-reward-model", _process_reward_model(tiny_model, str(tmp_path / kind)),
                 "--process-reward-model-weight", "0.3", "--prm-aggregate", "mean"]
    out = tmp_path / "run"
    proc = run_in_process(["trainers.grpo", "--env", "countdown-3to4", "--model", tiny_model, "--config", "none",
                           "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "4",
                           "--num_generations", "4", "--max_completion_length", "16", "--train-size", "16",
                           *flags, "--report_to", "none"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    logged = [r for r in rows if f"rewards/{kind}/mean" in r]
    assert len(logged) == 2 and "rewards/correct/mean" in logged[-1]

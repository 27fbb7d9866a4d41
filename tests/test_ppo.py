"""PPO: the math against hand-computed values, a learning test, CLI runs (plain, resume, ZeRO-3 on CPU)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import reasongym as rg
from tests.conftest import run_in_process, run_module
from trainers.parts import ppo_core as core


def test_gae_hand_computed():
    adv, ret = core.gae(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.6, 0.7]]), torch.ones(1, 3), 1.0, 0.95)
    assert torch.allclose(adv, torch.tensor([[0.46575, 0.385, 0.3]]))
    assert torch.allclose(ret, torch.tensor([[0.96575, 0.985, 1.0]]))
    adv, _ = core.gae(torch.tensor([[0.0, 1.0, 5.0]]), torch.tensor([[0.5, 0.6, 9.0]]),
                      torch.tensor([[1.0, 1.0, 0.0]]), 1.0, 0.95)
    assert torch.allclose(adv, torch.tensor([[0.48, 0.4, 0.0]]))  # padding contributes nothing


def test_whitening_ignores_padding():
    out = core.masked_whiten(torch.tensor([1.0, 2.0, 3.0, 100.0]), torch.tensor([1.0, 1.0, 1.0, 0.0]))
    assert torch.allclose(out, torch.tensor([-1.0, 0.0, 1.0, 0.0]), atol=1e-6)


def test_clipped_policy_loss():
    loss, clipfrac = core.policy_loss(torch.tensor([[math.log(1.5)]]), torch.zeros(1, 1), torch.ones(1, 1),
                                      torch.ones(1, 1), 0.2)
    assert loss.item() == pytest.approx(-1.2) and clipfrac.item() == 1.0
    loss, _ = core.policy_loss(torch.tensor([[math.log(0.5)]]), torch.zeros(1, 1), -torch.ones(1, 1),
                               torch.ones(1, 1), 0.2)
    assert loss.item() == pytest.approx(0.8)
    loss, clipfrac = core.policy_loss(torch.tensor([[math.log(1.1)]]), torch.zeros(1, 1), torch.ones(1, 1),
                                      torch.ones(1, 1), 0.2)
    assert loss.item() == pytest.approx(-1.1) and clipfrac.item() == 0.0


def test_clipped_value_loss():
    loss, clipfrac = core.value_loss(torch.tensor([[1.0]]), torch.tensor([[0.5]]), torch.tensor([[2.0]]),
                                     torch.ones(1, 1), 0.2)
    assert loss.item() == pytest.approx(0.845) and clipfrac.item() == 1.0


def test_token_logprobs_hand_computed():
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])  # uniform, then p = (0.75, 0.25)
    tokens = torch.tensor([[1, 0]])
    assert torch.allclose(core.token_logprobs(logits, tokens), torch.tensor([[math.log(0.5), math.log(0.75)]]))
    hot = core.token_logprobs(logits, tokens, temperature=0.5)  # logits / 0.5: p = (0.9, 0.1) on the second token
    assert torch.allclose(hot[0, 1], torch.tensor(math.log(0.9)), atol=1e-6)


def test_kl_estimators_and_token_rewards():
    logp, ref = torch.log(torch.tensor([0.5])), torch.log(torch.tensor([0.25]))
    assert core.kl_penalty(logp, ref, "k1").item() == pytest.approx(math.log(2))
    assert core.kl_penalty(logp, ref, "k3").item() == pytest.approx(0.5 - 1 + math.log(2))
    assert core.kl_penalty(logp, logp, "k3").item() == 0.0
    rewards = core.token_rewards(torch.tensor([1.0]), torch.tensor([[0.1, 0.2, 0.3]]),
                                 torch.tensor([[1.0, 1.0, 0.0]]), 0.5)
    assert torch.allclose(rewards, torch.tensor([[-0.05, 0.9, 0.0]]))


def test_adaptive_kl_moves_toward_target():
    ctl = core.AdaptiveKL(0.1, target=1.0, horizon=100)
    assert ctl.update(3.0, 10) > 0.1
    low = core.AdaptiveKL(0.1, target=1.0, horizon=100)
    assert low.update(0.1, 10) < 0.1


class DigitsEnv(rg.Env):
    """Learnable in a few dozen steps: reward = share of characters that are digits."""

    templates = {"t": rg.PromptTemplate("t", "text", text="Using the numbers {n}, count:")}
    default_template = "t"
    reward_modes = {"default": {"correct": 1.0}}

    def _task_at(self, split, index, seed):
        return rg.Task(id=f"d{index}", question={"n": [index % 7, 3]}, answer=None)

    def verify(self, text, task):
        share = sum(ch.isdigit() for ch in text) / max(1, len(text))
        return self.make_score({"correct": share}, rg.Outcome.CORRECT if share > 0.5 else rg.Outcome.WRONG)


@pytest.mark.slow
def test_ppo_learns_a_dense_reward(tiny_model, tmp_path):
    from trainers.ppo import PPOConfig, PPOTrainer

    env = DigitsEnv()
    config = PPOConfig(output_dir=str(tmp_path / "ppo"), max_steps=40, learning_rate=3e-3, per_device_train_batch_size=16,
                       mini_batch_size=8, ppo_epochs=2, max_completion_length=8, kl_coef=0.0, use_cpu=True, seed=0,
                       logging_steps=5)
    trainer = PPOTrainer(env, tiny_model, config, env.tasks(n=64))
    history = trainer.train()
    first = sum(h["reward"] for h in history[:8]) / 8
    last = sum(h["reward"] for h in history[-8:]) / 8
    assert last > first + 0.15, (first, last)
    for key in ("reward", "rewards/correct/mean", "completions/mean_length", "kl", "entropy", "clipfrac"):
        assert key in history[-1]


PPO_FLAGS = ["--env", "countdown-3to4", "--per_device_train_batch_size", "4", "--mini_batch_size", "2", "--ppo_epochs", "1",
             "--max_completion_length", "16", "--train-size", "32"]


@pytest.mark.slow
def test_ppo_cli_checkpoints_and_resumes(tiny_model, tmp_path):
    out = tmp_path / "run"
    first = run_in_process(["trainers.ppo", "--model", tiny_model, "--output_dir", str(out), *PPO_FLAGS,
                       "--max_steps", "1", "--save_steps", "1"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (out / "checkpoint-1" / "ppo_state.json").exists()
    resumed = run_in_process(["trainers.ppo", "--model", tiny_model, "--output_dir", str(out), *PPO_FLAGS,
                         "--max_steps", "2", "--resume-from-checkpoint", str(out / "checkpoint-1")],
                         tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["step"] for r in records if "reward" in r] == [1, 2]
    assert any("train_steps_per_second" in r for r in records)
    assert (out / "model.safetensors").exists() and (out / "value_head.pt").exists()
    assert (out / "reward_curve.png").exists()


@pytest.mark.slow
def test_ppo_under_zero3_cpu(tiny_model, tmp_path):
    out = tmp_path / "z3"
    proc = run_module(["trainers.ppo", "--model", tiny_model, "--output_dir", str(out), *PPO_FLAGS,
                       "--max_steps", "2"], tmp_path, processes=2, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in open(out / "metrics.jsonl") if "reward" in line]
    assert [r["step"] for r in records] == [1, 2] and "kl" in records[-1]


def test_ppo_config_errors():
    from trainers.ppo import main

    assert main(["--env", "countdown-3", "--per_device_train_batch_size", "6", "--mini_batch_size", "4"]) == 2
    assert main(["--env", "nope"]) == 2

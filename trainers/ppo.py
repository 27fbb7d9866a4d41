"""PPO baseline on the env interface: actor-critic with a value head, GAE, clipped objective, KL to a reference.

    python -m trainers.ppo --env countdown-3to4 --model M [--config recipes/ppo/...yaml] [--field value ...]
    accelerate launch --config_file recipes/accelerate/zero3.yaml --num_processes N -m trainers.ppo ...

Design: the value head is a linear layer on the policy's last hidden state
(shared backbone). One model instead of two halves the memory and keeps ZeRO-3
sharding to a single engine; the cost is that value and policy gradients share
features, which `vf_coef` (0.1) keeps in check. The reference model is a frozen
copy of the initial policy. Rollouts use HF generate on the (gathered) policy.
Terminal reward = the env verifier's score; per-token reward = -kl_coef * KL.
"""

from __future__ import annotations

import json
import os
import random
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from rich.console import Console

import reasongym as rg
from reasongym.telemetry import MetricsWriter
from reasongym.templates import chat_to_text
from trainers.common import preflight
from trainers.common.cuda_attention import guard_training_attention
from trainers.common.recipes import pretrained_recipe
from trainers.common.cli import RecipeError, TrainerCLI, open_env, run_entry_point
from trainers.common.options import RENAMED, PPOOptions
from trainers.common.models import copy_load_hints, load_kwargs, load_tokenizer


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class PPOConfig:
    """PPO hyper-parameters, in TRL's naming where TRL has the same idea. Every field is also a
    `--flag` and a recipe key (recipes/ppo/*.yaml); `--help` lists them with this help."""

    output_dir: str = _f("outputs/ppo", "where metrics.jsonl, checkpoints and the final policy go")
    max_steps: int = _f(100, "PPO iterations (each: one rollout batch, then ppo_epochs of minibatch updates)")
    learning_rate: float = _f(1e-6, "AdamW learning rate of policy and value head")
    per_device_train_batch_size: int = _f(8, "prompts rolled out per process and iteration (one completion each)")
    mini_batch_size: int = _f(8, "sequences per gradient step; must divide per_device_train_batch_size")
    ppo_epochs: int = _f(4, "passes over each rollout batch")
    max_completion_length: int = _f(256, "new tokens per completion")
    temperature: float = _f(1.0, "sampling temperature of the rollouts (and of the log-probs)")
    top_p: float = _f(1.0, "nucleus sampling of the rollouts")
    gamma: float = _f(1.0, "discount per token in GAE")
    lam: float = _f(0.95, "GAE lambda: bias/variance trade-off of the advantages")
    clip_range: float = _f(0.2, "PPO ratio clip of the policy loss")
    clip_range_value: float = _f(0.2, "clip of the value update around the old values")
    vf_coef: float = _f(0.1, "weight of the value loss (policy and value share the backbone)")
    kl_coef: float = _f(0.05, "per-token KL penalty to the reference policy (initial value when adaptive)")
    kl_estimator: str = _f("k1", "k1 (log-ratio) or k3 (low-variance, always positive) KL estimate")
    adaptive_kl: bool = _f(False, "adapt kl_coef towards target_kl (Ziegler et al.)")
    target_kl: float = _f(6.0, "adaptive KL: target summed KL per sequence")
    kl_horizon: int = _f(10_000, "adaptive KL: horizon of the proportional controller, in sequences")
    whiten_advantages: bool = _f(True, "normalise advantages over the batch's completion tokens")
    max_grad_norm: float = _f(1.0, "gradient clipping (0 = off)")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    seed: int = _f(0, "torch seed (plus the process index) and prompt-sampling seed")
    logging_steps: int = _f(1, "write a metrics.jsonl row every N iterations")
    save_steps: int = _f(0, "save a resumable checkpoint every N iterations (0 = only the final policy)")
    bf16: bool = _f(False, "bf16 autocast on GPU (weights stay fp32)")
    use_cpu: bool = _f(False, "run on CPU even when a GPU is there")
    report_to: str = _f("none", "accelerate tracker: none, tensorboard, wandb, ...")

    def __post_init__(self) -> None:
        if self.per_device_train_batch_size % self.mini_batch_size:
            raise ValueError(f"per_device_train_batch_size {self.per_device_train_batch_size} must be a multiple of "
                             f"mini_batch_size {self.mini_batch_size}")
        if self.kl_estimator not in ("k1", "k3"):
            raise ValueError("kl_estimator must be 'k1' or 'k3'")


CLI = TrainerCLI("python -m trainers.ppo", "PPO (value head, GAE, clipped objective, KL to a reference).", PPOOptions,
                 PPOConfig, example="python -m trainers.ppo --env countdown-3to4 --model Qwen/Qwen2.5-0.5B-Instruct",
                 renamed=RENAMED["ppo"])


@contextmanager
def generation_model(model: Any, accelerator: Any):
    """The plain module to call `.policy.generate` on; under ZeRO-3 its shards are gathered first
    (every rank holds the full weights while generating, as TRL's ds3_gather_for_generation does)."""
    unwrapped = accelerator.unwrap_model(model)
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is not None and plugin.zero_stage == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(model.parameters())):
            yield unwrapped
    else:
        yield unwrapped


def policy_with_value_head(model_path: str, dtype: Any, bf16: bool = False):
    """The causal LM of `model_path` with a zero-initialised scalar value head on its last hidden state."""
    import torch
    from torch import nn
    from transformers import AutoModelForCausalLM

    class PolicyWithValueHead(nn.Module):
        """Causal LM + a scalar value per position, read from the last hidden state."""

        def __init__(self) -> None:
            super().__init__()
            self.policy = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, **load_kwargs(model_path, bf16))
            hidden = self.policy.config.hidden_size
            # same dtype as the policy: ZeRO-3 partitions all parameters as one flat buffer
            self.value_head = nn.Linear(hidden, 1, dtype=next(self.policy.parameters()).dtype)
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
            out = self.policy(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                              use_cache=False)
            hidden = out.hidden_states[-1]
            return out.logits, self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1)

    return PolicyWithValueHead()


class PPOTrainer:
    def __init__(self, env: rg.Env, model_path: str, config: PPOConfig, tasks: list[rg.Task],
                 console: Console | None = None):
        import torch
        from accelerate import Accelerator
        from transformers import AutoModelForCausalLM

        self.env, self.cfg, self.console = env, config, console or Console()
        self.model_path = model_path
        log_with = None if config.report_to in ("none", "", None) else config.report_to
        self.accelerator = Accelerator(cpu=config.use_cpu, mixed_precision="bf16" if config.bf16 else "no",
                                       log_with=log_with, project_dir=config.output_dir)
        ds_plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        if ds_plugin is not None:
            ds_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = config.mini_batch_size
            ds_plugin.deepspeed_config["gradient_accumulation_steps"] = 1
        torch.manual_seed(config.seed + self.accelerator.process_index)
        # fp32 master weights for policy + value head (one dtype, as ZeRO-3 requires); bf16 runs autocast.
        # The frozen reference only runs inference, so it may live in bf16.
        ref_dtype = torch.bfloat16 if config.bf16 else torch.float32
        self.tokenizer = load_tokenizer(model_path)
        model = policy_with_value_head(model_path, torch.float32, config.bf16)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        reference = AutoModelForCausalLM.from_pretrained(model_path, dtype=ref_dtype,
                                                         **load_kwargs(model_path, config.bf16)).eval()
        for p in reference.parameters():
            p.requires_grad_(False)
        if ds_plugin is not None:
            from trl.models.utils import prepare_deepspeed

            self.reference = prepare_deepspeed(reference, self.accelerator)
        else:
            self.reference = reference.to(self.accelerator.device)
        from trainers.parts.ppo_core import AdaptiveKL

        self.kl = AdaptiveKL(config.kl_coef, config.target_kl, config.kl_horizon)
        self.tasks = tasks
        self.step = 0
        self.history: list[dict[str, float]] = []
        from reasongym.scoring import default_engine

        self.engine = default_engine(env)
        if log_with:
            self.accelerator.init_trackers("reasongym-ppo", config=asdict(config))

    # ----- rollouts -------------------------------------------------------------
    def _prompts(self, step: int) -> list[rg.Task]:
        n = self.cfg.per_device_train_batch_size
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        rng = random.Random(self.cfg.seed * 1_000_003 + step)
        picks = rng.sample(range(len(self.tasks)), k=min(len(self.tasks), n * world))
        mine = picks[rank * n : (rank + 1) * n]
        return [self.tasks[i % len(self.tasks)] for i in mine] if mine else [self.tasks[0]] * n

    def rollout(self, tasks: list[rg.Task]) -> dict[str, Any]:
        import torch

        from reasongym.adapters.trl import render_prompt

        prompts = [chat_to_text(render_prompt(self.env, t, self.tokenizer), self.tokenizer) for t in tasks]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.accelerator.device)
        with generation_model(self.model, self.accelerator) as unwrapped, torch.no_grad():
            sequences = unwrapped.policy.generate(
                **enc, max_new_tokens=self.cfg.max_completion_length, do_sample=True, temperature=self.cfg.temperature,
                top_p=self.cfg.top_p, top_k=0, pad_token_id=self.tokenizer.pad_token_id)
        prompt_len = enc["input_ids"].shape[1]
        completion = sequences[:, prompt_len:]
        eos = self.tokenizer.eos_token_id
        is_eos = completion == eos
        first_eos = torch.where(is_eos.any(1), is_eos.float().argmax(1), torch.full_like(is_eos[:, 0], completion.shape[1],
                                                                                         dtype=torch.long))
        positions = torch.arange(completion.shape[1], device=completion.device).unsqueeze(0)
        mask = (positions <= first_eos.unsqueeze(1)).long()  # completion tokens up to and including the first EOS
        texts = self.tokenizer.batch_decode(completion.masked_fill(mask == 0, self.tokenizer.pad_token_id),
                                            skip_special_tokens=True)
        result = self.engine.score(self.env, texts, tasks)
        scores = torch.tensor([s.reward for s in result.scores], dtype=torch.float32, device=self.accelerator.device)
        attention = torch.cat([enc["attention_mask"], mask], dim=1)
        return {"sequences": sequences, "attention": attention, "mask": mask.float(), "prompt_len": prompt_len,
                "scores": scores, "texts": texts, "result": result}

    def _forward(self, model, batch: dict[str, Any]):
        from trainers.parts.ppo_core import token_logprobs

        logits, values = model(batch["sequences"], batch["attention"])
        start = batch["prompt_len"] - 1
        logits = logits[:, start:-1].float() / self.cfg.temperature
        logprobs = token_logprobs(logits, batch["sequences"][:, batch["prompt_len"]:])
        return logprobs, values[:, start:-1].float(), logits

    # ----- one PPO iteration ----------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        """One PPO iteration: roll out, score, compute advantages, update for ppo_epochs, report."""
        self.model.eval()
        batch = self.rollout(self._prompts(self.step))
        old_logprobs, old_values, kl, advantages, returns = self._advantages(batch)
        self.model.train()
        stats = self._update(batch, old_logprobs, old_values, advantages, returns)
        mean_kl = kl.sum(1).mean().item()
        if self.cfg.adaptive_kl:
            self.kl.update(mean_kl, batch["sequences"].shape[0] * self.accelerator.num_processes)
        self.step += 1
        scores = batch["result"].scores
        local = {
            "reward": batch["scores"].mean().item(),
            "completions/mean_length": batch["mask"].sum(1).mean().item(),
            "kl": mean_kl,
            "kl_coef": self.kl.value,
            **{f"rewards/{name}/mean": sum(s.components.get(name, 0.0) for s in scores) / len(scores)
               for name in self.env.reward_weights},
            **{k: sum(v) / max(1, len(v)) for k, v in stats.items()},
        }
        return self._reduce(local)

    def _advantages(self, batch: dict[str, Any]):
        """(old log-probs, old values, per-token KL, advantages, returns) of a rollout batch, without gradients."""
        import torch

        from trainers.parts import ppo_core as core

        cfg, mask = self.cfg, batch["mask"]
        with torch.no_grad():
            old_logprobs, old_values, _ = self._forward(self.model, batch)
            ref_logits = self.reference(input_ids=batch["sequences"], attention_mask=batch["attention"]).logits
            ref_logprobs = core.token_logprobs(ref_logits[:, batch["prompt_len"] - 1 : -1],
                                               batch["sequences"][:, batch["prompt_len"]:], cfg.temperature)
            kl = core.kl_penalty(old_logprobs, ref_logprobs, cfg.kl_estimator) * mask
            rewards = core.token_rewards(batch["scores"], kl, mask, self.kl.value)
            advantages, returns = core.gae(rewards, old_values, mask, cfg.gamma, cfg.lam)
            if cfg.whiten_advantages:
                advantages = core.masked_whiten(advantages, mask)
        return old_logprobs, old_values, kl, advantages, returns

    def _update(self, batch: dict[str, Any], old_logprobs, old_values, advantages, returns) -> dict[str, list[float]]:
        """ppo_epochs passes of clipped policy + value minibatch updates; per-minibatch statistics."""
        import torch

        from trainers.parts import ppo_core as core

        cfg, mask = self.cfg, batch["mask"]
        stats: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "clipfrac": [], "vf_clipfrac": [],
                                         "entropy": [], "approx_kl": []}
        n = batch["sequences"].shape[0]
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(n)
            for start in range(0, n, cfg.mini_batch_size):
                idx = order[start : start + cfg.mini_batch_size]
                mb = {"sequences": batch["sequences"][idx], "attention": batch["attention"][idx],
                      "prompt_len": batch["prompt_len"]}
                logprobs, values, logits = self._forward(self.model, mb)
                pl, clipfrac = core.policy_loss(logprobs, old_logprobs[idx], advantages[idx], mask[idx], cfg.clip_range)
                vl, vf_clipfrac = core.value_loss(values, old_values[idx], returns[idx], mask[idx], cfg.clip_range_value)
                self.accelerator.backward(pl + cfg.vf_coef * vl)
                if self.accelerator.sync_gradients and cfg.max_grad_norm:
                    self.accelerator.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad()
                with torch.no_grad():
                    for key, value in (("policy_loss", pl), ("value_loss", vl), ("clipfrac", clipfrac),
                                       ("vf_clipfrac", vf_clipfrac),
                                       ("entropy", core.masked_mean(core.entropy_from_logits(logits), mask[idx])),
                                       ("approx_kl", core.masked_mean(0.5 * (logprobs - old_logprobs[idx]) ** 2, mask[idx]))):
                        stats[key].append(value.item())
        return stats

    def _reduce(self, local: dict[str, float]) -> dict[str, float]:
        import torch

        keys = sorted(local)
        tensor = torch.tensor([local[k] for k in keys], device=self.accelerator.device)
        mean = self.accelerator.reduce(tensor, reduction="mean")
        return dict(zip(keys, mean.tolist()))

    # ----- loop, checkpoints ------------------------------------------------------------
    def train(self, resume_from: str | None = None) -> list[dict[str, float]]:
        from trainers.common.progress import make_progress

        if resume_from:
            self.accelerator.load_state(resume_from)
            with open(os.path.join(resume_from, "ppo_state.json")) as f:
                state = json.load(f)
            self.step, self.kl.value = state["step"], state["kl_coef"]
        import time

        main = self.accelerator.is_main_process
        os.makedirs(self.cfg.output_dir, exist_ok=True)
        metrics = MetricsWriter(self.cfg.output_dir)
        if main and not resume_from:
            metrics.reset()
        started, first_step = time.perf_counter(), self.step
        progress = make_progress(self.console)
        if main:
            progress.start()
            bar = progress.add_task("PPO", total=self.cfg.max_steps, completed=self.step, info="")
        try:
            while self.step < self.cfg.max_steps:
                step_metrics = self.train_step()
                record = {"step": self.step, **step_metrics}
                self.history.append(record)
                if main:
                    progress.update(bar, completed=self.step, info=f"reward {step_metrics['reward']:.3f}")
                    if self.step % self.cfg.logging_steps == 0:
                        metrics.write(record)
                if self.accelerator.trackers:
                    self.accelerator.log(step_metrics, step=self.step)
                if self.cfg.save_steps and self.step % self.cfg.save_steps == 0:
                    self.save_checkpoint()
        finally:
            if main:
                progress.stop()
        if main:
            from trainers.common.callbacks import peak_gpu_memory_gb

            runtime = time.perf_counter() - started
            metrics.write({"step": self.step, "train_runtime": runtime,
                           "train_steps_per_second": (self.step - first_step) / max(runtime, 1e-9),
                           "peak_gpu_memory_gb": peak_gpu_memory_gb()})
        self.save_final()
        return self.history

    def save_checkpoint(self) -> str:
        path = os.path.join(self.cfg.output_dir, f"checkpoint-{self.step}")
        self.accelerator.save_state(path)
        if self.accelerator.is_main_process:
            with open(os.path.join(path, "ppo_state.json"), "w") as f:
                json.dump({"step": self.step, "kl_coef": self.kl.value}, f)
        self.accelerator.wait_for_everyone()
        return path

    def save_final(self) -> None:
        import torch

        self.accelerator.wait_for_everyone()
        unwrapped = self.accelerator.unwrap_model(self.model)
        state = self.accelerator.get_state_dict(self.model)
        if self.accelerator.is_main_process:
            policy_state = {k[len("policy."):]: v for k, v in state.items() if k.startswith("policy.")}
            unwrapped.policy.save_pretrained(self.cfg.output_dir, state_dict=policy_state)
            self.tokenizer.save_pretrained(self.cfg.output_dir)
            copy_load_hints(self.model_path, self.cfg.output_dir)
            torch.save({k: v for k, v in state.items() if k.startswith("value_head.")},
                       os.path.join(self.cfg.output_dir, "value_head.pt"))
            from reasongym.plotting import plot_curves

            plot_curves(self.history, os.path.join(self.cfg.output_dir, "reward_curve.png"), title=f"PPO on {self.env.env_id}",
                        keys=("reward", "rewards/correct/mean", "kl", "entropy"))
        if self.accelerator.trackers:
            self.accelerator.end_training()


def parse(argv: Sequence[str]) -> tuple[PPOOptions, PPOConfig]:
    options, config = CLI.parse(argv, pretrained_recipe("ppo"))
    config.setdefault("output_dir", os.path.join("outputs", f"ppo-{options.env}".replace("/", "_")))
    try:
        return options, PPOConfig(**config)
    except (TypeError, ValueError) as exc:
        raise RecipeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    def setup(argv: list[str], console: Console):
        options, config = parse(argv)
        env = open_env(options, console)
        preflight.check_env_safety(env, options.allow_unsafe_env)
        if env.multi_turn:
            raise RecipeError(f"{env.env_id}: PPO here trains single-turn envs only; drop max_turns, or train "
                              "multi-turn and tool envs with python -m trainers.grpo (TRL's tool loop)")
        updates = preflight.check_devices({"bf16": config.bf16 or None, "use_cpu": config.use_cpu})
        config.use_cpu = updates.get("use_cpu", config.use_cpu)
        config.bf16 = bool(updates.get("bf16", config.bf16)) and not config.use_cpu
        guard_training_attention(console, config.use_cpu)
        return options, config, env

    return run_entry_point(CLI, argv, setup, _run)


def _run(state: Any, console: Console) -> int:
    options, config, env = state
    model = options.model
    if model is None:
        from trainers.policies.default_policy import default_policy

        model = default_policy(str(options.env), options.env_kwargs, console=console)
    tasks = env.tasks("train", n=options.train_size, seed=options.seed_tasks)
    trainer = PPOTrainer(env, model, config, tasks, console)
    history = trainer.train(resume_from=options.resume_from_checkpoint)
    if trainer.accelerator.is_main_process and history:
        first, last = history[0], history[-1]
        console.print(f"PPO: {trainer.step} steps; reward {first['reward']:.3f} -> {last['reward']:.3f}; "
                      f"kl {last['kl']:.4f}; output: {config.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

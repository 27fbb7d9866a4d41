"""Checks that run before any model is loaded, each failing with what to change.

Users of GRPO stacks lose hours to errors that surface only after a 3B model
has loaded (batch divisibility, missing vLLM, several GPUs without a launcher).
Everything here looks only at the configuration and the machine.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any


class PreflightError(ValueError):
    """The run cannot start as configured; the message says what to change."""


@dataclass(frozen=True)
class BatchPlan:
    processes: int
    per_device: int
    steps_per_generation: int
    generation_batch: int
    num_generations: int

    @property
    def prompts_per_generation(self) -> int:
        return self.generation_batch // self.num_generations

    def describe(self) -> str:
        return (
            f"{self.generation_batch} completions per generation round = per_device_train_batch_size "
            f"{self.per_device} x {self.processes} process(es) x steps_per_generation {self.steps_per_generation}; "
            f"{self.prompts_per_generation} prompts x num_generations {self.num_generations}"
        )


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_distributed() -> bool:
    return "WORLD_SIZE" in os.environ or "LOCAL_RANK" in os.environ


def check_batch(config: dict[str, Any], processes: int | None = None) -> BatchPlan:
    """Mirror GRPOConfig's batch rules and explain a violation in prompts and completions."""
    processes = processes or world_size()
    per_device = int(config.get("per_device_train_batch_size", 8))
    accumulation = int(config.get("gradient_accumulation_steps", 1))
    generations = int(config.get("num_generations", 8))
    explicit_batch = config.get("generation_batch_size")
    explicit_steps = config.get("steps_per_generation")
    if generations < 2:
        raise PreflightError(f"num_generations is {generations}: GRPO compares completions within a group, use >= 2")
    if explicit_batch is not None and explicit_steps is not None:
        raise PreflightError("set generation_batch_size or steps_per_generation, not both")
    if explicit_batch is not None:
        batch = int(explicit_batch)
        if batch % (per_device * processes):
            raise PreflightError(
                f"generation_batch_size {batch} must be divisible by per_device_train_batch_size x processes "
                f"= {per_device} x {processes} = {per_device * processes}"
            )
        steps = batch // (per_device * processes)
    else:
        steps = int(explicit_steps) if explicit_steps is not None else accumulation
        batch = per_device * processes * steps
    plan = BatchPlan(processes, per_device, steps, batch, generations)
    if batch % generations:
        fits = [g for g in range(2, batch + 1) if batch % g == 0][:6]
        raise PreflightError(
            f"the generation batch is not divisible by num_generations: {batch} completions "
            f"(per_device_train_batch_size {per_device} x {processes} process(es) x steps_per_generation {steps}) "
            f"cannot form groups of {generations}. Make per_device_train_batch_size a multiple of {generations} "
            f"(e.g. --per_device_train_batch_size {generations} gives {generations * processes * steps // generations} "
            f"prompt(s) per round), or pick num_generations from {fits}."
        )
    eval_generations = int(config.get("num_generations_eval") or generations)
    eval_batch = int(config.get("per_device_eval_batch_size", per_device)) * processes
    if config.get("eval_strategy", "no") != "no" and eval_batch % eval_generations:
        raise PreflightError(
            f"per_device_eval_batch_size x processes = {eval_batch} is not divisible by num_generations "
            f"{eval_generations}: set --per_device_eval_batch_size to a multiple of {eval_generations}"
        )
    return plan


def check_devices(config: dict[str, Any]) -> dict[str, Any]:
    """Resolve CPU/GPU and precision; returns config updates. Raises on impossible requests."""
    import torch

    updates: dict[str, Any] = {}
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus > 1 and not launched_distributed() and not config.get("use_cpu"):
        raise PreflightError(
            f"{gpus} GPUs are visible but this is a plain `python` run, which fails with 'Expected all tensors to be "
            "on the same device'. Launch with accelerate, e.g. `accelerate launch --config_file "
            f"recipes/accelerate/zero3.yaml --num_processes {gpus} -m trainers.grpo ...` (or use "
            "`python -m trainers.launch --gpus N`), or restrict to one GPU with CUDA_VISIBLE_DEVICES=0."
        )
    if gpus == 0 or config.get("use_cpu"):
        if config.get("bf16") is True or config.get("fp16") is True:
            which = "bf16" if config.get("bf16") else "fp16"
            raise PreflightError(
                f"{which} was requested but no GPU is available: drop --{which} (CPU runs train in float32)"
            )
        updates.update(use_cpu=True, bf16=False, fp16=False)
        if config.get("use_vllm") and config.get("vllm_mode", "colocate") == "server":
            raise PreflightError(
                "--vllm_mode server needs CUDA: TRL sends the new weights to the server over NCCL "
                "(VLLMClient.init_communicator), which has no CPU backend. On CPU use --vllm_mode colocate "
                "(vLLM runs inside the trainer process and gets the weights directly), or drop --use_vllm "
                "to generate with HF transformers."
            )
    else:
        bf16_ok = torch.cuda.is_bf16_supported()
        if config.get("bf16") is True and not bf16_ok:
            raise PreflightError("this GPU does not support bf16: use --bf16 false --fp16 true (or a newer GPU)")
        if "bf16" not in config and "fp16" not in config:
            updates.update(bf16=bf16_ok, fp16=not bf16_ok)
    return updates


def check_vllm(config: dict[str, Any]) -> None:
    if not config.get("use_vllm"):
        return
    if importlib.util.find_spec("vllm") is None:
        raise PreflightError(
            "use_vllm is set but vLLM is not installed: `pip install 'reasongym[vllm]'` (vllm==0.31.0, the newest "
            "version TRL 1.16 supports), or drop --use_vllm to generate with HF transformers"
        )
    mode = config.get("vllm_mode", "colocate")
    if mode not in ("colocate", "server"):
        raise PreflightError(f"vllm_mode must be 'colocate' or 'server', got {mode!r}")


def check_liger(config: dict[str, Any]) -> None:
    """Liger's layer kernels (RMSNorm, RoPE, SwiGLU) are Triton GPU kernels; transformers would only find
    out at the first training step, after the model has loaded."""
    if not config.get("use_liger_kernel"):
        return
    if config.get("use_cpu"):
        raise PreflightError("--use_liger_kernel true needs a CUDA GPU (Liger's kernels are Triton kernels): "
                             "drop it on CPU")
    if importlib.util.find_spec("liger_kernel") is None:
        raise PreflightError("--use_liger_kernel true needs the liger-kernel package: pip install liger-kernel "
                             "(or drop the flag)")


def check_peft(use_peft: bool) -> None:
    if use_peft and importlib.util.find_spec("peft") is None:
        raise PreflightError("--use-peft needs the peft package: pip install peft")


def check_chat_template(tokenizer: Any, template_kind: str, template_name: str) -> None:
    if template_kind == "chat" and not getattr(tokenizer, "chat_template", None):
        raise PreflightError(
            f"the env uses the chat template {template_name!r} but the tokenizer has no chat template (a base "
            "model?). Use a text template, e.g. --env-kwargs '{\"template\": \"base\"}', or an instruct model."
        )


def check_env_safety(env: Any, allowed: bool) -> None:
    """Refuse to train on an env whose verifier is known to be unsafe (its `unsafe_reason`), unless allowed."""
    reason = getattr(env, "unsafe_reason", None)
    if reason and not allowed:
        raise PreflightError(
            f"{env.env_id} is marked unsafe for training: {reason}. A policy rewarded by such a verifier can learn to "
            "run code in the scorer. Evaluate it freely; to train on it anyway pass --allow-unsafe-env true "
            "(docs/reasoning-gym.md lists which tasks are marked, and why)."
        )


def check_tool_template(tokenizer: Any, env_id: str) -> None:
    """Multi-turn and tool envs train through TRL's tool loop, whose chat template must render tool calls."""
    try:
        from trl.chat_template_utils import supports_tool_calling
    except ImportError:  # pragma: no cover - TRL moved it: TRL's own check still runs at trainer start
        return
    if not getattr(tokenizer, "chat_template", None) or not supports_tool_calling(tokenizer):
        raise PreflightError(
            f"{env_id} trains through TRL's tool loop, but the tokenizer's chat template cannot render tool calls. "
            "Use a model whose template can (Qwen2.5/Qwen3 instruct), or pass --chat-template PATH with such a "
            "template, e.g. the qwen2_5.jinja that TRL ships in trl/chat_templates/."
        )

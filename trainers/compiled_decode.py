"""HF generate with a static KV cache and a compiled decode step, for GRPO without vLLM (issue #20).

Why: at the 3B shape a GRPO step spends most of its time in HF generate's per-token overhead, not in
reading weights. transformers compiles the decode step when the KV cache is static, but TRL builds its
generation config with `disable_compile=True`, and a static cache sized to each batch's own prompt
length changes shape (and recompiles) from step to step. Here the trainer's generation config is
switched to a static cache with compile on, sized once for the longest prompt of a sample of the
training prompts plus `max_completion_length` (rounded up to a bucket), so one compiled graph serves
every step. transformers keeps the largest size it has seen, so a longer prompt later costs one
recompile, not one per step.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

MODES = ("auto", "true", "false")
PROMPT_BUCKET = 64  # tokens: cache sizes are rounded up to this


def wanted(mode: str, use_vllm: bool, device_type: str, zero_stage: int | None) -> bool:
    """Whether to compile decoding: `auto` means a CUDA run with HF generate (no vLLM) outside ZeRO-3
    (ZeRO-3 gathers every layer for every decode step, which a compiled step cannot remove)."""
    mode = str(mode).lower()
    if mode not in MODES:
        from trainers.common.cli import RecipeError

        raise RecipeError(f"--compiled-decode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "false" or use_vllm:
        return False
    return mode == "true" or (device_type == "cuda" and zero_stage != 3)


def trainer_wants(mode: str, trainer: Any) -> bool:
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    return wanted(mode, bool(trainer.args.use_vllm), trainer.accelerator.device.type,
                  plugin.zero_stage if plugin is not None else None)


def sample(items: Sequence[Any], n: int = 256, seed: int = 0) -> list[Any]:
    return random.Random(seed).sample(list(items), min(n, len(items)))


def prompt_tokens(prompts: Sequence[Any], tokenizer: Any) -> int:
    """Longest tokenized prompt: text prompts as TRL tokenizes them, chat prompts through the chat
    template with the generation prompt."""
    longest = 0
    for prompt in prompts:
        if isinstance(prompt, str):
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        longest = max(longest, len(ids))
    return longest


def cache_length(longest_prompt: int, max_completion_length: int, bucket: int = PROMPT_BUCKET) -> int:
    return -(-(longest_prompt + max_completion_length) // bucket) * bucket


def use_compiled_decode(trainer: Any, max_cache_len: int) -> None:
    """Switch a built GRPOTrainer's HF generation to a static cache of `max_cache_len` with compile on."""
    config = trainer.generation_config
    config.cache_implementation = "static"
    config.disable_compile = False
    config.max_cache_len = max_cache_len
    trainer.generation_kwargs.update(cache_implementation="static", max_cache_len=max_cache_len)

"""HF generate with a static KV cache and a compiled decode step, for GRPO without vLLM (issue #20).

Why: at the 3B shape a GRPO step spends most of its time in HF generate's per-token overhead, not in
reading weights. transformers compiles the decode step when the KV cache is static, but TRL builds its
generation config with `disable_compile=True`, and a static cache sized to each batch's own prompt
length changes shape (and recompiles) from step to step. Here the trainer's generation config is
switched to a static cache with compile on, sized once for the longest prompt of a sample of the
training prompts plus `max_completion_length` (rounded up to a bucket), so one compiled graph serves
every step. transformers keeps the largest size it has seen, so a longer prompt later costs one
recompile, not one per step.

With a mask (a static cache always has one), transformers' SDPA path copies each KV head to every
query head; `gqa_decode_attention` folds a decode step's query heads onto their KV head instead, and
`matmul_decode_attention` computes the folded attention as two batched matmuls. Both read only the slots
their mask covers. Measured at the Qwen2.5-3B shape (docs/benchmarks.md): decode 26.6 -> 8.9 ms per step
with the fold (one H200); with the matmul form over the filled part of the cache, generation of a Mini-R1
GRPO step took 6.1-6.2 s on one H100.
"""

from __future__ import annotations

import os
import random
from typing import Any, Sequence

MODES = ("auto", "true", "false")
PROMPT_BUCKET = 64  # tokens: cache sizes are rounded up to this


def check_mode(mode: Any) -> str:
    """The mode, lower-cased; a RecipeError (before any model loads) for anything else."""
    mode = str(mode).lower()
    if mode not in MODES:
        from trainers.common.cli import RecipeError

        raise RecipeError(f"--compiled-decode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def wanted(mode: str, use_vllm: bool, device_type: str, zero_stage: int | None, autocast_fp32: bool = False) -> bool:
    """Whether to compile decoding: `auto` means a CUDA run with HF generate (no vLLM) outside ZeRO-3
    (ZeRO-3 gathers every layer for every decode step, which a compiled step cannot remove). Never
    under autocast over float32 weights (bf16/fp16 with fp32 master weights): the static cache takes
    the weights' dtype, and autocast writes half-precision keys and values into it."""
    mode = check_mode(mode)
    if mode == "false" or use_vllm or autocast_fp32:
        return False
    return mode == "true" or (device_type == "cuda" and zero_stage != 3)


def small_policy_precision(config: dict[str, Any], precision_given: bool, built_here: bool, mode: str,
                           tf32_ok: bool) -> dict[str, Any]:
    """Config updates for a policy built here (small, float32 weights) on a CUDA run with HF generate when
    the user chose no precision: float32 without autocast (TF32 matmuls where the GPU has them), so the
    decode step compiles. Under bf16 autocast over float32 weights it cannot (see `wanted`), and a GRPO
    step of the GPU default policies' model took 2.0x as long (0.7 s against 1.5 s for 256 completions on
    one H200, benchmarks/gpu_policy_speed.sh). {} where that does not apply, or under ZeRO-3 (no compiled
    decode there)."""
    zero3 = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3"
    if precision_given or not built_here or zero3 or config.get("use_cpu") or config.get("use_vllm"):
        return {}
    if check_mode(mode) == "false":
        return {}
    return {"bf16": False, "fp16": False, **({"tf32": True} if tf32_ok and "tf32" not in config else {})}


def autocast_over_fp32(trainer: Any) -> bool:
    import torch

    mixed = bool(trainer.args.bf16 or trainer.args.fp16)
    return mixed and next(trainer.model.parameters()).dtype == torch.float32


def trainer_wants(mode: str, trainer: Any) -> bool:
    return wanted(mode, bool(trainer.args.use_vllm), trainer.accelerator.device.type, _zero_stage(trainer),
                  autocast_over_fp32(trainer))


def off_only_for_autocast(mode: str, trainer: Any) -> bool:
    """Whether autocast over float32 weights is the one thing keeping the compiled decode off (so dropping
    --bf16/--fp16, or loading the weights in half precision, would turn it on)."""
    return autocast_over_fp32(trainer) and wanted(mode, bool(trainer.args.use_vllm), trainer.accelerator.device.type,
                                                  _zero_stage(trainer))


def _zero_stage(trainer: Any) -> int | None:
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    return plugin.zero_stage if plugin is not None else None


def sample(items: Sequence[Any], n: int = 256, seed: int = 0) -> list[Any]:
    return random.Random(seed).sample(list(items), min(n, len(items)))


def prompt_tokens(texts: Sequence[str], tokenizer: Any) -> int:
    """Longest of the rendered prompts (`templates.observation_text`), in tokens."""
    return max((len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts), default=0)


def cache_length(longest_prompt: int, max_completion_length: int, bucket: int = PROMPT_BUCKET) -> int:
    return -(-(longest_prompt + max_completion_length) // bucket) * bucket


def use_compiled_decode(trainer: Any, max_cache_len: int) -> None:
    """Switch a built GRPOTrainer's HF generation to a static cache of `max_cache_len` with compile on."""
    use_gqa_decode_attention(trainer.model)
    config = trainer.generation_config
    config.cache_implementation = "static"
    config.disable_compile = False
    config.max_cache_len = max_cache_len
    trainer.generation_kwargs.update(cache_implementation="static", max_cache_len=max_cache_len)


GQA_DECODE = "sdpa_gqa_decode"
GQA_DECODE_MATMUL = "matmul_gqa_decode"
DECODE_ATTENTION_ENV = "REASONGYM_DECODE_ATTENTION"  # sdpa | matmul: which kernel a decode step's attention uses
DECODE_KERNELS = {"sdpa": GQA_DECODE, "matmul": GQA_DECODE_MATMUL}


def visible(key: Any, value: Any, attention_mask: Any) -> tuple[Any, Any]:
    """Key and value cut to the mask's length when the mask is shorter than the cache: a decode loop that
    attends only to the filled part of a static cache passes a mask of that many slots
    (trainers.rollout.static_sampler's attention buckets)."""
    if attention_mask is not None and attention_mask.ndim == 4 and attention_mask.shape[-1] < key.shape[-2]:
        length = attention_mask.shape[-1]
        return key[:, :, :length], value[:, :, :length]
    return key, value


def _decode_query(module: Any, query: Any, dropout: float, kwargs: dict) -> bool:
    """Whether this call is one decode token of a GQA model with nothing but a mask (what the folds take)."""
    groups = getattr(module, "num_key_value_groups", 1)
    return query.shape[2] == 1 and groups > 1 and not dropout and kwargs.get("position_bias") is None


def _fold(module: Any, query: Any) -> Any:
    """A decode query's heads folded onto their KV head: (batch, heads, 1, dim) -> (batch, kv_heads, groups, dim)."""
    batch, heads, _, dim = query.shape
    groups = module.num_key_value_groups
    return query.view(batch, heads // groups, groups, dim)


def gqa_decode_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                         scaling: float | None = None, is_causal: bool | None = None, **kwargs: Any):
    """SDPA for one decode token without copying K/V per query head. transformers' SDPA path repeats
    the KV heads to the query heads whenever a mask is given (always, with a static cache): at the 3B
    shape that copies 8x the whole cache in every layer and step. A decode query instead folds its
    query heads onto their KV head, (batch, heads, 1, dim) -> (batch, kv_heads, groups, dim), so each
    KV head is read once; the (batch, 1, 1, length) mask broadcasts over the groups. Anything else
    (prefill, training, dropout, position bias) goes to transformers' own SDPA function."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    key, value = visible(key, value, attention_mask)
    if not _decode_query(module, query, dropout, kwargs):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    batch, heads, _, dim = query.shape
    folded = _fold(module, query)
    out = torch.nn.functional.scaled_dot_product_attention(folded, key, value, attn_mask=attention_mask, scale=scaling)
    return out.reshape(batch, 1, heads, dim), None


def matmul_decode_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                            dropout: float = 0.0, scaling: float | None = None, is_causal: bool | None = None,
                            **kwargs: Any):
    """The folded decode attention as two batched matmuls around a float32 softmax, the arithmetic of
    transformers' eager attention. Why: a decode step's folded query has only `groups` rows per KV head,
    which the fused SDPA kernels split their work by, while a batched matmul splits it over the cache's
    length (docs/benchmarks.md has what was measured, and what has no same-run ratio yet). Scores are
    rounded to the weights' dtype before the softmax, as in eager attention. Anything but a decode token
    goes to SDPA."""
    import torch

    if not _decode_query(module, query, dropout, kwargs):
        return gqa_decode_attention(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                    is_causal=is_causal, **kwargs)
    key, value = visible(key, value, attention_mask)
    batch, heads, _, dim = query.shape
    folded = _fold(module, query)
    scores = torch.matmul(folded, key.transpose(-1, -2)) * (scaling if scaling is not None else dim ** -0.5)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    return torch.matmul(weights, value).reshape(batch, 1, heads, dim), None


def decode_kernel() -> str:
    """The decode attention kernel asked for in REASONGYM_DECODE_ATTENTION (default: matmul); a
    RecipeError for anything else."""
    kernel = os.environ.get(DECODE_ATTENTION_ENV, "matmul").lower()
    if kernel not in DECODE_KERNELS:
        from trainers.common.cli import RecipeError

        raise RecipeError(f"{DECODE_ATTENTION_ENV} must be one of {', '.join(DECODE_KERNELS)}, got {kernel!r}")
    return kernel


def use_gqa_decode_attention(model: Any, kernel: str | None = None) -> bool:
    """Switch a model that runs transformers' SDPA attention to a folded decode attention (same masks):
    `kernel` sdpa (`gqa_decode_attention`) or matmul (`matmul_decode_attention`), by default
    `decode_kernel()`. False (and nothing changed) for any other attention implementation."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    if getattr(model.config, "_attn_implementation", None) not in ("sdpa", *DECODE_KERNELS.values()):
        return False
    name = DECODE_KERNELS[kernel or decode_kernel()]
    AttentionInterface.register(GQA_DECODE, gqa_decode_attention)
    AttentionInterface.register(GQA_DECODE_MATMUL, matmul_decode_attention)
    for registered in DECODE_KERNELS.values():
        AttentionMaskInterface.register(registered, sdpa_mask)
    model.set_attn_implementation(name)
    return True

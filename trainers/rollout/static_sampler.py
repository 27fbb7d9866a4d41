"""Sampling on a static KV cache with the compiled decode step and little else per token.

Why: with the decode step compiled (trainers.rollout.compiled_decode), what is left of HF generate's
time per token is its Python loop: preparing inputs, rebuilding the 4-D attention mask from a 2-D one
that grows every step, logits processors, stopping criteria. For a small model that is most of a
GRPO step (SmolLM2-135M shape, one H100: about 4 ms per token for a batch of 128, of which the
compiled forward is a fraction). Here the loop does only what plain sampling needs: one compiled
forward, softmax at the temperature, a multinomial draw, and an in-place update of a mask kept at
the cache's full length, with no host sync except a check every `CHECK_EVERY` tokens that some
sequence is still running. On a cache of ATTEND_FILLED_FROM slots or more, a step's mask covers only the
filled slots, rounded up to one of ATTENTION_LENGTHS lengths, and the folded decode attentions
(trainers.rollout.compiled_decode) read only those: early steps do not read the cache's empty tail.

Scope: temperature sampling (or greedy at temperature 0), optionally nucleus (top-p), with no top-k,
min-p or repetition penalty, text-only inputs, on a model whose attention takes a boolean SDPA mask or an additive one
(eager). `unsupported_reason` says what keeps a trainer on HF generate. tests/test_static_sampler.py
checks it against HF generate: the same greedy tokens.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from trainers.rollout.compiled_decode import DECODE_KERNELS, PROMPT_BUCKET, cache_length

CHECK_EVERY = 16  # tokens between host checks that some sequence is still running
BOOL_MASK_ATTENTION = ("sdpa", *DECODE_KERNELS.values())
# the decode step attends to the filled part of the cache, rounded up to one of at most this many lengths:
# each length is one more compiled graph (torch.compile's recompile limit is 8 per function)
ATTENTION_LENGTHS = 5
# caches shorter than this are read whole: their empty tail costs less than compiling more graphs
ATTEND_FILLED_FROM = 1024
ADDITIVE_MASK_ATTENTION = ("eager",)
# torch.compile mode for the decode step, when set; unset: transformers' default (reduce-overhead, CUDA graphs).
# max-autotune measured 0.97x at the 3B shape on an H100, with minutes more of first compile (docs/benchmarks.md)
COMPILE_MODE_ENV = "REASONGYM_DECODE_COMPILE_MODE"


def unsupported_reason(temperature: float, top_p: float | None, top_k: int | None, min_p: float | None,
                       repetition_penalty: float | None, generation_kwargs: dict | None, attention: str | None) -> str:
    """Why these sampling settings need HF generate ("" when the static sampler covers them)."""
    if top_p is not None and not 0.0 < top_p <= 1.0:
        return "top_p outside (0, 1]"
    if top_k:
        return "top_k"
    if min_p:
        return "min_p"
    if repetition_penalty not in (None, 1.0):
        return "repetition_penalty"
    if generation_kwargs:
        return "generation_kwargs"
    if attention not in BOOL_MASK_ATTENTION + ADDITIVE_MASK_ATTENTION:
        return f"attention implementation {attention}"
    if temperature < 0:
        return "negative temperature"
    return ""


class StaticSampler:
    """Completions for batches of token-id prompts; keeps one static cache (and so one compiled graph)
    for as long as the batch size, cache length, dtype and device stay the same."""

    def __init__(self, max_cache_len: int, eos_token_ids: Sequence[int], pad_token_id: int,
                 compiled: bool = True, cache_bucket: int = PROMPT_BUCKET, attend_filled: bool | None = None,
                 fuse_projections: bool | None = None, compile_mode: str | None = None) -> None:
        self.max_cache_len = max_cache_len
        self.eos_token_ids = list(eos_token_ids)
        self.pad_token_id = pad_token_id
        self.compiled = compiled
        self.cache_bucket = cache_bucket
        # with a folded decode attention (which cuts the cache to the mask's length), pass a mask of only the
        # filled slots, rounded up (`attention_length`), so a step does not read the cache's empty tail;
        # None: for caches of ATTEND_FILLED_FROM slots or more
        self.attend_filled = attend_filled
        # sample with the query/key/value and gate/up projections as one GEMM each
        # (trainers.rollout.fused_projections); None: when compiled
        self.fuse_projections = compiled if fuse_projections is None else fuse_projections
        self.compile_mode = compile_mode or os.environ.get(COMPILE_MODE_ENV) or None
        self._fused: Any = None
        self._cache: Any = None
        self._cache_key: tuple = ()

    def sample(self, model: Any, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int,
               temperature: float = 1.0, top_p: float = 1.0) -> list[list[int]]:
        """One completion per prompt: its tokens up to and including the first EOS, at most
        `max_new_tokens`."""
        if not self.fuse_projections:
            return self._sample(model, prompt_ids, max_new_tokens, temperature, top_p)
        if self._fused is None or self._fused.model_id != id(model):
            from trainers.rollout.fused_projections import FusedProjections

            self._fused = None  # the old copies go before the new ones are made
            self._fused = FusedProjections(model)
        with self._fused.applied():
            return self._sample(model, prompt_ids, max_new_tokens, temperature, top_p)

    def _sample(self, model: Any, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int,
                temperature: float, top_p: float) -> list[list[int]]:
        import torch

        device = model.device
        batch, width = len(prompt_ids), max(len(p) for p in prompt_ids)
        length = max(self.max_cache_len, cache_length(width, max_new_tokens, self.cache_bucket))
        ids = torch.full((batch, width), self.pad_token_id, dtype=torch.long)
        real = torch.zeros((batch, width), dtype=torch.bool)
        for row, prompt in enumerate(prompt_ids):
            ids[row, width - len(prompt):] = torch.tensor(list(prompt), dtype=torch.long)
            real[row, width - len(prompt):] = True
        ids, real = ids.to(device), real.to(device)
        cache = self._cache_for(model, batch, length)
        additive = getattr(model.config, "_attn_implementation", None) in ADDITIVE_MASK_ATTENTION
        dtype = next(model.parameters()).dtype
        eos = torch.tensor(self.eos_token_ids, device=device)
        slots = torch.arange(length, device=device)

        # prefill: causal over real prompt tokens; a left-pad position sees only itself (a row with
        # nothing to attend to would turn the softmax into NaN, and NaN times a zero weight stays NaN)
        causal = slots[None, :width] <= torch.arange(width, device=device)[:, None]
        allowed = causal[None] & real[:, None, :]
        allowed |= torch.eye(width, dtype=torch.bool, device=device)[None]
        prefill_mask = torch.zeros((batch, 1, width, length), dtype=torch.bool, device=device)
        prefill_mask[:, 0, :, :width] = allowed
        positions = (real.long().cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=as_mask(prefill_mask, additive, dtype), position_ids=positions,
                       past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]

        # decode: each step's token goes to cache slot width + step
        decode_mask = torch.zeros((batch, 1, 1, length), dtype=torch.bool, device=device)
        decode_mask[:, 0, 0, :width] = real
        next_position = real.sum(-1)
        filled = self.attend_filled if self.attend_filled is not None else length >= ATTEND_FILLED_FROM
        cuts = filled and getattr(model.config, "_attn_implementation", None) in DECODE_KERNELS.values()
        if self.compiled and cuts:
            allow_graphs(ATTENTION_LENGTHS)
        forward = model.get_compiled_call(self._compile_config()) if self.compiled else model.__call__
        out = torch.full((batch, max_new_tokens), self.pad_token_id, dtype=torch.long, device=device)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        for step in range(max_new_tokens):
            token = torch.where(finished, self.pad_token_id, draw(logits, temperature, top_p))
            out[:, step] = token
            finished |= torch.isin(token, eos)
            if step == max_new_tokens - 1 or ((step + 1) % CHECK_EVERY == 0 and bool(finished.all())):
                break
            decode_mask[:, :, :, width + step] = True
            mask = decode_mask[..., :attention_length(width + step + 1, length)] if cuts else decode_mask
            logits = forward(input_ids=token[:, None], position_ids=(next_position + step)[:, None],
                             attention_mask=as_mask(mask, additive, dtype), past_key_values=cache,
                             use_cache=True).logits[:, -1]
        return completions(out.cpu(), self.eos_token_ids)

    def _compile_config(self) -> Any:
        """transformers' compile settings for the decode step: its default unless a mode was asked for."""
        if self.compile_mode is None:
            return None
        from transformers import CompileConfig

        return CompileConfig(mode=self.compile_mode)

    def _cache_for(self, model: Any, batch: int, length: int) -> Any:
        import torch
        from transformers import StaticCache

        key = (batch, length, next(model.parameters()).dtype, str(model.device), id(model))
        if self._cache is None or key != self._cache_key:
            if self._cache is not None:
                del self._cache
                torch.cuda.empty_cache() if torch.cuda.is_available() else None
            self._cache = StaticCache(config=model.config, max_cache_len=length)
            self._cache_key = key
        else:
            self._cache.reset()
        return self._cache


def allow_graphs(count: int) -> None:
    """Let torch.compile keep `count` graphs of one function beyond its default recompile limit (8): the
    attention lengths, on top of what HF generate compiles for evaluation on the same model."""
    import torch._dynamo

    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, name, max(getattr(config, name), 8 + count))


def attention_length(filled: int, length: int, lengths: int = ATTENTION_LENGTHS) -> int:
    """The cache slots a decode step attends to: `filled` rounded up to a multiple of a step that splits the
    cache `length` into at most `lengths` sizes (each a multiple of PROMPT_BUCKET), at most `length`."""
    step = -(-length // lengths // PROMPT_BUCKET) * PROMPT_BUCKET
    return min(length, -(-filled // step) * step)


def warn_fallback(error: Exception) -> None:
    """Say that our loop failed and HF generate's takes over (callers catch the error and switch)."""
    import warnings

    warnings.warn(f"our own decode loop failed ({type(error).__name__}: {error}); HF generate's loop samples "
                  "from here on (--decode-loop hf picks it from the start)", RuntimeWarning, stacklevel=3)


def as_mask(allowed: Any, additive: bool, dtype: Any) -> Any:
    """The boolean mask as the attention implementation takes it (additive: 0 or the dtype's minimum)."""
    import torch

    if not additive:
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, torch.finfo(dtype).min)


def draw(logits: Any, temperature: float, top_p: float = 1.0) -> Any:
    """A token per row: argmax at temperature 0, else a draw from softmax(logits / temperature),
    restricted to the nucleus when top_p < 1."""
    import torch

    if temperature == 0:
        return logits.argmax(-1)
    scaled = logits.float() / temperature
    if top_p < 1.0:
        scaled = nucleus(scaled, top_p)
    return torch.multinomial(torch.softmax(scaled, dim=-1), 1).squeeze(1)


def nucleus(scaled: Any, top_p: float) -> Any:
    """The logits with everything outside each row's nucleus set to -inf: the most likely tokens whose
    probabilities, taken in descending order, first reach top_p (the top token always stays), the set
    transformers' TopPLogitsWarper keeps."""
    import torch

    ascending, order = torch.sort(scaled, dim=-1)
    cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
    drop = cumulative <= 1 - top_p
    drop[..., -1] = False
    return scaled.masked_fill(drop.scatter(-1, order, drop), float("-inf"))


def completions(tokens: Any, eos_token_ids: Sequence[int]) -> list[list[int]]:
    """Each row cut after its first EOS token (kept), as TRL cuts HF generate's output."""
    result = []
    eos = set(eos_token_ids)
    for row in tokens.tolist():
        cut = next((i + 1 for i, token in enumerate(row) if token in eos), len(row))
        result.append(row[:cut])
    return result

"""The static sampler (trainers.rollout.static_sampler) against HF generate on a tiny model: the same greedy
tokens for left-padded prompts of different lengths, with SDPA, the GQA decode attention and eager."""

from __future__ import annotations

import pytest

from trainers.rollout import compiled_decode
from trainers.rollout.static_sampler import StaticSampler, completions, nucleus, unsupported_reason

PROMPTS = [[5, 9, 14, 22, 31, 7], [40, 41], [3, 3, 3, 60, 61, 62, 63, 70, 71], [12]]


def tiny(attention: str, seed: int = 0):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         eos_token_id=2, pad_token_id=1, tie_word_embeddings=True, attn_implementation=attention)
    return Qwen2ForCausalLM(config).eval()


def hf_greedy(model, prompts, max_new):
    import torch

    width = max(map(len, prompts))
    ids = torch.tensor([[1] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new, do_sample=False,
                         eos_token_id=2, pad_token_id=1)
    return completions(out[:, width:], [2])


@pytest.mark.parametrize("attention", ["sdpa", "eager", "gqa", "gqa_matmul"])
def test_greedy_tokens_equal_hf_generate(attention, monkeypatch):
    import torch

    model = tiny("sdpa" if attention.startswith("gqa") else attention)
    if attention.startswith("gqa"):
        assert compiled_decode.use_gqa_decode_attention(model, "matmul" if attention == "gqa_matmul" else "sdpa")
    # a cache of 256 slots: the folded attentions read only the filled part, rounded up to 64
    lengths = []
    cut = compiled_decode.visible
    monkeypatch.setattr(compiled_decode, "visible", lambda k, v, m: (lengths.append(cut(k, v, m)[0].shape[-2]),
                                                                     cut(k, v, m))[1])
    sampler = StaticSampler(max_cache_len=256, eos_token_ids=[2], pad_token_id=1, compiled=False, attend_filled=True)
    with torch.no_grad():
        expected = hf_greedy(model, PROMPTS, 20)
        lengths.clear()  # HF generate's calls above: a dynamic cache
        ours = sampler.sample(model, PROMPTS, 20, temperature=0)
        again = sampler.sample(model, PROMPTS[::-1], 20, temperature=0)  # the cache is reset and reused
    assert ours == expected
    assert again == expected[::-1]
    assert all(0 < len(c) <= 20 for c in ours)
    if attention.startswith("gqa"):
        assert set(lengths) == {64, 256}  # decode steps read 64 slots; the prefill, transformers' path, all 256


def test_attention_lengths_are_few_and_cover_the_filled_slots():
    from trainers.rollout.static_sampler import ATTENTION_LENGTHS, attention_length

    for length in (64, 320, 1216, 4160):
        seen = {attention_length(filled, length) for filled in range(1, length + 1)}
        assert len(seen) <= ATTENTION_LENGTHS and max(seen) == length
        assert all(filled <= attention_length(filled, length) <= length for filled in range(1, length + 1))
        assert all(size % 64 == 0 for size in seen)


def test_sampled_completions_end_at_eos_and_follow_the_seed():
    import torch

    model = tiny("sdpa", seed=1)
    sampler = StaticSampler(max_cache_len=32, eos_token_ids=[2, 5], pad_token_id=1, compiled=False)
    with torch.no_grad():
        torch.manual_seed(0)
        first = sampler.sample(model, PROMPTS * 8, 40)  # a cache longer than asked for: grown to fit
        torch.manual_seed(0)
        second = sampler.sample(model, PROMPTS * 8, 40)
    assert first == second
    assert len({tuple(c) for c in first}) > 1
    for completion in first:
        assert all(t not in (2, 5) for t in completion[:-1])
        assert completion[-1] in (2, 5) or len(completion) == 40
    assert any(c[-1] in (2, 5) for c in first)


def test_what_keeps_hf_generate():
    assert unsupported_reason(1.0, 1.0, 0, None, 1.0, None, "sdpa") == ""
    assert unsupported_reason(0.7, None, None, None, None, {}, "sdpa_gqa_decode") == ""
    assert unsupported_reason(1.0, 0.9, 0, None, 1.0, None, "sdpa") == ""  # nucleus sampling is ours too
    assert unsupported_reason(1.0, 0.0, 0, None, 1.0, None, "sdpa") == "top_p outside (0, 1]"
    assert unsupported_reason(1.0, 1.0, 50, None, 1.0, None, "sdpa") == "top_k"
    assert unsupported_reason(1.0, 1.0, 0, 0.1, 1.0, None, "sdpa") == "min_p"
    assert unsupported_reason(1.0, 1.0, 0, None, 1.1, None, "sdpa") == "repetition_penalty"
    assert unsupported_reason(1.0, 1.0, 0, None, 1.0, {"suppress_tokens": [3]}, "sdpa") == "generation_kwargs"
    assert "flash_attention_2" in unsupported_reason(1.0, 1.0, 0, None, 1.0, None, "flash_attention_2")


@pytest.mark.parametrize("top_p", [0.05, 0.5, 0.9, 0.99])
def test_the_nucleus_is_the_set_transformers_keeps(top_p):
    import torch
    from transformers.generation.logits_process import TopPLogitsWarper

    torch.manual_seed(3)
    logits = torch.randn(16, 96) * 3
    logits[0] = 0.0  # ties: a flat row
    ours = torch.isfinite(nucleus(logits, top_p))
    theirs = torch.isfinite(TopPLogitsWarper(top_p)(None, logits.clone()))
    assert torch.equal(ours, theirs)
    assert ours.sum(-1).min() >= 1
    kept_mass = (logits.softmax(-1) * ours).sum(-1)
    assert bool((kept_mass >= top_p - 1e-6).all())


def test_nucleus_sampling_draws_only_from_the_nucleus():
    import torch

    model = tiny("sdpa", seed=2)
    sampler = StaticSampler(max_cache_len=32, eos_token_ids=[2], pad_token_id=1, compiled=False)
    with torch.no_grad():
        torch.manual_seed(0)
        narrow = sampler.sample(model, PROMPTS * 4, 12, temperature=1.0, top_p=1e-6)  # only the top token
        greedy = sampler.sample(model, PROMPTS * 4, 12, temperature=0)
        wide = sampler.sample(model, PROMPTS * 4, 12, temperature=1.0, top_p=0.95)
    assert narrow == greedy
    assert wide != greedy


def test_the_decode_step_compiles_in_the_mode_asked_for(monkeypatch):
    """REASONGYM_DECODE_COMPILE_MODE (or compile_mode=) reaches torch.compile through transformers' CompileConfig;
    unset, transformers' own default applies (None)."""
    asked = []
    model = tiny("sdpa")

    def compiled_call(config):  # what transformers compiles; the plain call keeps this test on the CPU's eager path
        asked.append(config.mode if config is not None else None)
        return model.__call__

    monkeypatch.setattr(model, "get_compiled_call", compiled_call)
    monkeypatch.setenv("REASONGYM_DECODE_COMPILE_MODE", "max-autotune")
    from_env = StaticSampler(max_cache_len=32, eos_token_ids=[2], pad_token_id=1, compiled=True)
    by_argument = StaticSampler(max_cache_len=32, eos_token_ids=[2], pad_token_id=1, compiled=True,
                                fuse_projections=False, compile_mode="max-autotune-no-cudagraphs")
    monkeypatch.delenv("REASONGYM_DECODE_COMPILE_MODE")
    default = StaticSampler(max_cache_len=32, eos_token_ids=[2], pad_token_id=1, compiled=True,
                            fuse_projections=False)
    outputs = [sampler.sample(model, PROMPTS, 4, temperature=0.0) for sampler in (from_env, by_argument, default)]
    assert asked == ["max-autotune", "max-autotune-no-cudagraphs", None]
    assert outputs[0] == outputs[1] == outputs[2] == hf_greedy(model, PROMPTS, 4)

"""Fused projections for our decode loop (trainers.rollout.fused_projections): on tiny Qwen2 (biased q/k/v)
and Llama models, the fused forward gives the plain forward's logits and greedy tokens, follows the live
weights after they change, leaves no trace on the modules afterwards, and skips projections it cannot fuse."""

from __future__ import annotations

import pytest

from tests.test_static_sampler import PROMPTS, tiny
from trainers.rollout.fused_projections import FusedProjections
from trainers.rollout.static_sampler import StaticSampler


def tiny_llama():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    config = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         eos_token_id=2, pad_token_id=1, attn_implementation="sdpa")
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("build", [lambda: tiny("sdpa"), tiny_llama], ids=["qwen2", "llama"])
def test_fused_forward_matches_the_plain_one_and_follows_the_weights(build):
    import torch

    model = build()
    fused = FusedProjections(model)
    assert len(fused.forwards) == 2 * len(model.model.layers)  # every attention and MLP
    ids = torch.tensor([PROMPTS[0]])
    plain = StaticSampler(max_cache_len=64, eos_token_ids=[2], pad_token_id=1, compiled=False)
    ours = StaticSampler(max_cache_len=64, eos_token_ids=[2], pad_token_id=1, compiled=False, fuse_projections=True)
    with torch.no_grad():
        expected = model(ids).logits
        with fused.applied():
            assert "forward" in vars(model.model.layers[0].self_attn)
            got = model(ids).logits
        assert all("forward" not in vars(module) for module in model.modules())
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        assert ours.sample(model, PROMPTS, 16, temperature=0) == plain.sample(model, PROMPTS, 16, temperature=0)
        for parameter in model.parameters():  # an optimizer step: the fused copies must follow
            parameter.add_(torch.randn_like(parameter) * 0.5)
        changed = plain.sample(model, PROMPTS, 16, temperature=0)
        assert ours.sample(model, PROMPTS, 16, temperature=0) == changed
    assert all("forward" not in vars(module) for module in model.modules())


def test_projections_that_are_not_plain_linears_keep_their_forward():
    import torch

    model = tiny("sdpa")

    class Scaled(torch.nn.Module):  # stands for an adapter-wrapped projection
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x) * 2

    model.model.layers[0].self_attn.k_proj = Scaled(model.model.layers[0].self_attn.k_proj)
    fused = FusedProjections(model)
    modules = [module for module, _, _ in fused.forwards]
    assert model.model.layers[0].self_attn not in modules and model.model.layers[1].self_attn in modules
    ids = torch.tensor([PROMPTS[2]])
    with torch.no_grad():
        expected = model(ids).logits
        with fused.applied():
            torch.testing.assert_close(model(ids).logits, expected, rtol=1e-5, atol=1e-5)

"""Liger's kernels set aside while our decode loop samples (trainers.rollout.liger_aside): with Liger's real
patches on a tiny Qwen2 (its Triton kernels cannot run on a CPU, so the model fails until they are set
aside), the loop's greedy tokens are the plain model's, and Liger's patches are back afterwards."""

from __future__ import annotations

import pytest

from tests.test_static_sampler import PROMPTS, tiny
from trainers.rollout.liger_aside import LigerAside
from trainers.rollout.static_sampler import StaticSampler


def test_decoding_runs_the_plain_model_and_liger_comes_back():
    pytest.importorskip("liger_kernel")
    import torch
    from transformers.integrations.liger import apply_liger_kernel
    from transformers.models.qwen2 import modeling_qwen2

    model = tiny("sdpa")
    sampler = StaticSampler(max_cache_len=64, eos_token_ids=[2], pad_token_id=1, compiled=False)
    with torch.no_grad():
        plain = sampler.sample(model, PROMPTS, 12, temperature=0)
    rope = modeling_qwen2.apply_rotary_pos_emb
    saved = dict(vars(modeling_qwen2))
    aside = LigerAside(model)  # before the patches, as trainers.grpo builds it
    apply_liger_kernel(model, {"fused_linear_cross_entropy": False})  # what TRL's trainer does at train()
    try:
        patched_rope, patched_mlp = modeling_qwen2.apply_rotary_pos_emb, model.model.layers[0].mlp.forward
        assert patched_rope is not rope and patched_rope.__module__.startswith("liger_kernel")
        with pytest.raises(Exception), torch.no_grad():  # Liger's Triton kernels: no CPU driver
            sampler.sample(model, PROMPTS, 12, temperature=0)
        with aside.plain(model), torch.no_grad():
            assert modeling_qwen2.apply_rotary_pos_emb is rope
            assert sampler.sample(model, PROMPTS, 12, temperature=0) == plain
            fused = StaticSampler(max_cache_len=64, eos_token_ids=[2], pad_token_id=1, compiled=False,
                                  fuse_projections=True)  # binds its own forwards inside, then takes them away
            assert fused.sample(model, PROMPTS, 12, temperature=0) == plain
        assert modeling_qwen2.apply_rotary_pos_emb is patched_rope
        assert model.model.layers[0].mlp.forward == patched_mlp
        assert model.model.norm.forward.__module__.startswith("liger_kernel")
    finally:  # Liger's module-wide patches (RoPE, the RMSNorm and MLP classes) must not leak into other tests
        for name, value in saved.items():
            setattr(modeling_qwen2, name, value)


def test_trls_deprecation_warning_for_liger_is_dropped_only_where_we_build_the_trainer(tiny_model, tmp_path):
    """TRL 1.16 warns that use_liger_kernel is deprecated at every GRPOTrainer built with it; trainers.grpo
    builds its trainer inside `quiet_trl_deprecation`, which drops that warning and nothing else."""
    pytest.importorskip("liger_kernel")
    import warnings

    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from trainers.rollout.liger_aside import quiet_trl_deprecation

    def build():
        args = GRPOConfig(output_dir=str(tmp_path), use_liger_kernel=True, use_cpu=True, report_to="none",
                          per_device_train_batch_size=2, num_generations=2, max_steps=1)
        return GRPOTrainer(model=tiny_model, reward_funcs=lambda completions, **_: [0.0] * len(completions),
                           args=args, train_dataset=Dataset.from_dict({"prompt": ["a", "b"]}))

    def deprecations(caught):
        return [w for w in caught if issubclass(w.category, FutureWarning) and "use_liger_kernel" in str(w.message)]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build()
    assert deprecations(caught), "TRL no longer warns: drop quiet_trl_deprecation"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_trl_deprecation():
            build()
            warnings.warn("another FutureWarning", FutureWarning)
    assert not deprecations(caught) and any("another FutureWarning" in str(w.message) for w in caught)

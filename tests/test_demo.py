"""The offline main job, CI-sized: no --model, a seconds-long warm start, two GRPO steps,
a before/after table and the PNG. (The learning claim itself: benchmarks/learning_cpu.py.)"""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import run_in_process
from trainers.stats import mcnemar, sign_test


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
           "--max_completion_length", "24", "--output-dir", str(out)]
    proc = run_in_process(cmd, tmp_path, REASONGYM_CACHE=str(tmp_path / "cache"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "countdown-3to4 is too hard" in proc.stdout  # the easier parametrisation is announced
    assert "held-out test tasks: warm start vs after GRPO" in proc.stdout and "sign test" in proc.stdout
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["env"] == "countdown" and summary["env_kwargs"]["counts"] == [2]
    assert summary["samples"] == 12 * 4 and summary["steps"] == 2
    assert 0.0 <= summary["before"]["accuracy"] <= 1.0 and 0.0 <= summary["sign_test"]["p_value"] <= 1.0
    assert (out / "reward_curve.png").stat().st_size > 0
    cached = [d for d in os.listdir(tmp_path / "cache" / "policies") if not d.endswith((".building", ".lock"))]
    policy = tmp_path / "cache" / "policies" / cached[0]
    assert len(cached) == 1 and os.path.exists(policy / "READY")
    assert json.loads((policy / "READY").read_text())["warm"]["sft_steps"] == 12  # --warm-start-steps
    # the warm start saves into the folder it trained from: its loading hints must survive (GPU runs read them)
    assert json.loads((policy / "reasongym_load.json").read_text()) == {"attn_implementation": "eager"}


def test_models_built_here_ask_for_eager_attention_in_bf16(tiny_model, tmp_path):
    from trainers.generation import _bf16
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

    from trainers.callbacks import TimeBudgetCallback

    args, state = TrainingArguments(output_dir="unused", use_cpu=True, report_to="none"), TrainerState()
    generous, spent = TimeBudgetCallback(minutes=60), TimeBudgetCallback(minutes=0)
    for callback, stops in ((generous, False), (spent, True)):
        control = TrainerControl()
        callback.on_train_begin(args, state, control)
        callback.on_step_end(args, state, control)
        assert control.should_training_stop is stops

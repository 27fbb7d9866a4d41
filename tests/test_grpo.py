"""GRPO trainer: real TRL runs on a tiny model (plain and ZeRO-3 on CPU), pre-flight, recipes, launch."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_in_process, run_module
from trainers import grpo
from trainers.common import preflight
from trainers.common.cli import RecipeError, parse_flags

TINY_FLAGS = ["--max_steps", "2", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
              "--num_generations", "4",
              "--max_completion_length", "24", "--gradient_checkpointing", "false", "--train-size", "16",
              "--eval-size", "4"]  # the recipe's 200 held-out prompts took 163 s of a ZeRO-3 run on 2 cores


def _metrics(out_dir) -> list[dict]:
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_grpo_cli_end_to_end(tiny_model, tmp_path):
    out = tmp_path / "run"
    proc = run_in_process(["trainers.grpo", "--env", "countdown-3to4", "--model", tiny_model, "--output-dir", str(out),
                       "--eval_steps", "2", *TINY_FLAGS], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GRPO run: 2 steps" in proc.stdout
    records = _metrics(out)
    train = [r for r in records if "reward" in r]
    assert len(train) == 2
    for key in ("rewards/format/mean", "rewards/correct/mean", "outcomes/unparseable", "outcomes/correct",
                "verifier/latency_p50_ms", "aha_rate", "completions/mean_length", "frac_reward_zero_std"):
        assert key in train[0], key
    assert any("eval_rewards/correct/mean" in r for r in records)  # held-out accuracy
    samples = [json.loads(line) for line in open(out / "samples.jsonl")]
    assert len([s for s in samples if s["split"] == "train"]) == 2 * 4
    assert {s["split"] for s in samples} == {"train", "test"}
    assert {"step", "prompt", "completion", "reward", "components", "outcome"} <= set(samples[0])
    assert samples[0]["prompt"].endswith("Let me solve this step by step.\n<think>")  # pre-fill rendered as text
    assert (out / "successes.jsonl").exists() and (out / "reward_curve.png").stat().st_size > 0
    assert (out / "model.safetensors").exists()


@pytest.mark.slow
def test_grpo_under_accelerate_deepspeed_zero3_cpu(tiny_model, tmp_path):
    out = tmp_path / "zero3"
    proc = run_module(["trainers.grpo", "--env", "countdown-3to4", "--model", tiny_model, "--output-dir", str(out),
                       *TINY_FLAGS], tmp_path, processes=2, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "8 completions per generation round" in proc.stdout and "2 process(es)" in proc.stdout
    train = [r for r in _metrics(out) if "reward" in r]
    assert len(train) == 2 and "rewards/correct/mean" in train[-1]


def _preflight_error(argv: list[str]) -> str:
    script, config = grpo.parse(argv)
    with pytest.raises((preflight.PreflightError, RecipeError)) as err:
        grpo.build_trainer(script, config, grpo.Console())
    return str(err.value)


def test_unknown_env_fails_before_loading_anything(capsys):
    assert grpo.main(["--env", "countdwn-3to4", "--model", "/nonexistent"]) == 2
    assert "countdown-3to4" in capsys.readouterr().out


def test_batch_not_divisible_says_how_many_prompts(tiny_model):
    message = _preflight_error(["--env", "countdown-3", "--model", tiny_model, "--config", "none",
                                "--per_device_train_batch_size", "6", "--num_generations", "4"])
    assert "6 completions" in message and "--per_device_train_batch_size 4" in message and "prompt" in message


def test_batch_plan_counts_prompts():
    plan = preflight.check_batch({"per_device_train_batch_size": 8, "num_generations": 8,
                                  "gradient_accumulation_steps": 4}, processes=3)
    assert plan.generation_batch == 96 and plan.prompts_per_generation == 12
    with pytest.raises(preflight.PreflightError, match=">= 2"):
        preflight.check_batch({"num_generations": 1})
    with pytest.raises(preflight.PreflightError, match="not both"):
        preflight.check_batch({"generation_batch_size": 16, "steps_per_generation": 2})


def test_vllm_requested_but_not_installed(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    with pytest.raises(preflight.PreflightError, match="reasongym\\[vllm\\]"):
        preflight.check_vllm({"use_vllm": True})


def test_vllm_server_mode_on_cpu_names_colocate():
    with pytest.raises(preflight.PreflightError, match="needs CUDA.*--vllm_mode colocate"):
        preflight.check_devices({"use_vllm": True, "vllm_mode": "server"})
    assert preflight.check_devices({"use_vllm": True, "vllm_mode": "colocate"})["use_cpu"] is True


def test_launch_refuses_a_training_server_on_cpu_and_plans_a_served_evaluation(capsys):
    from trainers import launch

    with pytest.raises(SystemExit, match="needs CUDA"):
        launch.main(["--gpus", "2", "--vllm-gpus", "1", "--cpu", "--", "--env", "countdown-3to4", "--model", "M"])
    assert launch.main(["--gpus", "2", "--vllm-gpus", "1", "--cpu", "--trainer", "trainers.evaluate", "--port", "8011",
                        "--dry-run", "--", "--env", "countdown-3to4", "--model", "M"]) == 0
    out = capsys.readouterr().out
    assert "-m vllm.entrypoints.openai.api_server --model M --host 127.0.0.1 --port 8011" in out
    assert "--enforce-eager --dtype float32" in out
    assert "-m trainers.evaluate --env countdown-3to4 --model M --backend openai --base-url http://127.0.0.1:8011" in out


def test_bf16_on_cpu_is_refused_and_default_cpu_run_drops_it():
    with pytest.raises(preflight.PreflightError, match="no GPU"):
        preflight.check_devices({"bf16": True})
    assert preflight.check_devices({}) == {"use_cpu": True, "bf16": False, "fp16": False}


def test_liger_kernels_are_refused_before_the_model_loads(monkeypatch, tiny_model, tmp_path, capsys):
    import importlib.util

    with pytest.raises(preflight.PreflightError, match="needs a CUDA GPU"):
        preflight.check_liger({"use_liger_kernel": True, "use_cpu": True})
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "liger_kernel" else real(name, *a))
    with pytest.raises(preflight.PreflightError, match="pip install liger-kernel"):
        preflight.check_liger({"use_liger_kernel": True})
    preflight.check_liger({"use_liger_kernel": False})
    assert grpo.main(["--env", "countdown-3to4", "--model", tiny_model, "--use_liger_kernel", "true",
                      "--output-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "--use_liger_kernel true needs a CUDA GPU" in captured.out + captured.err


def test_several_gpus_without_launcher(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    with pytest.raises(preflight.PreflightError, match="accelerate launch"):
        preflight.check_devices({})


def test_chat_env_with_a_tokenizer_without_chat_template(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.chat_template = None
    plain = tmp_path / "plain"
    tok.save_pretrained(plain)
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        os.symlink(os.path.join(tiny_model, name), plain / name)
    for leftover in glob.glob(str(plain / "chat_template.*")):
        os.remove(leftover)
    message = _preflight_error(["--env", "countdown-3", "--model", str(plain), "--per_device_train_batch_size", "4",
                                "--num_generations", "4"])
    assert "no chat template" in message and "base" in message


def test_unknown_option_suggests_the_field():
    with pytest.raises(RecipeError, match="--learning_rate"):
        grpo.parse(["--env", "countdown-3", "--model", "m", "--learning-rat", "1e-6"])


def test_flags_override_recipe_and_coerce_types(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("env: countdown-3\nmodel: m\nlearning_rate: 1.0e-5\nmax_steps: 5\n")
    options, config = grpo.parse(["--config", str(recipe), "--learning-rate", "1e-6", "--use-peft",
                                  "--env-kwargs", '{"template": "base"}'])
    assert config["learning_rate"] == 1e-6 and config["max_steps"] == 5
    assert options.use_peft is True and options.env_kwargs == {"template": "base"}
    assert parse_flags(["--a=3", "--b", "true", "--c", "x,y", "--d"]) == {"a": "3", "b": "true", "c": "x,y", "d": True}


@pytest.mark.parametrize("recipe", sorted(p for p in glob.glob(os.path.join(REPO, "recipes/grpo/*.yaml"))
                                          if not p.endswith("pretrained.yaml")))  # a base, tested in test_recipes
def test_every_recipe_builds_a_valid_grpo_config(recipe):
    from trl import GRPOConfig

    options, config = grpo.parse(["--config", recipe, "--use_cpu", "true", "--bf16", "false", "--output-dir", "/tmp/x"])
    args = GRPOConfig(**config)
    assert args.use_cpu and (options.model or recipe.endswith("tiny-cpu.yaml"))  # tiny-cpu: the default policy
    assert args.num_generations >= 2 and options.env
    preflight.check_batch(config)
    with open(recipe) as f:
        header = f.read()
    assert "python -m trainers" in header or "accelerate launch" in header


def test_vllm_options_map_to_trl_fields():
    from trl import GRPOConfig

    recipe = os.path.join(REPO, "recipes/grpo/countdown-3to4_qwen2.5-3b-instruct.yaml")
    _, server = grpo.parse(["--config", recipe, "--use_cpu", "true", "--bf16", "false", "--vllm_server_host",
                            "127.0.0.1", "--vllm_server_port", "8123"])
    args = GRPOConfig(**server)
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_host, args.vllm_server_port) == (True, "server", "127.0.0.1", 8123)
    _, colocate = grpo.parse(["--config", recipe, "--use_cpu", "true", "--bf16", "false", "--vllm_mode", "colocate",
                              "--vllm_gpu_memory_utilization", "0.4"])
    args = GRPOConfig(**colocate)
    assert args.vllm_mode == "colocate" and args.vllm_gpu_memory_utilization == 0.4


def test_launch_plan_splits_gpus(capsys):
    from trainers import launch

    assert launch.main(["--gpus", "4", "--vllm-gpus", "1", "--dry-run", "--", "--env", "countdown-3to4",
                        "--model", "Qwen/Qwen2.5-3B-Instruct"]) == 0
    out = capsys.readouterr().out
    assert "CUDA_VISIBLE_DEVICES=3 trl vllm-serve --model Qwen/Qwen2.5-3B-Instruct --host 127.0.0.1" in out
    assert "CUDA_VISIBLE_DEVICES=0,1,2" in out and "--num_processes 3" in out and "--vllm_mode server" in out


def test_launch_waits_for_a_real_http_server_and_tears_it_down(tmp_path):
    from trainers import launch

    (tmp_path / "health").write_text("ok")
    server = subprocess.Popen([sys.executable, "-m", "http.server", "18731", "--bind", "127.0.0.1"], cwd=tmp_path,
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        launch.wait_for_health("http://127.0.0.1:18731/health", server, timeout=30)
    finally:
        launch.stop(server)
    assert server.poll() is not None
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], start_new_session=True)
    with pytest.raises(RuntimeError, match="exited with code 3"):
        launch.wait_for_health("http://127.0.0.1:18732/health", dead, timeout=30)


@pytest.mark.slow
def test_grpo_resumes_from_a_checkpoint(tiny_model, tmp_path):
    out = tmp_path / "resume"
    flags = [f for f in TINY_FLAGS if f not in ("--max_steps", "2")]
    base = ["trainers.grpo", "--env", "countdown-3", "--model", tiny_model, "--output-dir",
            str(out), *flags, "--save_strategy", "steps", "--save_steps", "1"]
    first = run_in_process(base + ["--max_steps", "1"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (out / "checkpoint-1").is_dir()
    second = run_in_process(base + ["--max_steps", "2", "--resume-from-checkpoint", str(out / "checkpoint-1")], tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    steps = [r["step"] for r in _metrics(out) if "reward" in r]
    assert steps == [1, 2]  # the resumed run appended step 2 to the same log


def test_launch_prints_every_machines_command_and_points_them_at_machine_0(capsys):
    from trainers import launch

    assert launch.main(["--gpus", "4", "--vllm-gpus", "1", "--num-machines", "2", "--machine-rank", "1",
                        "--main-host", "10.0.0.1", "--dry-run", "--", "--env", "countdown-3to4", "--model", "M"]) == 0
    out = capsys.readouterr().out
    assert "machine 0: python -m trainers.launch" in out and "machine 1 (this one):" in out
    train = out.strip().splitlines()[-1]
    assert "vllm-serve" not in out.split("machine 1 (this one)")[1]  # only machine 0 serves
    assert "--num_processes 6 --num_machines 2 --machine_rank 1 --main_process_ip 10.0.0.1" in train
    assert "--deepspeed_multinode_launcher standard" in train and "--vllm_server_host 10.0.0.1" in train
    with pytest.raises(SystemExit, match="--main-host"):
        launch.main(["--gpus", "2", "--vllm-gpus", "0", "--num-machines", "2", "--dry-run", "--", "--model", "M"])


@pytest.mark.slow
def test_two_machines_on_one_box_train_under_zero3_and_the_checkpoint_loads(tiny_model, tmp_path):
    """Two launchers, as on two machines (machine ranks 0 and 1, one CPU process each, gloo, ZeRO-3): both
    finish two GRPO steps, and the saved policy loads back."""
    from tests.conftest import REPO, free_port

    out = tmp_path / "two-machines"
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "PYTHONPATH": REPO,
           "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR",
                                                  os.path.expanduser("~/.cache/reasongym/torch_extensions"))}
    env.pop("PYTEST_CURRENT_TEST", None)
    machines = [subprocess.Popen(
        [sys.executable, "-m", "trainers.launch", "--gpus", "1", "--vllm-gpus", "0", "--num-machines", "2",
         "--machine-rank", str(rank), "--main-host", "127.0.0.1", "--main-port", str(port),
         "--accelerate-config", os.path.join(REPO, "recipes/accelerate/zero3-cpu.yaml"), "--",
         "--env", "countdown-3to4", "--model", tiny_model, "--output-dir", str(out), *TINY_FLAGS],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    logs = [m.communicate(timeout=900)[0] for m in machines]
    assert [m.returncode for m in machines] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "2 process(es)" in logs[0]
    train = [r for r in _metrics(out) if "reward" in r]
    assert len(train) == 2
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out)
    assert sum(p.numel() for p in model.parameters()) > 0

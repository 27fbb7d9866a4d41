"""Which recipe a run gets (`--model` without `--config`), and recipes shipped inside the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO
from trainers import evaluate, grpo
from trainers.common import recipes
from trainers.common.cli import RecipeError

PAIR = os.path.join("grpo", "countdown-3to4_qwen2.5-3b-instruct.yaml")


def test_the_headline_pair_gets_its_recipe_and_says_so(capsys):
    script, config = grpo.parse(["--env", "countdown-3to4", "--model", "Qwen/Qwen2.5-3B-Instruct"])
    line = capsys.readouterr().err
    assert f"recipe: {recipes.recipe_path('grpo', 'countdown-3to4_qwen2.5-3b-instruct.yaml')}" in line
    assert "written for this env and model" in line and "--config none" in line
    assert config["learning_rate"] == 5e-7 and config["max_steps"] == 450 and config["bf16"] is True
    # the recipe names a vLLM server; one process with no server named gets colocated vLLM or HF generate
    assert config.get("vllm_mode") == "colocate" or config.get("use_vllm") is False
    launched = grpo.parse(["--env", "countdown-3to4", "--model", "Qwen/Qwen2.5-3B-Instruct", "--vllm_mode", "server",
                           "--vllm_server_host", "127.0.0.1"])[1]
    assert launched["vllm_mode"] == "server"  # trainers.launch names its server: the recipe's layout stands


def test_a_local_folder_matches_by_its_name_or_its_config(tiny_model, tmp_path):
    named = tmp_path / "Qwen2.5-3B-Instruct"
    shutil.copytree(tiny_model, named)
    assert recipes.pair_recipe("grpo", "countdown-3to4", str(named)).endswith(PAIR)
    renamed = tmp_path / "my-finetune"
    shutil.copytree(tiny_model, renamed)
    config = json.loads((renamed / "config.json").read_text())
    (renamed / "config.json").write_text(json.dumps({**config, "_name_or_path": "Qwen/Qwen2.5-3B-Instruct"}))
    assert recipes.pair_recipe("grpo", "countdown-3to4", str(renamed)).endswith(PAIR)
    assert recipes.pair_recipe("grpo", "gsm8k", str(renamed)) is None


def test_without_a_pair_recipe_the_defaults_are_scaled_by_the_model_size(tiny_model, capsys):
    params = recipes.parameter_count(tiny_model)
    assert params is not None and params < 5_000_000  # read from config.json, no weights loaded
    script, config = grpo.parse(["--env", "gsm8k", "--model", tiny_model])
    line = capsys.readouterr().err
    assert "pretrained.yaml" in line and f"{params / 1e9:.2f}B parameters" in line
    assert config["learning_rate"] == 1e-5 and config["max_completion_length"] == 512
    assert config["eval_steps"] == 50 and config["save_strategy"] == "steps"
    big = recipes.sized_values(3_000_000_000)[0]
    assert big["learning_rate"] < config["learning_rate"] and big["gradient_checkpointing"] is True
    assert big["checkpointed_layers"] == 0.5  # every other layer recomputes (docs/benchmarks.md)
    small_on_gpu = recipes.sized_values(135_000_000, gpu=True, gpu_memory_gb=80)[0]
    assert small_on_gpu["gradient_checkpointing"] is False and small_on_gpu["per_device_train_batch_size"] == 64
    assert "gradient_checkpointing" not in recipes.sized_values(135_000_000, gpu=True, gpu_memory_gb=24)[0]
    assert "gradient_checkpointing" not in recipes.sized_values(135_000_000)[0]  # CPU: TRL's default stays


def test_partial_checkpointing_only_where_the_gpu_has_the_memory(monkeypatch, capsys):
    mini_r1 = recipes.load_recipe(recipes.recipe_path(*PAIR.split(os.sep)))
    assert mini_r1["checkpointed_layers"] == 0.5
    alone = {**mini_r1, "use_vllm": False}
    assert recipes.memory_fit(alone, {}, 80.0) == (alone, "")  # an 80 GB card without vLLM keeps it
    fitted, note = recipes.memory_fit(alone, {}, 40.0)
    assert fitted["checkpointed_layers"] == 1.0 and "40 GB" in note and "--checkpointed-layers 0.5" in note
    colocated = {**mini_r1, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3}
    fitted, note = recipes.memory_fit(colocated, {}, 80.0)
    assert fitted["checkpointed_layers"] == 1.0 and "56 GB" in note and "beside colocated vLLM" in note
    assert recipes.memory_fit(colocated, {"checkpointed_layers": 0.5}, 80.0)[0] is colocated  # the user's wins
    assert recipes.memory_fit(alone, {}, 0.0)[0] is alone  # no GPU: the recipe's value
    sized = recipes.sized_values(3_000_000_000, gpu=True, gpu_memory_gb=24)[0]
    assert recipes.memory_fit(sized, {}, 24.0)[0]["checkpointed_layers"] == 1.0
    # through the headline command's parse, with a 40 GB GPU reported
    monkeypatch.setattr(recipes, "gpu_memory_gb", lambda: 40.0)
    headline = ["--env", "countdown-3to4", "--model", "Qwen/Qwen2.5-3B-Instruct", "--use_vllm", "false"]
    assert grpo.parse(headline)[0].checkpointed_layers == 1.0
    assert "every layer checkpointed: 40 GB" in capsys.readouterr().err
    assert grpo.parse(headline + ["--checkpointed-layers", "0.5"])[0].checkpointed_layers == 0.5


def test_config_none_and_a_user_config_win(tiny_model, tmp_path, capsys):
    _, bare = grpo.parse(["--env", "countdown-3to4", "--model", "Qwen/Qwen2.5-3B-Instruct", "--config", "none"])
    assert "learning_rate" not in bare and bare["save_strategy"] == "no"  # TRL's own defaults, our run defaults
    mine = tmp_path / "mine.yaml"
    mine.write_text("learning_rate: 0.125\nmax_steps: 3\n")
    capsys.readouterr()
    _, config = grpo.parse(["--env", "countdown-3to4", "--model", tiny_model, "--config", str(mine)])
    assert config["learning_rate"] == 0.125 and "recipe:" not in capsys.readouterr().err


def test_bad_model_references_fail_before_anything_loads(tmp_path):
    for bad in (str(tmp_path / "missing"), str(tmp_path)):
        with pytest.raises(RecipeError, match="config.json"):
            grpo.parse(["--env", "countdown-3to4", "--model", bad])
        assert evaluate.main(["--env", "countdown-3to4", "--model", bad]) == 2
    with pytest.raises(RecipeError, match="download"):  # a hub id, with the hub off (tests run offline)
        grpo.parse(["--env", "gsm8k", "--model", "no-such-org/no-such-model"])


@pytest.mark.slow
def test_a_wheel_install_finds_its_recipes_and_trains_from_another_directory(tiny_model, tmp_path):
    """The wheel holds the recipes; from a directory that is not the checkout, the main job's recipe, the launcher's
    accelerate config and two GRPO steps of a tiny policy all work (PYTHONPATH puts the installed copy first)."""
    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    REPO], check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("reasongym-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=600)
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}
    probe = ("import trainers.parts.demo as d, trainers.common.recipes as r, os; "
             "print(d.DEMO_RECIPE); print(r.recipe_path('accelerate', 'zero3.yaml')); "
             "print(all(os.path.isfile(p) for p in (d.DEMO_RECIPE, r.recipe_path('accelerate', 'zero3.yaml'))))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.split()[-1] == "True", out.stderr[-2000:]
    assert all(path.startswith(str(target)) for path in out.stdout.split()[:2])  # the installed copy, not the checkout
    run = subprocess.run([sys.executable, "-m", "trainers.grpo", "--env", "countdown-3to4", "--model", tiny_model,
                          "--output-dir", str(work / "run"), "--max_steps", "2", "--per_device_train_batch_size", "4",
                          "--num_generations", "4", "--max_completion_length", "16", "--train-size", "8",
                          "--eval-size", "0", "--gradient_checkpointing", "false"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "pretrained.yaml" in run.stderr and str(target) in run.stderr
    assert (work / "run" / "model.safetensors").exists()


def test_liger_kernels_where_installed_on_a_gpu_and_kept_out_of_hf_generates_compiled_decode(monkeypatch):
    import importlib.util

    mini_r1 = {**recipes.load_recipe(recipes.recipe_path(*PAIR.split(os.sep))), "use_vllm": False}
    installed = importlib.util.find_spec("liger_kernel") is not None
    fitted, note = recipes.liger_fit(mini_r1, {}, 80.0)
    assert fitted.get("use_liger_kernel", False) is installed and ("Liger" in note) is installed
    assert recipes.liger_fit(mini_r1, {}, 0.0)[0] is mini_r1  # no GPU
    assert recipes.liger_fit(mini_r1, {"use_liger_kernel": False}, 80.0)[0] is mini_r1  # the user's wins
    # HF generate's loop with the compiled decode would trace Liger's kernels: off, unless vLLM generates
    assert recipes.liger_fit(mini_r1, {"decode_loop": "hf"}, 80.0)[0] is mini_r1
    assert recipes.liger_fit({**mini_r1, "use_vllm": True}, {"decode_loop": "hf"}, 80.0)[0].get(
        "use_liger_kernel", False) is installed
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "liger_kernel" else object())
    assert recipes.liger_fit(mini_r1, {}, 80.0)[0] is mini_r1  # not installed

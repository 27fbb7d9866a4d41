"""What a new user trips over: data files, flag and recipe values, one CLI for every trainer, progress in logs."""

from __future__ import annotations

import inspect
import io
import json

import pytest
from rich.console import Console

import reasongym as rg
from reasongym import registry
from reasongym.errors import DatasetUnavailable
from tests.conftest import run_module

GSM = [{"question": f"What is {i} + {i}?", "answer": f"{i} + {i} = <<{i}+{i}={2 * i}>>{2 * i}\n#### {2 * i}"}
       for i in range(1, 7)]
MATH = [{"problem": f"Compute ${i}+1$.", "solution": f"It is $\\boxed{{{i + 1}}}$.", "answer": str(i + 1),
         "subject": "Algebra", "level": 1, "unique_id": f"u/{i}.json"} for i in range(4)]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


# ---- data files --------------------------------------------------------------------------------
def test_a_single_file_is_the_only_split_of_a_one_split_env(tmp_path):
    env = rg.make("math-500", data_files=_jsonl(tmp_path / "anything.jsonl", MATH))
    assert env.splits == ("test",) and len(env.tasks("test", n=None)) == 4


def test_a_list_of_files_works_like_datasets(tmp_path):
    a, b = _jsonl(tmp_path / "a.jsonl", MATH[:2]), _jsonl(tmp_path / "b.jsonl", MATH[2:])
    assert len(rg.make("math-500", data_files=[a, b]).tasks(n=None)) == 4
    gsm = rg.make("gsm8k", data_files=[_jsonl(tmp_path / "train.jsonl", GSM[:4]), _jsonl(tmp_path / "test.jsonl", GSM[4:])])
    assert gsm.task_count("train") == 4 and gsm.task_count("test") == 2


def test_gsm8k_with_only_its_test_file_evaluates_and_names_data_files_for_train(tmp_path):
    env = rg.make("gsm8k", data_files={"test": _jsonl(tmp_path / "t.jsonl", GSM)})
    assert env.splits == ("test",) and env.default_split == "test"
    task = env.tasks("test", n=1, seed=None)[0]
    assert env.score(env.reference_completion(task), task).reward == 1.0
    with pytest.raises(ValueError, match=r"split 'train' is not loaded.*data_files"):
        env.tasks("train")
    named = rg.make("gsm8k", data_files=_jsonl(tmp_path / "test-00000-of-00001.jsonl", GSM))
    assert named.splits == ("test",)  # a file named after its split, as on the hub
    env.reset(seed=0)  # reset picks the loaded split


def test_show_lists_the_loaded_splits(tmp_path):
    from reasongym.cli import main

    path = _jsonl(tmp_path / "test.jsonl", GSM)
    out = io.StringIO()
    import reasongym.cli as cli

    original = cli.Console
    cli.Console = lambda **kw: Console(file=out, width=200, **kw)
    try:
        assert main(["show", "gsm8k", "--env-kwargs", json.dumps({"data_files": path})]) == 0
    finally:
        cli.Console = original
    text = out.getvalue()
    assert "6 tasks loaded" in text and "not loaded" in text


def test_countdown_uses_the_data_files_it_is_given(tmp_path):
    import datasets

    rows = [{"nums": [n, n + 1, n + 2], "target": 3 * n + 3} for n in range(3, 43)]  # targets 12..129
    rows += [{"nums": [n, 2, 3, 4], "target": n + 9} for n in range(1, 41)]
    path = tmp_path / "rows.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    env = rg.make("countdown-3to4", data_files=str(path))
    assert env.source == "hub" and env.task_count("train") + env.task_count("test") == 40 + 30  # 3-number rows with targets <= 100: n = 3..32
    three = rg.make("countdown-3", data_files=str(path))  # counts select the rows that fit
    assert {len(t.question["nums"]) for t in three.tasks("train", n=None)} == {3}
    with pytest.raises(ValueError, match="source='procedural'"):
        rg.make("countdown-3to4", source="procedural", data_files=str(path))


def _bogus(name: str):
    return object() if name not in ("template", "reward_mode") else "no-such-" + name


@pytest.mark.parametrize("env_id", ["countdown-3to4", "countdown", "countdown-3to4-tool", "gsm8k", "math-750", "math-500",
                                    "reasoning-gym/gcd"])
def test_no_constructor_option_is_silently_ignored(env_id, tmp_path):
    """Every option of every built-in env is read at construction: a nonsense value fails at once."""
    spec = registry.spec(env_id)
    cls = registry._resolve(spec.entry_point)
    names = [p for klass in cls.__mro__ if klass is not object and "__init__" in vars(klass)
             for p in inspect.signature(klass.__init__).parameters if p not in ("self", "kwargs", "args")]
    names = [n for n in dict.fromkeys(names) if n != "source"]
    assert {"template", "reward_mode", "seed", "render_mode", "max_turns", "turn_decay"} <= set(names)
    dataset_env = env_id in ("gsm8k", "math-750", "math-500")
    assert "data_files" in names or env_id.startswith("reasoning-gym/")
    base = {"source": "sample"} if dataset_env else {}
    rg.make(env_id, **base)  # the valid form makes: every failure below is the option's own
    for name in names:
        kwargs = {**base, name: _bogus(name)}
        if name == "data_files":
            kwargs.pop("source", None)
        with pytest.raises((ValueError, TypeError, DatasetUnavailable)):
            rg.make(env_id, **kwargs)
    with pytest.raises(TypeError):
        rg.make(env_id, **base, no_such_option=1)


# ---- flags and recipes ---------------------------------------------------------------------------
def test_flag_values_follow_the_config_field_type(tmp_path):
    from trainers import grpo

    _, config = grpo.parse(["--env", "countdown-3", "--model", "m", "--config", "none", "--save_strategy", "no", "--bf16", "no",
                            "--report-to", "none", "--max_steps", "1e2", "--learning-rate", "1e-6"])
    assert config["save_strategy"] == "no" and config["bf16"] is False and config["report_to"] == "none"
    assert config["max_steps"] == 100 and config["learning_rate"] == 1e-6
    recipe = tmp_path / "r.yaml"
    recipe.write_text("env: countdown-3\nmodel: m\nsave_strategy: no\nlogging_strategy: 'no'\nuse_cpu: yes\n")
    _, config = grpo.parse(["--config", str(recipe)])
    assert config["save_strategy"] == "no" and config["logging_strategy"] == "no" and config["use_cpu"] is True
    from trl import GRPOConfig

    assert GRPOConfig(**{**config, "output_dir": str(tmp_path)}).save_strategy.value == "no"
    from trainers.common.cli import RecipeError

    with pytest.raises(RecipeError, match="--bf16 takes true or false"):
        grpo.parse(["--env", "countdown-3", "--model", "m", "--bf16", "maybe"])
    with pytest.raises(RecipeError, match="--max_steps takes an integer"):
        grpo.parse(["--env", "countdown-3", "--model", "m", "--max_steps", "ten"])


@pytest.mark.parametrize("module,extra", [
    ("trainers.grpo", []), ("trainers.ppo", []), ("trainers.rejection_sampling", []), ("trainers.evaluate", []),
])
def test_every_trainer_has_the_same_parser(module, extra):
    import importlib

    mod = importlib.import_module(module)
    from trainers.common.cli import RecipeError

    with pytest.raises(RecipeError, match="did you mean"):
        mod.parse(["--env", "countdown-3", "--model", "m", "--env-kwarg", "{}", *extra])
    with pytest.raises(RecipeError, match="--env is required"):
        mod.parse(["--model", "m"])


def test_rejection_sampling_takes_a_recipe_and_every_sft_field(tmp_path):
    from trainers import rejection_sampling as rs

    recipe = tmp_path / "rs.yaml"
    recipe.write_text("env: countdown-3\nmodel: m\nrounds: 2\noracle: every\nlearning_rate: 3.0e-5\n")
    options, config = rs.parse(["--config", str(recipe), "--max-steps", "7", "--samples", "4", "--oracle"])
    assert options.rounds == 2 and options.samples == 4 and options.oracle == "first"
    assert config["max_steps"] == 7 and config["learning_rate"] == 3e-5 and config["num_train_epochs"] == 1.0
    from trl import SFTConfig

    SFTConfig(**{**config, "use_cpu": True, "bf16": False})


def test_evaluate_takes_a_recipe(tmp_path):
    from trainers import evaluate

    recipe = tmp_path / "e.yaml"
    recipe.write_text("env: countdown-3\nmodel: m\nsamples: 4\nk: 1,4\nbackend: hf\n")
    options, config = evaluate.parse(["--config", str(recipe), "--n", "8"])
    assert config.ks() == [1, 4] and config.n == 8 and options.env == "countdown-3"


def test_shipped_recipes_parse_with_their_trainers():
    import glob
    import os

    from tests.conftest import REPO
    from trainers import evaluate, ppo, rejection_sampling

    found = 0
    for path in glob.glob(os.path.join(REPO, "recipes/rejection_sampling/*.yaml")):
        rejection_sampling.parse(["--config", path]) and None
        found += 1
    for path in glob.glob(os.path.join(REPO, "recipes/evaluate/*.yaml")):
        evaluate.parse(["--config", path])
        found += 1
    for path in glob.glob(os.path.join(REPO, "recipes/ppo/*.yaml")):
        ppo.parse(["--config", path])
        found += 1
    assert found >= 4


def test_help_documents_every_config_field():
    from trainers import evaluate, ppo

    text = ppo.CLI.help()
    for name in ("vf_coef", "kl_estimator", "whiten_advantages", "--env-kwargs"):
        assert name in text
    assert "k3 (low-variance" in text and "pass@k" in evaluate.CLI.help()
    from trainers import grpo

    full = grpo._cli().help(all_fields=True)
    assert "--num_generations" in full and "--learning_rate" in full


# ---- progress in log files --------------------------------------------------------------------------
def test_progress_without_a_terminal_prints_plain_lines_with_rate_and_eta():
    from trainers.common.progress import PlainProgress, make_progress

    out = io.StringIO()
    progress = make_progress(Console(file=out, width=200), every_percent=10)
    assert isinstance(progress, PlainProgress)
    with progress:
        task = progress.add_task("evaluating", total=200, info="")
        for i in range(200):
            progress.update(task, completed=i + 1, info=f"acc {i / 200:.2f}")
    lines = out.getvalue().splitlines()
    assert 10 <= len(lines) <= 12 and lines[-1].startswith("evaluating  200/200 (100%)")
    assert "it/s" in lines[5] and "ETA" in lines[5] and "acc" in lines[5]


@pytest.mark.slow
def test_grpo_logs_progress_lines_to_a_file(tiny_model, tmp_path):
    proc = run_module(["trainers.grpo", "--env", "countdown-3", "--model", tiny_model, "--output-dir", str(tmp_path / "o"),
                       "--max_steps", "2", "--per_device_train_batch_size", "4", "--num_generations", "4",
                       "--max_completion_length", "8", "--use_cpu", "true", "--bf16", "false", "--save_strategy", "no"],
                      tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    progress = [line for line in proc.stdout.splitlines() if line.startswith("GRPO on countdown-3")]
    assert progress and progress[-1].startswith("GRPO on countdown-3  2/2 (100%)"), proc.stdout[-2000:]

"""Typed trainer options: one vocabulary across trainers, validation with reasons, old names named."""

from __future__ import annotations

import dataclasses

import pytest

from trainers.common.cli import RecipeError, TrainerCLI
from trainers.common.options import (RENAMED, CommonOptions, GRPOOptions, PPOOptions, RejectionSamplingOptions,
                                     TrainingOptions, flag_name)


def _flags(cls: type) -> dict[str, dataclasses.Field]:
    return {flag_name(f): f for f in dataclasses.fields(cls)}


def test_a_name_means_one_thing_in_every_trainer():
    """Options with the same name share their type across trainers; every option has help text."""
    seen: dict[str, object] = {}
    for cls in (GRPOOptions, PPOOptions, RejectionSamplingOptions):
        assert issubclass(cls, TrainingOptions) and issubclass(cls, CommonOptions)
        for name, field in _flags(cls).items():
            assert field.metadata.get("help"), f"{cls.__name__}.{name} has no help"
            assert seen.setdefault(name, field.type) == field.type, name
    assert "import" in _flags(CommonOptions)  # the flag, though the attribute is import_modules


def test_trainers_and_evaluate_share_the_sampling_vocabulary():
    from trainers.evaluate import EvalConfig
    from trainers.ppo import PPOConfig

    eval_fields = {f.name for f in dataclasses.fields(EvalConfig)}
    rs_fields = set(_flags(RejectionSamplingOptions))
    for shared in ("samples", "max_completion_length", "gen_batch_size", "temperature"):
        assert shared in eval_fields and shared in rs_fields, shared
    assert "seed_tasks" in eval_fields and "seed_tasks" in _flags(TrainingOptions)
    assert {"per_device_train_batch_size", "max_completion_length"} <= {f.name for f in dataclasses.fields(PPOConfig)}
    for trainer, renames in RENAMED.items():  # an old name is no option of the trainer that renamed it
        for old, new in renames.items():
            assert old not in rs_fields or trainer != "rejection_sampling"
            assert new != old


@pytest.mark.parametrize("module, argv, new", [
    ("rejection_sampling", ["--k", "4"], "--samples"),
    ("rejection_sampling", ["--max-new-tokens", "64"], "--max_completion_length"),
    ("evaluate", ["--seed", "3"], "--seed_tasks"),
    ("evaluate", ["--batch_size", "8"], "--gen_batch_size"),
    ("ppo", ["--per_device_batch_size", "4"], "--per_device_train_batch_size"),
])
def test_an_old_name_fails_with_the_new_one(module, argv, new):
    import importlib

    mod = importlib.import_module(f"trainers.{module}")
    with pytest.raises(RecipeError, match=f"is now {new}"):
        mod.parse(["--env", "countdown-3", "--model", "m", *argv])


def test_a_recipe_with_an_old_name_fails_the_same_way(tmp_path):
    from trainers import evaluate

    recipe = tmp_path / "old.yaml"
    recipe.write_text("env: countdown-3\nmodel: m\nmax_new_tokens: 64\n")
    with pytest.raises(RecipeError, match="--max_new_tokens is now --max_completion_length"):
        evaluate.parse(["--config", str(recipe)])


@pytest.mark.parametrize("cls, kwargs, reason", [
    (GRPOOptions, {"curriculum": "steep"}, "--curriculum must be one of fixed, linear, adaptive"),
    (GRPOOptions, {"curriculum_band": "0.9,0.1"}, "LOW < HIGH"),
    (GRPOOptions, {"curriculum_band": "half"}, "two numbers"),
    (GRPOOptions, {"compiled_decode": "sometimes"}, "--compiled-decode must be one of auto"),
    (GRPOOptions, {"lora_r": 0}, "--lora-r must be at least 1"),
    (RejectionSamplingOptions, {"oracle": "always"}, "--oracle must be one of first, every"),
    (RejectionSamplingOptions, {"backend": "openai"}, "--backend must be one of hf, vllm"),
    (RejectionSamplingOptions, {"samples": 0}, "--samples must be at least 1"),
    (PPOOptions, {"train_size": 0}, "--train-size must be at least 1"),
    (CommonOptions, {"env": None}, "--env is required"),
])
def test_options_validate_when_built_and_say_why(cls, kwargs, reason):
    with pytest.raises(RecipeError, match=reason):
        cls(**{"env": "countdown-3", **kwargs})


def test_parse_returns_typed_options_with_values_cast_once():
    from trainers import grpo, rejection_sampling

    options, _ = grpo.parse(["--env", "countdown-3", "--model", "m", "--config", "none", "--eval-size", "16", "--lora-dropout", "0.1",
                             "--resume-from-checkpoint", "latest", "--import", "json"])
    assert isinstance(options, GRPOOptions)
    assert options.eval_size == 16 and options.lora_dropout == 0.1 and options.resume_from_checkpoint is True
    assert options.import_modules == "json" and options.band == (0.2, 0.8)
    rs, _ = rejection_sampling.parse(["--env", "countdown-3", "--model", "m", "--oracle"])
    assert rs.oracle == "first" and rs.samples == 8


def test_help_lists_typed_options_with_defaults():
    cli = TrainerCLI("prog", "summary", RejectionSamplingOptions, PPOOptions)
    text = cli.help()
    assert "--samples" in text and "(default: 8)" in text and "--import" in text and "--allow-unsafe-env" in text

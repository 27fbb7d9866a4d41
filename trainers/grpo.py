"""GRPO on any reasongym env through TRL's GRPOTrainer.

    python -m trainers.grpo --env countdown-3to4 --model Qwen/Qwen2.5-3B-Instruct
    python -m trainers.grpo --config recipes/grpo/countdown-3to4_qwen2.5-3b-instruct.yaml --max_steps 10
    accelerate launch --config_file recipes/accelerate/zero3.yaml --num_processes 2 -m trainers.grpo ...

Order of work: parse recipe + flags -> make the env -> pre-flight checks (batch
shape, devices, vLLM, PEFT) -> tokenizer + chat-template check -> only then the
model loads (inside GRPOTrainer).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

import reasongym as rg
from reasongym.adapters.trl import build_dataset, make_reward_funcs
from reasongym.registry import UnknownEnvError
from trainers import preflight
from trainers.recipes import RecipeError, ScriptOption, help_text, load_recipe, parse_flags, split_options

SCRIPT_OPTIONS = [
    ScriptOption("env", None, "env id (python -m reasongym list)"),
    ScriptOption("model", None, "hub id or local path of the policy (default: the embedded default policy)"),
    ScriptOption("config", None, "YAML recipe (recipes/grpo/*.yaml); flags override it"),
    ScriptOption("env_kwargs", None, "JSON object of env overrides, e.g. '{\"template\": \"base\"}'"),
    ScriptOption("reward_mode", None, "env reward mode (python -m reasongym show ID lists them)"),
    ScriptOption("train_size", None, "training tasks (procedural envs: default enough for max_steps)"),
    ScriptOption("eval_size", 0, "held-out test tasks evaluated every eval_steps (0 = no evaluation)"),
    ScriptOption("seed_tasks", 0, "seed of the task draw (independent of the training --seed)"),
    ScriptOption("use_peft", False, "train LoRA adapters instead of all weights"),
    ScriptOption("lora_r", 16, "LoRA rank"),
    ScriptOption("lora_alpha", 32, "LoRA alpha"),
    ScriptOption("lora_dropout", 0.05, "LoRA dropout"),
    ScriptOption("lora_target_modules", "all-linear", "LoRA target modules"),
    ScriptOption("resume_from_checkpoint", None, "checkpoint dir to resume from (or true for the latest)"),
    ScriptOption("scoring_workers", None, "verifier processes (default: in-process for cheap verifiers)"),
    ScriptOption("default_policy", "cpu", "without --model: size of the embedded default policy (cpu, gpu, ci)"),
    ScriptOption("demo_eval_tasks", 500, "without --model: held-out tasks in the before/after table"),
    ScriptOption("curriculum", None, "fixed | linear | adaptive: sample task difficulty by a schedule"),
    ScriptOption("curriculum_band", "0.2,0.8", "adaptive: success band a level should sit in"),
    ScriptOption("curriculum_window", 256, "adaptive: outcomes remembered per level"),
]
SUMMARY = "Train a policy with GRPO (TRL GRPOTrainer) on a reasongym env."

RUN_DEFAULTS: dict[str, Any] = {
    "report_to": "none",
    "logging_steps": 1,
    "save_strategy": "no",
    "remove_unused_columns": False,
}


def parse(argv: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(script options, GRPOConfig kwargs) from recipe + flags; raises RecipeError."""
    from trl import GRPOConfig

    flags = parse_flags(argv)
    recipe = load_recipe(flags.get("config"))
    if not flags.get("model") and not recipe.get("model") and not flags.get("config"):
        from trainers.demo import DEMO_RECIPE

        recipe = load_recipe(DEMO_RECIPE)  # no model, no recipe: the offline main job's settings
    merged = {**recipe, **flags}
    script, config = split_options(merged, SCRIPT_OPTIONS, GRPOConfig)
    if not script["env"]:
        raise RecipeError("--env is required (python -m reasongym list shows the ids)")
    env_name = str(script["env"]).replace("/", "_")
    config = {**RUN_DEFAULTS, "output_dir": os.path.join("outputs", f"grpo-{env_name}"), **config}
    return script, config


def make_env(script: dict[str, Any]) -> rg.Env:
    kwargs = dict(script.get("env_kwargs") or {})
    if script.get("reward_mode"):
        kwargs["reward_mode"] = script["reward_mode"]
    try:
        return rg.make(script["env"], **kwargs)
    except UnknownEnvError:
        raise
    except TypeError as exc:
        raise RecipeError(f"bad --env-kwargs for {script['env']}: {exc}") from None


def default_train_size(env: rg.Env, config: dict[str, Any], plan: preflight.BatchPlan) -> int | None:
    if env.task_count("train") is not None:
        return None
    steps = int(config.get("max_steps", -1))
    needed = steps * plan.prompts_per_generation // max(1, plan.steps_per_generation) if steps > 0 else 10_000
    return max(64, min(20_000, needed))


def build_trainer(script: dict[str, Any], config_kwargs: dict[str, Any], console: Console):
    """Everything up to (and including) the GRPOTrainer, after the pre-flight checks."""
    env = make_env(script)
    plan = preflight.check_batch(config_kwargs)
    config_kwargs.update(preflight.check_devices(config_kwargs))
    preflight.check_vllm(config_kwargs)
    preflight.check_peft(bool(script["use_peft"]))
    if script["eval_size"]:
        config_kwargs.setdefault("eval_strategy", "steps")
        config_kwargs.setdefault("eval_steps", 50)
        config_kwargs.setdefault("per_device_eval_batch_size", config_kwargs.get("per_device_train_batch_size", 8))
        preflight.check_batch(config_kwargs)
    if not script["resume_from_checkpoint"] and _is_main():
        for stale in ("metrics.jsonl", "samples.jsonl", "successes.jsonl"):  # a fresh run starts fresh logs
            path = os.path.join(config_kwargs["output_dir"], stale)
            if os.path.exists(path):
                os.remove(path)
    # float32 weights unless the recipe asks otherwise: with bf16=True the trainer autocasts and keeps
    # fp32 master weights (pure-bf16 Adam updates of small models diverged on the GPU check);
    # big-model recipes set model_init_kwargs {dtype: bfloat16} to halve memory.
    from trainers.tiny import load_kwargs

    init_kwargs = {**load_kwargs(script["model"], bool(config_kwargs.get("bf16"))),
                   **dict(config_kwargs.get("model_init_kwargs") or {})}
    init_kwargs.setdefault("dtype", "float32")
    config_kwargs["model_init_kwargs"] = init_kwargs

    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(script["model"], padding_side="left")
    preflight.check_chat_template(tokenizer, env.template.kind, env.template.name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    n_train = script["train_size"] or default_train_size(env, config_kwargs, plan)
    seed_tasks = int(script["seed_tasks"])
    train_tasks = env.tasks("train", n=n_train, seed=seed_tasks)
    levels = sorted({t.difficulty for t in train_tasks if t.difficulty is not None})
    scheduler = None
    callbacks: list = []
    if script["curriculum"]:
        from trainers.curriculum_data import (CurriculumCallback, build_curriculum, curriculum_dataset, level_pools,
                                              scheduler_feedback)

        pools = level_pools(train_tasks)
        band = tuple(float(x) for x in str(script["curriculum_band"]).split(","))
        scheduler = build_curriculum(script["curriculum"], pools, int(config_kwargs.get("max_steps", -1)), band,
                                     int(script["curriculum_window"]))
        if int(config_kwargs.get("max_steps", -1)) <= 0:
            raise RecipeError("--curriculum streams tasks without end: set --max_steps")
        config_kwargs["shuffle_dataset"] = False  # the stream is already random; a shuffle buffer would lag the schedule
        callbacks.append(CurriculumCallback(scheduler))

    funcs, weights = make_reward_funcs(
        env, log_dir=config_kwargs["output_dir"], levels=levels,
        on_scores=scheduler_feedback(scheduler) if scheduler is not None else None,
        **({"engine": _engine(script)} if script.get("scoring_workers") is not None else {}),
    )
    config_kwargs.setdefault("reward_weights", weights)
    args = GRPOConfig(**config_kwargs)

    if scheduler is not None:
        train = curriculum_dataset(env, pools, scheduler, tokenizer, seed_tasks)
    else:
        train = build_dataset(env, "train", tokenizer=tokenizer, tasks=train_tasks)
    evaluation = None
    if script["eval_size"]:
        evaluation = build_dataset(env, "test", n=int(script["eval_size"]), seed=seed_tasks, tokenizer=tokenizer)

    peft_config = None
    if script["use_peft"]:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=int(script["lora_r"]), lora_alpha=int(script["lora_alpha"]), lora_dropout=float(script["lora_dropout"]),
            target_modules=script["lora_target_modules"], task_type="CAUSAL_LM",
        )

    from trainers.callbacks import MetricsLogCallback

    if _is_main():
        console.print(f"[bold]env[/] {env.env_id} ({env.template.name} template, {env.reward_mode} reward: "
                      + ", ".join(f"{k} x {w:g}" for k, w in env.reward_weights.items()) + ")")
        console.print(f"[bold]batch[/] {plan.describe()}")
        console.print(f"[bold]data[/] {len(train_tasks)} train tasks" + (f", {len(evaluation)} held-out" if evaluation else "")
                      + (f"; curriculum {scheduler.name} over levels {levels}" if scheduler else ""))
    trainer = GRPOTrainer(
        model=script["model"],
        reward_funcs=funcs,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[*callbacks, MetricsLogCallback(args.output_dir, title=f"GRPO on {env.env_id}")],  # curriculum keys first
    )
    return trainer, env


def _engine(script: dict[str, Any]):
    from reasongym.scoring import ScoringEngine

    return ScoringEngine(workers=int(script["scoring_workers"]))


def _is_main() -> bool:
    return os.environ.get("RANK", "0") == "0"


def save_policy(trainer, source_model: str) -> None:
    from trainers.tiny import copy_load_hints

    trainer.save_model(trainer.args.output_dir)
    if _is_main():
        copy_load_hints(source_model, trainer.args.output_dir)


def summarize(trainer, console: Console) -> None:
    history = [h for h in trainer.state.log_history if "reward" in h]
    if not history or not _is_main():
        return
    first, last = history[0], history[-1]
    table = Table(title=f"GRPO run: {trainer.state.global_step} steps")
    table.add_column("metric")
    table.add_column("first step", justify="right")
    table.add_column("last step", justify="right")
    for key in ("reward", *[k for k in first if k.startswith("rewards/") and k.endswith("/mean")],
                "completions/mean_length", "frac_reward_zero_std", "aha_rate"):
        if key in first and key in last:
            table.add_row(key, f"{first[key]:.3f}", f"{last[key]:.3f}")
    evals = [h for h in trainer.state.log_history if "eval_reward" in h]
    if evals:
        table.add_row("eval_reward (held-out)", f"{evals[0]['eval_reward']:.3f}", f"{evals[-1]['eval_reward']:.3f}")
    console.print(table)
    console.print(f"samples: {os.path.join(trainer.args.output_dir, 'samples.jsonl')}  "
                  f"curve: {os.path.join(trainer.args.output_dir, 'reward_curve.png')}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(soft_wrap=True)
    if not argv or "-h" in argv or "--help" in argv:
        print(help_text("python -m trainers.grpo", SUMMARY, SCRIPT_OPTIONS, "GRPOConfig"))
        return 0
    try:
        script, config = parse(argv)
        if not script["model"]:
            from trainers import demo

            return demo.run(script, config, console, build_trainer)
        trainer, _ = build_trainer(script, config, console)
    except (RecipeError, preflight.PreflightError, UnknownEnvError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    resume = script["resume_from_checkpoint"]
    trainer.train(resume_from_checkpoint=resume)
    save_policy(trainer, script["model"])
    summarize(trainer, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())

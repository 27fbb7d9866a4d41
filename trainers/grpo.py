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
from contextlib import nullcontext
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

import reasongym as rg
from reasongym import telemetry
from reasongym.templates import observation_text
from reasongym.adapters.trl import RewardAdapter, build_dataset, episode_reward_func, episode_tools
from trainers.common import preflight
from trainers.parts import demo, fast_training
from trainers.rollout import compiled_decode, static_sampler
from trainers.rollout.liger_aside import LigerAside, quiet_trl_deprecation
from trainers.common import recipes
from trainers.common.cuda_attention import guard_training_attention
from trainers.common.cli import RecipeError, TrainerCLI, open_env, run_entry_point
from trainers.common.options import GRPOOptions
from trainers.common.models import LOAD_HINTS, load_kwargs, load_tokenizer, save_policy

RUN_DEFAULTS: dict[str, Any] = {
    "report_to": "none",
    "logging_steps": 1,
    "save_strategy": "no",
    "remove_unused_columns": False,
}


def _cli():
    from trl import GRPOConfig

    return TrainerCLI("python -m trainers.grpo", "Train a policy with GRPO (TRL GRPOTrainer) on a reasongym env.",
                      GRPOOptions, GRPOConfig,
                      example="python -m trainers.grpo --env countdown-3to4 --model Qwen/Qwen2.5-3B-Instruct")


def parse(argv: Sequence[str]) -> tuple[GRPOOptions, dict[str, Any]]:
    """(typed options, GRPOConfig kwargs) from recipe + flags; raises RecipeError.
    No recipe: with a model, the one for this env and model (trainers.common.recipes); without, the
    offline main job's recipe (trainers.parts.demo)."""
    def default_recipe(flags: dict[str, Any]):
        if not flags.get("model"):
            return demo.DEMO_RECIPE
        return recipes.for_model("grpo", str(flags.get("env", "")), str(flags["model"]), flags)

    options, config = _cli().parse(argv, default_recipe)
    env_name = str(options.env).replace("/", "_")
    return options, {**RUN_DEFAULTS, "output_dir": os.path.join("outputs", f"grpo-{env_name}"), **config}


def make_env(options: GRPOOptions, console: Console | None = None) -> rg.Env:
    return open_env(options, console or Console(stderr=True))


def default_train_size(env: rg.Env, config: dict[str, Any], plan: preflight.BatchPlan) -> int | None:
    if env.task_count("train") is not None:
        return None
    steps = int(config.get("max_steps", -1))
    needed = steps * plan.prompts_per_generation // max(1, plan.steps_per_generation) if steps > 0 else 10_000
    return max(64, min(20_000, needed))


def build_trainer(options: GRPOOptions, config_kwargs: dict[str, Any], console: Console):
    """Everything up to (and including) the GRPOTrainer, after the pre-flight checks."""
    env = make_env(options, console)
    preflight.check_env_safety(env, options.allow_unsafe_env)
    check_learned_rewards(options, env)
    plan = check_config(options, config_kwargs, console)
    if not options.resume_from_checkpoint and telemetry.is_main_process():
        telemetry.reset_run_logs(config_kwargs["output_dir"])  # a fresh run starts fresh logs
    config_kwargs["model_init_kwargs"] = model_init_kwargs(options.model, config_kwargs)
    tokenizer = policy_tokenizer(options, env)
    train_tasks = env.tasks("train", n=options.train_size or default_train_size(env, config_kwargs, plan),
                            seed=options.seed_tasks)
    levels = sorted({t.difficulty for t in train_tasks if t.difficulty is not None})
    train, scheduler, callbacks, funcs, weights = data_and_rewards(env, options, config_kwargs, train_tasks,
                                                                   tokenizer, levels)
    config_kwargs.setdefault("reward_weights", weights)
    if not console.is_terminal:
        config_kwargs.setdefault("disable_tqdm", True)  # plain progress lines instead of \r-bars in a log file

    from trl import GRPOConfig

    from trainers.common.callbacks import MetricsLogCallback, NonFiniteGradientStop, TimeBudgetCallback
    from trainers.common.progress import StepProgressCallback

    args = GRPOConfig(**config_kwargs)
    evaluation = None
    if options.eval_size:
        evaluation = build_dataset(env, "test", n=options.eval_size, seed=options.seed_tasks,
                                   tokenizer=tokenizer)
    if telemetry.is_main_process():
        describe_run(console, env, plan, len(train_tasks), evaluation, scheduler, levels)
    callbacks.append(MetricsLogCallback(args.output_dir, title=f"GRPO on {env.env_id}"))  # after curriculum keys
    callbacks.append(NonFiniteGradientStop(lambda text: console.print(f"[bold red]{text}[/]")))
    if options.max_train_minutes:
        callbacks.append(TimeBudgetCallback(options.max_train_minutes))
    if args.disable_tqdm:
        callbacks.append(StepProgressCallback(f"GRPO on {env.env_id}", console))
    tool_loop = {"environment_factory": episode_tools(env)} if env.multi_turn else {}
    if args.use_vllm and args.use_cpu:
        from trainers.rollout.vllm_sync import pin_colocated_engine_on_cpu

        pin_colocated_engine_on_cpu()
    with quiet_trl_deprecation() if args.use_liger_kernel else nullcontext():
        trainer = fast_training.trainer_class()(model=options.model, reward_funcs=funcs, args=args,
                                                train_dataset=train, eval_dataset=evaluation,
                                                processing_class=tokenizer, peft_config=lora_config(options),
                                                callbacks=callbacks, **tool_loop)
    trainer.trims_padding, trainer.checkpointed_layers = options.trim_padding, options.checkpointed_layers
    if telemetry.is_main_process():
        console.print(f"[bold]training[/] {fast_training.describe(args, trainer.model, options)}")
    if args.use_vllm:
        from trainers.rollout.vllm_sync import use_reload_sync

        use_reload_sync(trainer)
    compile_decoding(trainer, options.compiled_decode, env, train_tasks, tokenizer, console, bool(tool_loop),
                     options.decode_loop)
    return trainer, env


def check_learned_rewards(options: GRPOOptions, env: rg.Env) -> None:
    """Pre-flight of --reward-model and --process-reward-model: configs and tokens, before any model loads."""
    if not (options.reward_model or options.process_reward_model):
        return
    if env.multi_turn:
        raise RecipeError("--reward-model and --process-reward-model are not available for multi-turn or tool envs yet")
    from trainers.parts.reward_model import check_process_reward_model, check_reward_model

    if options.reward_model:
        check_reward_model(options.reward_model)
    if options.process_reward_model:
        check_process_reward_model(options.process_reward_model, options.prm_step_tag, options.prm_good_token,
                                   options.prm_bad_token, options.prm_aggregate)


def compile_decoding(trainer, mode: str, env: rg.Env, tasks: list[rg.Task], tokenizer: Any, console: Console,
                     multi_turn: bool, decode_loop: str = "own") -> None:
    """The static-cache compiled decode (trainers.rollout.compiled_decode) where `mode` asks for it. Not for
    multi-turn and tool episodes: their prompt grows turn by turn, so no one cache size fits it."""
    if multi_turn or not tasks or not compiled_decode.trainer_wants(mode, trainer):
        if compiled_decode.check_mode(mode) == "true" and telemetry.is_main_process():
            console.print("[yellow]--compiled-decode true not applied[/]: it needs single-turn episodes, HF "
                          "generate (no vLLM) and weights in the dtype they run in (not fp32 weights under "
                          "--bf16/--fp16 autocast)")
        elif not multi_turn and compiled_decode.off_only_for_autocast(mode, trainer) and telemetry.is_main_process():
            console.print("[yellow]compiled decode off[/]: float32 weights under --bf16/--fp16 autocast cannot use "
                          "a static KV cache. For a small model, --bf16 false --tf32 true compiles the decode step "
                          "(2x the GRPO steps per minute for the GPU default policy); a big one can load in bf16 "
                          "(--model_init_kwargs '{\"dtype\": \"bfloat16\"}')")
        return
    sample = compiled_decode.sample(tasks)
    longest = compiled_decode.prompt_tokens([observation_text(env.prompt(t), tokenizer, env.template) for t in sample],
                                            tokenizer)
    length = compiled_decode.cache_length(longest, int(trainer.args.max_completion_length))
    compiled_decode.use_compiled_decode(trainer, length)
    loop = use_static_sampler(trainer, length, tokenizer, decode_loop)
    if telemetry.is_main_process():
        compiled = "compiled decode" if trainer.accelerator.device.type == "cuda" else "no compile off CUDA"
        console.print(f"[bold]generation[/] {loop}, static KV cache of {length} tokens, {compiled} "
                      "(--compiled-decode false turns it off)")


def use_static_sampler(trainer, length: int, tokenizer: Any, decode_loop: str) -> str:
    """Give the trainer our own sampling loop (trainers.rollout.static_sampler) where its settings allow;
    the pre-flight words for the loop that will run."""
    liger = ("; [yellow]Liger's kernels will run inside its compiled decode step[/], which made generation 5.5x "
             "slower at the 3B shape (--use_liger_kernel false, or --compiled-decode false)"
             if trainer.args.use_liger_kernel else "")
    if decode_loop == "hf":
        return "HF generate (--decode-loop own: a loop with nothing per token but the forward and the draw)" + liger
    why_not = static_sampler.unsupported_reason(
        trainer.temperature, trainer.top_p, trainer.top_k, trainer.min_p, trainer.repetition_penalty,
        trainer.args.generation_kwargs, getattr(trainer.model.config, "_attn_implementation", None))
    if why_not or not hasattr(trainer, "static_sampler"):
        return f"HF generate (our own decode loop does not take {why_not or 'this trainer'})" + liger
    trainer.static_sampler = static_sampler.StaticSampler(
        length, trainer.eos_token_ids, tokenizer.pad_token_id, compiled=trainer.accelerator.device.type == "cuda")
    loop = "own decode loop (--decode-loop hf: HF generate's)"
    if trainer.static_sampler.fuse_projections:
        loop += " with q/k/v and gate/up projections fused"
    if trainer.static_sampler.compiled and trainer.static_sampler.compile_mode:
        loop += (f", decode step compiled in torch.compile's {trainer.static_sampler.compile_mode} mode "
                 f"({static_sampler.COMPILE_MODE_ENV})")
    if trainer.args.use_liger_kernel:  # before training starts, when transformers applies Liger's kernels
        trainer.liger_aside = LigerAside(trainer.model)
        return loop + ", Liger's kernels for the training pass only"
    return loop


def policy_tokenizer(options: GRPOOptions, env: rg.Env):
    """The policy's tokenizer (with --chat-template applied), checked against what the env needs of it."""
    tokenizer = load_tokenizer(options.model)
    if options.chat_template:
        with open(options.chat_template, encoding="utf-8") as f:
            tokenizer.chat_template = f.read()
    preflight.check_chat_template(tokenizer, env.template.kind, env.template.name)
    if env.multi_turn:
        preflight.check_tool_template(tokenizer, env.env_id)
    return tokenizer


def data_and_rewards(env: rg.Env, options: GRPOOptions, config_kwargs: dict[str, Any], train_tasks: list[rg.Task],
                     tokenizer: Any, levels: list):
    """(train dataset, curriculum scheduler, callbacks, reward functions, weights). Multi-turn and tool envs
    run through TRL's tool loop, one episode per rollout, rewarded by the episode."""
    if env.multi_turn:
        for option in ("curriculum", "eval_size"):
            if getattr(options, option):
                raise RecipeError(f"--{option.replace('_', '-')} is not available for multi-turn or tool envs yet")
        config_kwargs.setdefault("max_tool_calling_iterations", env.max_turns + (env.tool_budget or 0))
        return (build_dataset(env, "train", tasks=train_tasks, episodes=True), None, [],
                [episode_reward_func(env.max_turns)], [1.0])
    from trainers.parts.curriculum_data import scheduler_feedback

    train, scheduler, callbacks = training_data(env, options, config_kwargs, train_tasks, tokenizer)
    adapter = RewardAdapter(
        env, log_dir=config_kwargs["output_dir"], levels=levels,
        on_scores=scheduler_feedback(scheduler) if scheduler is not None else None,
        **({"engine": _engine(options)} if options.scoring_workers is not None else {}),
    )
    funcs, weights = adapter.reward_funcs(), adapter.weights
    if options.reward_model:
        from trainers.parts.reward_model import OutcomeRewardModel

        funcs.append(OutcomeRewardModel(options.reward_model, adapter.scores_for,
                                        pays_malformed=options.reward_model_pays_malformed))
        weights.append(options.reward_model_weight)
    if options.process_reward_model:
        from trainers.parts.reward_model import ProcessRewardModel

        funcs.append(ProcessRewardModel(options.process_reward_model, adapter.scores_for,
                                        pays_malformed=options.reward_model_pays_malformed,
                                        step_tag=options.prm_step_tag, good=options.prm_good_token,
                                        bad=options.prm_bad_token, aggregate=options.prm_aggregate))
        weights.append(options.process_reward_model_weight)
    return train, scheduler, callbacks, funcs, weights


def check_config(options: GRPOOptions, config_kwargs: dict[str, Any], console: Console | None = None
                 ) -> preflight.BatchPlan:
    """The pre-flight checks; fills in what they decide (device, precision, evaluation cadence). Running
    them twice changes nothing more (the offline main job runs them before its warm start too)."""
    plan = preflight.check_batch(config_kwargs)
    precision_given = "bf16" in config_kwargs or "fp16" in config_kwargs
    config_kwargs.update(preflight.check_devices(config_kwargs))
    guard_training_attention(console if telemetry.is_main_process() else None, bool(config_kwargs.get("use_cpu")))
    small = compiled_decode.small_policy_precision(config_kwargs, precision_given, built_here(options.model),
                                                   options.compiled_decode, tf32_supported())
    if small:
        config_kwargs.update(small)
        if console is not None and telemetry.is_main_process():
            console.print("[bold]precision[/] float32 weights without autocast"
                          f"{' (TF32 matmuls)' if small.get('tf32') else ''}, so HF generate's decode step compiles: "
                          "a small policy built here runs 2x the GRPO steps per minute this way (--bf16 true to "
                          "autocast instead)")
    preflight.check_vllm(config_kwargs)
    preflight.check_liger(config_kwargs)
    if config_kwargs.get("use_vllm") and config_kwargs.get("use_cpu"):
        from trainers.rollout.generation import limit_cpu_kv_cache

        limit_cpu_kv_cache()
    preflight.check_peft(options.use_peft)
    compiled_decode.check_mode(options.compiled_decode)
    if options.eval_size:
        config_kwargs.setdefault("eval_strategy", "steps")
        config_kwargs.setdefault("eval_steps", 50)
        config_kwargs.setdefault("per_device_eval_batch_size", config_kwargs.get("per_device_train_batch_size", 8))
        preflight.check_batch(config_kwargs)
    return plan


def built_here(model: str | None) -> bool:
    """Whether `model` is a policy built by this repo (no --model: the default policy, or a folder
    carrying our load hints): a small model in float32."""
    return not model or os.path.isfile(os.path.join(model, LOAD_HINTS))


def tf32_supported() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8


def model_init_kwargs(model: str, config_kwargs: dict[str, Any]) -> dict[str, Any]:
    """float32 weights unless the recipe asks otherwise: with bf16=True the trainer autocasts and keeps
    fp32 master weights (pure-bf16 Adam updates of small models diverged on the GPU check);
    big-model recipes set model_init_kwargs {dtype: bfloat16} to halve memory."""
    kwargs = {**load_kwargs(model, bool(config_kwargs.get("bf16"))), **dict(config_kwargs.get("model_init_kwargs") or {})}
    kwargs.setdefault("dtype", "float32")
    return kwargs


def training_data(env: rg.Env, options: GRPOOptions, config_kwargs: dict[str, Any], train_tasks: list[rg.Task],
                  tokenizer: Any):
    """(train dataset, curriculum scheduler or None, callbacks): a fixed dataset, or a curriculum stream."""
    if not options.curriculum:
        return build_dataset(env, "train", tokenizer=tokenizer, tasks=train_tasks), None, []
    from trainers.parts.curriculum_data import CurriculumCallback, build_curriculum, curriculum_dataset, level_pools

    steps = int(config_kwargs.get("max_steps", -1))
    if steps <= 0:
        raise RecipeError("--curriculum streams tasks without end: set --max_steps")
    pools = level_pools(train_tasks)
    scheduler = build_curriculum(options.curriculum, pools, steps, options.band, options.curriculum_window)
    config_kwargs["shuffle_dataset"] = False  # the stream is already random; a shuffle buffer would lag the schedule
    train = curriculum_dataset(env, pools, scheduler, tokenizer, options.seed_tasks)
    return train, scheduler, [CurriculumCallback(scheduler)]


def lora_config(options: GRPOOptions):
    if not options.use_peft:
        return None
    from peft import LoraConfig

    return LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha,
                      lora_dropout=options.lora_dropout, target_modules=options.lora_target_modules,
                      task_type="CAUSAL_LM")


def describe_run(console: Console, env: rg.Env, plan: preflight.BatchPlan, n_train: int, evaluation: Any,
                 scheduler: Any, levels: list) -> None:
    console.print(f"[bold]env[/] {env.env_id} ({env.template.name} template, {env.reward_mode} reward: "
                  + ", ".join(f"{k} x {w:g}" for k, w in env.reward_weights.items()) + ")")
    console.print(f"[bold]batch[/] {plan.describe()}")
    console.print(f"[bold]data[/] {n_train} train tasks" + (f", {len(evaluation)} held-out" if evaluation else "")
                  + (f"; curriculum {scheduler.name} over levels {levels}" if scheduler else ""))


def _engine(options: GRPOOptions):
    from reasongym.scoring import ScoringEngine

    return ScoringEngine(workers=options.scoring_workers)


def summarize(trainer, console: Console) -> None:
    history = [h for h in trainer.state.log_history if "reward" in h]
    if not history or not telemetry.is_main_process():
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
    def setup(argv: list[str], console: Console):
        options, config = parse(argv)
        if not options.model:
            from trainers.policies.default_policy import PRESETS, RENAMED_PRESETS

            if options.default_policy not in PRESETS:
                renamed = RENAMED_PRESETS.get(options.default_policy)
                raise RecipeError(f"--default-policy must be one of {sorted(PRESETS)}, got {options.default_policy!r}"
                                  + (f" (now called {renamed})" if renamed else ""))
            make_env(options, console)  # an unknown env or bad --env-kwargs fails here, before the warm start
            check_config(options, config, console)  # and so do a bad batch, precision or device
            return options, config, None
        return options, config, build_trainer(options, config, console)[0]

    return run_entry_point(_cli(), argv, setup, _run)


def _run(state: Any, console: Console) -> int:
    options, config, trainer = state
    if trainer is None:  # no --model: the offline main job (warm start, evaluations, GRPO)
        return demo.run(options, config, console, build_trainer)
    from trainers.common.callbacks import refuse_non_finite_policy

    trainer.train(resume_from_checkpoint=options.resume_from_checkpoint)
    if refuse_non_finite_policy(trainer, console):
        return 1
    save_policy(trainer, options.model)
    summarize(trainer, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())

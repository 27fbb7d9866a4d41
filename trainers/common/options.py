"""Typed options of the trainer scripts themselves (the config dataclass underneath — GRPOConfig,
SFTConfig, PPOConfig, EvalConfig — carries the rest).

One dataclass per trainer on a shared base, so a name means the same thing in every trainer:
`CommonOptions` (every command), `TrainingOptions` (every trainer). A field's `help` metadata is
its `--help` line; `__post_init__` validates and says what to change. The parser
(`trainers.common.cli`) types every value from these hints before the dataclass is built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from trainers.common.recipes import RecipeError


def option(default: Any, help: str, *, flag: str | None = None) -> Any:
    """A dataclass field with its `--help` text (and a flag name, where the attribute cannot be one)."""
    metadata = {"help": help, **({"flag": flag} if flag else {})}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(field: dataclasses.Field) -> str:
    """The option's name on the command line and in recipes (underscores; dashes are accepted too)."""
    return field.metadata.get("flag", field.name)


def choose(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        raise RecipeError(f"--{name.replace('_', '-')} must be one of {', '.join(map(str, choices))}, got {value!r}")


def at_least(name: str, value: int | float | None, low: int | float) -> None:
    if value is not None and value < low:
        raise RecipeError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")


@dataclass
class CommonOptions:
    """The options of every command, with the same meaning everywhere."""

    env: str | None = option(None, "env id (python -m reasongym list)")
    model: str | None = option(None, "hub id or local path of the policy (default: the embedded default policy)")
    config: str | None = option(None, "YAML recipe (recipes/<trainer>/*.yaml); flags override it; none: no recipe")
    env_kwargs: dict[str, Any] = option({}, "JSON object of env overrides, e.g. '{\"template\": \"base\"}'")
    reward_mode: str | None = option(None, "env reward mode (python -m reasongym show ID lists them)")
    import_modules: str | None = option(None, "comma-separated modules to import first: the ones that register "
                                        "your own envs (the current directory is on the path)", flag="import")

    def __post_init__(self) -> None:
        if not self.env:
            raise RecipeError("--env is required (python -m reasongym list shows the ids)")


@dataclass
class TrainingOptions(CommonOptions):
    """Every trainer's options: the task draw, resuming, and consent for unsafe verifiers."""

    train_size: int | None = option(None, "training tasks (procedural envs: default enough for max_steps)")
    seed_tasks: int = option(0, "seed of the task draw (independent of the training --seed)")
    resume_from_checkpoint: str | bool | None = option(None, "checkpoint dir to resume from (or true for the latest)")
    allow_unsafe_env: bool = option(False, "train even on an env whose verifier is marked unsafe "
                                    "(docs/reasoning-gym.md says which and why)")

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least("train_size", self.train_size, 1)
        if str(self.resume_from_checkpoint).lower() in ("true", "latest"):
            self.resume_from_checkpoint = True
        elif self.resume_from_checkpoint is False or str(self.resume_from_checkpoint).lower() == "false":
            self.resume_from_checkpoint = None


@dataclass
class GRPOOptions(TrainingOptions):
    """`python -m trainers.grpo`: LoRA, evaluation, curriculum, the offline main job, learned rewards."""

    eval_size: int = option(0, "held-out test tasks evaluated every eval_steps (0 = no evaluation)")
    use_peft: bool = option(False, "train LoRA adapters instead of all weights")
    lora_r: int = option(16, "LoRA rank")
    lora_alpha: int = option(32, "LoRA alpha")
    lora_dropout: float = option(0.05, "LoRA dropout")
    lora_target_modules: str = option("all-linear", "LoRA target modules")
    scoring_workers: int | None = option(None, "verifier processes (default: in-process for cheap verifiers)")
    default_policy: str = option("cpu", "without --model: size of the embedded default policy (ci, cpu, gpu)")
    warm_start_steps: int = option(0, "without --model: SFT steps of the default policy's warm start (0 = the preset's)")
    max_train_minutes: float = option(0.0, "stop GRPO after this many minutes of wall time (0 = no limit); "
                                      "max_steps still sets the learning-rate schedule")
    demo_eval_tasks: int = option(500, "without --model: held-out tasks in the before/after table")
    demo_eval_temperature: float = option(1.0, "without --model: sampling temperature of the held-out table (the "
                                          "training --temperature may differ: a hotter one keeps groups varied)")
    chat_template: str | None = option(None, "a jinja chat template file to use instead of the tokenizer's (tool "
                                       "and multi-turn training need one that renders tool calls, e.g. TRL's "
                                       "trl/chat_templates/qwen2_5.jinja)")
    compiled_decode: str = option("auto", "HF generate with a static KV cache and a compiled decode step: auto (on "
                                  "for single-turn CUDA runs without vLLM, outside ZeRO-3 and fp32-weight "
                                  "autocast), true or false")
    decode_loop: str = option("own", "with the compiled decode: own (a sampling loop that runs only the compiled "
                              "forward and the draw per token; plain temperature sampling) or hf (HF generate's "
                              "loop)")
    trim_padding: bool = option(True, "train on length-grouped micro-batches with the padding after each one's "
                                "longest completion dropped (the same loss and gradients as TRL's shuffled, padded "
                                "micro-batches, fewer tokens); false: TRL's path")
    checkpointed_layers: float = option(1.0, "with gradient_checkpointing: the fraction of decoder layers that "
                                        "recompute their activations (1: all, as TRL does; lower: faster steps, "
                                        "more memory)")
    reward_model: str | None = option(None, "a sequence-classification reward model (one output) scored beside the "
                                      "verifier, logged as rewards/reward_model")
    reward_model_weight: float = option(1.0, "weight of --reward-model next to the env's components")
    process_reward_model: str | None = option(None, "a Math-Shepherd style process reward model (a causal LM scoring "
                                              "each step at its step tag) scored beside the verifier, logged as "
                                              "rewards/process_reward_model")
    process_reward_model_weight: float = option(1.0, "weight of --process-reward-model next to the env's components")
    prm_step_tag: str = option(" ки", "text the PRM reads after every step (Math-Shepherd's ' ки')")
    prm_good_token: str = option("+", "the PRM's token for a good step")
    prm_bad_token: str = option("-", "the PRM's token for a bad step")
    prm_aggregate: str = option("min", "how step scores make the completion's: min, last or mean")
    reward_model_pays_malformed: bool = option(False, "let --reward-model and --process-reward-model pay "
                                               "completions the verifier calls unparseable (off: they get 0)")
    curriculum: str | None = option(None, "fixed | linear | adaptive: sample task difficulty by a schedule")
    curriculum_band: str = option("0.2,0.8", "adaptive: success band a level should sit in")
    curriculum_window: int = option(256, "adaptive: outcomes remembered per level")

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least("eval_size", self.eval_size, 0)
        at_least("scoring_workers", self.scoring_workers, 0)
        at_least("lora_r", self.lora_r, 1)
        at_least("curriculum_window", self.curriculum_window, 1)
        if not 0.0 <= self.checkpointed_layers <= 1.0:
            raise RecipeError(f"--checkpointed-layers is a fraction from 0 to 1, got {self.checkpointed_layers}")
        choose("compiled_decode", str(self.compiled_decode).lower(), ("auto", "true", "false"))
        choose("prm_aggregate", self.prm_aggregate, ("min", "last", "mean"))
        self.compiled_decode = str(self.compiled_decode).lower()
        choose("decode_loop", str(self.decode_loop).lower(), ("own", "hf"))
        self.decode_loop = str(self.decode_loop).lower()
        if self.curriculum is not None:
            choose("curriculum", self.curriculum, ("fixed", "linear", "adaptive"))
        try:
            low, high = self.band
        except ValueError:
            raise RecipeError(f"--curriculum-band takes two numbers LOW,HIGH, got {self.curriculum_band!r}") from None
        if not 0 <= low < high <= 1:
            raise RecipeError(f"--curriculum-band needs 0 <= LOW < HIGH <= 1, got {self.curriculum_band!r}")

    @property
    def band(self) -> tuple[float, float]:
        low, high = (float(x) for x in str(self.curriculum_band).split(","))
        return low, high


@dataclass
class PPOOptions(TrainingOptions):
    """`python -m trainers.ppo`: the PPOConfig dataclass carries the rest."""

    train_size: int | None = option(10_000, "training tasks")


@dataclass
class RejectionSamplingOptions(TrainingOptions):
    """`python -m trainers.rejection_sampling`: sample, keep the verified, fine-tune, repeat."""

    rounds: int = option(3, "sample-verify-SFT rounds")
    samples: int = option(8, "completions sampled per prompt")
    prompts: int = option(256, "training prompts per round (all processes together)")
    max_per_prompt: int = option(2, "distinct verified completions kept per prompt")
    oracle: str | bool | None = option(None, "add the env's reference completions to the SFT data: first (warm "
                                       "start; bare --oracle means this) or every round")
    temperature: float = option(1.0, "sampling temperature")
    max_completion_length: int = option(256, "new tokens per completion")
    eval_size: int = option(200, "test tasks evaluated greedily after every round")
    gen_batch_size: int = option(64, "sequences per generate() call (hf backend)")
    backend: str = option("hf", "how rounds sample and test: hf (transformers generate) or vllm (one vLLM engine "
                          "for the whole run; it loads each round's fine-tuned weights; single process)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.oracle is True:
            self.oracle = "first"
        if self.oracle is False:
            self.oracle = None
        if self.oracle is not None:
            choose("oracle", self.oracle, ("first", "every"))
        choose("backend", self.backend, ("hf", "vllm"))
        for name in ("rounds", "samples", "prompts", "max_per_prompt", "max_completion_length", "gen_batch_size"):
            at_least(name, getattr(self, name), 1)
        at_least("eval_size", self.eval_size, 0)


# Names an earlier release used, per command, and what they are called now: every trainer shares one
# vocabulary, and an old name fails with the new one in the message.
RENAMED: dict[str, dict[str, str]] = {
    "rejection_sampling": {"k": "samples", "max_new_tokens": "max_completion_length"},
    "evaluate": {"seed": "seed_tasks", "max_new_tokens": "max_completion_length", "batch_size": "gen_batch_size"},
    "ppo": {"per_device_batch_size": "per_device_train_batch_size"},
}

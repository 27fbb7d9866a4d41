"""Which recipe a run gets, and where recipes live.

Recipes are YAML files inside the `recipes` package, found with `importlib.resources`, so a
wheel install finds them from any directory. With `--model` and no `--config`:

1. the recipe written for this env and this model (`<trainer>/<env>_<model>.yaml`, matched
   case-insensitively against the hub id's last part, a local folder's name, or the name
   recorded in the folder's config.json);
2. otherwise the trainer's `pretrained.yaml`, scaled by the model's parameter count (read by
   building the model on the meta device: no weights are loaded) and by the env's answer length.

`--config PATH` always wins; `--config none` gives the config class's own defaults. The choice is
printed in one line with how to override it.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

class RecipeError(ValueError):
    """A recipe or flag is wrong; the message says what to change."""


class _StrictBoolLoader(yaml.SafeLoader):
    """YAML that reads only true/false as booleans (YAML 1.2): `no`, `on`, `off`, `yes` stay strings,
    so a recipe's `save_strategy: no` means the string "no". Typed coercion turns them into bools
    where a field is a bool."""


_StrictBoolLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictBoolLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", yaml.resolver.re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_recipe(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_StrictBoolLoader) or {}
    except FileNotFoundError:
        raise RecipeError(f"recipe {path!r} does not exist (recipes live in recipes/grpo/, recipes/ppo/, ...)") from None
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path!r} must be a YAML mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


PACKAGE = "recipes"
# completion budget per env family: what a worked answer needs (countdown search, a GSM8K solution, MATH)
COMPLETION_LENGTH = {"countdown": 512, "gsm8k": 512, "math": 1024, "reasoning-gym": 512}


@dataclass(frozen=True)
class RecipeChoice:
    values: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the file, or a description of the built defaults
    why: str = ""

    def line(self) -> str:
        return (f"recipe: {self.source} ({self.why}); --config PATH uses another, --config none the config's own "
                "defaults, any --field overrides one value")


def recipe_dir(trainer: str) -> str:
    """The folder of `trainer`'s shipped recipes (a real directory: wheels install unzipped)."""
    return str(importlib.resources.files(PACKAGE).joinpath(trainer))


def recipe_path(*parts: str) -> str:
    """A shipped recipe file, e.g. recipe_path("accelerate", "zero3.yaml")."""
    return str(importlib.resources.files(PACKAGE).joinpath(*parts))


def model_names(model: str) -> list[str]:
    """Names a model goes by: a hub id's last part; a local folder's name and the one in its config.json."""
    names = [os.path.basename(os.path.normpath(model))]
    config = os.path.join(model, "config.json")
    if os.path.isfile(config):
        try:
            with open(config, encoding="utf-8") as f:
                recorded = json.load(f).get("_name_or_path") or ""
        except (OSError, ValueError):
            recorded = ""
        if recorded:
            names.append(os.path.basename(os.path.normpath(recorded)))
    return [n.lower() for n in dict.fromkeys(n for n in names if n)]


def pair_recipe(trainer: str, env_id: str, model: str) -> str | None:
    """The recipe written for exactly this env and model, if one ships."""
    folder = recipe_dir(trainer)
    if not os.path.isdir(folder):
        return None
    wanted = {f"{env_id.replace('/', '_')}_{name}.yaml".lower() for name in model_names(model)}
    for file in sorted(os.listdir(folder)):
        if file.lower() in wanted:
            return os.path.join(folder, file)
    return None


def check_model_reference(model: str) -> None:
    """A local path that is not a model folder fails here, before anything loads (a hub id passes)."""
    looks_local = os.path.isabs(model) or model.startswith((".", "~")) or os.path.exists(model) or model.count("/") > 1
    if looks_local and not os.path.isfile(os.path.join(os.path.expanduser(model), "config.json")):
        what = "does not exist" if not os.path.exists(os.path.expanduser(model)) else "has no config.json"
        raise RecipeError(f"--model {model!r} {what}: pass a model folder (one with config.json, as "
                          "save_pretrained writes it) or a hub id such as Qwen/Qwen2.5-0.5B-Instruct")


def parameter_count(model: str) -> int | None:
    """Parameters of `model` from its config alone (built on the meta device, no weights); None for an
    architecture transformers cannot build. A hub id whose config cannot be fetched is an error here,
    before any model memory is allocated."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(os.path.expanduser(model))
    except Exception as exc:  # noqa: BLE001 - no hub access, a private repo, a typo: say what to pass
        raise RecipeError(f"could not read the config of --model {model!r} ({type(exc).__name__}). Without hub "
                          "access, download the model elsewhere (huggingface-cli download ID --local-dir DIR) and "
                          "pass --model DIR; or check the id") from None
    try:
        import torch
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config)
        return sum(p.numel() for p in skeleton.parameters())
    except Exception:  # noqa: BLE001 - any failure means "size unknown": the caller says which defaults it used
        return None


NO_CHECKPOINTING_GPU_GB = 40  # a model under 0.3B trains without recomputation on GPUs this large


def sized_values(params: int | None, gpu: bool = False, gpu_memory_gb: float = 0.0) -> tuple[dict[str, Any], str]:
    """Learning rate, batch and memory settings by model size (what published GRPO runs use at these sizes).
    A small model on a GPU trains in few, large micro-batches without recomputing activations: at SmolLM2-135M's
    shape, 64 x 2 instead of 16 x 8 for the same 128 completions took a GRPO step from 3.1 to 1.9 s on one H100,
    and on a GPU of 40 GB or more its activations fit (23 GB peak at that shape, against 4 GB with TRL's default
    gradient checkpointing), so recomputing them only costs time: 1.13x the completions per second."""
    if params is None:
        return {"learning_rate": 1e-6}, "size unknown: the settings for a 1-3B model"
    billions = params / 1e9
    if billions < 0.3:
        values = {"learning_rate": 1e-5, "per_device_train_batch_size": 64 if gpu else 16,
                  "gradient_accumulation_steps": 2}
        if gpu and gpu_memory_gb >= NO_CHECKPOINTING_GPU_GB:
            values["gradient_checkpointing"] = False
    elif billions < 1.0:
        values = {"learning_rate": 3e-6, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 4}
    elif billions < 4.0:
        values = {"learning_rate": 1e-6, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 4,
                  "gradient_checkpointing": True, "checkpointed_layers": 0.5}
    else:
        values = {"learning_rate": 5e-7, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 8,
                  "gradient_checkpointing": True}
    return values, f"{billions:.2f}B parameters"


def gpu_memory_gb() -> float:
    """The first CUDA GPU's memory in GB (0 without one)."""
    try:
        import torch

        return torch.cuda.get_device_properties(0).total_memory / 1e9 if torch.cuda.is_available() else 0.0
    except (ImportError, RuntimeError):
        return 0.0


def hardware_values() -> tuple[dict[str, Any], str]:
    """bf16 weights where the GPU supports them (so the compiled decode applies); float32 on CPU."""
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            values: dict[str, Any] = {"bf16": True, "model_init_kwargs": {"dtype": "bfloat16"}}
            if importlib.util.find_spec("vllm") is not None:
                values.update(use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=0.3)
                return values, "bf16 on this GPU, vLLM colocated"
            return values, "bf16 on this GPU, HF generate"
    except ImportError:
        pass
    return {"bf16": False}, "float32 (no bf16 GPU)"


def vllm_fit(values: dict[str, Any], flags: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A recipe written for a vLLM server, run without one (no trainers.launch, no server named): colocate vLLM
    when it imports and one process trains, else HF generate. Said, not failed after the model loads."""
    if not values.get("use_vllm") or values.get("vllm_mode") != "server":
        return values, ""
    if any(k in flags for k in ("vllm_mode", "vllm_server_host", "vllm_server_base_url", "use_vllm")):
        return values, ""
    from trainers.common.preflight import world_size

    if importlib.util.find_spec("vllm") is not None and world_size() == 1:
        return {**values, "vllm_mode": "colocate"}, "vLLM colocated: no server was named"
    return {**values, "use_vllm": False}, "HF generate: no vLLM server was named"


HALF_CHECKPOINTING_GPU_GB = 64  # training memory a partly checkpointed 3B model needs (57.1 GB measured)


def memory_fit(values: dict[str, Any], flags: dict[str, Any], gpu_gb: float) -> tuple[dict[str, Any], str]:
    """Recompute every layer where a recipe checkpoints only some and the GPU's memory left for training
    (less a colocated vLLM engine's share) is under HALF_CHECKPOINTING_GPU_GB. Why: at the Qwen2.5-3B shape
    with the Mini-R1 batch, every other layer checkpointed peaked at 57.1 GB on one H100 against 31.2 GB
    with every layer (docs/benchmarks.md), so a 40-48 GB card, or an 80 GB one beside vLLM, would run out.
    A --checkpointed-layers of the user's, or no GPU, leaves the recipe's value."""
    fraction = float(values.get("checkpointed_layers", 1.0))
    if fraction >= 1.0 or not gpu_gb or "checkpointed_layers" in flags or not values.get("gradient_checkpointing"):
        return values, ""
    colocated = values.get("use_vllm") and values.get("vllm_mode") == "colocate"
    share = float(values.get("vllm_gpu_memory_utilization", 0.3)) if colocated else 0.0
    training_gb = gpu_gb * (1.0 - share)
    if training_gb >= HALF_CHECKPOINTING_GPU_GB:
        return values, ""
    beside = " beside colocated vLLM" if colocated else ""
    return ({**values, "checkpointed_layers": 1.0},
            f"every layer checkpointed: {training_gb:.0f} GB of this GPU is left for training{beside} "
            f"(--checkpointed-layers {fraction:g} is faster where {HALF_CHECKPOINTING_GPU_GB} GB are)")


def liger_fit(values: dict[str, Any], flags: dict[str, Any], gpu_gb: float) -> tuple[dict[str, Any], str]:
    """Liger's layer kernels for GRPO's training pass where liger-kernel is installed on a CUDA GPU and the
    rollouts cannot trace them into HF generate's compiled decode step (vLLM, or our own decode loop, which
    sets them aside: trainers.rollout.liger_aside). Why: at the Qwen2.5-3B shape with the Mini-R1 batch they
    took a step from 12.6 s to 10.6-10.7 s and its peak from 57.2 to 50.6 GB on one H100 (docs/benchmarks.md).
    A --use_liger_kernel of the user's or the recipe's, or no GPU, leaves it as it is."""
    if "use_liger_kernel" in flags or "use_liger_kernel" in values or not gpu_gb:
        return values, ""
    if importlib.util.find_spec("liger_kernel") is None:
        return values, ""
    setting = {**values, **flags}
    hf_compiled = (str(setting.get("decode_loop", "own")).lower() == "hf"
                   and str(setting.get("compiled_decode", "auto")).lower() != "false")
    if hf_compiled and not setting.get("use_vllm"):
        return values, ""
    return {**values, "use_liger_kernel": True}, "Liger's kernels in the training pass (--use_liger_kernel false: off)"


def machine_fit(values: dict[str, Any], flags: dict[str, Any], trainer: str = "grpo") -> tuple[dict[str, Any], str]:
    """A recipe's values fitted to this machine: `vllm_fit`, then `memory_fit`, then for GRPO `liger_fit`;
    their notes joined."""
    values, vllm_note = vllm_fit(values, flags)
    gpu_gb = gpu_memory_gb()
    values, memory_note = memory_fit(values, flags, gpu_gb)
    values, liger_note = liger_fit(values, flags, gpu_gb) if trainer == "grpo" else (values, "")
    return values, "; ".join(filter(None, [vllm_note, memory_note, liger_note]))


def episodic(env_id: str, flags: dict[str, Any]) -> bool:
    """Will the run's env play multi-turn or tool episodes? (Read from its class and --env-kwargs, no env made.)"""
    from reasongym import registry
    from reasongym.envargs import EnvArgsError, parse_env_kwargs
    from reasongym.episode import Episode

    try:
        kwargs = parse_env_kwargs(flags.get("env_kwargs"))
        spec = registry.spec(env_id)
    except (EnvArgsError, registry.UnknownEnvError):
        return False
    if int({**spec.kwargs, **kwargs}.get("max_turns", 1) or 1) > 1:
        return True
    try:
        factory = registry._resolve(spec.entry_point)
    except (ImportError, AttributeError):
        return False
    return isinstance(factory, type) and getattr(factory, "episode_class", Episode) is not Episode


def for_model(trainer: str, env_id: str, model: str, flags: dict[str, Any]) -> RecipeChoice:
    """The recipe for a run with --model and no --config (module docstring)."""
    check_model_reference(model)
    path = pair_recipe(trainer, env_id, model)
    base = recipe_path(trainer, "pretrained.yaml")
    trains = os.path.isfile(base)  # a training command (evaluate has no precision or vLLM fields)
    hardware, hardware_note = hardware_values() if trains else ({}, "")
    if path is not None:  # the recipe's own values win over what the hardware suggests
        values, note = machine_fit({**hardware, **load_recipe(path)}, flags, trainer)
        why = "; ".join(filter(None, ["written for this env and model", hardware_note, note]))
        return RecipeChoice(values, path, why)
    if not trains:
        return RecipeChoice({}, "none", f"no recipe for {trainer} with this model: the config's own defaults")
    params = parameter_count(model)
    sized, size_note = sized_values(params, gpu=bool(hardware.get("bf16")), gpu_memory_gb=gpu_memory_gb())
    family = env_id.split("/")[0].split("-")[0]
    length = {"max_completion_length": COMPLETION_LENGTH[family]} if family in COMPLETION_LENGTH else {}
    values = {**load_recipe(base), **sized, **hardware, **length}
    values, note = machine_fit(values, flags, trainer)
    if episodic(env_id, flags) and "eval_size" in values:
        values = {k: v for k, v in values.items() if k not in ("eval_size", "eval_steps")}
        note = "; ".join(filter(None, [note, "no held-out evaluation (not available for multi-turn envs yet)"]))
    why = f"no recipe for {env_id} with this model; scaled for {size_note}, {hardware_note}" + (f"; {note}" if note else "")
    return RecipeChoice(values, base, why)


def pretrained_recipe(trainer: str):
    """`default_recipe` for TrainerCLI.parse: with --model, `for_model`; without, no recipe."""
    def pick(flags: dict[str, Any]) -> RecipeChoice | None:
        if not flags.get("model"):
            return None
        return for_model(trainer, str(flags.get("env", "")), str(flags["model"]), flags)

    return pick

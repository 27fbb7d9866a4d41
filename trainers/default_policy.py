"""The embedded default policy: a small LM built and warm-started locally, no downloads.

When `--model` is omitted, trainers use this: a BPE tokenizer trained on the
env's own text, a small Qwen2 initialised from scratch, then supervised
fine-tuning on the env's reference completions (the countdown solver's), so RL
starts from a policy that knows the answer format and sometimes the answer.
Built once per (env, kwargs, size, steps) and cached under the user cache dir.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from typing import Any

from trainers.tiny import TinySize, build_tiny_model, task_corpus

CACHE_VERSION = 3
EPISODE_KWARGS = ("max_turns", "turn_decay")


@dataclass(frozen=True)
class WarmStart:
    size: TinySize = TinySize(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
                              num_key_value_heads=2, vocab_size=768, max_position_embeddings=512)
    sft_tasks: int = 10000
    sft_steps: int = 400
    batch_size: int = 32
    learning_rate: float = 2e-3
    seed: int = 0


PRESETS = {
    # seconds: smoke tests of the pipeline (learns little)
    "ci": WarmStart(size=TinySize(), sft_tasks=300, sft_steps=20, batch_size=16),
    # 2 CPU cores, minutes: the offline main job
    "cpu": WarmStart(),
    # one GPU, a few minutes: 8 layers x 512 wide, longer warm start
    "gpu": WarmStart(size=TinySize(hidden_size=512, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=8,
                                   num_key_value_heads=4, vocab_size=1024, max_position_embeddings=512),
                     sft_tasks=20000, sft_steps=500, batch_size=64, learning_rate=1e-3),
}


def cache_root() -> str:
    base = os.environ.get("REASONGYM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "reasongym")
    return os.path.join(base, "policies")


def policy_key(env_id: str, env_kwargs: dict[str, Any], warm: WarmStart) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "env": env_id, "kwargs": env_kwargs, "warm": asdict(warm)},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_policy(env_id: str, env_kwargs: dict[str, Any] | None = None, warm: WarmStart = WarmStart(),
                   console: Any = None) -> str:
    """Path of the warm-started policy for this env, building it if it is not cached. Episode settings
    (max_turns, turn_decay) change neither the tasks nor the reference completions, so they share it."""
    env_kwargs = {k: v for k, v in (env_kwargs or {}).items() if k not in EPISODE_KWARGS}
    path = os.path.join(cache_root(), f"{env_id}-{policy_key(env_id, env_kwargs, warm)}")
    if os.path.exists(os.path.join(path, "READY")):
        return path
    tmp = path + ".building"
    shutil.rmtree(tmp, ignore_errors=True)
    build_warm_policy(env_id, env_kwargs, warm, tmp, console)
    with open(os.path.join(tmp, "READY"), "w") as f:
        json.dump({"env": env_id, "kwargs": env_kwargs, "warm": asdict(warm)}, f, default=str)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return path


def build_warm_policy(env_id: str, env_kwargs: dict[str, Any], warm: WarmStart, out_dir: str,
                      console: Any = None) -> None:
    """Tokenizer and model built on the env's own text, then SFT on its reference completions."""
    import reasongym as rg
    from reasongym.adapters.trl import render_prompt
    from trainers.common.models import load_tokenizer
    from trainers.common.sft import sft

    env = rg.make(env_id, **env_kwargs)
    tasks = [t for t in env.tasks("train", n=warm.sft_tasks, seed=warm.seed + 1) if env.reference_completion(t)]
    build_tiny_model(out_dir, task_corpus(env, tasks[:500]), warm.size, seed=warm.seed)
    tokenizer = load_tokenizer(out_dir, padding_side=None)
    rows = [{"prompt": render_prompt(env, t, tokenizer), "completion": env.reference_completion(t)} for t in tasks]
    sft(out_dir, rows, out_dir, {
        "max_steps": warm.sft_steps, "per_device_train_batch_size": warm.batch_size,
        "learning_rate": warm.learning_rate, "lr_scheduler_type": "cosine",
        "warmup_steps": max(1, warm.sft_steps // 20), "weight_decay": 0.0,
        "logging_steps": max(1, warm.sft_steps // 10), "bf16": False, "seed": warm.seed, "max_length": 512,
    }, description="warm start: SFT on solver completions", console=console)

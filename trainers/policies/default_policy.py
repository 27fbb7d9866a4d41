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
from dataclasses import asdict, dataclass, replace
from typing import Any

from trainers.policies.tiny import TinySize, build_tiny_model, build_tokenizer, task_corpus, template_phrases
from trainers.policies.warm_sft import SFTSchedule, warm_sft

CACHE_VERSION = 6  # 6: the warm start's own SFT loop (trainers.policies.warm_sft)
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
    # share of SFT rows that are second tries: a wrong first answer, the env's feedback, then the right
    # answer (loss on that answer only). Set for multi-turn envs, so the policy has seen a feedback turn.
    retry_share: float = 0.0
    # mixed precision for the warm start's SFT (the GPU preset)
    bf16: bool = False
    # the prompt's fixed text (system prompt, instructions) as whole tokens (`template_phrases`): a countdown
    # prompt is 40 tokens instead of 143, and SFT and GRPO steps take about half the time
    phrase_tokens: bool = True
    # share of SFT rows whose completion tries 1-3 wrong expressions, each with its value, before the
    # solver's (envs with a `search_completion`: countdown), so sampling explores and GRPO has something to select
    search_share: float = 0.0


RETRY_SHARE = 0.3
# the GPU presets' model: 8 layers x 512 wide
GPU_SIZE = TinySize(hidden_size=512, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=8,
                    num_key_value_heads=4, vocab_size=1024, max_position_embeddings=512)


PRESETS = {
    # seconds: smoke tests of the pipeline (learns little)
    "ci": WarmStart(size=TinySize(), sft_tasks=300, sft_steps=20, batch_size=16),
    # 2 CPU cores, minutes: the offline main job (300 steps at 3.2 it/s reach 0.34 sampled accuracy on the
    # demo's 2-number countdown, leaving GRPO room to show a gain)
    "cpu": WarmStart(sft_steps=300),
    # one GPU, minutes: 8 layers x 512 wide, 60k tasks, bf16; 70% of the SFT rows search (try 1-3 wrong
    # expressions first), which is what gives GRPO something to select on countdown-3to4
    "gpu": WarmStart(size=GPU_SIZE, sft_tasks=60000, sft_steps=2000, batch_size=128, learning_rate=1e-3, bf16=True,
                     search_share=0.7),
}
# preset names of earlier releases, for the error message
RENAMED_PRESETS = {"gpu-search": "gpu", "gpu-large": "gpu (which now also searches)", "cpu-plain-bpe": "cpu"}


def cache_root() -> str:
    base = os.environ.get("REASONGYM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "reasongym")
    return os.path.join(base, "policies")


def policy_key(env_id: str, env_kwargs: dict[str, Any], warm: WarmStart) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "env": env_id, "kwargs": env_kwargs, "warm": asdict(warm)},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_policy(env_id: str, env_kwargs: dict[str, Any] | None = None, warm: WarmStart | None = None,
                   console: Any = None) -> str:
    """Path of the warm-started policy for this env, building it if it is not cached. Episode settings
    (max_turns, turn_decay) change neither the tasks nor the reference completions, so every multi-turn
    setting shares one policy: the single-turn one plus `RETRY_SHARE` of second-try rows."""
    from filelock import FileLock

    warm = warm or PRESETS["cpu"]
    if int((env_kwargs or {}).get("max_turns", 1)) > 1 and not warm.retry_share:
        warm = replace(warm, retry_share=RETRY_SHARE)
    env_kwargs = {k: v for k, v in (env_kwargs or {}).items() if k not in EPISODE_KWARGS}
    path = os.path.join(cache_root(), f"{env_id}-{policy_key(env_id, env_kwargs, warm)}")
    if os.path.exists(os.path.join(path, "READY")):
        return path
    os.makedirs(cache_root(), exist_ok=True)
    with FileLock(path + ".lock"):  # two jobs (or test workers) asking at once: one builds, the other waits
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
    rows = untrained_policy(env_id, env_kwargs, warm, out_dir)
    warm_sft(out_dir, rows, out_dir, warm_schedule(warm), description="warm start: SFT on solver completions",
             console=console)


def untrained_policy(env_id: str, env_kwargs: dict[str, Any], warm: WarmStart, out_dir: str) -> list[dict[str, str]]:
    """Write the warm start's tokenizer and untrained model to `out_dir`; return its SFT rows
    ({"prompt", "completion"}, prompts as that tokenizer renders them)."""
    import reasongym as rg
    from trainers.common.models import load_tokenizer

    env = rg.make(env_id, **env_kwargs)
    pairs = sft_pairs(env_id, env_kwargs, warm)
    tasks = [task for task, _ in pairs]
    corpus = task_corpus(env, tasks[:500])
    tokenizer = build_tokenizer(corpus, warm.size.vocab_size)
    if warm.phrase_tokens:
        tokenizer.add_tokens(prompt_phrases(env, tasks[:50], tokenizer), special_tokens=False)
    build_tiny_model(out_dir, corpus, warm.size, seed=warm.seed, tokenizer=tokenizer)
    tokenizer = load_tokenizer(out_dir, padding_side=None)
    retries = int(len(tasks) * warm.retry_share)
    rows = [{"prompt": prompt_text(env, task, tokenizer), "completion": completion} for task, completion in pairs[retries:]]
    return rows + retry_rows(env_id, env_kwargs, tasks[:retries], tokenizer)


def warm_schedule(warm: WarmStart) -> SFTSchedule:
    return SFTSchedule(steps=warm.sft_steps, batch_size=warm.batch_size, learning_rate=warm.learning_rate,
                       warmup_steps=max(1, warm.sft_steps // 20), logging_steps=max(1, warm.sft_steps // 10),
                       seed=warm.seed, max_length=512, bf16=warm.bf16)


PARALLEL_FROM = 20000  # SFT task lists this long are built by a process pool (60k countdown tasks: ~3 min alone)
SLICE = 2500  # tasks per pool job


def sft_pairs(env_id: str, env_kwargs: dict[str, Any], warm: WarmStart) -> list[tuple[Any, str]]:
    """(task, SFT completion) for the first `warm.sft_tasks` train tasks that have a reference completion,
    in task order. Long lists are built in slices by a process pool (the solver runs once per task)."""
    jobs = [(env_id, env_kwargs, warm.seed + 1, start, min(warm.sft_tasks, start + SLICE), warm.search_share)
            for start in range(0, warm.sft_tasks, SLICE)]
    workers = min(len(jobs), (os.cpu_count() or 1) - 1, 16)
    if warm.sft_tasks < PARALLEL_FROM or workers < 2:
        return [pair for job in jobs for pair in _pairs_slice(job)]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        return [pair for part in pool.map(_pairs_slice, jobs) for pair in part]


def _pairs_slice(job: tuple) -> list[tuple[Any, str]]:
    import reasongym as rg

    env_id, env_kwargs, seed, start, stop, search_share = job
    env = rg.make(env_id, **env_kwargs)
    pairs = []
    for index, task in enumerate(env.tasks("train", n=stop - start, seed=seed, start=start), start):
        reference = env.reference_completion(task)
        if reference:
            pairs.append((task, completion_for(env, task, index, search_share, reference)))
    return pairs


def completion_for(env: Any, task: Any, index: int, search_share: float, reference: str) -> str:
    """The SFT completion of task `index`: the env's `reference` completion, or for `search_share` of the
    tasks (spread evenly) its search completion with 1-3 wrong tries first."""
    if search_share and hasattr(env, "search_completion") and int((index + 1) * search_share) > int(index * search_share):
        return env.search_completion(task, wrong_tries=1 + index % 3, reference=reference) or reference
    return reference


def prompt_phrases(env: Any, tasks: list, tokenizer: Any) -> list[str]:
    """The fixed text of the env's prompts as the policy reads them, chat framing (role names) included:
    rendered through `tokenizer`'s chat template (adding the phrases to it changes no rendered text)."""
    return template_phrases([prompt_text(env, task, tokenizer) for task in tasks])


def prompt_text(env: Any, task: Any, tokenizer: Any) -> str:
    """The prompt as the policy reads it. (`render_prompt` keeps a chat without a pre-fill as messages for
    TRL, which applies the template itself; SFT rows and phrase finding need the text.)"""
    from reasongym.templates import observation_text

    return observation_text(env.prompt(task), tokenizer, env.template)


def retry_rows(env_id: str, env_kwargs: dict[str, Any], tasks: list, tokenizer: Any) -> list[dict[str, str]]:
    """Second tries: a wrong first answer (the env's `near_miss`, else another task's reference answer), the
    env's feedback on it, then this task's reference answer as the completion. The wrong answer sits in the
    prompt, so SFT never trains on it."""
    import reasongym as rg
    from reasongym.templates import observation_text

    env = rg.make(env_id, **env_kwargs, max_turns=2)
    rows = []
    for i, task in enumerate(tasks):
        episode = env.episode_class(env, task)
        episode.step(env.near_miss(task) or env.reference_completion(tasks[i - 1]))
        if episode.done:  # the other task's answer happens to solve this one
            continue
        rows.append({"prompt": observation_text(episode.observation(), tokenizer, env.template),
                     "completion": env.reference_completion(task)})
    return rows

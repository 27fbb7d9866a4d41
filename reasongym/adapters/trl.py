"""Feed a reasongym env to TRL's GRPOTrainer (or any trainer with TRL's reward contract).

- `build_dataset`: env split -> `datasets.Dataset` with a `prompt` column and the
  serialised Task in a `task` column. Chat templates that pre-fill the assistant
  turn (e.g. "...\\n<think>") cannot go through TRL's conversational path, so
  they are rendered to text with the policy's chat template here.
- `make_reward_funcs`: one function per reward component (`format`, `correct`, …)
  so TRL logs `rewards/<name>/mean`; their weights go to `GRPOConfig.reward_weights`.
  The batch is scored once (through the scoring engine) and shared by all of them.
- `EnvironmentTool`: TRL's `environment_factory` contract for single-turn envs.

Only `datasets` is imported here; torch/trl are not needed to build either piece.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence

from reasongym.env import Env
from reasongym.scoring import ScoringEngine, default_engine
from reasongym.types import Outcome, Score, Task

if TYPE_CHECKING:
    import datasets

AHA_PATTERN = re.compile(
    r"\b(wait|let me re-?check|let me check again|let me double[- ]check|double[- ]check|mistake|"
    r"re-?evaluate|i was wrong|that'?s not right|let me reconsider|actually)\b",
    re.IGNORECASE,
)
OUTCOME_NAMES = tuple(o.value for o in Outcome)


def render_prompt(env: Env, task: Task, tokenizer: Any = None) -> str | list[dict[str, str]]:
    """The prompt TRL should see: text, or chat messages when no pre-fill is involved."""
    prompt = env.prompt(task)
    if isinstance(prompt, str) or not env.template.prefill:
        return prompt
    if tokenizer is None:
        raise ValueError(
            f"template {env.template.name!r} pre-fills the assistant turn ({env.template.prefill!r}), which TRL's chat "
            "path cannot express: pass the policy tokenizer so the prompt is rendered with its chat template"
        )
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"the tokenizer has no chat template, but env template {env.template.name!r} is a chat; "
            "use a text template (e.g. --env-kwargs '{\"template\": \"base\"}') or a tokenizer with a chat template"
        )
    return tokenizer.apply_chat_template(prompt, tokenize=False, continue_final_message=True)


def build_dataset(
    env: Env, split: str = "train", n: int | None = None, seed: int | None = 0, tokenizer: Any = None,
    tasks: Sequence[Task] | None = None,
) -> "datasets.Dataset":
    """Rows {prompt, task, task_id, split, difficulty} for `n` tasks of `split`."""
    import datasets

    if tasks is None:
        if n is None and env.task_count(split) is None:
            raise ValueError(f"{env.env_id} split {split!r} is procedural (unbounded): pass n=")
        tasks = env.tasks(split=split, n=n, seed=seed)
    rows = [
        {
            "prompt": render_prompt(env, task, tokenizer),
            "task": task.to_json(),
            "task_id": task.id,
            "split": split,
            "difficulty": float(task.difficulty) if task.difficulty is not None else float("nan"),
        }
        for task in tasks
    ]
    return datasets.Dataset.from_list(rows)


def completion_text(completion: Any) -> str:
    """TRL hands text completions as str and chat completions as [{"role", "content"}]."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return str(completion)


def prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return "\n".join(f"[{m.get('role')}] {m.get('content')}" for m in prompt if isinstance(m, dict))
    return str(prompt)


class RewardAdapter:
    """Scores a TRL batch once and serves each component to its own reward function."""

    def __init__(
        self,
        env: Env,
        engine: ScoringEngine | None = None,
        log_dir: str | None = None,
        log_samples: bool = True,
        levels: Sequence[Any] | None = None,
        on_scores: Callable[[list[Task], list[Score]], None] | None = None,
    ) -> None:
        self.env = env
        self.engine = engine or default_engine(env)
        self.levels = list(levels or [])
        self.on_scores = on_scores
        self.log_dir = log_dir
        self.log_samples = log_samples and log_dir is not None and _is_main_process()
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._scores: list[Score] = []

    @property
    def component_names(self) -> list[str]:
        return list(self.env.reward_weights)

    @property
    def weights(self) -> list[float]:
        return [self.env.reward_weights[name] for name in self.component_names]

    def reward_funcs(self) -> list[Callable[..., list[float | None]]]:
        funcs = []
        for name in self.component_names:
            funcs.append(self._component_func(name))
        return funcs

    def _component_func(self, name: str) -> Callable[..., list[float | None]]:
        def reward(prompts: list, completions: list, task: list[str], **kwargs: Any) -> list[float | None]:
            scores = self.scores_for(prompts, completions, task, kwargs)
            return [None if s.outcome is Outcome.ERROR else s.components.get(name, 0.0) for s in scores]

        reward.__name__ = name
        reward.__qualname__ = name
        return reward

    def scores_for(self, prompts: list, completions: list, task: list[str], kwargs: dict[str, Any]) -> list[Score]:
        texts = [completion_text(c) for c in completions]
        key = (tuple(texts), tuple(task))
        with self._lock:
            if key == self._key:
                return self._scores
            tasks = [Task.from_json(t) for t in task]
            result = self.engine.score(self.env, texts, tasks)
            self._key, self._scores = key, result.scores
        if self.on_scores is not None:
            self.on_scores(tasks, result.scores)
        self._log_metrics(result, texts, tasks, kwargs.get("completion_ids"), kwargs.get("log_metric"))
        if self.log_samples:
            step = getattr(kwargs.get("trainer_state"), "global_step", None)
            self._write_samples(step, kwargs.get("split"), prompts, texts, tasks, result.scores)
        return result.scores

    def _log_metrics(self, result: Any, texts: list[str], tasks: list[Task], completion_ids: list | None,
                     log_metric: Callable[[str, float], None] | None) -> None:
        """Outcome shares, verifier latency, aha rate, lengths of right vs wrong answers, per-level
        accuracy and zero-variance groups. Every rank logs the same keys (NaN where a batch has none)."""
        if log_metric is None:
            return
        nan = float("nan")
        scores = result.scores
        total = max(1, len(scores))
        for name in OUTCOME_NAMES:
            log_metric(f"outcomes/{name}", result.counts.get(name, 0) / total)
        log_metric("verifier/timeouts", float(result.counts.get("timeout", 0)))
        log_metric("verifier/errors", float(result.counts.get("error", 0)))
        log_metric("verifier/latency_p50_ms", 1000 * result.latency_p50)
        log_metric("verifier/latency_p99_ms", 1000 * result.latency_quantile(0.99))
        log_metric("verifier/latency_max_ms", 1000 * result.latency_max)
        log_metric("aha_rate", sum(bool(AHA_PATTERN.search(t)) for t in texts) / total)
        lengths = [len(ids) for ids in completion_ids] if completion_ids is not None else [len(t) for t in texts]
        right = [n for n, s in zip(lengths, scores) if s.correct]
        wrong = [n for n, s in zip(lengths, scores) if not s.correct]
        log_metric("completions/mean_length_correct", sum(right) / len(right) if right else nan)
        log_metric("completions/mean_length_wrong", sum(wrong) / len(wrong) if wrong else nan)
        if not self.levels:
            return
        groups: dict[str, list[Score]] = {}
        level_of: dict[str, Any] = {}
        for task, score in zip(tasks, scores):
            groups.setdefault(task.id, []).append(score)
            level_of[task.id] = task.difficulty
        for level in self.levels:
            mine = [s for t, s in zip(tasks, scores) if t.difficulty == level]
            log_metric(f"levels/{level}/accuracy", sum(s.correct for s in mine) / len(mine) if mine else nan)
            level_groups = [g for tid, g in groups.items() if level_of[tid] == level and len(g) > 1]
            flat = [len({s.reward for s in g}) == 1 for g in level_groups]
            log_metric(f"levels/{level}/frac_zero_std", sum(flat) / len(flat) if flat else nan)
            log_metric(f"levels/{level}/share", len(mine) / total)

    def _write_samples(self, step: int | None, splits: list[str] | None, prompts: list, texts: list[str],
                       tasks: list[Task], scores: list[Score]) -> None:
        assert self.log_dir is not None
        os.makedirs(self.log_dir, exist_ok=True)
        with open(os.path.join(self.log_dir, "samples.jsonl"), "a", encoding="utf-8") as all_f, open(
            os.path.join(self.log_dir, "successes.jsonl"), "a", encoding="utf-8"
        ) as ok_f:
            for i, (prompt, text, task, score) in enumerate(zip(prompts, texts, tasks, scores)):
                record = {
                    "step": step,
                    "split": splits[i] if splits else None,
                    "task_id": task.id,
                    "prompt": prompt_text(prompt),
                    "completion": text,
                    "reward": score.reward,
                    "components": score.components,
                    "outcome": score.outcome.value,
                    "parsed": score.to_dict()["parsed"],
                    "detail": score.detail,
                }
                line = json.dumps(record, ensure_ascii=False) + "\n"
                all_f.write(line)
                if score.outcome is Outcome.CORRECT:
                    ok_f.write(line)


def make_reward_funcs(env: Env, **kwargs: Any) -> tuple[list[Callable[..., list[float | None]]], list[float]]:
    """(reward functions, their weights) for `GRPOTrainer(reward_funcs=..., args.reward_weights=...)`."""
    adapter = RewardAdapter(env, **kwargs)
    return adapter.reward_funcs(), adapter.weights


class EnvironmentTool:
    """TRL `environment_factory` adapter for a single-turn env.

    The model answers by calling the `submit_answer` tool; `get_reward` returns
    the env's `correct` component for that answer (0 if it never submitted). Use as
    `environment_factory=EnvironmentTool.factory(env)` with the `task` column that
    `build_dataset` writes. Tool calls need chat prompts, so the env's template must
    not pre-fill the assistant turn, and the tokenizer's chat template must support
    tools (TRL parses calls for the templates it knows, e.g. Qwen2.5 and Qwen3).
    """

    def __init__(self, env: Env):
        self._env = env
        self._task: Task | None = None
        self._score: Score | None = None

    @classmethod
    def factory(cls, env: Env) -> Callable[[], "EnvironmentTool"]:
        if env.template.kind != "chat" or env.template.prefill:
            raise ValueError(
                f"EnvironmentTool needs chat prompts without a pre-fill (TRL's tool loop renders the conversation "
                f"itself); env template {env.template.name!r} is {env.template.kind!r}"
                + (f" and pre-fills {env.template.prefill!r}" if env.template.prefill else "")
                + ": pass template=PromptTemplate(name=..., kind='chat', user=...) to rg.make"
            )
        return lambda: cls(env)

    def reset(self, task: str | None = None, **row: Any) -> None:
        if task is None:
            raise ValueError("EnvironmentTool needs the dataset's `task` column (build it with build_dataset)")
        self._task = Task.from_json(task)
        self._score = None

    def submit_answer(self, answer: str) -> str:
        """Submit the final answer to the task.

        Args:
            answer: The final answer only, e.g. an equation or a number.

        Returns:
            Whether the answer was accepted.
        """
        if self._task is None:
            return "no task: reset() was not called"
        completion = f" submitted via tool </think>\n<answer>{answer}</answer>"
        text = completion if self._env.template.scoring_prefix else "<think>" + completion
        self._score = self._env.score(text, self._task)
        return "correct" if self._score.correct else f"not accepted ({self._score.outcome.value})"

    def get_reward(self) -> float:
        return 0.0 if self._score is None else self._score.components.get("correct", self._score.reward)


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"

"""Feed a reasongym env to TRL's GRPOTrainer (or any trainer with TRL's reward contract).

- `build_dataset`: env split -> `datasets.Dataset` with a `prompt` column and the
  serialised Task in a `task` column. Chat templates that pre-fill the assistant
  turn (e.g. "...\\n<think>") cannot go through TRL's conversational path, so
  they are rendered to text with the policy's chat template here.
- `make_reward_funcs`: one function per reward component (`format`, `correct`, …)
  so TRL logs `rewards/<name>/mean`; their weights go to `GRPOConfig.reward_weights`.
  The batch is scored once (through the scoring engine) and shared by all of them.
- `EnvironmentTool`: TRL's `environment_factory` contract for single-turn envs.
- `episode_tools` / `episode_reward_func`: multi-turn envs (`max_turns > 1`: retries through a
  `submit_answer` tool that answers with the env's feedback) and tool envs (countdown-3to4-tool:
  a `calculate` tool, then the answer) inside TRL's tool loop, with per-episode metrics.

This module holds the TRL contract alone; what a run records (metric names, the aha
counter, sample logs) lives in `reasongym.telemetry`. Only `datasets` is imported
here; torch/trl are not needed to build either piece.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence

from reasongym import telemetry
from reasongym.env import Env
from reasongym.scoring import ScoringEngine, default_engine
from reasongym.templates import chat_to_text
from reasongym.types import Outcome, Score, Task

if TYPE_CHECKING:
    import datasets

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
    return chat_to_text(prompt, tokenizer, continue_final_message=True)


def build_dataset(
    env: Env, split: str = "train", n: int | None = None, seed: int | None = 0, tokenizer: Any = None,
    tasks: Sequence[Task] | None = None, episodes: bool = False,
) -> "datasets.Dataset":
    """Rows {prompt, task, task_id, split, difficulty} for `n` tasks of `split`; `episodes=True` gives chat
    prompts for TRL's tool loop (multi-turn and tool envs)."""
    import datasets

    if tasks is None:
        if n is None and env.task_count(split) is None:
            raise ValueError(f"{env.env_id} split {split!r} is procedural (unbounded): pass n=")
        tasks = env.tasks(split=split, n=n, seed=seed)
    rows = [
        {
            "prompt": episode_prompt(env, task) if episodes else render_prompt(env, task, tokenizer),
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
        self.sample_log = telemetry.SampleLog(log_dir) if log_samples and log_dir and telemetry.is_main_process() else None
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
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:  # TRL >= 1.x passes it; each key is averaged over the logging window
            ids = kwargs.get("completion_ids")
            lengths = [len(x) for x in ids] if ids is not None else None
            for key, value in telemetry.batch_metrics(result, texts, tasks, lengths, self.levels).items():
                log_metric(key, value)
        if self.sample_log is not None:
            step = getattr(kwargs.get("trainer_state"), "global_step", None)
            self.sample_log.write(step, kwargs.get("split"), prompts, texts, tasks, result.scores)
        return result.scores


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



# ----- multi-turn and tool episodes inside TRL's tool loop ---------------------------------------------
RETRY_INSTRUCTION = ("\n\nSubmit your final answer with the submit_answer tool. If it is not accepted you get feedback "
                     "and may submit again: {turns} attempts in all.")


def episode_prompt(env: Env, task: Task) -> list[dict[str, str]]:
    """The env's chat prompt for TRL's tool loop: the conversation renders itself, so no assistant pre-fill."""
    prompt = env.prompt(task)
    if isinstance(prompt, str):
        raise ValueError(f"{env.env_id}: tool and multi-turn training needs a chat template, "
                         f"{env.template.name!r} is text")
    return [m for m in prompt if not (m is prompt[-1] and m["role"] == "assistant")]


def _wrap_answer(env: Env, answer: str) -> str:
    completion = f" submitted via tool </think>\n<answer>{answer}</answer>"
    return completion if env.template.scoring_prefix else "<think>" + completion


class RetryEpisodeTool:
    """`environment_factory` for a multi-turn env: each `submit_answer` call is one turn of a
    `reasongym.episode.Episode`; a wrong answer returns the env's feedback, and after `max_turns`
    calls (or a correct one) the episode is over. The reward (see `episode_reward_func`) is the
    episode's: the `correct` component, decayed by `turn_decay` per extra turn."""

    def __init__(self, env: Env):
        self._env = env
        self.episode: Any = None

    def reset(self, task: str | None = None, **row: Any) -> str:
        if task is None:
            raise ValueError("the episode needs the dataset's `task` column (build it with build_dataset)")
        self.episode = self._env.episode_class(self._env, Task.from_json(task))
        return RETRY_INSTRUCTION.format(turns=self._env.max_turns)

    def submit_answer(self, answer: str) -> str:
        """Submit your final answer to the task.

        Args:
            answer: The final answer only, e.g. an equation or a number.

        Returns:
            Whether the answer was accepted, and what was wrong if it was not.
        """
        if self.episode is None:
            return "no task: reset() was not called"
        if self.episode.done:
            return "The episode is over: no more attempts."
        turn = self.episode.step(_wrap_answer(self._env, str(answer)))
        if turn.score.correct:
            return "Correct."
        left = self._env.max_turns - len(self.episode.turns)
        return f"{turn.feedback} ({left} attempt{'s' if left != 1 else ''} left)" if left else \
            f"{turn.feedback.removesuffix(' Try again.')} No attempts left."

    def _result(self, final_text: str) -> dict[str, Any]:
        turns = self.episode.turns if self.episode is not None else []
        solved = bool(turns) and turns[-1].score.correct
        reward = self._env.turn_decay ** (len(turns) - 1) if solved else 0.0
        return {"reward": reward, "turns": len(turns), "success_turn": len(turns) if solved else None, "tool_calls": 0}


class CalculatorEpisodeTool:
    """`environment_factory` for a tool env (countdown-3to4-tool; an env with `tool_budget` and a
    `calculate(expression) -> str` method): `calculate` runs the env's calculator within its budget; the final assistant message is the answer. A call past the budget ends the
    episode unrewarded: later calls say so, and the reward is 0."""

    def __init__(self, env: Env):
        self._env = env
        self.task: Task | None = None
        self.calls = 0
        self.over_budget = False

    def reset(self, task: str | None = None, **row: Any) -> None:
        if task is None:
            raise ValueError("the episode needs the dataset's `task` column (build it with build_dataset)")
        self.task, self.calls, self.over_budget = Task.from_json(task), 0, False

    def calculate(self, expression: str) -> str:
        """Evaluate an arithmetic expression exactly.

        Args:
            expression: Integers with + - * / and parentheses, e.g. "(12 + 4) * 3".

        Returns:
            The exact value, or an error message.
        """
        self.calls += 1
        if self.over_budget or self.calls > (self._env.tool_budget or 0):
            self.over_budget = True
            return f"tool budget exceeded ({self._env.tool_budget} calls): the episode is over, unrewarded"
        return self._env.calculate(expression)  # the env's own calculator (countdown's: exact, no eval)

    def _result(self, final_text: str) -> dict[str, Any]:
        if self.over_budget or self.task is None:
            return {"reward": 0.0, "turns": 1, "success_turn": None, "tool_calls": self.calls}
        score = self._env.score(final_text, self.task)
        return {"reward": score.components.get("correct", 0.0), "turns": 1,
                "success_turn": 1 if score.correct else None, "tool_calls": self.calls}


def episode_tools(env: Env) -> Callable[[], Any]:
    """The `environment_factory` for an env trained through TRL's tool loop."""
    if env.template.kind != "chat":
        raise ValueError(f"{env.env_id}: tool and multi-turn training needs a chat template, "
                         f"{env.template.name!r} is text")
    if env.tool_budget is not None:
        return lambda: CalculatorEpisodeTool(env)
    return lambda: RetryEpisodeTool(env)


def episode_reward_func(max_turns: int) -> Callable[..., list[float]]:
    """The reward of each rollout's episode, plus metrics: turns per episode, tool calls, success by turn."""

    def episode(prompts: list, completions: list, environments: list | None = None, log_metric: Any = None,
                **kwargs: Any) -> list[float]:
        if environments is None:
            raise ValueError("episode rewards need environment_factory (TRL passes `environments`)")
        finals = [completion_text(c) for c in completions]
        results = [tool._result(text) for tool, text in zip(environments, finals)]
        if log_metric is not None:
            n = max(1, len(results))
            log_metric("episodes/turns", sum(r["turns"] for r in results) / n)
            log_metric("episodes/tool_calls", sum(r["tool_calls"] for r in results) / n)
            for k in range(1, max_turns + 1):
                log_metric(f"episodes/success_by_turn_{k}",
                           sum(r["success_turn"] is not None and r["success_turn"] <= k for r in results) / n)
        return [float(r["reward"]) for r in results]

    return episode

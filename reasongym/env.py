"""The Env base class: a gymnasium.Env over verifiable tasks, single-turn or multi-turn.

A subclass supplies where tasks come from (`_task_at`, `_task_count`), how to
verify a completion (`verify`) and, where it can, a `reference_completion` and a
`feedback` for wrong answers. Everything else — reset/step (one `Episode`), batch
helpers, reward weighting, the "never raise on model output" guarantee — lives here once.

Every env is multi-turn capable: `make(id, max_turns=3)` lets the policy retry after the
env's feedback, with the reward decayed by `turn_decay` per extra turn. `max_turns=1`
(the default) is the single-turn env, unchanged.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import gymnasium

from reasongym.episode import Episode
from reasongym.parsing import read_layout
from reasongym.errors import VerifierTimeout
from reasongym.spaces import AnyText, ChatMessages
from reasongym.templates import Prompt, PromptTemplate, plain_text
from reasongym.types import Outcome, Score, Task

if TYPE_CHECKING:
    from reasongym.registry import EnvSpec
    from reasongym.scoring import ScoringEngine


class Env(gymnasium.Env):
    """Base class of every reasongym environment.

    Class attributes a subclass sets:
      templates        name -> PromptTemplate the env offers; `default_template` picks one
      reward_modes     name -> {component: weight}; reward = sum(weight * component)
      splits           split names; procedural splits never share a task
      cheap_verifier   True when verify() is bounded by construction and fast, so
                       batch scoring runs in-process instead of in a process pool
      score_timeout    hard per-completion limit (seconds) when scoring runs in a pool
      max_completion_chars  longer completions are unparseable before verify() runs
      probes           env-specific reward-hacking probes (reasongym.testing.probes), beyond the generic
                       ones that run on every env
      probe_opt_outs   generic probe name -> why it does not apply (an answer that really is a list)
      invariances      format changes that must not change the score
      episode_class    how one episode runs (reasongym.episode.Episode; tool envs bring their own)
      executes_model_text  why scoring runs model text as code ('' for none): such an env scores only
                       when made with `make(id, allow_unsafe_scoring=True)` (reasongym.scoring's gate)

    Dataset envs may load fewer splits than they declare (an evaluation file alone):
    they set `self.splits` to the loaded ones, and asking for a declared split that
    was not loaded says how to load it.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}
    templates: ClassVar[dict[str, PromptTemplate]] = {}
    default_template: ClassVar[str] = ""
    reward_modes: ClassVar[dict[str, dict[str, float]]] = {"default": {"correct": 1.0}}
    default_reward_mode: ClassVar[str] = "default"
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    cheap_verifier: ClassVar[bool] = True
    score_timeout: ClassVar[float] = 5.0
    max_completion_chars: ClassVar[int] = 100_000
    probes: ClassVar[tuple[str, ...]] = ()
    probe_opt_outs: ClassVar[dict[str, str]] = {}
    invariances: ClassVar[tuple[str, ...]] = ("think_whitespace", "trailing_text")
    episode_class: ClassVar[type[Episode]] = Episode
    executes_model_text: str = ""
    allow_unsafe_scoring: bool = False

    spec: "EnvSpec | None" = None

    def __init__(
        self,
        template: str | PromptTemplate | None = None,
        reward_mode: str | None = None,
        seed: int = 0,
        render_mode: str | None = None,
        max_turns: int = 1,
        turn_decay: float = 0.5,
    ) -> None:
        super().__init__()
        if not isinstance(max_turns, int) or isinstance(max_turns, bool) or not 1 <= max_turns <= 64:
            raise ValueError(f"max_turns must be an int in 1..64, got {max_turns!r}")
        if isinstance(turn_decay, bool) or not isinstance(turn_decay, (int, float)) or not 0 < turn_decay <= 1:
            raise ValueError(f"turn_decay must be a number in (0, 1], got {turn_decay!r}")
        self.max_turns, self.turn_decay = max_turns, float(turn_decay)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.template = self._pick_template(template)
        mode = reward_mode or self.default_reward_mode
        if mode not in self.reward_modes:
            raise ValueError(
                f"{type(self).__name__} has no reward mode {mode!r}; choose one of {sorted(self.reward_modes)}"
            )
        self.reward_mode = mode
        self.reward_weights: dict[str, float] = dict(self.reward_modes[mode])
        self.reward_range = (
            sum(min(w, 0.0) for w in self.reward_weights.values()),
            sum(max(w, 0.0) for w in self.reward_weights.values()),
        )
        self.seed = seed
        self.render_mode = render_mode
        self.observation_space = AnyText() if self.template.kind == "text" else ChatMessages()
        self.action_space = AnyText()
        self._task: Task | None = None
        self._episode: Episode | None = None

    # ----- subclass hooks -------------------------------------------------------
    def _task_at(self, split: str, index: int, seed: int) -> Task:
        raise NotImplementedError

    def _task_count(self, split: str) -> int | None:
        """Number of tasks in a split; None for an unbounded procedural source."""
        return None

    def reset_index_bound(self, split: str) -> int:
        """`reset()` without a task draws an index below this: the split's size, or any index for an
        unbounded source. Envs whose procedural source is finite in practice lower it."""
        return self._task_count(split) or 2**31 - 1

    def verify(self, text: str, task: Task) -> Score:
        """Score `text` (scoring prefix + completion). May raise; `score` catches."""
        raise NotImplementedError

    def reference_completion(self, task: Task) -> str | None:
        """A completion (continuing after the template's pre-fill) that earns full reward."""
        return None

    def near_miss(self, task: Task) -> str | None:
        """A well-formed wrong completion of the kind a policy writes (countdown: one operator swapped), used
        to teach second tries in multi-turn warm starts; None when the env has none."""
        return None

    def wrong_answers(self, task: Task) -> list[str]:
        """Answer-block texts of the gold's kind that are wrong, for the testing kit's near misses and hedges.
        Empty (the default): the kit perturbs the gold's text (digits changed, nearby numbers, other words).
        Envs whose answers are programs or structures, where a changed character may still be right, say
        what a wrong answer looks like."""
        return []

    def gold_answer_forms(self, task: Task) -> list[str]:
        """Other spellings of the gold answer the verifier promises to accept (testing kit)."""
        return []

    def feedback(self, score: Score, task: Task) -> str:
        """What a multi-turn episode tells the policy after a wrong or unparseable answer.

        It must never reveal the gold answer (the testing kit's feedback check looks for it, and
        for expressions that evaluate to it). Envs that can say more without leaking override it."""
        if score.outcome is Outcome.UNPARSEABLE:
            return "No final answer found: give it inside <answer> </answer> tags. Try again."
        return "That is not correct. Try again."

    def secrets(self, task: Task) -> list[str]:
        """Strings feedback must never contain: the gold answer in the forms the env knows (testing kit)."""
        return [str(task.answer), *self.gold_answer_forms(task)]

    # ----- public API -----------------------------------------------------------
    # A tool env's calls per episode (it then has `calculate(expression) -> str`); None: no tool.
    tool_budget: int | None = None

    @property
    def multi_turn(self) -> bool:
        """An episode is more than one completion: retries (`max_turns > 1`) or the env's own episode class
        (tools). The one test of it every trainer and adapter uses."""
        return self.max_turns > 1 or self.episode_class is not Episode

    @property
    def full_reward(self) -> float:
        return self.reward_range[1]

    @property
    def declared_splits(self) -> tuple[str, ...]:
        """Every split the env has; `splits` is the ones loaded (the same unless data files gave fewer)."""
        return self.__dict__.get("_declared_splits", type(self).splits)

    def use_loaded_splits(self, declared: Sequence[str], loaded: Sequence[str]) -> None:
        """For dataset envs: the env has `declared` splits, the data gave `loaded` (at least one of them)."""
        present = tuple(s for s in declared if s in loaded)
        if not present:
            raise ValueError(f"{self.env_id}: the data gave splits {sorted(loaded)}, none of {list(declared)}")
        self._declared_splits = tuple(declared)
        self.splits = present

    @property
    def default_split(self) -> str:
        """The "train" split when the env has it, else its first split (an evaluation-only dataset)."""
        return "train" if "train" in self.splits else self.splits[0]

    def task_count(self, split: str = "train") -> int | None:
        self._check_split(split)
        return self._task_count(split)

    def tasks(self, split: str | None = None, n: int | None = 100, seed: int | None = 0, start: int = 0) -> list[Task]:
        """The first `n` tasks of `split` (default: `default_split`) under `seed` (same arguments, same tasks);
        with `start`, the `n` tasks from position `start` on (so workers can each build a slice of one list).

        Procedural envs draw task i from its own RNG keyed on (seed, split, i);
        dataset envs return rows in stored order for `seed=None`, else a seeded shuffle,
        and at most as many tasks as the split holds (`n` larger than that is clamped).
        """
        split = split or self.default_split
        self._check_split(split)
        count = self._task_count(split)
        if count is None:
            if n is None:
                raise ValueError(f"split {split!r} is unbounded (procedural): pass n=")
            return [self._task_at(split, i, 0 if seed is None else seed) for i in range(start, start + n)]
        order = list(range(count))
        if seed is not None:
            random.Random(seed).shuffle(order)
        take = order[start:] if n is None else order[start:start + n]
        return [self._task_at(split, i, 0) for i in take]

    def prompt(self, task: Task) -> Prompt:
        return self.template.render(task.question)

    def score(self, completion: str, task: Task) -> Score:
        """Verify one completion. Never raises on model output: failures become outcomes. Raises
        UnsafeScoringRefused (before reading the completion) for an env that runs model text as code
        unless it was made with allow_unsafe_scoring=True."""
        if self.executes_model_text:  # the gate's own import stays off the per-completion path of every other env
            from reasongym.scoring import require_safe_scoring

            require_safe_scoring(self)
        if not isinstance(completion, str):
            return self.make_score({}, Outcome.UNPARSEABLE, detail=f"completion is {type(completion).__name__}, not str")
        if len(completion) > self.max_completion_chars:
            return self.make_score({}, Outcome.UNPARSEABLE,
                                   detail=f"completion longer than {self.max_completion_chars} chars")
        try:
            return self.verify(self.template.scoring_prefix + completion, task)
        except VerifierTimeout as exc:
            return self.make_score({}, Outcome.TIMEOUT, detail=str(exc)[:500])
        except Exception as exc:  # noqa: BLE001 - the contract is "a Score, never an exception"
            return self.make_score({}, Outcome.ERROR, detail=f"{type(exc).__name__}: {exc}"[:500])

    def score_batch(
        self, completions: Sequence[str], tasks: Sequence[Task], engine: "ScoringEngine | None" = None
    ) -> list[Score]:
        """Scores in input order; cheap verifiers in-process, others through a process pool."""
        from reasongym.scoring import default_engine

        return (engine or default_engine(self)).score(self, completions, tasks).scores

    def answer_block(self, text: str, which: str = "only", max_chars: int | None = None, missing: str = "no answer"
                     ) -> tuple[float, str | Score]:
        """(format component, the `<answer>` block's text) for verifiers that read one block; in place of the
        text, the UNPARSEABLE Score of a completion without a usable block (none, blank, or over max_chars)."""
        layout = read_layout(text)
        fmt = 1.0 if layout.well_formed else 0.0
        answer = layout.answer(which)
        if answer is None or not answer.strip() or (max_chars is not None and len(answer) > max_chars):
            return fmt, self.make_score({"format": fmt}, Outcome.UNPARSEABLE, detail=layout.problem or missing)
        return fmt, answer

    def make_score(
        self, components: dict[str, float], outcome: Outcome, parsed: Any = None, detail: str = ""
    ) -> Score:
        """Fill every declared component (missing ones are 0) and weight them into the reward."""
        full: dict[str, float] = {}
        reward = 0.0
        for name, weight in self.reward_weights.items():
            value = full[name] = float(components.get(name, 0.0))
            reward += weight * value
        return Score(reward, full, outcome, parsed, detail)

    # ----- gymnasium ------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        split = options.get("split", self.default_split)
        self._check_split(split)
        if "task" in options:
            task = options["task"]
            self._task = task if isinstance(task, Task) else Task.from_dict(task)
        else:
            index = options.get("index")
            if index is None:
                index = int(self.np_random.integers(0, self.reset_index_bound(split)))
            self._task = self._task_at(split, int(index), self.seed)
        self._episode = self.episode_class(self, self._task)
        return self._episode.observation(), {"task": self._task, "split": split, "turn": 0}

    def step(self, action: str):
        """Score one answer. Single-turn: always terminated. Multi-turn: a correct answer terminates, a wrong one
        gets feedback appended to the observation, and the last allowed turn truncates. info: the turn's `score`,
        `turn`, `feedback`, `episode_reward` (at the end) and, at the end, `success_turn`."""
        if self._episode is None or self._task is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        if self._episode.done:
            raise gymnasium.error.ResetNeeded("the episode is over: call reset()")
        turn = self._episode.step(action)
        episode = self._episode
        info: dict[str, Any] = {"task": self._task, "turn": len(episode.turns)}
        if turn is not None:
            info.update(score=turn.score, feedback=turn.feedback)
        if episode.done:
            info.update(episode_reward=episode.reward, success_turn=episode.success_turn)
        reward = turn.reward if turn is not None else 0.0
        return episode.observation(), float(reward), episode.terminated, episode.truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._task is None:
            return None
        obs = self._episode.observation() if self._episode is not None else self.prompt(self._task)
        return plain_text(obs, roles=True)

    # ----- helpers --------------------------------------------------------------
    def _pick_template(self, template: str | PromptTemplate | None) -> PromptTemplate:
        if isinstance(template, PromptTemplate):
            return template
        name = template or self.default_template
        if name not in self.templates:
            raise ValueError(
                f"{type(self).__name__} has no template {name!r}; choose one of {sorted(self.templates)}"
            )
        return self.templates[name]

    def _check_split(self, split: str) -> None:
        if split in self.splits:
            return
        if split in self.declared_splits:
            raise ValueError(
                f"{self.env_id}: split {split!r} is not loaded (loaded: {list(self.splits)}). Load it with "
                f"data_files={{'{split}': 'path/to/{split}.jsonl'}} (a dict of split -> file), or name the file "
                f"after the split ('{split}.jsonl') when passing a single file or a list"
            )
        raise ValueError(f"{self.env_id} has no split {split!r}; splits: {list(self.splits)}")

    @property
    def env_id(self) -> str:
        return self.spec.id if self.spec is not None else type(self).__name__

    def __reduce__(self):
        # Pool workers rebuild an env from its spec instead of pickling live state.
        if self.spec is None:
            return super().__reduce__()
        from reasongym.registry import rebuild

        return (rebuild, (self.spec.id, self.spec.kwargs))

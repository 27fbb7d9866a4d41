"""One reasoning-gym dataset as a reasongym env, with our splits, templates and scoring engine.

- Tasks: reasoning-gym's per-index generation (item j of a dataset built with a seed derived
  from ours and the level) — deterministic; an item belongs to train or test by a hash of its
  question, so the splits never share a task whatever the seeds.
- Difficulty: `level=L` builds the dataset config from reasoning-gym's curriculum at global
  level L; `levels=[0, 1, 2]` draws task i at level levels[i % 3] (what `--curriculum` needs);
  any other keyword is a field of the dataset's own config, on top.
- Scoring: the last `<answer>` block after `</think>` goes to reasoning-gym's `score_answer`,
  always in a scoring-engine worker with a hard timeout, never in the calling process. Its
  value is kept as the `partial` component; `correct` is 1 only for a full score.
- Safety: no reasoning-gym scorer ever sees an answer it would evaluate. Fifteen tasks are scored
  by our own verifiers instead (envs/reasoning_gym/verifiers.py: the seven whose scorer `eval`s or
  `sympy.parse_expr`s model text, and those whose scorer pays a hedge); `scorer="reasoning-gym"`
  brings theirs back, and for the seven that is code execution, so scoring then needs
  `make(..., allow_unsafe_scoring=True)`. Tasks whose scorer pays a hedge where several spellings
  are right, or rejects its own oracle, are marked unsafe (UNSAFE): training refuses them without
  `--allow-unsafe-env true`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

from envs.reasoning_gym import codeio_sandbox
from reasongym.env import Env
from reasongym.templates import R1_SYSTEM, PromptTemplate
from envs.reasoning_gym.verifiers import EVALS_MODEL_TEXT, SAFE_VERIFIERS, SHAPE_CHECKS, answer_refused
from reasongym.types import Outcome, Score, Task

TEMPLATES = {
    "r1": PromptTemplate("r1", "chat", system=R1_SYSTEM, user="{question}"),
    "text": PromptTemplate("text", "text", text=(
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
        "assistant first thinks about the reasoning process in the mind and then provides the user with the answer "
        "inside <answer> </answer> tags.\nUser: {question}\nAssistant: <think>")),
    # For small instruct models (about 100M-500M) that cannot yet write a reasoning block: the answer alone,
    # in the tags the verifier reads. The model's own chat template and system prompt stay as they are.
    "short": PromptTemplate("short", "chat", user="{question}\nWrite only the final answer between answer tags, "
                            "like this: <answer>your answer</answer>"),
}
# Tasks whose reasoning-gym scorer pays a hedge where several spellings are right (so an exact match of ours
# would reject correct answers), or rejects its own oracle: training refuses them without consent.
UNSAFE = {
    "knights_knaves": "its scorer pays a hedge ('<gold> or 0')",
    "quantum_lock": "its scorer pays a hedge ('<gold> or 0')",
    "sokoban": "its scorer pays a hedge and an eval-wrapped answer (it replays whatever moves it finds)",
    "time_intervals": "its scorer pays a hedge ('<gold> or 0')",
    # the oracle round trip: reasoning-gym's scorer gives its own oracle answer 0.05 of 1 (no learning signal)
    "arc_agi": "its scorer rejects its own oracle answers (0.05 of 1), so training has no signal",
    "rearc": "its scorer rejects its own oracle answers (0.05 of 1), so training has no signal",
}
SCORERS = ("ours", "reasoning-gym")
TEST_PERMILLE = 100
DEFAULT_SIZE = 10_000
_BASE_KWARGS = ("template", "reward_mode", "seed", "render_mode", "max_turns", "turn_decay")


def _import_reasoning_gym():
    try:
        import reasoning_gym.factory as factory
    except ImportError as exc:
        raise ImportError("reasoning-gym envs need the package: pip install 'reasongym[reasoning-gym]' "
                          "(reasoning-gym==0.1.25)") from exc
    return factory


class ReasoningGymEnv(Env):
    templates: ClassVar[dict[str, PromptTemplate]] = TEMPLATES
    default_template = "r1"
    reward_modes: ClassVar[dict[str, dict[str, float]]] = {
        "default": {"format": 0.1, "correct": 0.9, "partial": 0.0},
        "partial": {"format": 0.1, "partial": 0.9},
        "accuracy": {"correct": 1.0},
    }
    cheap_verifier = False
    score_timeout = 5.0
    probes = ("several_answers", "empty_answer", "answer_in_think", "hedge", "judge_injection", "very_long")

    def __init__(self, name: str, level: int | None = None, levels: list[int] | None = None,
                 size: int = DEFAULT_SIZE, scorer: str = "ours", **kwargs: Any) -> None:
        super().__init__(**{k: kwargs.pop(k) for k in _BASE_KWARGS if k in kwargs})
        factory = _import_reasoning_gym()
        if name not in factory.DATASETS:
            raise ValueError(f"reasoning-gym has no dataset {name!r}")
        if level is not None and levels is not None:
            raise ValueError("pass level= or levels=, not both")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.name, self.size, self.config = name, size, kwargs
        self.levels: list[int | None] = [None] if level is None and levels is None else list(
            [level] if level is not None else levels or [])
        if not self.levels or any(v is not None and (not isinstance(v, int) or v < 0) for v in self.levels):
            raise ValueError(f"levels must be a non-empty list of levels >= 0, got {levels!r}")
        if scorer not in SCORERS:
            raise ValueError(f"scorer must be one of {list(SCORERS)}, got {scorer!r}")
        self.own_verifier = SAFE_VERIFIERS.get(name) if scorer == "ours" else None
        self.unsafe_reason = UNSAFE.get(name)
        if name in EVALS_MODEL_TEXT and scorer == "reasoning-gym":
            self.executes_model_text = f"reasoning-gym's scorer for {name} {EVALS_MODEL_TEXT[name]}"
            self.unsafe_reason = self.executes_model_text
        elif name in SAFE_VERIFIERS and scorer == "reasoning-gym":
            self.unsafe_reason = f"reasoning-gym's scorer for {name} pays a hedge (scorer='ours' closes it)"
        self._datasets: dict[tuple[int, int | None], Any] = {}
        self._found: dict[tuple[int, int | None], dict[str, list[int]]] = {}
        self._scanned: dict[tuple[int, int | None], int] = {}
        self._last_scanned: dict[tuple[int, int | None], tuple[int, dict]] = {}
        self._dataset(self.seed, self.levels[0])  # a bad config fails here, not at the first task
        self._sandbox_engine: Any = None

    # ----- tasks ----------------------------------------------------------------
    def config_for(self, level: int | None) -> dict[str, Any]:
        """The dataset config at `level` (reasoning-gym's curriculum), with the user's fields on top."""
        config: dict[str, Any] = {}
        if level is not None:
            factory = _import_reasoning_gym()
            if not factory.has_curriculum(self.name):
                raise ValueError(f"reasoning-gym/{self.name} has no curriculum, so no levels")
            curriculum = factory.create_curriculum(self.name)
            curriculum.set_global_level(level)
            generated = curriculum.generate_configuration({"seed": 0, "size": self.size})
            config = {k: v for k, v in vars(generated).items() if k not in ("seed", "size")}
        return {**config, **self.config}

    def _dataset(self, seed: int, level: int | None):
        key = (seed, level)
        if key not in self._datasets:
            factory = _import_reasoning_gym()
            config = self.config_for(level)
            if self.name == "composite":
                from reasoning_gym.composite import DatasetSpec

                config["datasets"] = [d if isinstance(d, DatasetSpec) else DatasetSpec(**d) for d in config.get("datasets") or []]
            derived = int.from_bytes(hashlib.sha256(f"{seed}:{level}".encode()).digest()[:4], "big")
            try:
                dataset = factory.create_dataset(self.name, seed=derived, size=self.size, **config)
            except TypeError as exc:
                raise TypeError(f"reasoning-gym/{self.name}: {exc}") from None
            except (AssertionError, ValueError) as exc:
                raise ValueError(f"reasoning-gym/{self.name} config {json.dumps(config, default=str)}: {exc}") from None
            self._datasets[key] = codeio_sandbox.sandboxed(dataset)  # codeio runs its snippets in our sandbox
        return self._datasets[key]

    def reset_index_bound(self, split: str) -> int:
        """A bound every level's items reach within `size` (about 10% of items are test tasks), so
        `reset(seed=s)` never asks for a task the generated items do not hold."""
        share = TEST_PERMILLE / 1000 if split == "test" else 1 - TEST_PERMILLE / 1000
        return max(1, min(1000, int(self.size * share * 0.5)))

    @staticmethod
    def split_of(item: dict[str, Any]) -> str:
        digest = hashlib.sha256(str(item["question"]).encode()).digest()
        return "test" if int.from_bytes(digest[:4], "big") % 1000 < TEST_PERMILLE else "train"

    def _task_at(self, split: str, index: int, seed: int) -> Task:
        level = self.levels[index % len(self.levels)]
        wanted = index // len(self.levels)
        key = (seed, level)
        dataset = self._dataset(seed, level)
        found = self._found.setdefault(key, {"train": [], "test": []})
        while len(found[split]) <= wanted:
            j = self._scanned.get(key, 0)
            if j >= self.size:
                raise ValueError(f"reasoning-gym/{self.name}: {self.size} generated items hold only "
                                 f"{len(found[split])} {split} tasks at level {level}: pass a larger size=")
            self._scanned[key] = j + 1
            try:
                item = dataset[j]
            except Exception:  # noqa: BLE001 - reasoning-gym's generator fails on some items (codeio: numpy ints
                continue  # in json.dumps); such an item is no task, the next one is tried
            found[self.split_of(item)].append(j)
            self._last_scanned[key] = (j, item)  # the task asked for is most often the one just found
        j = found[split][wanted]
        last_j, last_item = self._last_scanned.get(key, (None, None))
        item = last_item if last_j == j else dataset[j]
        digest = hashlib.sha256(str(item["question"]).encode()).hexdigest()[:12]
        return Task(id=f"reasoning-gym/{self.name}:{digest}", question={"question": item["question"]},
                    answer=item["answer"], difficulty=level,
                    metadata={"entry": json.loads(json.dumps(item, default=str)), "index": j, "seed": seed})

    # ----- scoring ----------------------------------------------------------------
    def reference_completion(self, task: Task) -> str | None:
        if task.answer is None:
            return None  # reasoning-gym has no single oracle answer for this task
        if "Integral(" in str(task.answer):
            return None  # reasoning-gym could not integrate this one: its "answer" restates the question
        return f"<think>\nThe answer follows.\n</think>\n<answer>{task.answer}</answer>"

    def score(self, completion: str, task: Task) -> Score:
        """Third-party scorers run only inside a scoring-engine worker (hard timeout); called from
        anywhere else, the completion goes to this env's own one-worker engine."""
        from reasongym.scoring import ScoringEngine, in_worker

        if in_worker():
            return super().score(completion, task)
        if self._sandbox_engine is None:
            self._sandbox_engine = ScoringEngine(workers=1, timeout=self.score_timeout)
        return self._sandbox_engine.score(self, [completion], [task]).scores[0]

    def verify(self, text: str, task: Task) -> Score:
        fmt, answer = self.answer_block(text, "last", missing="empty <answer> block")
        if isinstance(answer, Score):
            return answer
        answer = answer.strip()
        entry = task.metadata["entry"]
        if self.own_verifier:
            verdict = self.own_verifier(answer, entry)
            correct = 1.0 if verdict.outcome is Outcome.CORRECT else 0.0
            return self.make_score({"format": fmt, "correct": correct, "partial": verdict.partial_value},
                                   verdict.outcome, verdict.parsed, verdict.detail)
        refused = answer_refused(self.name, answer) or (
            SHAPE_CHECKS[self.name](answer, entry) if self.name in SHAPE_CHECKS else "")
        if refused:
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, parsed=answer[:200], detail=refused)
        try:
            value = float(self._dataset(task.metadata["seed"], task.difficulty).score_answer(answer, entry))
        except Exception as exc:  # noqa: BLE001 - their scorer choking on model text: the answer earns nothing
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, parsed=answer[:200],
                                   detail=f"reasoning-gym's scorer raised {type(exc).__name__} on this answer")
        correct = value >= 1.0 - 1e-9
        return self.make_score({"format": fmt, "correct": float(correct), "partial": max(0.0, min(1.0, value))},
                               Outcome.CORRECT if correct else Outcome.WRONG, parsed=answer[:200],
                               detail="" if correct else f"reasoning-gym score {value:.3g}")

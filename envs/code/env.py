"""`humaneval` and `mbpp`: write a Python function; its tests run in reasongym's sandbox.

- Program: the last fenced code block (```python ... ```) of the last `<answer>` block, or the whole
  answer block when it has no fence. A HumanEval program without `def <entry point>` is read as a
  completion of the prompt (the prompt is put in front). Model text is only parsed with `ast`
  (a syntax check) in this process; it runs only in the sandbox.
- Verdicts: every test must report, and call tests are compared here, never in the sandbox
  (envs/code/tests.py). `correct` is 1 when every test passes, `fraction` the share that passed.
  A program that runs past its limit is wrong; a failure of the sandbox itself is Outcome.ERROR.
- Time limit per task: the reference solution's own runtime x 10, at least `min_timeout`
  (measured once per task in the sandbox, cached), at most `max_timeout`.
"""

from __future__ import annotations

import ast
import os
import re
from typing import Any, ClassVar

from envs.code.plus import RELEASES, expected_tests, input_calls, read_release
from envs.code.tests import defined_functions, humaneval_tests, mbpp_tests
from envs.datasets_io import DataFiles
from reasongym.env import Env
from reasongym.errors import DatasetUnavailable
from reasongym.sandbox import Sandbox, Test
from reasongym.templates import R1_SYSTEM, PromptTemplate
from reasongym.types import Outcome, Score, Task

HERE = os.path.dirname(__file__)
MAX_PROGRAM_CHARS = 20_000
_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)
_USER = {
    "humaneval": "Complete this Python function. Give the whole function in a ```python code block inside "
                 "<answer> </answer>.\n\n```python\n{prompt}```",
    "mbpp": "{prompt}\nYour function must pass this test:\n```python\n{example}\n```\nGive the code in a "
            "```python code block inside <answer> </answer>.",
}
_USER["humaneval-plus"], _USER["mbpp-plus"] = _USER["humaneval"], _USER["mbpp"]
DATASETS = {
    "humaneval": {"hub": "openai/openai_humaneval", "config": None, "splits": ("test",),
                  "columns": ("task_id", "prompt", "canonical_solution", "test", "entry_point"),
                  "sample": os.path.join(HERE, "sample_humaneval.jsonl")},
    "mbpp": {"hub": "google-research-datasets/mbpp", "config": "sanitized", "splits": ("train", "test", "validation"),
             "columns": ("task_id", "code", "test_list"), "sample": os.path.join(HERE, "sample_mbpp.json")},
    # EvalPlus: read from its release files (envs/code/plus.py)
    "humaneval-plus": {"splits": ("test",), "sample": os.path.join(HERE, "sample_humaneval_plus.jsonl")},
    "mbpp-plus": {"splits": ("test",), "sample": os.path.join(HERE, "sample_mbpp_plus.jsonl")},
}
# MBPP's README: task ids 11-510 are the test split, 511-600 validation, 601-974 train (1-10 few-shot prompts)
MBPP_SPLIT_OF_ID = (("test", 11, 510), ("validation", 511, 600), ("train", 601, 10_000))


def extract_program(answer: str) -> str | None:
    """The answer's one fenced code block, or the whole answer when it has none; None for several blocks
    (several programs in one answer are candidates, not an answer)."""
    blocks = _FENCE.findall(answer)
    if len(blocks) > 1:
        return None
    return (blocks[0] if blocks else answer).strip("\n")


class CodeEnv(Env):
    reward_modes: ClassVar[dict[str, dict[str, float]]] = {
        "default": {"format": 0.1, "correct": 0.9},
        "fraction": {"format": 0.1, "fraction": 0.9},
        "accuracy": {"correct": 1.0},
    }
    cheap_verifier = False  # a sandbox run per completion: the engine's pool runs them in parallel
    score_timeout = 60.0
    invariances = ("trailing_text",)
    probes = ("hostile_programs",)
    probe_opt_outs: ClassVar[dict[str, str]] = {
        "repeated_gold": "a correct program written out twice defines the same function again: still correct code",
    }

    def __init__(self, dataset: str = "humaneval", source: str = "hub", data_files: DataFiles | None = None,
                 subset: str = "sanitized", min_timeout: float = 3.0, max_timeout: float = 20.0, memory_mb: int = 2048,
                 sandbox_url: str | None = None, plus_tests: int = 200, **kwargs: Any) -> None:
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
        if subset not in ("sanitized", "full"):
            raise ValueError(f"subset must be 'sanitized' or 'full', got {subset!r}")
        self.templates = {"r1": PromptTemplate("r1", "chat", system=R1_SYSTEM, user=_USER[dataset])}
        self.default_template = "r1"
        super().__init__(**kwargs)
        self.dataset, self.subset = dataset, subset
        self.plus_tests = int(plus_tests)  # EvalPlus sets: plus inputs used per task, after every base input
        self.min_timeout, self.max_timeout, self.memory_mb = float(min_timeout), float(max_timeout), memory_mb
        # a SandboxFusion-compatible service runs the programs instead of the local sandbox
        self.sandbox_url = sandbox_url or os.environ.get("REASONGYM_SANDBOX_URL") or None
        self._rows = self._load(dataset, source, data_files, subset)
        self.use_loaded_splits(DATASETS[dataset]["splits"], list(self._rows))
        self._sandbox: Sandbox | None = None
        self._limits: dict[str, float] = {}
        self._tests: dict[str, tuple[str, list[Test], str | None]] = {}

    # ----- data ---------------------------------------------------------------------------------
    @staticmethod
    def _load(dataset: str, source: str, data_files: DataFiles | None, subset: str) -> dict[str, list[dict]]:
        from envs.datasets_io import files_for_source, load_splits

        info = DATASETS[dataset]
        data_files = files_for_source(source, data_files, [info["sample"]])
        if dataset in RELEASES:
            return CodeEnv._load_release(dataset, data_files)
        columns = info["columns"] if subset == "sanitized" else ("task_id", "code", "test_list")
        splits = ("train", "test", "validation") if dataset == "mbpp" else info["splits"]
        config = info["config"] if dataset == "humaneval" else subset
        if data_files is not None and dataset == "mbpp" and not isinstance(data_files, dict):
            rows = [row for group in load_splits(info["hub"], data_files={"train": data_files}, columns=columns,
                                                 splits=("train",)).values() for row in group]
            by_split: dict[str, list[dict]] = {}
            for row in rows:  # the official files hold every task: split by task id, as MBPP's README says
                split = next((s for s, lo, hi in MBPP_SPLIT_OF_ID if lo <= int(row["task_id"]) <= hi), None)
                if split is not None:
                    by_split.setdefault(split, []).append(row)
            loaded = by_split
        else:
            loaded = load_splits(info["hub"], data_files=data_files, config=config, columns=columns, splits=splits)
        for rows in loaded.values():
            for row in rows:
                if not (row.get("test") if dataset == "humaneval" else row.get("test_list")):
                    raise ValueError(f"{dataset} row {row.get('task_id')!r} has no tests: refused")
        return loaded

    @staticmethod
    def _load_release(dataset: str, data_files: DataFiles | None) -> dict[str, list[dict]]:
        if data_files is None:
            raise DatasetUnavailable(f"{dataset} reads the EvalPlus release file ({RELEASES[dataset]}, from EvalPlus's "
                                     f"GitHub releases): pass data_files='path/to/{RELEASES[dataset]}', or "
                                     "source='sample' for the small built-in sample")
        if isinstance(data_files, dict):
            unknown = sorted(set(data_files) - {"test"})
            if unknown:
                raise ValueError(f"{dataset} has one split, test; data_files named {unknown}")
            data_files = data_files["test"]
        paths = [data_files] if isinstance(data_files, str) else list(data_files)
        return {"test": [row for path in paths for row in read_release(str(path))]}

    def _task_count(self, split: str) -> int | None:
        return len(self._rows[split])

    def _task_at(self, split: str, index: int, seed: int) -> Task:
        row = self._rows[split][index]
        if self.dataset in RELEASES:
            return self._plus_task(row)
        if self.dataset == "humaneval":
            question = {"prompt": row["prompt"]}
            answer = row["prompt"] + row["canonical_solution"]
            meta = {"test": row["test"], "entry_point": row["entry_point"], "prompt": row["prompt"]}
        else:
            tests = list(row["test_list"]) + (list(row.get("challenge_test_list") or []) if self.subset == "full" else [])
            setup = "\n".join(row.get("test_imports") or []) + "\n" + (row.get("test_setup_code") or "")
            question = {"prompt": row.get("prompt") or row.get("text") or "", "example": tests[0]}
            answer = row["code"].replace("\r\n", "\n")
            meta = {"test_list": tests, "setup": setup.strip()}
        return Task(id=f"{self.dataset}:{row['task_id']}", question=question, answer=answer, metadata=meta)

    def _plus_task(self, row: dict[str, Any]) -> Task:
        entry, solution = row["entry_point"], row["canonical_solution"]
        humaneval = self.dataset == "humaneval-plus"
        program = row["prompt"] + solution if humaneval and f"def {entry}" not in solution else solution
        calls = input_calls(row, self.plus_tests)
        example = row.get("assertion") or calls[0].replace("candidate(", f"{entry}(", 1)
        question = {"prompt": row["prompt"]} if humaneval else {"prompt": row["prompt"], "example": example}
        meta = {"entry_point": entry, "prompt": row["prompt"] if humaneval else "", "calls": calls,
                "atol": row.get("atol") or 0}
        return Task(id=f"{self.dataset}:{row['task_id']}", question=question, answer=program, metadata=meta)

    # ----- scoring ------------------------------------------------------------------------------
    def tests_for(self, task: Task) -> tuple[str, list[Test], str | None]:
        """(prelude, tests, entry point) of a task, read from the dataset's test code once per task."""
        if task.id not in self._tests:
            if self.dataset in RELEASES:
                entry = task.metadata["entry_point"]
                tests = expected_tests(self.sandbox(), str(task.answer), entry, list(task.metadata["calls"]),
                                       task.metadata["atol"], self.max_timeout)
                self._tests[task.id] = ("", tests, entry)
            elif self.dataset == "humaneval":
                prelude, tests = humaneval_tests(task.metadata["test"])
                self._tests[task.id] = (prelude, tests, task.metadata["entry_point"])
            else:
                self._tests[task.id] = (task.metadata.get("setup", ""), mbpp_tests(
                    task.metadata["test_list"], defined_functions(str(task.answer))), None)
        return self._tests[task.id]

    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            if self.sandbox_url:
                from reasongym.sandbox.remote import RemoteSandbox

                self._sandbox = RemoteSandbox(self.sandbox_url, timeout=self.max_timeout, memory_mb=self.memory_mb)
            else:
                self._sandbox = Sandbox(timeout=self.max_timeout, memory_mb=self.memory_mb)
        return self._sandbox

    def time_limit(self, task: Task) -> float:
        """10x the reference solution's runtime in the sandbox, within [min_timeout, max_timeout]; cached."""
        if task.id not in self._limits:
            prelude, tests, entry = self.tests_for(task)
            result = self.sandbox().run(str(task.answer), tests, entry, prelude, timeout=self.max_timeout)
            self._limits[task.id] = min(self.max_timeout, max(self.min_timeout, 10 * result.seconds))
        return self._limits[task.id]

    def reference_completion(self, task: Task) -> str | None:
        return f"<think>\nThe function follows.\n</think>\n<answer>\n```python\n{task.answer}\n```\n</answer>"


    def wrong_answers(self, task: Task) -> list[str]:
        return [f"\n```python\n{wrong_twin(str(task.answer))}\n```\n"]

    def near_miss(self, task: Task) -> str | None:
        return f"<think>\nA guess.\n</think>\n<answer>\n```python\n{wrong_twin(str(task.answer))}\n```\n</answer>"

    def verify(self, text: str, task: Task) -> Score:
        fmt, answer = self.answer_block(text, "last")
        if isinstance(answer, Score):
            return answer
        program = extract_program(answer)
        if program is None:
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, detail="several code blocks: give one program")
        if len(program) > MAX_PROGRAM_CHARS:
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE,
                                   detail=f"program longer than {MAX_PROGRAM_CHARS} characters")
        prelude, tests, entry = self.tests_for(task)
        if entry and task.metadata.get("prompt") and not re.search(rf"\bdef\s+{re.escape(entry)}\s*\(", program):
            program = task.metadata["prompt"] + program  # a completion of the prompt's function body
        try:
            ast.parse(program)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            return self.make_score({"format": fmt}, Outcome.UNPARSEABLE, parsed=program[:200],
                                   detail=f"not valid Python ({type(exc).__name__})")
        result = self.sandbox().run(program, tests, entry, prelude, timeout=self.time_limit(task))
        parsed = {"tests": [t.passed for t in result.tests], "isolation": result.isolation}
        if result.status == "error":
            return self.make_score({"format": fmt}, Outcome.ERROR, parsed=parsed, detail=result.detail[:300])
        correct = result.passed
        detail = "" if correct else ("ran past its time limit" if result.status == "timeout" else next(
            (t.detail for t in result.tests if not t.passed), result.detail))[:300]
        return self.make_score({"format": fmt, "correct": float(correct), "fraction": result.fraction},
                               Outcome.CORRECT if correct else Outcome.WRONG, parsed=parsed, detail=detail)


def wrong_twin(code: str) -> str:
    """The reference solution with every `return X` turned into `return None`-ish nonsense: a wrong answer
    that still runs (for near misses and the benchmark's wrong twins)."""
    return re.sub(r"\breturn\b(.*)", lambda m: "return [None]" if m.group(1).strip() else "return", code)

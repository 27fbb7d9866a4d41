"""Evaluation suites: several benchmarks in one table (`python -m trainers.evaluate --suite x-r1`).

A suite is a YAML file of rows (recipes/suites/*.yaml ship with the package; any path works too).
Each row is one env evaluated on one split; the results table gives accuracy (pass@1 for code) with
the number of tasks and samples and a 95% Wilson interval, and says which rows ran on a built-in
sample because the full data was unreachable. `--compare BEFORE AFTER` on two suite folders pairs
every row task by task (trainers.parts.compare) and tests each with the exact sign test.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table

from trainers.common.recipes import RecipeError, load_recipe, recipe_path
from trainers.common.stats import wilson_interval
from trainers.parts.compare import Comparison, compare

RESULTS = "suite.json"
ROW_KEYS = ("name", "env", "env_kwargs", "split", "n", "samples", "k", "max_completion_length", "metric", "extra")


@dataclass(frozen=True)
class SuiteRow:
    name: str
    env: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    split: str = "test"
    n: int = 500
    samples: int = 1
    k: str = "1"
    max_completion_length: int | None = None
    metric: str = "accuracy"
    extra: str | None = None

    def ks(self) -> list[int]:
        return [int(k) for k in str(self.k).split(",") if k.strip()]

    @property
    def folder(self) -> str:
        """The row's sub-folder of the suite's output dir (its report.json and samples.jsonl)."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


@dataclass(frozen=True)
class Suite:
    name: str
    rows: tuple[SuiteRow, ...]
    source: str


def shipped_suites() -> list[str]:
    folder = recipe_path("suites")
    return sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".yaml"))


def load_suite(name_or_path: str) -> Suite:
    """A shipped suite by name (x-r1) or a YAML file of your own."""
    path = name_or_path if os.path.isfile(name_or_path) else recipe_path("suites", f"{name_or_path}.yaml")
    if not os.path.isfile(path):
        raise RecipeError(f"no suite {name_or_path!r}: pass a YAML file or one of {', '.join(shipped_suites())}")
    data = load_recipe(path)
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows:
        raise RecipeError(f"{path}: a suite needs a non-empty list `rows` (each with at least name and env)")
    parsed = []
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - set(ROW_KEYS)) if isinstance(row, dict) else ["(not a mapping)"]
        if unknown or not row.get("name") or not row.get("env"):
            raise RecipeError(f"{path}: row {i + 1} needs name and env, and takes only {', '.join(ROW_KEYS)}"
                              + (f" (got {', '.join(unknown)})" if unknown else ""))
        parsed.append(SuiteRow(**{k: v for k, v in row.items() if v is not None}))
        check_row(path, parsed[-1])
    return Suite(str(data.get("name") or os.path.basename(path)[:-5]), tuple(parsed), path)


def check_row(path: str, row: SuiteRow) -> None:
    """Numbers a row needs, checked when the suite loads (not halfway through the table)."""
    try:
        ks = row.ks()
    except ValueError:
        raise RecipeError(f"{path}: row {row.name}: k must be comma-separated integers, got {row.k!r}") from None
    if int(row.n) < 1 or int(row.samples) < 1 or not ks or min(ks) < 1 or max(ks) > int(row.samples):
        raise RecipeError(f"{path}: row {row.name}: needs n >= 1, samples >= 1 and every k in 1..samples "
                          f"(n={row.n}, samples={row.samples}, k={row.k})")


def check_suite(suite: Suite) -> None:
    """Every row's env is registered, before any model loads; a missing one names the extra to install."""
    from reasongym import registry

    for row in suite.rows:
        try:
            registry.spec(row.env)
        except registry.UnknownEnvError as exc:
            hint = f"pip install 'reasongym[{row.extra}]'" if row.extra else str(exc)
            raise RecipeError(f"suite {suite.name}, row {row.name}: env {row.env!r} is not installed: {hint}") from None


def row_result(row: SuiteRow, report: Any, on_sample: bool) -> dict[str, Any]:
    correct = round(report.accuracy * report.tasks * report.samples_per_task)
    low, high = wilson_interval(correct, report.tasks * report.samples_per_task)
    return {"name": row.name, "env": row.env, "metric": row.metric, "value": report.accuracy,
            "tasks": report.tasks, "samples": report.samples_per_task, "ci95": [low, high],
            "data": "sample" if on_sample else "full", "folder": row.folder, "pass_at": report.pass_at}


def write_results(out_dir: str, suite: Suite, model: str, results: list[dict[str, Any]]) -> str:
    path = os.path.join(out_dir, RESULTS)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"suite": suite.name, "source": suite.source, "model": model, "rows": results,
                   "rows_spec": [asdict(r) for r in suite.rows]}, f, indent=2)
    return path


def results_table(suite_name: str, model: str, results: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{suite_name}: {model}")
    for column, justify in (("benchmark", "left"), ("metric", "left"), ("score", "right"), ("95% CI", "right"),
                            ("tasks x samples", "right"), ("data", "left")):
        table.add_column(column, justify=justify)
    for r in results:
        table.add_row(r["name"], r["metric"], f"{r['value']:.3f}", f"{r['ci95'][0]:.3f}-{r['ci95'][1]:.3f}",
                      f"{r['tasks']} x {r['samples']}", r["data"])
    return table


def is_suite_folder(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, RESULTS))


def compare_suites(before_dir: str, after_dir: str) -> list[tuple[str, Comparison]]:
    """Every row both suite runs have, paired task by task."""
    with open(os.path.join(before_dir, RESULTS), encoding="utf-8") as f:
        before = json.load(f)
    with open(os.path.join(after_dir, RESULTS), encoding="utf-8") as f:
        after = {r["name"]: r for r in json.load(f)["rows"]}
    pairs = [(r["name"], r["folder"]) for r in before["rows"] if r["name"] in after]
    if not pairs:
        raise RecipeError(f"{before_dir!r} and {after_dir!r} share no benchmark: compare two runs of one suite")
    return [(name, compare(os.path.join(before_dir, folder), os.path.join(after_dir, after[name]["folder"])))
            for name, folder in pairs]


def comparison_table(pairs: list[tuple[str, Comparison]], before_dir: str, after_dir: str) -> Table:
    table = Table(title=f"before ({before_dir}) -> after ({after_dir}), paired by task, one-sided sign test")
    for column in ("benchmark", "tasks", "before", "after", "change", "better / worse", "p"):
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for name, c in pairs:
        table.add_row(name, str(c.tasks), f"{c.before:.3f}", f"{c.after:.3f}", f"{c.after - c.before:+.3f}",
                      f"{c.test.improved} / {c.test.worsened}", f"{c.test.p_value:.3g}")
    return table

"""`trainers.evaluate --suite`: the seed's results table in one command, offline on the built-in samples."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_in_process
from trainers.common.recipes import RecipeError
from trainers.common.stats import wilson_interval
from trainers.parts.suite import check_suite, load_suite

X_R1 = ["GSM8K", "MATH-500", "HumanEval", "MBPP", "MMLU", "BBH"]


def test_the_shipped_x_r1_suite_names_the_six_benchmarks_and_their_envs_exist():
    suite = load_suite("x-r1")
    assert [r.name for r in suite.rows] == X_R1
    assert [r.metric for r in suite.rows if r.env in ("humaneval", "mbpp")] == ["pass@1", "pass@1"]
    check_suite(suite)


def test_a_suite_with_a_missing_env_names_the_extra_to_install(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nrows:\n  - {name: Puzzles, env: no-such-env, extra: puzzles}\n")
    with pytest.raises(RecipeError, match=r"row Puzzles: env 'no-such-env' is not installed: pip install 'reasongym\[puzzles\]'"):
        check_suite(load_suite(str(path)))
    path.write_text("name: mine\nrows:\n  - {name: A, env: gsm8k, shots: 5}\n")
    with pytest.raises(RecipeError, match="takes only"):
        load_suite(str(path))
    with pytest.raises(RecipeError, match="no suite 'x-r2'.*x-r1"):
        load_suite("x-r2")
    path.write_text("name: mine\nrows:\n  - {name: A, env: gsm8k, samples: 2, k: '1,4'}\n")
    with pytest.raises(RecipeError, match="row A: needs .* every k in 1..samples"):
        load_suite(str(path))


def test_wilson_interval_hand_checked():
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))


@pytest.mark.slow
def test_suite_prints_the_table_offline_and_compares_two_runs(tiny_model, tmp_path):
    runs = []
    for name in ("before", "after"):
        out = tmp_path / name
        proc = run_in_process(["trainers.evaluate", "--suite", "x-r1", "--model", tiny_model, "--n", "3",
                               "--max_completion_length", "8", "--output_dir", str(out)], tmp_path)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        runs.append(json.loads((out / "suite.json").read_text()))
    assert "x-r1" in proc.stdout and "not a benchmark figure" in proc.stdout
    rows = runs[0]["rows"]
    assert [r["name"] for r in rows] == X_R1
    for row in rows:  # offline: every row ran on its built-in sample, and says so
        assert row["data"] == "sample" and row["tasks"] == 3 and row["samples"] == 1
        assert 0.0 <= row["ci95"][0] <= row["value"] <= row["ci95"][1] <= 1.0
        assert (tmp_path / "before" / row["folder"] / "samples.jsonl").exists()
    compared = run_in_process(["trainers.evaluate", "--compare", str(tmp_path / "before"), str(tmp_path / "after"),
                               "--json", str(tmp_path / "cmp.json")], tmp_path)
    assert compared.returncode == 0, compared.stdout[-3000:]
    result = json.loads((tmp_path / "cmp.json").read_text())
    assert list(result) == X_R1
    for name in X_R1:  # the same greedy model twice: no task changed
        assert result[name]["tasks"] == 3 and result[name]["test"]["improved"] == result[name]["test"]["worsened"] == 0


def test_suite_refuses_per_row_settings_on_the_command_line(tiny_model, tmp_path):
    proc = run_in_process(["trainers.evaluate", "--suite", "x-r1", "--model", tiny_model, "--env", "gsm8k"], tmp_path)
    assert proc.returncode == 2 and "set per row" in proc.stdout
    proc = run_in_process(["trainers.evaluate", "--suite", "x-r1"], tmp_path)
    assert proc.returncode == 2 and "--suite needs --model" in proc.stdout

"""Curriculum schedulers on simulated success streams; a GRPO run with --curriculum adaptive;
plot / report / contamination on a run directory the test produces."""

from __future__ import annotations

import json
import os
import random

import pytest

import reasongym as rg
from reasongym.cli import main as rg_main
from reasongym.contamination import contamination
from reasongym.curriculum import AdaptiveCurriculum, Curriculum, LinearCurriculum, make_curriculum
from tests.conftest import run_in_process


def feed(curriculum: AdaptiveCurriculum, level, rate: float, n: int, rng: random.Random) -> None:
    for _ in range(n // 8):
        curriculum.update(level, [rng.random() < rate for _ in range(8)])


def test_adaptive_moves_up_when_mastered_and_down_when_the_level_below_collapses():
    rng = random.Random(0)
    cur = AdaptiveCurriculum([2, 3, 4], band=(0.2, 0.8), window=64, min_samples=32)
    assert cur.weights() == {2: 1.0, 3: 0.0, 4: 0.0}  # starts at the easiest level
    feed(cur, 2, 0.5, 64, rng)
    assert cur.frontier == 0  # in the band: stay and keep sampling it
    feed(cur, 2, 0.95, 128, rng)
    assert cur.frontier == 1  # mastered: move up
    weights = cur.weights()
    assert weights[3] > weights[2] > 0 and weights[4] == 0  # the new level dominates, the old one is replayed
    feed(cur, 3, 0.97, 128, rng)
    assert cur.frontier == 2
    feed(cur, 3, 0.05, 128, rng)  # the level below the frontier collapses
    assert cur.frontier == 1
    feed(cur, 3, 0.05, 64, rng)
    feed(cur, 2, 0.05, 128, rng)
    assert cur.frontier == 0
    assert cur.state()["frontier"] == "2"


def test_adaptive_too_hard_levels_get_less_weight():
    rng = random.Random(1)
    cur = AdaptiveCurriculum([1, 2], window=64, min_samples=16)
    feed(cur, 1, 1.0, 64, rng)
    assert cur.frontier == 1
    feed(cur, 2, 0.0, 64, rng)
    weights = cur.weights()
    assert weights[2] > weights[1]  # too hard (0.25) still beats mastered replay (0.1)
    with pytest.raises(ValueError):
        AdaptiveCurriculum([1], band=(0.9, 0.1))


def test_linear_and_fixed_schedules():
    lin = LinearCurriculum([3, 4, 5], total_steps=100)
    assert lin.weights()[3] == 1.0
    lin.set_step(50)
    assert lin.weights()[4] == 1.0
    lin.set_step(75)
    assert lin.weights()[4] == pytest.approx(0.5) and lin.weights()[5] == pytest.approx(0.5)
    lin.set_step(500)
    assert lin.weights()[5] == 1.0
    fixed = make_curriculum("fixed", [3, 4], shares={3: 1.0, 4: 3.0})
    assert fixed.weights() == {3: 0.25, 4: 0.75}
    rng = random.Random(0)
    draws = [fixed.sample(rng) for _ in range(4000)]
    assert 0.7 < draws.count(4) / 4000 < 0.8
    with pytest.raises(ValueError):
        make_curriculum("spiral", [1])
    assert isinstance(make_curriculum("linear", [1, 2], total_steps=5), Curriculum)


@pytest.fixture(scope="module")
def curriculum_run(tiny_model, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("cur") / "run"
    cmd = ["trainers.grpo", "--env", "countdown", "--env-kwargs",
           json.dumps({"counts": [2, 3, 4], "num_range": [1, 9], "target_range": [1, 30]}), "--model", tiny_model,
           "--output-dir", str(out), "--curriculum", "adaptive", "--curriculum-window", "8", "--max_steps", "3",
           "--per_device_train_batch_size", "8", "--num_generations", "4", "--max_completion_length", "16",
           "--gradient_checkpointing", "false", "--train-size", "60", "--eval-size", "4", "--eval_steps", "3"]
    proc = run_in_process(cmd, out.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "curriculum adaptive over levels [2, 3, 4]" in proc.stdout
    return str(out)


@pytest.mark.slow
def test_grpo_with_adaptive_curriculum_logs_level_metrics(curriculum_run):
    records = [json.loads(line) for line in open(os.path.join(curriculum_run, "metrics.jsonl"))]
    train = [r for r in records if "reward" in r]
    assert len(train) == 3
    last = train[-1]
    for key in ("levels/2/accuracy", "levels/3/frac_zero_std", "levels/4/share", "curriculum/weight/2",
                "curriculum/frontier_level", "verifier/latency_p99_ms", "verifier/timeouts",
                "completions/mean_length_wrong"):
        assert key in last, key
    assert last["curriculum/weight/2"] == 1.0 and last["levels/2/share"] == 1.0  # adaptive starts at the easiest
    samples = [json.loads(line) for line in open(os.path.join(curriculum_run, "samples.jsonl"))]
    train_ids = [s["task_id"] for s in samples if s["split"] == "train"]
    for i in range(0, len(train_ids), 4):  # every group of num_generations saw one task
        assert len(set(train_ids[i : i + 4])) == 1


@pytest.mark.slow
def test_plot_and_report_on_a_run(curriculum_run, capsys, tmp_path):
    assert rg_main(["plot", curriculum_run, "--out", str(tmp_path / "plots")]) == 0
    written = sorted(os.listdir(tmp_path / "plots"))
    assert {"reward.png", "levels.png", "curriculum.png", "length.png"} <= set(written)
    assert rg_main(["report", curriculum_run, "--json"]) == 0
    out = capsys.readouterr().out
    assert "rewards/correct/mean" in out and "first 20% of steps" in out
    assert rg_main(["report", str(tmp_path / "nothing-here")]) == 2


def test_contamination_procedural_and_dataset(tmp_path, capsys):
    report = contamination(rg.make("countdown-3to4"), n=3000)
    assert report["overlap"]["train/test"]["shared_unique_tasks"] == 0
    assert 0 <= report["splits"]["train"]["duplicate_rate"] < 0.05
    rows = [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"} for i in range(10)]
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows + rows[:2]))
    test.write_text("".join(json.dumps(r) + "\n" for r in rows[8:] + [{**rows[0], "question": "what IS 0 +  1?"}]))
    leaky = rg.make("gsm8k", data_files={"train": str(train), "test": str(test)})
    report = contamination(leaky)
    assert report["splits"]["train"]["tasks"] == 12 and report["splits"]["train"]["unique"] == 10
    assert report["overlap"]["train/test"]["shared_unique_tasks"] == 3  # case and spaces are folded
    assert rg_main(["contamination", "gsm8k", "--env-kwargs",
                    json.dumps({"data_files": {"train": str(train), "test": str(test)}})]) == 1
    assert "3 shared tasks" in capsys.readouterr().out
    assert rg_main(["contamination", "countdown-3", "-n", "500"]) == 0

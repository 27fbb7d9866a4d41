"""The TRL adapter without a trainer: dataset rows, reward functions, metrics, samples."""

from __future__ import annotations

import json

import pytest

import reasongym as rg
from reasongym.adapters.trl import RewardAdapter, build_dataset, make_reward_funcs, render_prompt
from reasongym.scoring import ScoringEngine


class ChatTemplateTokenizer:
    """Just enough tokenizer for render_prompt: a ChatML template with continue_final_message."""

    chat_template = "chatml"

    def apply_chat_template(self, messages, tokenize=False, continue_final_message=False):
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text[: -len("<|im_end|>\n")] if continue_final_message else text


def test_dataset_rows_and_prefill_rendering():
    env = rg.make("countdown-3to4")
    with pytest.raises(ValueError, match="pre-fills"):
        build_dataset(env, n=2)
    ds = build_dataset(env, n=3, tokenizer=ChatTemplateTokenizer())
    assert ds.column_names == ["prompt", "task", "task_id", "split", "difficulty"]
    row = ds[0]
    assert row["prompt"].endswith("<|im_start|>assistant\nLet me solve this step by step.\n<think>")
    assert rg.Task.from_json(row["task"]).id == row["task_id"]
    base = rg.make("countdown-3to4", template="base")
    assert render_prompt(base, base.tasks(n=1)[0]).endswith("Assistant: Let me solve this step by step.\n<think>")
    gsm = rg.make("gsm8k", source="sample")
    assert isinstance(render_prompt(gsm, gsm.tasks(n=1)[0]), list)  # no pre-fill: TRL's chat path


def test_reward_functions_score_once_and_log(tmp_path):
    env = rg.make("countdown-3to4")
    adapter = RewardAdapter(env, engine=ScoringEngine(0), log_dir=str(tmp_path), levels=[3, 4])
    funcs = adapter.reward_funcs()
    assert [f.__name__ for f in funcs] == ["format", "correct"] and adapter.weights == [0.1, 0.9]
    tasks = env.tasks(n=2)
    completions = [[{"role": "assistant", "content": env.reference_completion(tasks[0])}],
                   [{"role": "assistant", "content": "Wait, I made a mistake"}]]
    logged: dict[str, float] = {}
    kwargs = dict(prompts=["p0", "p1"], completions=completions, task=[t.to_json() for t in tasks],
                  split=["train", "train"], log_metric=logged.__setitem__, completion_ids=[[1, 2, 3], [4]])
    calls = []
    original = adapter.engine.score
    adapter.engine.score = lambda *a: calls.append(1) or original(*a)
    assert funcs[0](**kwargs) == [1.0, 0.0]
    assert funcs[1](**kwargs) == [1.0, 0.0]
    assert len(calls) == 1  # scored once, served to both components
    assert logged["outcomes/correct"] == 0.5 and logged["outcomes/unparseable"] == 0.5
    assert logged["aha_rate"] == 0.5 and logged["completions/mean_length_correct"] == 3.0
    assert f"levels/{tasks[0].difficulty}/accuracy" in logged
    rows = [json.loads(line) for line in open(tmp_path / "samples.jsonl")]
    assert [r["outcome"] for r in rows] == ["correct", "unparseable"]
    assert len(open(tmp_path / "successes.jsonl").read().splitlines()) == 1
    funcs2, weights = make_reward_funcs(rg.make("countdown-3to4", reward_mode="mini-r1"))
    assert weights == [1.0, 1.0]

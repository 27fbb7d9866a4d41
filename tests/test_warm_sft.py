"""The warm start's own SFT loop against TRL's SFTTrainer (`trainers.common.sft`) on the same rows:
the same tokens and loss mask, and the same losses step after step."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

import reasongym as rg
from trainers.common.models import load_tokenizer
from trainers.policies import default_policy as policy
from trainers.policies.tiny import build_tiny_model, build_tokenizer, task_corpus
from trainers.policies.warm_sft import IGNORE, SFTSchedule, batch_order, tokenize_rows, warm_sft

STEPS = 4


@pytest.fixture(scope="module")
def model_and_rows(tmp_path_factory):
    env = rg.make("countdown-3to4")
    pairs = policy.sft_pairs("countdown-3to4", {}, replace(policy.PRESETS["ci"], sft_tasks=24, search_share=0.5))
    corpus = task_corpus(env, [task for task, _ in pairs])
    model_dir = str(tmp_path_factory.mktemp("base"))
    build_tiny_model(model_dir, corpus, tokenizer=build_tokenizer(corpus, 512))
    tokenizer = load_tokenizer(model_dir, padding_side=None)
    rows = [{"prompt": policy.prompt_text(env, task, tokenizer), "completion": completion} for task, completion in pairs]
    return model_dir, rows


def test_rows_are_tokenized_and_masked_as_sft_trainer_does(model_and_rows, tmp_path):
    import datasets
    from trl import SFTConfig, SFTTrainer

    model_dir, rows = model_and_rows
    tokenizer = load_tokenizer(model_dir, padding_side=None)
    # long enough for every prompt, too short for some completions
    cut = max(len(tokenizer(row["prompt"])["input_ids"]) for row in rows) + 4
    trainer = SFTTrainer(model=model_dir, processing_class=tokenizer, train_dataset=datasets.Dataset.from_list(rows),
                         args=SFTConfig(output_dir=str(tmp_path), max_length=cut, use_cpu=True, report_to="none"))
    ids, starts = tokenize_rows(rows, tokenizer, max_length=cut)
    theirs = trainer.train_dataset
    assert [list(x) for x in theirs["input_ids"]] == ids
    assert any(len(x) == cut for x in ids)  # some rows were cut to max_length
    for labels, row, start in zip(theirs["labels"], ids, starts):
        assert [i for i, label in enumerate(labels) if label != IGNORE] == list(range(start, len(row)))


def test_losses_match_sft_trainer_step_by_step(model_and_rows, tmp_path):
    from trainers.common.sft import sft

    model_dir, rows = model_and_rows
    # one batch holds every row, so the two samplers' orders cannot differ
    schedule = SFTSchedule(steps=STEPS, batch_size=len(rows), learning_rate=3e-3, warmup_steps=1, logging_steps=1)
    ours_dir, theirs_dir = tmp_path / "ours", tmp_path / "theirs"
    shutil.copytree(model_dir, theirs_dir)
    ours = warm_sft(model_dir, rows, str(ours_dir), schedule)
    trainer_losses: dict[int, float] = {}
    sft(str(theirs_dir), rows, str(theirs_dir), {
        "max_steps": STEPS, "per_device_train_batch_size": len(rows), "learning_rate": 3e-3,
        "lr_scheduler_type": "cosine", "warmup_steps": 1, "weight_decay": 0.0, "logging_steps": 1, "seed": 0,
        "max_length": 512}, on_log=lambda step, logs: trainer_losses.__setitem__(step, logs["loss"]))
    assert sorted(ours) == list(range(1, STEPS + 1)) == sorted(trainer_losses)
    assert ours[STEPS] < ours[1]  # it learns
    for step in ours:
        assert ours[step] == pytest.approx(trainer_losses[step], rel=1e-4), step


def test_batches_reshuffle_each_pass_and_cover_every_row():
    batches = batch_order(rows=10, batch_size=4, steps=6, seed=0)
    assert [len(b) for b in batches] == [4, 4, 2, 4, 4, 2]
    first, second = sorted(sum((b.tolist() for b in batches[:3]), [])), sum((b.tolist() for b in batches[3:]), [])
    assert first == list(range(10)) == sorted(second)
    assert [b.tolist() for b in batches[:3]] != [b.tolist() for b in batches[3:]]
    assert [b.tolist() for b in batch_order(10, 4, 6, seed=0)] == [b.tolist() for b in batches]

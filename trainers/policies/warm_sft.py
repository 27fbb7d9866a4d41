"""The warm start's supervised fine-tuning, in one process, without a Trainer's per-step overhead.

The default policy is small (on a GPU, 8 layers x 512), so a step of TRL's SFTTrainer is nearly all
fixed cost: a dataloader and collator in Python, a chunked LM-head loss written for 150k-token
vocabularies, and three host syncs per step for its metrics. Here the rows are tokenized once (the
same way SFTTrainer does: EOS appended, the completion starting where the tokenized prompt and
prompt + completion diverge, the prompt masked out, truncation to `max_length` keeping the start),
held as one padded tensor on the device, and each step indexes a batch from it. The objective, the
optimizer and the schedule are SFTTrainer's defaults as the warm start set them: mean token
cross-entropy over completion tokens, AdamW (betas 0.9/0.999, eps 1e-8, weight decay as given),
gradients clipped to norm 1.0, cosine schedule with linear warm-up, bf16 autocast over float32
weights where asked. tests/test_warm_sft.py checks it against `trainers.common.sft.sft`: the same tokens
and loss mask, and the same loss at every step.

The warm start is built by one process while any others wait (see `default_policy`), so nothing
here is distributed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

IGNORE = -100


@dataclass(frozen=True)
class SFTSchedule:
    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 512
    bf16: bool = False
    seed: int = 0
    logging_steps: int = 10


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def tokenize_rows(rows: list[dict[str, str]], tokenizer: Any, max_length: int) -> tuple[list[list[int]], list[int]]:
    """(token ids of prompt + completion + EOS, number of leading prompt tokens) per row, as SFTTrainer
    tokenizes prompt-completion rows; one batched call to the fast tokenizer for each half."""
    eos = tokenizer.eos_token or ""
    prompts = [row["prompt"] for row in rows]
    full = [row["prompt"] + row["completion"] + ("" if row["completion"].endswith(eos) else eos) for row in rows]
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    starts = [common_prefix(p, f) for p, f in zip(prompt_ids, full_ids)]
    return [ids[:max_length] for ids in full_ids], [min(s, max_length) for s in starts]


def warm_sft(model_dir: str, rows: list[dict[str, str]], out_dir: str, schedule: SFTSchedule,
             description: str = "SFT", console: Any = None,
             on_log: Callable[[int, dict[str, float]], None] | None = None) -> dict[int, float]:
    """Fine-tune the model in `model_dir` on `rows` ({"prompt", "completion"}, loss on the completion)
    and save it (float32) with its tokenizer to `out_dir`. Returns the loss at each logged step, which
    `on_log(step, {"loss": ...})` also sees (as `trainers.common.sft.sft`'s does)."""
    import torch
    from transformers import AutoModelForCausalLM, get_cosine_schedule_with_warmup

    from trainers.common.cuda_attention import avoid_cudnn_attention
    from trainers.common.models import copy_load_hints, load_tokenizer
    from trainers.common.progress import make_progress

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    avoid_cudnn_attention()
    tokenizer = load_tokenizer(model_dir, padding_side=None)
    ids, starts = tokenize_rows(rows, tokenizer, schedule.max_length)
    kept = [i for i, (row, start) in enumerate(zip(ids, starts)) if start < len(row)]  # rows with a completion left
    ids, starts = [ids[i] for i in kept], [starts[i] for i in kept]
    lengths = torch.tensor([len(x) for x in ids])
    width = int(lengths.max())
    tokens = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(ids), width), IGNORE, dtype=torch.long)
    for i, (row, start) in enumerate(zip(ids, starts)):
        tokens[i, :len(row)] = torch.tensor(row)
        labels[i, start:len(row)] = tokens[i, start:len(row)]
    label_counts = (labels[:, 1:] != IGNORE).sum(dim=1)  # tokens each row is scored on (the first is never predicted)
    mask = torch.arange(width)[None, :] < lengths[:, None]
    tokens, labels, mask = tokens.to(device), labels.to(device), mask.to(device)

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)
    model.train()
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule.learning_rate, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=schedule.weight_decay, **fused)
    scheduler = get_cosine_schedule_with_warmup(optimizer, schedule.warmup_steps, schedule.steps)
    order = batch_order(len(ids), schedule.batch_size, schedule.steps, schedule.seed)
    # every step's row indices on the device at once: a copy from pageable host memory per step would
    # wait for the GPU to finish the step before
    on_device = torch.cat(order).to(device).split([len(batch) for batch in order])
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=schedule.bf16 and device.type == "cuda")

    logged: dict[int, float] = {}
    progress = make_progress(console)
    with progress:
        task = progress.add_task(description, total=schedule.steps, info="")
        for step, batch in enumerate(order, 1):
            seq = int(lengths[batch].max())  # host-side: no device sync per step
            index = on_device[step - 1]
            x, y = tokens[index, :seq], labels[index, :seq]
            with autocast:
                logits = model(input_ids=x, attention_mask=mask[index, :seq]).logits
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.size(-1)), y[:, 1:].reshape(-1),
                ignore_index=IGNORE, reduction="sum") / max(1, int(label_counts[batch].sum()))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.max_grad_norm, foreach=True)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if step % schedule.logging_steps == 0 or step == schedule.steps:
                logged[step] = loss.item()  # the loop's only host sync
                progress.update(task, completed=step, info=f"loss {logged[step]:.3f}")
                if on_log is not None:
                    on_log(step, {"loss": logged[step]})
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    copy_load_hints(model_dir, out_dir)
    return logged


def batch_order(rows: int, batch_size: int, steps: int, seed: int) -> list:
    """Row indices of each step's batch: a fresh shuffle per pass over the rows, the last batch of a
    pass short (as a Trainer's sampler without drop_last)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    batches: list = []
    while len(batches) < steps:
        perm = torch.randperm(rows, generator=generator)
        batches += list(perm.split(batch_size))
    return batches[:steps]

"""The fast training path (trainers.parts.fast_training) against TRL's own GRPOTrainer on a tiny model:
the same log-probs, the same loss over an accumulation window, the same gradients.

Tolerance: float32 on CPU, 1e-5 relative to the largest value (summing the same terms in another
order, and matrices of another width, moves the last bits only)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from datasets import Dataset  # noqa: E402

from trainers.parts import fast_training  # noqa: E402

PROMPT_LENGTHS = [6, 4, 5, 6, 3, 6, 2, 5]  # left-padded to 6
COMPLETION_LENGTHS = [12, 3, 7, 1, 12, 5, 9, 2]  # right-padded to 12
TOLERANCE = 1e-5


def _trainer(cls, model, tokenizer, loss_type: str, accumulation: int = 2):
    import tempfile

    from trl import GRPOConfig

    args = GRPOConfig(output_dir=tempfile.mkdtemp(prefix="fast-training-"), use_cpu=True, bf16=False, report_to="none",
                      per_device_train_batch_size=4, gradient_accumulation_steps=accumulation, num_generations=4,
                      max_completion_length=12, gradient_checkpointing=False, loss_type=loss_type, beta=0.04)
    data = Dataset.from_dict({"prompt": ["1 2 3"] * 8})
    trainer = cls(model=model, reward_funcs=lambda completions, **_: [0.0] * len(completions), args=args,
                  train_dataset=data, processing_class=tokenizer)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = accumulation
    trainer.width_bucket = 2  # the tiny batch's widths are a few columns, not the GPU's 128 (odd ends get rounded)
    return trainer


def _batch(vocab: int) -> dict:
    """A generation batch of 8 completions of the lengths above; real advantages, reference log-probs."""
    generator = torch.Generator().manual_seed(0)
    rows = len(COMPLETION_LENGTHS)
    prompt_mask = torch.tensor([[0] * (6 - n) + [1] * n for n in PROMPT_LENGTHS])
    completion_mask = torch.tensor([[1] * n + [0] * (12 - n) for n in COMPLETION_LENGTHS])
    return {
        "prompt_ids": torch.randint(5, vocab, (rows, 6), generator=generator) * prompt_mask,
        "prompt_mask": prompt_mask,
        "completion_ids": torch.randint(5, vocab, (rows, 12), generator=generator) * completion_mask,
        "completion_mask": completion_mask,
        "advantages": torch.randn(rows, generator=generator),
        "ref_per_token_logps": -torch.rand(rows, 12, generator=generator) * 3,
        "num_items_in_batch": completion_mask.sum(),
    }


@pytest.fixture(scope="module")
def policy(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model)


def _window(trainer, micro_batches: list[dict]) -> tuple[float, list]:
    """Loss summed over an accumulation window, and the gradients it leaves."""
    trainer.model.zero_grad()
    total = 0.0
    for inputs in micro_batches:
        loss = trainer.compute_loss(trainer.model, inputs)
        loss.backward()
        total += float(loss)
    return total, [p.grad.clone() for p in trainer.model.parameters() if p.grad is not None]


def _close(a, b) -> bool:
    scale = max(float(a.abs().max()), float(b.abs().max()), 1e-12)
    return float((a - b).abs().max()) <= TOLERANCE * scale


@pytest.mark.parametrize("loss_type", ["dapo", "grpo", "dr_grpo", "bnpo"])
def test_fast_path_gives_trls_loss_and_gradients(policy, loss_type):
    from trl import GRPOTrainer
    from trl.trainer.utils import split_tensor_dict

    model, tokenizer = policy
    plain = _trainer(GRPOTrainer, model, tokenizer, loss_type)
    fast = _trainer(fast_training.trainer_class(), model, tokenizer, loss_type)
    batch = _batch(len(tokenizer))
    grouped, _ = fast_training.groups_by_length(fast.args)
    assert grouped == (loss_type != "bnpo")
    ordered = fast_training.reorder(batch, fast_training.length_order(batch["completion_mask"])) if grouped else batch
    plain_loss, plain_grads = _window(plain, split_tensor_dict(batch, 2))
    fast_loss, fast_grads = _window(fast, split_tensor_dict(ordered, 2))
    assert abs(plain_loss - fast_loss) <= TOLERANCE * max(abs(plain_loss), 1e-6)
    assert len(plain_grads) == len(fast_grads) > 0
    assert all(_close(a, b) for a, b in zip(plain_grads, fast_grads))


def test_grouping_makes_micro_batches_narrower(policy):
    """What the speed comes from: after ordering, each micro-batch's last real column is earlier."""
    from trl.trainer.utils import split_tensor_dict

    batch = _batch(len(policy[1]))
    ordered = fast_training.reorder(batch, fast_training.length_order(batch["completion_mask"]))
    widths = [fast_training.real_width(torch.cat([b["prompt_mask"], b["completion_mask"]], 1), 12)
              for b in split_tensor_dict(ordered, 2)]
    assert widths == [6 + 5, 6 + 12]  # shortest four end at 5 tokens; TRL's shuffled halves both run 18 columns
    mask = torch.cat([ordered["prompt_mask"], ordered["completion_mask"]], 1)[:4]
    assert fast_training.real_width(mask, 12, bucket=4) == 12  # 11 rounded up to a multiple of 4
    assert fast_training.real_width(mask, 12, bucket=64) == 18  # never past the full width
    assert [int(x) for x in ordered["completion_mask"].sum(1)] == sorted(COMPLETION_LENGTHS)
    assert ordered["num_items_in_batch"] is batch["num_items_in_batch"]  # scalars pass through


def test_chunked_scoring_matches_on_every_real_token(policy):
    """The reference/old-policy pass: chunks of 3 rows, in length order, trimmed, put back in row order."""
    from trl import GRPOTrainer

    model, tokenizer = policy
    plain = _trainer(GRPOTrainer, model, tokenizer, "dapo")
    fast = _trainer(fast_training.trainer_class(), model, tokenizer, "dapo")
    batch = _batch(len(tokenizer))
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
    with torch.no_grad():
        want, want_entropy, _ = plain._get_per_token_logps_and_entropies(model, ids, mask, 12, batch_size=3,
                                                                          compute_entropy=True)
        got, got_entropy, _ = fast._get_per_token_logps_and_entropies(model, ids, mask, 12, batch_size=3,
                                                                       compute_entropy=True)
    real = batch["completion_mask"].bool()
    assert got.shape == want.shape == (8, 12)
    assert _close(got[real], want[real]) and _close(got_entropy[real], want_entropy[real])
    assert torch.all(got[~real] == 0)  # trimmed columns come back as zeros, under a zero mask


def test_checkpointing_a_fraction_of_layers_keeps_the_gradients(policy):
    from transformers.modeling_layers import GradientCheckpointingLayer

    model, tokenizer = policy
    fast = _trainer(fast_training.trainer_class(), model, tokenizer, "dapo")
    batch = _batch(len(tokenizer))
    from trl.trainer.utils import split_tensor_dict

    micro = split_tensor_dict(batch, 2)
    _, plain_grads = _window(fast, micro)
    model.gradient_checkpointing_enable()
    try:
        assert fast_training.checkpoint_fraction(model, 0.5) == (1, 2)
        layers = fast_training.decoder_layers(model)
        assert all(isinstance(layer, GradientCheckpointingLayer) for layer in layers)
        assert [layer.gradient_checkpointing for layer in layers] == [True, False]
        _, partial_grads = _window(fast, micro)
    finally:
        model.gradient_checkpointing_disable()
    assert all(_close(a, b) for a, b in zip(plain_grads, partial_grads))
    assert sorted(fast_training.checkpointed_indices(36, 0.5)) == list(range(0, 36, 2))
    assert fast_training.checkpointed_indices(36, 0.0) == set()


def test_grouping_is_refused_where_it_would_change_the_loss():
    from types import SimpleNamespace

    def args(**overrides):
        base = dict(steps_per_generation=4, gradient_accumulation_steps=4, loss_type="dapo", top_entropy_quantile=1.0)
        return SimpleNamespace(**{**base, **overrides})

    assert fast_training.groups_by_length(args()) == (True, "")
    assert "averages per micro-batch" in fast_training.groups_by_length(args(loss_type="bnpo"))[1]
    assert "several optimizer steps" in fast_training.groups_by_length(args(steps_per_generation=8))[1]
    assert "quantile" in fast_training.groups_by_length(args(top_entropy_quantile=0.2))[1]



def test_generation_uses_our_decode_loop_and_falls_back_to_trls(policy):
    """With a static sampler set, the trainer's single-turn generation is ours: greedy, the same tokens
    as TRL's own HF generate path. A sampler that raises costs a warning, and TRL's path takes over."""
    from trainers.rollout.static_sampler import StaticSampler

    model, tokenizer = policy
    trainer = _trainer(fast_training.trainer_class(), model, tokenizer, "dapo")
    trainer.temperature = 0.0
    trainer.generation_config.do_sample = False
    trainer.generation_kwargs["do_sample"] = False
    prompts = [[5, 9, 14, 22], [40, 41], [3, 60, 61, 62, 63, 70]]
    theirs, _ = trainer._generate_single_turn(prompts, None, {}, 1)
    trainer.static_sampler = StaticSampler(32, trainer.eos_token_ids, tokenizer.pad_token_id, compiled=False)
    ours, logprobs = trainer._generate_single_turn(prompts, None, {}, 1)
    assert ours == theirs and logprobs is None

    class Broken(StaticSampler):
        def sample(self, *args, **kwargs):
            raise RuntimeError("no graph for you")

    trainer.static_sampler = Broken(32, trainer.eos_token_ids, tokenizer.pad_token_id, compiled=False)
    with pytest.warns(RuntimeWarning, match="our own decode loop failed"):
        assert trainer._generate_single_turn(prompts, None, {}, 1)[0] == theirs
    assert trainer.static_sampler is None

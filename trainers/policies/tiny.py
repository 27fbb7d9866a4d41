"""Build a small causal LM + BPE tokenizer locally: no hub, seconds on a CPU.

Used by the tests (every trainer runs end to end on one), by the GPU checks, and
as the base of the embedded default policy. The tokenizer is trained on text
from the env itself (prompts and reference completions), so numbers and the
<think>/<answer> tags are cheap to emit.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from reasongym.templates import plain_text
from trainers.common.models import write_load_hints

CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "{% if not (loop.last and m['role'] == 'assistant') %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TINY_LOAD_KWARGS = {"attn_implementation": "eager"}
SPECIAL_TOKENS = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
# Single tokens, but not "special": decoding with skip_special_tokens=True (as TRL does) must keep them.
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]


@dataclass(frozen=True)
class TinySize:
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    vocab_size: int = 512
    max_position_embeddings: int = 1024


def template_phrases(prompts: Sequence[str], min_chars: int = 12) -> list[str]:
    """The fixed text an env's prompts all repeat (system prompt, instructions), as runs of at least
    `min_chars` characters: the runs the first two prompts share, cut at digits and at special/tag tokens
    (numbers keep their own tokens), kept if every other prompt contains them too. A tokenizer holding
    each run as one token reads a countdown prompt in 40 tokens instead of 143: the same text, about
    half the time per training step."""
    if len(prompts) < 2:
        return []
    first, second = prompts[0], prompts[1]
    cut = re.compile(r"\d+|" + "|".join(re.escape(t) for t in SPECIAL_TOKENS + TAG_TOKENS))
    phrases: list[str] = []
    matcher = difflib.SequenceMatcher(None, first, second, autojunk=False)
    for block in matcher.get_matching_blocks():
        for piece in cut.split(first[block.a:block.a + block.size]):
            if len(piece) >= min_chars and piece not in phrases and all(piece in p for p in prompts[2:]):
                phrases.append(piece)
    return phrases


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 512, phrases: Sequence[str] = ()):
    """A byte-level BPE trained on `corpus`, with the tag tokens and `phrases` (see `template_phrases`)
    added as whole, non-special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>", padding_side="left"
    )
    hf.add_tokens(TAG_TOKENS, special_tokens=False)
    if phrases:
        hf.add_tokens(list(phrases), special_tokens=False)
    hf.chat_template = CHATML_TEMPLATE
    return hf


def build_tiny_model(out_dir: str, corpus: Iterable[str], size: TinySize = TinySize(), seed: int = 0,
                     tokenizer: Any = None) -> str:
    """Write a randomly initialised Qwen2 + tokenizer (`tokenizer`, else one trained on `corpus`) to `out_dir`;
    returns the path."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer(corpus, size.vocab_size)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads,
        num_key_value_heads=size.num_key_value_heads,
        max_position_embeddings=size.max_position_embeddings,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    write_load_hints(out_dir, TINY_LOAD_KWARGS)
    return out_dir


def env_corpus(env_id: str, n: int = 200, **env_kwargs) -> list[str]:
    """Prompts and reference completions of `n` tasks, as tokenizer training text."""
    import reasongym as rg

    env = rg.make(env_id, **env_kwargs)
    return task_corpus(env, env.tasks(n=n, seed=0))


def task_corpus(env, tasks) -> list[str]:
    """Each task's prompt text and reference completion (or its answer): what a tokenizer for the env should know."""
    corpus: list[str] = []
    for task in tasks:
        corpus.append(plain_text(env.prompt(task)))
        corpus.append(env.reference_completion(task) or str(task.answer))
    return corpus

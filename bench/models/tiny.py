"""Tiny random-weight models of each supported architecture, for tests (no downloads).

Each comes with a small byte-level BPE tokenizer trained in memory on the project's prompt
vocabulary, with a ChatML chat template, so the whole pipeline runs on it.
"""

from __future__ import annotations

from functools import cache

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    LlamaConfig,
    MistralConfig,
    Phi3Config,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

from bench.data.levels import LEVELS
from bench.data.tasks import TASKS

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
VOCAB_SIZE = 384

_SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "vocab_size": VOCAB_SIZE,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}

TINY_CONFIGS: dict[str, PretrainedConfig] = {
    "tiny-llama": LlamaConfig(**_SHAPE),
    "tiny-mistral": MistralConfig(**_SHAPE, sliding_window=None),
    "tiny-qwen2": Qwen2Config(**_SHAPE),
    "tiny-phi3": Phi3Config(**_SHAPE),
    "tiny-gemma3": Gemma3TextConfig(**_SHAPE, head_dim=16, sliding_window=64),
    "tiny-gpt2": GPT2Config(
        n_embd=64,
        n_layer=2,
        n_head=4,
        n_positions=2048,
        vocab_size=VOCAB_SIZE,
        bos_token_id=1,
        eos_token_id=2,
    ),
}


def _corpus() -> list[str]:
    words = [f"{t.system} {t.request} {t.cue}" for t in TASKS.values()]
    words.append("Subject Question Student's answer feedback next")
    words += [f"{level.value}: {level.definition}" for level in LEVELS]
    return words * 4


@cache
def _tokenizer_object() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer)
    return tokenizer


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh tokenizer (pad 0, bos/start 1, eos 2) with a ChatML template."""
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_tokenizer_object(),
        pad_token="<|pad|>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        padding_side="left",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def tiny_model(alias: str, seed: int = 0) -> PreTrainedModel:
    """Random-weight model of the architecture named by `alias` (a key of TINY_CONFIGS)."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(TINY_CONFIGS[alias])
    return model.eval()

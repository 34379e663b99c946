"""The paper's architectures at their real sizes with random weights: no weights reach these
machines, but shapes, sites, hooks, memory and speed can be checked without them.

Configs follow the published `config.json` of each model (sizes, heads, grouped-query
attention, fused qkv in Phi-3, sliding window); `layers` truncates the depth for machines
that cannot hold the whole model (every layer keeps its real shapes). The tokenizer is the
tiny test tokenizer (its ids are valid in any vocabulary), so prompts are short in tokens.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, MistralConfig, Phi3Config, PretrainedConfig

from bench.errors import ConfigError, UnknownNameError
from bench.models.adapters import adapter_for
from bench.models.loading import LoadedModel
from bench.models.tiny import tiny_tokenizer

FULLSIZE_CONFIGS: dict[str, PretrainedConfig] = {
    # microsoft/Phi-3-mini-4k-instruct
    "phi-3-mini": Phi3Config(
        vocab_size=32064,
        hidden_size=3072,
        intermediate_size=8192,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=4096,
        original_max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        sliding_window=2047,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    ),
    # mistralai/Mistral-7B-Instruct-v0.2
    "mistral-7b": MistralConfig(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=32768,
        rms_norm_eps=1e-5,
        rope_theta=1e6,
        sliding_window=None,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    ),
}


def random_weights(
    arch: str, dtype: torch.dtype, device: str, layers: int | None = None, seed: int = 0
) -> LoadedModel:
    """The architecture `arch` (a key of FULLSIZE_CONFIGS) with random weights in `dtype`."""
    if arch not in FULLSIZE_CONFIGS:
        raise UnknownNameError(
            f"unknown architecture {arch!r}; choose from: {', '.join(FULLSIZE_CONFIGS)}"
        )
    config = FULLSIZE_CONFIGS[arch].__class__.from_dict(FULLSIZE_CONFIGS[arch].to_dict())
    depth = config.num_hidden_layers
    if layers is not None:
        if not 1 <= layers <= depth:
            raise ConfigError(f"{arch} has {depth} layers; --layers must be in 1..{depth}")
        config.num_hidden_layers = layers
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
    fingerprint = f"random:{arch}:layers={config.num_hidden_layers}:seed={seed}:{dtype}"
    tokenizer = tiny_tokenizer()
    return LoadedModel(f"{arch}-random", model, tokenizer, adapter_for(model), fingerprint)

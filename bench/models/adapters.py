"""Per-architecture adapters: where each site lives in an HF causal LM.

Sites: `query(layer)` is the pre-RoPE attention query, `[batch, seq, n_heads*head_dim]`
(for fused projections the first `n_heads*head_dim` channels); `residual(layer)` is the
decoder block's output (the residual stream after the block).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from transformers import PreTrainedModel

from bench.errors import UnknownNameError
from bench.hooks import Site


@dataclass(frozen=True)
class Adapter:
    """Names the sites of one architecture family."""

    model: PreTrainedModel
    blocks_path: str
    """Dotted path from the model to its list of decoder blocks."""
    query_path: str
    """Dotted path from a block to the module whose output holds the query."""
    fused_query: bool = False
    """Whether that module's output also holds keys and values after the query channels."""

    @property
    def blocks(self) -> nn.ModuleList:
        return self.model.get_submodule(self.blocks_path)

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def query_width(self) -> int:
        """n_heads * head_dim."""
        config = self.model.config
        head_dim = (
            getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        )
        return config.num_attention_heads * head_dim

    def _block(self, layer: int) -> nn.Module:
        if not -self.n_layers <= layer < self.n_layers:
            raise UnknownNameError(
                f"layer {layer} out of range: the model has {self.n_layers} layers"
            )
        return self.blocks[layer]

    def query(self, layer: int) -> Site:
        module = self._block(layer).get_submodule(self.query_path)
        return Site(module, slice(0, self.query_width) if self.fused_query else None)

    def residual(self, layer: int) -> Site:
        return Site(self._block(layer))


_LAYOUTS: dict[str, tuple[str, str, bool]] = {
    "llama": ("model.layers", "self_attn.q_proj", False),
    "mistral": ("model.layers", "self_attn.q_proj", False),
    "qwen2": ("model.layers", "self_attn.q_proj", False),
    "gemma3_text": ("model.layers", "self_attn.q_proj", False),
    "phi3": ("model.layers", "self_attn.qkv_proj", True),
    "gpt2": ("transformer.h", "attn.c_attn", True),
}

SUPPORTED_ARCHITECTURES = tuple(_LAYOUTS)


def adapter_for(model: PreTrainedModel) -> Adapter:
    """The adapter for `model`'s architecture (by `config.model_type`)."""
    model_type = model.config.model_type
    if model_type not in _LAYOUTS:
        supported = ", ".join(SUPPORTED_ARCHITECTURES)
        raise UnknownNameError(
            f"no adapter for architecture {model_type!r}; supported: {supported}"
        )
    blocks, query, fused = _LAYOUTS[model_type]
    return Adapter(model, blocks, query, fused)

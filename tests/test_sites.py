"""Sites are where the adapters say they are, and hooks are exact and always removed."""

from __future__ import annotations

import copy

import pytest
import torch

from bench.hooks import read_site, replace_site
from bench.models.loading import LoadedModel


def _inputs(lm: LoadedModel) -> dict[str, torch.Tensor]:
    encoded = lm.tokenizer(
        ["Subject: biology. Explain the answer.", "Next, recall it"],
        return_tensors="pt",
        padding=True,
    )
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def _query_by_hand(lm: LoadedModel, hidden: torch.Tensor, layer: int) -> torch.Tensor:
    """Query = attention-input norm of the block input, times the layer's query weights."""
    model = lm.model
    width = lm.adapter.query_width
    if model.config.model_type == "gpt2":
        block = model.transformer.h[layer]
        normed = block.ln_1(hidden)
        weight, bias = block.attn.c_attn.weight, block.attn.c_attn.bias  # Conv1D: [in, 3*hidden]
        return normed @ weight[:, :width] + bias[:width]
    block = model.model.layers[layer]
    normed = block.input_layernorm(hidden)
    attention = block.self_attn
    if model.config.model_type == "phi3":
        return (
            normed @ attention.qkv_proj.weight[:width].T
        )  # fused q|k|v: first n_heads*head_dim rows
    query = normed @ attention.q_proj.weight.T
    return query + attention.q_proj.bias if attention.q_proj.bias is not None else query


@pytest.mark.parametrize("layer", [0, 1])
def test_query_site_equals_hand_computation(tiny_lm: LoadedModel, layer: int) -> None:
    inputs = _inputs(tiny_lm)
    with torch.no_grad(), read_site(tiny_lm.adapter.query(layer)) as captured:
        out = tiny_lm.model(**inputs, output_hidden_states=True)
    expected = _query_by_hand(tiny_lm, out.hidden_states[layer], layer)
    assert captured[0].shape == (*inputs["input_ids"].shape, tiny_lm.adapter.query_width)
    torch.testing.assert_close(captured[0], expected, rtol=1e-5, atol=1e-5)


def test_residual_site_is_block_output(tiny_lm: LoadedModel) -> None:
    inputs = _inputs(tiny_lm)
    with torch.no_grad(), read_site(tiny_lm.adapter.residual(0)) as captured:
        out = tiny_lm.model(**inputs, output_hidden_states=True)
    torch.testing.assert_close(captured[0], out.hidden_states[1])


@pytest.mark.parametrize("site_name", ["query", "residual"])
def test_replacing_a_site_with_itself_keeps_logits(tiny_lm: LoadedModel, site_name: str) -> None:
    inputs = _inputs(tiny_lm)
    site = getattr(tiny_lm.adapter, site_name)(1)
    with torch.no_grad():
        reference = tiny_lm.model(**inputs).logits
        with replace_site(site, lambda tensor: tensor.clone()):
            replaced = tiny_lm.model(**inputs).logits
    torch.testing.assert_close(replaced, reference, rtol=0, atol=0)


def _zero_query_weights(lm: LoadedModel, layer: int) -> torch.nn.Module:
    """A copy of the model whose layer computes a zero query, by editing its weights."""
    model = copy.deepcopy(lm.model)
    width = lm.adapter.query_width
    with torch.no_grad():
        if model.config.model_type == "gpt2":
            attention = model.transformer.h[layer].attn.c_attn  # Conv1D: [in, 3*hidden]
            attention.weight[:, :width] = 0
            attention.bias[:width] = 0
        elif model.config.model_type == "phi3":
            model.model.layers[layer].self_attn.qkv_proj.weight[:width] = 0
        else:
            projection = model.model.layers[layer].self_attn.q_proj
            projection.weight.zero_()
            if projection.bias is not None:
                projection.bias.zero_()
    return model


def test_query_site_edits_exactly_the_query_channels(tiny_lm: LoadedModel) -> None:
    """Zeroing the site equals zeroing the query weights: a wrong channel slice of a fused
    projection (keys or values instead of queries) would give other logits."""
    inputs = _inputs(tiny_lm)
    with torch.no_grad():
        expected = _zero_query_weights(tiny_lm, 1)(**inputs).logits
        with replace_site(tiny_lm.adapter.query(1), torch.zeros_like):
            edited = tiny_lm.model(**inputs).logits
        reference = tiny_lm.model(**inputs).logits
    torch.testing.assert_close(edited, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(edited, reference)


def test_replacing_a_site_changes_logits(tiny_llama: LoadedModel) -> None:
    """The hook really acts: zeroing the query changes the output."""
    inputs = _inputs(tiny_llama)
    with torch.no_grad():
        reference = tiny_llama.model(**inputs).logits
        with replace_site(tiny_llama.adapter.query(0), torch.zeros_like):
            edited = tiny_llama.model(**inputs).logits
    assert not torch.allclose(edited, reference)


def test_hooks_are_removed_after_an_exception(tiny_lm: LoadedModel) -> None:
    module = tiny_lm.adapter.query(0).module
    before = len(module._forward_hooks)
    with (
        pytest.raises(RuntimeError, match="boom"),
        replace_site(tiny_lm.adapter.query(0), torch.zeros_like),
    ):
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"), read_site(tiny_lm.adapter.query(0)):
        raise RuntimeError("boom")
    assert len(module._forward_hooks) == before


def test_edit_that_changes_shape_is_rejected(tiny_llama: LoadedModel) -> None:
    inputs = _inputs(tiny_llama)
    with (
        pytest.raises(ValueError, match="changed the shape"),
        replace_site(tiny_llama.adapter.query(0), lambda tensor: tensor[..., :2]),
    ):
        tiny_llama.model(**inputs)


def test_layer_out_of_range_is_a_clear_error(tiny_llama: LoadedModel) -> None:
    from bench.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="out of range"):
        tiny_llama.adapter.query(7)

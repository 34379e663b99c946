"""Prompt prefill that reads every shared prefix once: a radix tree over the batch's prompts.

The prompts of a batch share a lot: the system turn of every row, a scenario's block for the
rows of its levels and seeds, the whole prompt for rows that differ only in their seed. The
prompts' token sequences are arranged in a radix tree; each edge (a run of tokens) is read
once (a short inner run is folded into its branches instead), edges of one depth and similar
length in one forward pass on top of their parents' KV caches, and each prompt's cache is then
gathered from its leaf, with room for the tokens to be generated. Rows whose steering differs
(their `groups`) share only what the steering leaves alike: nothing, all but the last token,
or everything, as the method's `reach` says. Without reuse, every row is its own path:
left-padded passes of whole prompts, as a plain batched prefill.

Padding sits where edges of different lengths meet, so a row's real tokens may have masked
positions between them; attention masks and explicit position ids make that the same
computation. Models with a sliding attention window shorter than a padded row fall back to
the plain prefill (padding inside a row would change which tokens fall in the window).
"""

from __future__ import annotations

import inspect
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from bench.hooks import Phase, phase
from bench.models.loading import LoadedModel
from bench.profiling import section

Reach = Literal["none", "last", "all"]
"""Which prompt positions a steering changes per row group: none, only the last position (the
one that produces the first token), or any."""


@cache
def _forward_keywords(model_class: type) -> tuple[str, bool]:
    """The forward() keyword for the KV cache (`cache` in newer transformers) and whether the
    model can compute logits for its last positions only (`logits_to_keep`)."""
    parameters = inspect.signature(model_class.forward).parameters
    cache_kw = "cache" if "cache" in parameters else "past_key_values"
    return cache_kw, "logits_to_keep" in parameters


def cache_argument(lm: LoadedModel, past: DynamicCache) -> dict[str, DynamicCache]:
    """`past` under the keyword the model's forward() takes a KV cache by."""
    return {_forward_keywords(type(lm.model))[0]: past}


def forward(
    lm: LoadedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
    past: DynamicCache,
    keep: int = 1,
) -> torch.Tensor:
    """One cached forward pass; the logits [batch, keep, vocab] of the last `keep` positions."""
    can_trim = _forward_keywords(type(lm.model))[1]
    extra: dict[str, Any] = {"logits_to_keep": keep} if can_trim else {}
    out = lm.model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=True,
        **cache_argument(lm, past),
        **extra,
    )
    return out.logits[:, -keep:]


class RoomyLayer(DynamicLayer):
    """A cache layer in a buffer with free positions at its end: a decode step writes its keys
    and values there, where `DynamicLayer` copies the whole cache (torch.cat) every step. A
    layer that runs out of room doubles its buffer."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int) -> None:
        super().__init__()
        self.lazy_initialization(keys, values)
        self._keys, self._values, self._length = keys, values, length
        self._views()

    def _views(self) -> None:
        self.keys = self._keys[:, :, : self._length]
        self.values = self._values[:, :, : self._length]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        end = self._length + key_states.shape[-2]
        if end > self._keys.shape[-2]:
            grown = (*self._keys.shape[:2], 2 * end - self._length, self._keys.shape[-1])
            self._keys = torch.cat([self.keys, self.keys.new_zeros(grown)], dim=-2)
            self._values = torch.cat([self.values, self.values.new_zeros(grown)], dim=-2)
        self._keys[:, :, self._length : end] = key_states
        self._values[:, :, self._length : end] = value_states
        self._length = end
        self._views()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys = self._keys[indices]
        self._values = self._values[indices]
        self._views()


@dataclass
class Rows:
    """Rows `source` of `cache` (with its [rows, length] mask) that become rows `target`."""

    cache: DynamicCache
    mask: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor


def assemble(parts: Sequence[Rows], n_rows: int, room: int) -> tuple[DynamicCache, torch.Tensor]:
    """One cache of `n_rows` rows from rows of caches of different lengths, each copied once
    (shorter ones padded on the left with masked zeros), with `room` free positions per row
    for what comes next; and its attention mask.

    Only the padding is zeroed: the room is never read before a forward pass writes it
    (`RoomyLayer` shows only its first `length` positions), and zeroing whole buffers was a
    fifth of a run's prefill and perplexity time on a CPU."""
    width = max(part.mask.shape[1] for part in parts)
    mask = parts[0].mask.new_zeros((n_rows, width))
    for part in parts:
        mask[part.target, width - part.mask.shape[1] :] = part.mask[part.source]
    layers = []
    for index, first in enumerate(parts[0].cache.layers):
        shape = (n_rows, first.keys.shape[1], width + room, first.keys.shape[-1])
        keys, values = first.keys.new_empty(shape), first.values.new_empty(shape)
        for part in parts:
            layer, start = part.cache.layers[index], width - part.mask.shape[1]
            if start:  # masked, but read by attention: zeros, never stale memory
                keys[part.target, :, :start] = 0
                values[part.target, :, :start] = 0
            keys[part.target, :, start:width] = layer.keys[part.source]
            values[part.target, :, start:width] = layer.values[part.source]
        layers.append(RoomyLayer(keys, values, width))
    cache = DynamicCache()
    cache.layers = layers
    return cache, mask


@dataclass
class Prefilled:
    """Every prompt read: one cache row per prompt, ready for decoding."""

    cache: DynamicCache
    attention_mask: torch.Tensor
    """[rows, length]: 1 at real tokens (padding may sit between them)."""
    lengths: torch.Tensor
    """[rows] real prompt tokens (the next position id)."""
    logits: torch.Tensor
    """[rows, vocab] the next-token logits after each prompt."""


@dataclass
class _Node:
    tokens: list[int]
    parent: int
    depth: int
    row: int
    """A caller row under this node (hooks look up its group's steering)."""
    ends: list[int] = field(default_factory=list)
    """Caller rows whose prompt ends here (only at leaves)."""


def _keys(tokens: list[int], group: Hashable, reach: Reach) -> list[tuple]:
    """The tree keys of one prompt: tokens tagged with what may not be shared. The last token
    carries its own tag, so a prompt always ends at a leaf of its own."""
    head = group if reach == "all" else None
    tail = None if reach == "none" else group
    return [(head, t) for t in tokens[:-1]] + [("last", tail, tokens[-1])]


def _radix_tree(keyed: list[tuple[int, list[tuple]]]) -> list[_Node]:
    """Nodes of the radix tree over (row, keys) pairs, parents before children."""
    nodes: list[_Node] = []
    todo: list[tuple[list[tuple[int, list[tuple]]], int, int, int]] = [(keyed, 0, -1, 0)]
    while todo:
        items, start, parent, depth = todo.pop(0)
        first = items[0][1]
        end = start
        while all(len(keys) > end and keys[end] == first[end] for _, keys in items):
            end += 1
        node = _Node([key[-1] for key in first[start:end]], parent, depth, items[0][0])
        node.ends = [row for row, keys in items if len(keys) == end]
        nodes.append(node)
        children: dict[tuple, list[tuple[int, list[tuple]]]] = {}
        for row, keys in items:
            if len(keys) > end:
                children.setdefault(keys[end], []).append((row, keys))
        todo += [(child, end, len(nodes) - 1, depth + 1) for child in children.values()]
    return nodes


FOLD_TOKENS = 16
"""An inner edge whose tokens, read again with each of its children, would cost fewer extra
tokens than this is folded into them instead of read in a pass of its own: a forward pass has
a fixed cost (every weight is read) worth more tokens."""
PADDING_SLACK = 1.25
"""A prefill pass holds edges of similar length: at most this many padded positions per real
token (longer edges go first; a pass closes when the next edge would exceed it)."""
PASS_TOKENS = 2048
"""A prefill pass holds at most this many positions (padding included): wider passes were
slower per token on a CPU."""


def _folded(nodes: list[_Node]) -> list[_Node]:
    """The tree with every short inner edge merged into its children (parents before
    children). The prompts' tokens, and which caller row each token is read for, stay."""
    children = [0] * len(nodes)
    for node in nodes:
        if node.parent >= 0:
            children[node.parent] += 1
    kept: list[_Node] = []
    anchor: dict[int, int] = {-1: -1}  # node -> its kept node (or that of its nearest ancestor)
    carry: dict[int, list[int]] = {-1: []}  # node -> folded tokens its children start with
    for index, node in enumerate(nodes):
        tokens = carry[node.parent] + node.tokens
        if not node.ends and tokens and len(tokens) * (children[index] - 1) < FOLD_TOKENS:
            anchor[index], carry[index] = anchor[node.parent], tokens
            continue
        parent = anchor[node.parent]
        depth = kept[parent].depth + 1 if parent >= 0 else 0
        kept.append(_Node(tokens, parent, depth, node.row, node.ends))
        anchor[index], carry[index] = len(kept) - 1, []
    return kept


def _buckets(items: list[int], nodes: list[_Node]) -> list[list[int]]:
    """The nodes to read, longest edge first, in passes of similar edge lengths."""
    buckets: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in sorted(items, key=lambda i: -len(nodes[i].tokens)):
        size = len(nodes[i].tokens)
        wide = (len(current) + 1) * len(nodes[current[0]].tokens) if current else 0
        if current and (wide > PADDING_SLACK * (real + size) or wide > PASS_TOKENS):
            buckets.append(current)
            current, real = [], 0
        current.append(i)
        real += size
    return [*buckets, current] if current else buckets


def _left_padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return ids, mask


def _padded_width(nodes: list[_Node]) -> int:
    """Cache length of the longest row: each depth's pass is as wide as its longest edge."""
    widths: dict[int, int] = {}
    for node in nodes:
        widths[node.depth] = max(widths.get(node.depth, 0), len(node.tokens))
    return max(sum(widths[d] for d in range(node.depth + 1)) for node in nodes if node.ends)


def window_allows(lm: LoadedModel, width: int) -> bool:
    """Whether rows `width` positions long (padding included) fit the model's sliding
    attention window, if it has one: then padding inside a row changes nothing."""
    window = getattr(lm.model.config, "sliding_window", None)
    return not isinstance(window, int) or width <= window


_Read = tuple[DynamicCache, torch.Tensor]
"""A pass's cache and attention mask, one row per node it read."""


@torch.no_grad()
def prefill(
    lm: LoadedModel,
    prompts: list[list[int]],
    groups: Sequence[Hashable] | None = None,
    reach: Reach = "none",
    reuse: bool = True,
    headroom: int = 0,
) -> Prefilled:
    """Read every prompt (token ids, at least one each); rows of different `groups` share only
    what `reach` allows. `headroom`: tokens the caller will add (room is kept for them)."""
    if any(not ids for ids in prompts):
        raise ValueError("every prompt needs at least one token")
    device = lm.device
    groups = list(groups) if groups is not None else [None] * len(prompts)
    nodes = None
    if reuse:
        shared = _folded(
            _radix_tree(
                [
                    (row, _keys(ids, group, reach))
                    for row, (ids, group) in enumerate(zip(prompts, groups, strict=True))
                ]
            )
        )
        nodes = shared if window_allows(lm, _padded_width(shared) + headroom) else None
    if nodes is None:  # every row its own path: one plain left-padded pass
        nodes = _radix_tree([(row, [(row, t) for t in ids]) for row, ids in enumerate(prompts)])
    pad = lm.tokenizer.pad_token_id or 0
    lengths = {-1: 0}
    by_depth: dict[int, list[int]] = {}
    for index, node in enumerate(nodes):
        lengths[index] = lengths[node.parent] + len(node.tokens)
        if node.tokens:  # only the root can have none: its children start from nothing
            by_depth.setdefault(node.depth, []).append(index)
    reads: list[_Read | None] = []
    home: dict[int, tuple[int, int]] = {}  # node -> (pass, row of that pass)
    leaves: list[tuple[DynamicCache, torch.Tensor, torch.Tensor, list[tuple[int, int]]]] = []
    done_before = 0
    for depth in sorted(by_depth):  # all of one depth at once, whichever passes hold parents
        first_pass = len(reads)
        for bucket in _buckets(by_depth[depth], nodes):
            ids, edge_mask = _left_padded([nodes[i].tokens for i in bucket], pad)
            ids, edge_mask = ids.to(device), edge_mask.to(device)
            past, parent_mask = _parents(bucket, nodes, home, reads, ids.shape[1], device)
            offset = torch.tensor([lengths[nodes[i].parent] for i in bucket], device=device)
            positions = (offset[:, None] + edge_mask.cumsum(-1) - 1).clamp(min=0)
            attention = torch.cat([parent_mask, edge_mask], dim=-1)
            marks = Phase(
                prompt=True,
                step=0,
                attention_mask=edge_mask,
                offset=offset,
                last=torch.tensor([bool(nodes[i].ends) for i in bucket], device=device),
                rows=torch.tensor([nodes[i].row for i in bucket], device=device),
            )
            with section("prefill"), phase(marks):
                logits = forward(lm, ids, attention, positions, past)[:, -1]
            ends_here = [(k, i) for k, i in enumerate(bucket) if nodes[i].ends]
            if ends_here:
                leaves.append((past, attention, logits, ends_here))
            home.update({i: (len(reads), k) for k, i in enumerate(bucket)})
            reads.append((past, attention))
        for stale in range(done_before, first_pass):  # the passes above: children all read
            reads[stale] = None
        done_before = first_pass
    return _gather(nodes, leaves, lengths, len(prompts), device, headroom)


def _parents(
    bucket: list[int],
    nodes: list[_Node],
    home: dict[int, tuple[int, int]],
    reads: list[_Read | None],
    room: int,
    device: torch.device,
) -> _Read:
    """The parents' cache rows of a pass's nodes, gathered from the passes that read them (a
    cache with `room` for the pass), and their mask; empty for nodes that start a prompt."""
    places = [home.get(nodes[i].parent) for i in bucket]
    if all(place is None for place in places):
        return DynamicCache(), torch.zeros((len(bucket), 0), dtype=torch.long, device=device)
    by_pass: dict[int, tuple[list[int], list[int]]] = {}
    for target, place in enumerate(places):
        assert place is not None  # one depth's parents: all read, or all the empty root
        source, targets = by_pass.setdefault(place[0], ([], []))
        source.append(place[1])
        targets.append(target)
    parts = []
    for index, (source, targets) in by_pass.items():
        read = reads[index]
        assert read is not None
        parts.append(
            Rows(
                read[0],
                read[1],
                torch.tensor(source, device=device),
                torch.tensor(targets, device=device),
            )
        )
    return assemble(parts, len(bucket), room)


def _gather(
    nodes: list[_Node],
    leaves: list[tuple[DynamicCache, torch.Tensor, torch.Tensor, list[tuple[int, int]]]],
    lengths: dict[int, int],
    n_rows: int,
    device: torch.device,
    room: int,
) -> Prefilled:
    """Each caller row's cache, mask, length and logits, from the leaf its prompt ends at."""
    parts, logits, length = [], [], [0] * n_rows
    order: list[int] = []
    for past, mask, pass_logits, ends in leaves:  # ends: (pass row, leaf node)
        source, target = [], []
        for row, node in ends:
            for caller in nodes[node].ends:
                source.append(row)
                target.append(caller)
                length[caller] = lengths[node]
        parts.append(
            Rows(
                past, mask, torch.tensor(source, device=device), torch.tensor(target, device=device)
            )
        )
        logits.append(pass_logits[source])
        order += target
    cache, attention = assemble(parts, n_rows, room)
    back = torch.empty(n_rows, dtype=torch.long, device=device)
    back[torch.tensor(order, device=device)] = torch.arange(n_rows, device=device)
    return Prefilled(
        cache=cache,
        attention_mask=attention,
        lengths=torch.tensor(length, device=device),
        logits=torch.cat(logits).index_select(0, back),
    )

"""The speed-ups change no text and no score: shared-prefix prefill, rows of many levels in one
batch, finished rows leaving it, token-budget batches, cached perplexity contexts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import save_query_sae

from bench.config import load_config
from bench.data.levels import LEVELS, Level
from bench.data.roles import load_exemplars
from bench.data.scenarios import Scenario
from bench.data.tasks import TASKS
from bench.errors import ConfigError
from bench.hooks import Phase, caller_rows, prompt_ends, prompt_index
from bench.methods.base import Steerer
from bench.methods.registry import method_class
from bench.models.attention import GROUPED_SDPA
from bench.models.generation import Decoding, generate, prompt_ids, render_prompt
from bench.models.loading import LoadedModel
from bench.models.prefill import FOLD_TOKENS, _folded, _keys, _radix_tree, forward, prefill
from bench.profiling import Profile, section
from bench.runner import batches, build_cells, plan, prepare, run
from bench.scoring.fluency import ContextReader, perplexities
from bench.store import ResultsStore

TASK = TASKS["question"]
SCENARIOS = [
    Scenario("a", "biology", "What do mitochondria do?", "They make proteins."),
    Scenario("b", "algebra", "Solve 2x + 3 = 11 for x.", "x = 4"),
    Scenario("c", "history", "Why did the Roman Empire split?", "It was too big."),
]
LEVEL_NAMES = [level.value for level in LEVELS]


def _steerers(lm: LoadedModel, tmp_path: Path) -> list[tuple[Steerer, dict[str, Any]]]:
    """Every registered method, built and fit, with a steer setting strong enough to move text."""
    exemplars = load_exemplars(form="question").select(range(0, 360, 7))  # every level
    width = lm.adapter.query_width
    stage1 = save_query_sae(lm, tmp_path / "stage1", 4 * width, 8, 1)
    aligned = save_query_sae(lm, tmp_path / "aligned", 4 * width, 8, 1, LEVEL_NAMES)
    query = {"strength": 50.0, "steps": 2, "anchor": 0.0, "distance": "l2"}
    chosen = [
        ("none", {}, {}),
        ("prompting", {"wording": "named"}, {}),
        ("few_shot", {"k": 1}, {}),
        ("caa", {"layer": 1, "scale": "unit"}, {"coefficient": 16.0}),
        ("actadd", {"layer": 0}, {"coefficient": 16.0}),
        ("query_sae", {"sae": stage1}, {**query, "positions": "generated"}),
        ("query_sae", {"sae": stage1}, {**query, "positions": "all"}),
        ("align_sae", {"sae": aligned}, {"alpha": 50.0, "positions": "generated"}),
        ("align_sae", {"sae": aligned}, {"alpha": 50.0, "positions": "all"}),
    ]
    built = []
    for name, build, steer in chosen:
        steerer = method_class(name)(TASK, **build)
        steerer.fit(lm, exemplars)
        built.append((steerer, steer))
    return built


def _mixed_rows(steerer: Steerer) -> tuple[list[Level], list[list[dict]], list[int]]:
    """Every scenario at three levels, one scenario twice at one level with another seed."""
    rows = [(s, level) for s in SCENARIOS for level in (LEVELS[0], LEVELS[3], LEVELS[5])]
    rows.append((SCENARIOS[0], LEVELS[0]))
    levels = [level for _, level in rows]
    return levels, [steerer.prompt(s, level) for s, level in rows], list(range(len(rows)))


def _texts(
    lm: LoadedModel,
    steerer: Steerer,
    steer: dict[str, Any],
    levels: list[Level],
    prompts: list,
    seeds: list[int],
    decoding: Decoding,
    reuse: bool,
) -> list[str]:
    with steerer.steering(lm, levels, **steer):
        out = generate(
            lm,
            prompts,
            decoding,
            seeds,
            cue=TASK.cue,
            stop=TASK.stop,
            groups=levels,
            reach=steerer.prompt_reach(**steer),
            reuse=reuse,
        )
    return [g.text for g in out]


@pytest.mark.parametrize("greedy", [True, False])
def test_every_method_writes_the_same_texts_with_and_without_prefix_reuse(
    tiny_llama: LoadedModel, tmp_path: Path, greedy: bool
) -> None:
    """Rows of three levels in one batch (per-row levels), read with a shared prefix or each
    whole: the same texts, greedy and sampled with fixed seeds. The steering is strong enough
    to change texts, so a method whose prefix were read under the wrong level would differ."""
    decoding = Decoding(max_new_tokens=10, greedy=greedy, temperature=1.0)
    moved = 0
    for steerer, steer in _steerers(tiny_llama, tmp_path):
        levels, prompts, seeds = _mixed_rows(steerer)
        shared = _texts(tiny_llama, steerer, steer, levels, prompts, seeds, decoding, True)
        whole = _texts(tiny_llama, steerer, steer, levels, prompts, seeds, decoding, False)
        assert shared == whole, (steerer.name, steer)
        plain = generate(tiny_llama, prompts, decoding, seeds, cue=TASK.cue, stop=TASK.stop)
        moved += shared != [g.text for g in plain]
    assert moved >= 6  # every method but the control and the prompts changed what was written


def test_a_row_writes_the_same_text_alone_and_in_a_mixed_batch(
    tiny_llama: LoadedModel, tmp_path: Path
) -> None:
    """Per-row levels: each row of a batch of mixed levels and scenarios writes what it writes
    alone under its own level (finished rows leaving the batch change nothing either)."""
    decoding = Decoding(max_new_tokens=10, temperature=1.0)
    for steerer, steer in _steerers(tiny_llama, tmp_path)[3:]:
        levels, prompts, seeds = _mixed_rows(steerer)
        batched = _texts(tiny_llama, steerer, steer, levels, prompts, seeds, decoding, True)
        for i in (0, 4, 8, 9):
            alone = _texts(
                tiny_llama, steerer, steer, [levels[i]], [prompts[i]], [seeds[i]], decoding, True
            )
            assert alone == [batched[i]], (steerer.name, steer, i)


def _prompt_positions(lm: LoadedModel, prompts: list, reuse: bool) -> int:
    """Token positions the model reads in prompt passes (batch x length)."""
    seen = []
    handle = lm.model.get_input_embeddings().register_forward_hook(
        lambda _m, inputs, _o: seen.append(inputs[0].numel())
    )
    try:
        ids = prompt_ids(lm, prompts, TASK.cue)
        ready = prefill(lm, ids, reuse=reuse)
    finally:
        handle.remove()
    assert ready.lengths.tolist() == [len(row) for row in ids]
    return sum(seen)


def test_shared_prefixes_are_read_once(tiny_llama: LoadedModel) -> None:
    """Identical prompts are read once and the system turn once for the whole batch."""
    prompts = [TASK.messages(s) for s in SCENARIOS] * 4
    ids = prompt_ids(tiny_llama, prompts, TASK.cue)
    whole = _prompt_positions(tiny_llama, prompts, reuse=False)
    shared = _prompt_positions(tiny_llama, prompts, reuse=True)
    assert whole >= sum(map(len, ids))  # every prompt read whole (with padding)
    assert shared < sum(map(len, ids[:3]))  # less than the three distinct prompts read whole


def test_prefilled_logits_and_cache_match_a_plain_prefill(tiny_lm: LoadedModel) -> None:
    """On every architecture, the shared-prefix prefill gives the plain one's next-token
    logits (float32, to 1e-5) and a cache that continues the same way."""
    prompts = [TASK.messages(s) for s in SCENARIOS] * 2
    ids = prompt_ids(tiny_lm, prompts, TASK.cue)
    shared = prefill(tiny_lm, ids, reuse=True)
    whole = prefill(tiny_lm, ids, reuse=False)
    torch.testing.assert_close(shared.logits, whole.logits, atol=1e-5, rtol=1e-5)
    decoding = Decoding(max_new_tokens=6, greedy=True)
    assert generate(tiny_lm, prompts, decoding) == generate(tiny_lm, prompts, decoding, reuse=False)


def _readings(lm: LoadedModel) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """Padded prefill logits (shared-prefix and plain) and greedy and sampled texts."""
    prompts = [TASK.messages(s) for s in SCENARIOS] * 2
    ids = prompt_ids(lm, prompts, TASK.cue)
    sampled = Decoding(max_new_tokens=8, temperature=1.0, top_p=0.9)
    return (
        prefill(lm, ids, reuse=True).logits,
        prefill(lm, ids, reuse=False).logits,
        [g.text for g in generate(lm, prompts, Decoding(max_new_tokens=8, greedy=True))],
        [g.text for g in generate(lm, prompts, sampled, seeds=list(range(len(prompts))))],
    )


def test_cpu_models_run_grouped_sdpa_with_transformers_sdpa_numbers(tiny_lm: LoadedModel) -> None:
    """A CPU model is loaded on the grouped SDPA, which reads exactly what transformers' own
    `sdpa` reads on every architecture: logits bit for bit, and the same texts."""
    assert tiny_lm.model.config._attn_implementation == GROUPED_SDPA
    grouped = _readings(tiny_lm)
    tiny_lm.model.set_attn_implementation("sdpa")
    plain = _readings(tiny_lm)
    assert all(map(torch.equal, grouped[:2], plain[:2]))
    assert grouped[2:] == plain[2:]


def _folded_then_decoded(lm: LoadedModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits after prompts whose cache rows come from parts of different widths (left
    padding added by `assemble`), and after one decode step into the cache's free room."""
    ready = prefill(lm, _short_inner_edges(), reuse=True, headroom=4)
    picked = ready.logits.argmax(-1, keepdim=True)
    mask = torch.cat([ready.attention_mask, ready.attention_mask.new_ones((len(picked), 1))], 1)
    after = forward(lm, picked, mask, ready.lengths[:, None], ready.cache)[:, -1]
    return ready.logits, after


def test_no_uninitialised_cache_memory_is_read(
    tiny_llama: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cache buffers are allocated without zeroing: with every such buffer full of NaN, the
    padding and the room a decode step writes into still give the same logits and texts."""
    want = (*_readings(tiny_llama), *_folded_then_decoded(tiny_llama))

    def poisoned(self: torch.Tensor, size: Any, **kwargs: Any) -> torch.Tensor:
        return torch.full(size, math.nan, dtype=self.dtype, device=self.device, **kwargs)

    monkeypatch.setattr(torch.Tensor, "new_empty", poisoned)
    got = (*_readings(tiny_llama), *_folded_then_decoded(tiny_llama))
    for value, expected in zip(got, want, strict=True):
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, expected)
        else:
            assert value == expected


def _short_inner_edges() -> list[list[int]]:
    """Prompts under a long shared head that then share short runs (2 and 1 tokens) in pairs."""
    head = list(range(10, 40))
    return [
        [*head, 5, 6, *list(range(50, 70))],
        [*head, 5, 6, *list(range(70, 75))],
        [*head, 7, *list(range(80, 100))],
        [*head, 7, 3],
    ]


def test_short_inner_edges_are_read_with_their_children() -> None:
    """Folding keeps every prompt's tokens and where it ends; only the head stays shared."""
    prompts = _short_inner_edges()
    nodes = _folded(
        _radix_tree([(row, _keys(ids, None, "none")) for row, ids in enumerate(prompts)])
    )
    for index, node in enumerate(nodes):
        below = sum(n.parent == index for n in nodes)
        assert node.ends or len(node.tokens) * (below - 1) >= FOLD_TOKENS
    for row, ids in enumerate(prompts):
        (leaf,) = [i for i, n in enumerate(nodes) if row in n.ends]
        path: list[int] = []
        while leaf >= 0:
            path = nodes[leaf].tokens + path
            leaf = nodes[leaf].parent
        assert path == ids
    assert [len(n.tokens) for n in nodes if n.parent == -1] == [30]


def test_folded_prefill_matches_a_plain_prefill(tiny_lm: LoadedModel) -> None:
    """Prompts with short shared runs give the plain prefill's next-token logits."""
    prompts = _short_inner_edges()
    shared = prefill(tiny_lm, prompts, reuse=True, headroom=4)
    whole = prefill(tiny_lm, prompts, reuse=False)
    torch.testing.assert_close(shared.logits, whole.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(shared.lengths, whole.lengths)


def test_phase_helpers_place_positions_of_a_later_prompt_pass() -> None:
    """A pass after a shared prefix of 5 tokens: indices continue from the offset, padding is
    -1, only rows whose prompt ends here end it, rows map to the caller's."""
    mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    phase = Phase(
        prompt=True,
        step=0,
        attention_mask=mask,
        offset=torch.tensor([5, 2]),
        last=torch.tensor([True, False]),
        rows=torch.tensor([3, 0]),
    )
    device = torch.device("cpu")
    assert prompt_index(phase, (2, 3), device).tolist() == [[-1, 5, 6], [2, 3, 4]]
    assert prompt_ends(phase, 2, device).tolist() == [True, False]
    assert caller_rows(phase, 2, device).tolist() == [3, 0]
    assert prompt_index(None, (1, 3), device).tolist() == [[0, 1, 2]]
    assert caller_rows(None, 2, device).tolist() == [0, 1]


def test_a_method_with_hooks_must_say_where_they_reach() -> None:
    with pytest.raises(TypeError, match="prompt_reach"):

        class Silent(Steerer):  # the class statement itself fails
            name = "silent"

            def steering(self, lm: LoadedModel, levels: Any, **settings: Any) -> Any:
                return super().steering(lm, levels)


def test_cached_perplexities_equal_the_uncached_reference(tiny_lm: LoadedModel) -> None:
    """Each context read once (and some evicted by a tiny cache budget) gives the reference
    values to a relative 1e-4 (float32 sums in another order), NaN for an empty text."""
    contexts = [render_prompt(tiny_lm, TASK.messages(s), TASK.cue) for s in SCENARIOS]
    rows = [contexts[i % 3] for i in range(8)] + [""]
    texts = ["What is it?", "", "Why does ice melt in the sun?", "x", "How?"] * 2
    texts = texts[: len(rows)]
    reference = perplexities(tiny_lm, rows, texts)
    for budget in (2 << 30, 1):
        reader = ContextReader(tiny_lm, max_cached_bytes=budget, batch_size=4)
        for _ in range(2):  # the second time from the cache (or re-read, once evicted)
            got = reader.perplexities(rows, texts)
            for want, value in zip(reference, got, strict=True):
                assert math.isnan(want) == math.isnan(value)
                if not math.isnan(want):
                    assert value == pytest.approx(want, rel=1e-4)


def _stored(store: str) -> dict[tuple[str, str], tuple[str, dict, dict]]:
    with ResultsStore(store) as results:
        return {
            (r.cell_hash, r.scenario_id): (r.text, r.scores, r.diagnostics) for r in results.rows()
        }


def test_batching_and_prefix_reuse_change_no_stored_row(tmp_path: Path) -> None:
    """The same grid run one row per batch without reuse, and in big mixed batches with it:
    every stored text, diagnostic and score is the same; perplexity to a relative 1e-5 (its
    float32 sums depend on the padding a batch needs, as they always have)."""
    exemplars = tmp_path / "ex.jsonl"
    exemplars.write_text(
        "\n".join(
            line
            for i, line in enumerate(
                Path("bench/data/exemplars.jsonl").read_text(encoding="utf-8").splitlines()
            )
            if i % 7 == 0
        )
        + "\n",
        encoding="utf-8",
    )
    stores = []
    for name, overrides in (
        ("small", ["batch_tokens=1", "reuse_prefixes=false"]),
        ("big", ["batch_tokens=100000"]),
    ):
        store = str(tmp_path / f"{name}.sqlite")
        config = load_config(
            overrides=[
                *overrides,
                "models=[tiny-llama]",
                "methods=[none,prompting,caa,actadd]",
                "hparams.caa={layer: 1, coefficient: 16.0}",
                "hparams.actadd={layer: 0, coefficient: 16.0}",
                "levels=[Remember,Analyze,Create]",
                "seeds=[0,1]",
                "limit=3",
                "decoding.max_new_tokens=6",
                f"exemplars={exemplars}",
                f"store={store}",
            ]
        )
        assert run(config).written == 4 * 3 * 2 * 3
        stores.append(_stored(store))
    small, big = stores
    assert small.keys() == big.keys()
    for key, (text, scores, diagnostics) in small.items():
        other_text, other_scores, other_diagnostics = big[key]
        assert (text, diagnostics) == (other_text, other_diagnostics)
        perplexity, other = scores.pop("perplexity"), other_scores.pop("perplexity")
        assert scores == other_scores
        assert perplexity == pytest.approx(other, rel=1e-5, nan_ok=True)


def test_methods_steering_by_prompt_alone_share_batches(
    tiny_llama: LoadedModel, tmp_path: Path
) -> None:
    """none and prompting rows of a scenario go into one batch (they read its block once);
    a hooked method's rows never share a batch with another setting's."""
    config = load_config(
        overrides=[
            "models=[tiny-llama]",
            "methods=[none,prompting,caa]",
            "hparams.caa={layer: 1, coefficient: [4.0, 8.0]}",
            "levels=[Remember,Create]",
            "limit=2",
            f"store={tmp_path / 'plan.sqlite'}",
        ]
    )
    inputs = prepare(config)
    jobs = plan(inputs, build_cells(inputs, tiny_llama, "scorer"), done={})
    made = list(batches(jobs, [1] * len(jobs), budget=10_000))
    methods = [sorted({job.cell.setting.method for job in batch}) for batch in made]
    assert methods == [["none", "prompting"], ["caa"], ["caa"]]
    assert all(len({job.cell.setting_key for job in batch}) == 1 for batch in made[1:])
    plain = made[0]
    assert [job.scenario.id for job in plain] == sorted(
        (job.scenario.id for job in plain), key=[s.id for s in inputs.scenarios].index
    )


def test_the_old_batch_size_key_says_what_replaced_it() -> None:
    with pytest.raises(ConfigError, match="batch_size is now batch_tokens"):
        load_config(overrides=["batch_size=4"])


def test_profile_sections_add_up_without_counting_nested_time_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter(range(100))
    monkeypatch.setattr("bench.profiling.time.perf_counter", lambda: float(next(clock)))
    with section("outside any profile"):  # measured by nothing
        pass
    # The clock reads: profile 0, outer 1, inner 2 .. 3, outer ends 4 (3 s, 1 s of them
    # nested), the profile exits at 5.
    with Profile() as profile, section("outer"), section("inner"):
        pass
    assert profile.seconds == {"inner": 1.0, "outer": 2.0}
    assert profile.wall_s == 5.0
    assert profile.summary()["other"]["seconds"] == 2.0


def test_perf_builds_a_paper_architecture_at_its_real_width() -> None:
    """`bench perf --arch` on one layer of Phi-3-mini (fused qkv, real widths): the sites
    have the documented shapes and every method at strength 0 writes the plain text."""
    from click.testing import CliRunner

    from bench.cli import main

    args = ["perf", "--arch", "phi-3-mini", "--random-weights", "--layers", "1"]
    result = CliRunner().invoke(main, [*args, "--dtype", "float32", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["sites"]["ok"] and report["sites"]["query"][-1] == 3072
    assert set(report["methods"]) == {"prompting", "caa", "actadd", "query_sae", "align_sae"}
    assert len(report["checks"]) == 5 and all(report["checks"].values())
    refused = CliRunner().invoke(main, ["perf", "--arch", "mistral-7b"])
    assert refused.exit_code == 2 and "--random-weights" in refused.output


@pytest.mark.parametrize("scale", [0.5, 2.0, 8.0])
def test_windowed_top_p_draws_what_a_fully_sorted_multinomial_draws(scale: float) -> None:
    """Sampling sorts only the likeliest tokens when the nucleus lies among them, and makes
    the same draws as torch.multinomial on the fully sorted row (flat rows, whose nucleus is
    wider, take that plain path)."""
    from bench.models.generation import _sample, _sample_sorted

    decoding = Decoding(temperature=0.7, top_p=0.9)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 49152, generator=generator) * scale
    seeds = list(range(64))
    picked = _sample(logits, decoding, [torch.Generator().manual_seed(s) for s in seeds])
    probs = torch.softmax(logits / decoding.temperature, dim=-1)
    plain = [
        _sample_sorted(row, decoding.top_p, torch.Generator().manual_seed(s))
        for row, s in zip(probs, seeds, strict=True)
    ]
    assert picked.tolist() == plain

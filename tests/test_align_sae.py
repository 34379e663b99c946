"""AlignSAE steering: alpha 0 is the unsteered model token for token, a swap moves the
output, and the stage-1 ablation picks each level's most separating latent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import save_query_sae

from bench.data.levels import LEVELS, Level
from bench.data.roles import load_exemplars
from bench.data.scenarios import Scenario
from bench.data.tasks import TASKS
from bench.errors import ConfigError
from bench.methods.align_sae import AlignSAESteering, separating_latents
from bench.models.generation import Decoding, generate
from bench.models.loading import LoadedModel
from bench.sae.align import grow
from bench.sae.base import SAEConfig
from bench.sae.registry import make_sae

TASK = TASKS["question"]
SCENARIOS = [
    Scenario("a", "biology", "What do mitochondria do?", "They make proteins."),
    Scenario("b", "algebra", "Solve 2x + 3 = 11 for x.", "x = 4"),
]
LEVEL_NAMES = [level.value for level in LEVELS]


def _sae_dir(lm: LoadedModel, tmp_path: Path, aligned: bool) -> str:
    directory = tmp_path / ("aligned" if aligned else "stage1")
    width = lm.adapter.query_width
    return save_query_sae(lm, directory, 4 * width, 8, 1, LEVEL_NAMES if aligned else None)


def _fit(lm: LoadedModel, directory: str) -> AlignSAESteering:
    steerer = AlignSAESteering(TASK, sae=directory)
    steerer.fit(lm, load_exemplars(form="question").select(range(0, 360, 7)))  # every level
    return steerer


@pytest.mark.parametrize("aligned", [True, False])
def test_alpha_zero_is_the_unsteered_model_and_a_swap_moves_it(
    tiny_lm: LoadedModel, tmp_path: Path, aligned: bool
) -> None:
    steerer = _fit(tiny_lm, _sae_dir(tiny_lm, tmp_path, aligned))
    prompts = [TASK.messages(s) for s in SCENARIOS]
    decoding = Decoding(max_new_tokens=12, greedy=True)
    settings = {"positions": "all"}
    plain = generate(tiny_lm, prompts, decoding, cue=TASK.cue)
    with steerer.steering(tiny_lm, Level.CREATE, alpha=0.0, **settings):
        zero = generate(tiny_lm, prompts, decoding, cue=TASK.cue)
    assert [g.text for g in zero] == [g.text for g in plain]
    ids = tiny_lm.tokenizer("Subject: biology. Explain the answer.", return_tensors="pt")
    target = LEVELS[int(steerer.means.argmax())]  # a random SAE's slot may never fire
    with torch.no_grad():
        clean = tiny_lm.model(**ids).logits
        with steerer.steering(tiny_lm, target, alpha=50.0, **settings):
            moved = tiny_lm.model(**ids).logits
    assert not torch.allclose(clean, moved)
    assert set(steerer.artifacts()) == {"sae_weights", "slots"}


def test_the_aligned_sae_steers_its_level_slots(tiny_llama: LoadedModel, tmp_path: Path) -> None:
    steerer = _fit(tiny_llama, _sae_dir(tiny_llama, tmp_path, aligned=True))
    d_sae = steerer.sae.config.d_sae
    assert steerer.latents.tolist() == list(range(d_sae - 6, d_sae))
    assert steerer.means.shape == (6,) and (steerer.means >= 0).all()


def test_the_ablation_uses_distinct_separating_latents(
    tiny_llama: LoadedModel, tmp_path: Path
) -> None:
    steerer = _fit(tiny_llama, _sae_dir(tiny_llama, tmp_path, aligned=False))
    assert len(set(steerer.latents.tolist())) == 6


def test_separating_latents_finds_planted_ones_and_never_repeats() -> None:
    prototypes = torch.rand(6, 40) * 0.1
    planted = [3, 17, 8, 30, 1, 22]
    for level, latent in enumerate(planted):
        prototypes[level, latent] += 1.0
    assert separating_latents(prototypes).tolist() == planted
    same = torch.zeros(6, 10)
    same[:, 4] = torch.arange(6.0)  # one latent separates every level best
    assert len(set(separating_latents(same).tolist())) == 6


def test_slots_that_are_not_the_levels_are_refused(tiny_llama: LoadedModel, tmp_path: Path) -> None:
    width = tiny_llama.adapter.query_width
    sae = grow(make_sae(SAEConfig("topk", d_in=width, d_sae=2 * width, k=4)), ["x", "y"])
    directory = sae.save(tmp_path / "other")
    with pytest.raises(ConfigError, match="not the six Bloom levels"):
        AlignSAESteering(TASK, sae=str(directory))

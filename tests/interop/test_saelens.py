"""SAELens opens the SAEs bench saves and computes the same codes and reconstructions.

Runs in its own environment (`nox -s saelens`): sae-lens brings transformer-lens and pins
that the main environment does not need.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sae_lens import SAE

from bench.sae.base import SAEConfig
from bench.sae.registry import ARCHITECTURES, make_sae


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_sae_lens_loads_and_matches(tmp_path: Path, architecture: str) -> None:
    config = SAEConfig(
        architecture,
        d_in=24,
        d_sae=96,
        k=6,
        normalization_scale=1.7,
        model_name="smollm2-135m",
        hook_name="blocks.15.attn.hook_q",
    )
    torch.manual_seed(0)
    ours = make_sae(config)
    with torch.no_grad():
        ours.b_enc.uniform_(-0.2, 0.4)
        ours.b_dec.normal_()
    directory = ours.save(tmp_path / architecture)
    theirs = SAE.load_from_disk(str(directory), device="cpu")
    x = torch.randn(64, 24)
    with torch.no_grad():
        expected_hat, expected_z = ours(x)
        z = theirs.encode(x)
        x_hat = theirs.decode(z)
    torch.testing.assert_close(z, expected_z, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(x_hat, expected_hat, rtol=1e-4, atol=1e-5)
    assert theirs.cfg.metadata.hook_name == "blocks.15.attn.hook_q"

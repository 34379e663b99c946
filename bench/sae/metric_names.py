"""SAE evaluation names: SAELens / SAEBench's, and the names files written before them.

Torch-free, so a reader of evaluation files (the summary) can map old files to the current
names without loading the SAE machinery."""

from __future__ import annotations

from typing import Any

LEGACY_NAMES = {
    "fve": "explained_variance",
    "ce_clean": "ce_loss_without_sae",
    "ce_sae": "ce_loss_with_sae",
    "ce_zero_ablation": "ce_loss_with_ablation",
    "ce_loss_recovered": "ce_loss_score",
    "kl_to_clean": "kl_div_with_sae",
    "fve_drop": "explained_variance_drop",
    "ce_loss_recovered_drop": "ce_loss_score_drop",
}
"""Name in files written before the SAELens / SAEBench names -> current name."""


def current_names(record: dict[str, Any]) -> dict[str, Any]:
    """The record under the current names: legacy keys renamed, `dead_fraction` given as
    `frac_alive` (1 - dead_fraction), and the same inside `stage1` and training curves."""
    renamed: dict[str, Any] = {}
    for key, value in record.items():
        if key == "dead_fraction":
            renamed["frac_alive"] = 1 - value
        elif isinstance(value, dict):
            renamed[key] = current_names(value)
        elif key == "curve" and isinstance(value, list):
            renamed[key] = [current_names(p) if isinstance(p, dict) else p for p in value]
        else:
            renamed[LEGACY_NAMES.get(key, key)] = value
    return renamed

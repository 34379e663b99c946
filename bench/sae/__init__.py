"""Sparse autoencoders on a model site: activation store, architectures, trainer, metrics.

Knows nothing of methods, scoring, the runner or the CLI. One file per architecture
(`topk.py`, `relu.py`, `jumprelu.py`); SAEs are saved in the SAELens layout (`cfg.json` +
`sae_weights.safetensors`).
"""

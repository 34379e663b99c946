"""`bench perf`: load times, throughput, steering and collection costs, where a run's time
goes (--profile), or a paper architecture's speed at its real size (--arch)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click
from tabulate import tabulate

from bench.cli.app import friendly_errors, main
from bench.errors import BenchError


def _flat(values: dict[str, Any], prefix: str = "") -> list[list[Any]]:
    """Nested measurements as (dotted name, value) rows."""
    rows = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flat(value, f"{name}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            rows += [r for i, item in enumerate(value) for r in _flat(item, f"{name}.{i}.")]
        else:
            rows.append([name, value])
    return rows


@main.command()
@click.option("--model", default="smollm2-135m", show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--max-new-tokens", default=64, show_default=True)
@click.option(
    "--dtype",
    default="auto",
    show_default=True,
    help="auto, float32, bfloat16, float16 (auto: float32 on a CPU; bfloat16 with --arch).",
)
@click.option("--sae", type=click.Path(file_okay=False), help="Also time query-SAE steering.")
@click.option("--vector-layer", type=int, help="Also time CAA and ActAdd at this layer.")
@click.option("--collect-tokens", type=int, default=0, help="Also time collection (tokens).")
@click.option(
    "--profile",
    "with_profile",
    is_flag=True,
    help="Also run a small real grid and split its time; time each speed-up against its "
    "plain counterpart.",
)
@click.option("--profile-limit", default=8, show_default=True, help="Scenarios of that grid.")
@click.option("--batch-tokens", type=int, help="batch_tokens of that grid (default: config's).")
@click.option(
    "--arch",
    type=click.Choice(["phi-3-mini", "mistral-7b"]),
    help="Instead: this paper architecture at its real size (needs --random-weights).",
)
@click.option("--random-weights", is_flag=True, help="With --arch: random weights.")
@click.option("--layers", type=int, help="With --arch: keep only this many layers.")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@friendly_errors
def perf(
    model: str,
    batch_size: int,
    max_new_tokens: int,
    dtype: str,
    sae: str | None,
    vector_layer: int | None,
    collect_tokens: int,
    with_profile: bool,
    profile_limit: int,
    batch_tokens: int | None,
    arch: str | None,
    random_weights: bool,
    layers: int | None,
    out: str | None,
    as_json: bool,
) -> None:
    """Measure load times, batched vs unbatched tokens/s, steering and collection costs,
    and (--profile) where a run's time goes; or (--arch) a paper architecture's speed."""
    from bench.atomic import write_atomically

    if out is not None and not Path(out).resolve().parent.is_dir():
        raise BenchError(f"--out: folder {Path(out).parent} does not exist")
    if arch is not None:
        if not random_weights:
            raise BenchError(
                "--arch needs --random-weights (for real weights: bench perf --model ALIAS)"
            )
        from bench.perf.fullsize import measure_fullsize

        values = measure_fullsize(arch, "bfloat16" if dtype == "auto" else dtype, layers)
    else:
        from bench.perf.throughput import measure

        report = measure(
            model,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            dtype=dtype,
            sae=sae,
            vector_layer=vector_layer,
            collect_tokens=collect_tokens,
        )
        values = dataclasses.asdict(report)
        if with_profile:
            from bench.perf.profile import profile_grid, profile_methods, speedups

            overrides = [f"dtype={dtype}"]
            if batch_tokens is not None:
                overrides.append(f"batch_tokens={batch_tokens}")
            methods = profile_methods(vector_layer, sae)
            values["profile"], texts = profile_grid(model, methods, profile_limit, overrides)
            values["speedups"] = speedups(model, texts)
    text = json.dumps(values, indent=2)
    if out is not None:
        write_atomically(out, text + "\n")
        click.echo(f"wrote {out}", err=True)
    if as_json:
        click.echo(text)
    else:
        click.echo(tabulate(_flat(values), headers=["measure", "value"], floatfmt=".3f"))
    failed = [name for name, held in values.get("checks", {}).items() if not held]
    if failed:
        click.echo(f"error: checks failed: {', '.join(failed)}", err=True)
        raise SystemExit(1)

"""The `bench` group and how every command fails: one line on stderr and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn

import click

from bench.errors import BenchError


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a `BenchError` into one line on stderr and exit code 2 (no traceback)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BenchError as error:
            fail(str(error))

    return wrapper


class OneLineErrors(click.Group):
    """Click's usage errors (a bad option, a missing file argument) as one line and exit 2,
    like every other user mistake, instead of a usage block."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            returned = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as error:
            click.echo(error.ctx.get_help() if error.ctx else "")
            sys.exit(0)
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx else "bench"
            fail(f"{error.format_message().rstrip('.')} (see `{where} --help`)")
        except click.ClickException as error:
            click.echo(f"error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(returned if isinstance(returned, int) else 0)


@click.group(cls=OneLineErrors)
@click.version_option(package_name="bloom-steering-bench")
def main() -> None:
    """Benchmark for steering LLM teacher feedback toward a Bloom's-taxonomy level."""


def write_or_print(text: str, out: str | None) -> None:
    """`text` to the file `out` (atomically, saying so on stderr), or to stdout."""
    if out is None:
        click.echo(text, nl=False)
        return
    from bench.atomic import write_atomically

    write_atomically(out, text)
    click.echo(f"wrote {out}", err=True)

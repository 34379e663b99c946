"""The `bench` command line: one module per command group, each parsing and printing only.

Importing this package registers every command on `main` (the console script)."""

from bench.cli import data, models, paper, perf, results, run, sae, score, store
from bench.cli.app import main

__all__ = ["data", "main", "models", "paper", "perf", "results", "run", "sae", "score", "store"]

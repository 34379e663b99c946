"""Bloom-level steering benchmark: harness, paper methods and scoring."""

__version__ = "0.1.0"

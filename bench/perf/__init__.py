"""Benchmarks (never asserted in tests): `throughput` (load times, generation, steering and
collection cost), `profile` (where a small real grid's time goes, and what each speed-up
saves), `fullsize` (the paper's architectures at their real sizes, random weights)."""

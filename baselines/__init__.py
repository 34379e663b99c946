"""Baseline methods, one file each; each implements `bench.methods.base.Steerer`."""

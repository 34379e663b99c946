"""Typed errors for user mistakes. The CLI turns each into a one-line message and exit code 2."""


class BenchError(Exception):
    """A problem the user can fix (bad input, missing model, bad config)."""


class ConfigError(BenchError):
    """A config file or option is missing, malformed or invalid."""


class UnknownNameError(BenchError):
    """A model alias, method or level that is not registered."""


class ModelUnavailableError(BenchError):
    """A registered model whose weights are not on this machine."""


class DataError(BenchError):
    """A data file (JSONL or user CSV) that is missing or malformed."""

"""Errors the CLI turns into one-line messages instead of tracebacks."""


class UsageError(ValueError):
    """Bad input: the message names the argument (or source) and what is allowed."""


class EnqueueError(RuntimeError):
    """Cloud Tasks refused or could not be reached for one task, after any retries."""

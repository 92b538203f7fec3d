"""Small helpers about exceptions, shared inside the core."""

from __future__ import annotations


def root_cause(error: BaseException) -> BaseException:
    """Unwrap exception groups that hold a single exception."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error

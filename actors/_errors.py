"""Small helpers about exceptions, shared inside the core."""

from __future__ import annotations

from collections.abc import Hashable

from loguru import logger


def root_cause(error: BaseException) -> BaseException:
    """Unwrap exception groups that hold a single exception."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def cancellation_of(key: Hashable, group: BaseExceptionGroup[BaseException]) -> BaseException:
    """What of ``group`` must go on when a crash meets a cancellation; the crash is logged.

    A handler (or a background task) that fails while the shutdown cancels its incarnation
    raises both at once. The cancellation belongs to whoever cancelled; the crash must not
    end the supervisor's task group, and must not go unsaid either.
    """
    crashes, rest = group.split(Exception)
    if crashes is not None:
        logger.warning(
            "actor {key!r} crashed while stopping: {cause!r}", key=key, cause=root_cause(crashes)
        )
    assert rest is not None  # a group of exceptions only is an ExceptionGroup, a crash
    return rest

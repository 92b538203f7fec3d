from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway import logs


@pytest.fixture
def anyio_backend() -> str:
    """aiogram runs on asyncio."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _logs_to_stderr() -> Iterator[None]:
    """``main()`` called in a test points the log at that test's captured stderr, closed
    after it: point it back at the real one (autouse: torn down after ``capsys``)."""
    yield
    logs.setup()

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """aiogram runs on asyncio."""
    return "asyncio"

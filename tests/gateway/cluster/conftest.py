from __future__ import annotations

from typing import Any

import pytest

from tests.backends import trio_mockclock


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio-mockclock"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """The leases run on asyncio and on trio (with a clock that jumps whenever all tasks
    wait), as the actors do; the rest of ``tests/gateway`` is asyncio only (aiogram)."""
    if request.param == "trio":
        return trio_mockclock()
    return "asyncio"

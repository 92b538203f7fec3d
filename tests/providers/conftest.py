from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.llm import llm_server

__all__ = ["llm_server"]


@pytest.fixture(params=["asyncio", "trio"])
def network_backend(request: pytest.FixtureRequest) -> Any:
    """Real clocks on both backends: a jumping clock would time out real sockets."""
    return request.param

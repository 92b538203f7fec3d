"""Shared fixtures: every async test runs on asyncio and on trio with a MockClock.

Hypothesis profiles: ``ci`` (the default, what ``make test`` runs) and ``fuzz`` (``make
fuzz``: twenty times the examples), chosen with ``HYPOTHESIS_PROFILE``. The state machines
scale their examples with the profile (``tests.strategies.machine_settings``).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import settings

from tests.backends import trio_mockclock
from tests.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures for every test

settings.register_profile("ci", max_examples=100, print_blob=True)
settings.register_profile("fuzz", max_examples=2000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio-mockclock"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """asyncio with the real clock, and trio with a clock that jumps whenever all tasks wait."""
    if request.param == "trio":
        return trio_mockclock()
    return "asyncio"

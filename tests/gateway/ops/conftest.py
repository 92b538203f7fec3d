from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.ops.browser import Browser, headless_chromium


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A headless Chromium, started before the test (so a missing one skips it cleanly)."""
    with headless_chromium() as chromium:
        yield chromium

"""The fake LLM provider for tests: the package's simulator, served from its own thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.demo.model_sim import LLMSimulator, Reply, Transcript

__all__ = ["LLMSimulator", "Reply", "Transcript", "llm_server"]


@pytest.fixture
def llm_server() -> Iterator[LLMSimulator]:
    """A running simulator on loopback (real sockets), usable from any event loop."""
    with LLMSimulator().serving_in_thread() as server:
        yield server

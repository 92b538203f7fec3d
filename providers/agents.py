"""Choosing the agent behind the threads, by name.

``chat`` is the built-in chat agent and ``http`` the HTTP adapter; any other name is looked up
in the ``threadgate.agents`` entry-point group, so another package can put its own agent
(tools, memory) behind Threadgate without forking it. See ``docs/agents.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points

import attrs
import httpx

from actors.thread.ports import AgentRunner
from providers.chain import FallbackChain
from providers.chat_agent import ChatAgent, SessionHistory
from providers.exceptions import AgentUnknownError
from providers.http_agent import HttpAgent
from providers.usage import UsageLedger

GROUP = "threadgate.agents"


@attrs.frozen
class AgentContext:
    """What an agent factory gets to build its agent."""

    chain: FallbackChain
    """The configured providers, through their credential pools."""
    history: SessionHistory
    """Session histories (the gateway's store)."""
    http: httpx.AsyncClient
    """The shared HTTP client."""
    system_prompt: str
    """The configured system prompt."""
    context_budget: int
    """Characters of history to send at most."""
    options: Mapping[str, str] = attrs.field(factory=dict)
    """Agent-specific settings (``agent.url``, ``agent.token``)."""
    prompts: Mapping[str, str] = attrs.field(factory=dict)
    """System prompt overrides by thread or chat (``[llm.prompts]``)."""
    vision: bool = True
    """Whether the model takes images (``llm.vision``)."""
    usage: UsageLedger | None = None
    """Where the agent records the token usage of its model calls (``providers.usage``);
    an agent of another package may ignore it (its usage is then not counted)."""


AgentFactory = Callable[[AgentContext], AgentRunner]


def _chat(context: AgentContext) -> AgentRunner:
    return ChatAgent(
        context.chain,
        context.history,
        context.system_prompt,
        context.context_budget,
        context.prompts,
        context.vision,
        context.usage,
    )


def _http(context: AgentContext) -> AgentRunner:
    url = context.options.get("url", "")
    if not url:
        raise AgentUnknownError("the http agent needs agent.url")
    return HttpAgent(url, context.http, token=context.options.get("token", ""), usage=context.usage)


BUILT_IN: dict[str, AgentFactory] = {"chat": _chat, "http": _http}


def available() -> list[str]:
    """Every agent name that can be configured."""
    return sorted({*BUILT_IN, *(ep.name for ep in entry_points(group=GROUP))})


def load_agent(name: str, context: AgentContext) -> AgentRunner:
    """Build the agent called ``name``."""
    factory = BUILT_IN.get(name)
    if factory is None:
        found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
        if not found:
            raise AgentUnknownError(
                f"no agent named {name!r} (available: {', '.join(available())})"
            )
        factory = found[0].load()
    return factory(context)

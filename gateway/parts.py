"""The pieces ``gateway.app`` assembles from the config: the thread actors' settings, the
providers with their credential pools, the agent over them, and the start-up line."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from actors.thread.ports import AgentRunner
from actors.thread.settings import Activation, BusyPolicy, ThreadSettings
from gateway.config import Config, FallbackConfig
from gateway.exceptions import ConfigInvalidError
from gateway.store.sqlite import Store
from gateway.store.usage import UsageStore
from providers.agents import AgentContext, load_agent
from providers.chain import FallbackChain, ProviderEntry
from providers.exceptions import AgentUnknownError
from providers.http import ChatHttp, Limits, httpx_limits
from providers.openai_client import ChatClient
from providers.pool import CredentialPool, Strategy
from providers.secrets import ApiKey


def thread_settings(config: Config) -> ThreadSettings:
    return ThreadSettings(
        busy_policy=BusyPolicy(config.threads.busy_policy),
        reset_commands=frozenset({"new", "reset", *config.threads.reset_skills}),
        stall_timeout=config.threads.stall_timeout,
        run_timeout=config.threads.run_timeout,
        allowed_models=config.threads.allowed_models,
        activation=Activation(config.threads.group_activation),
        debounce=config.threads.debounce,
        reactions=config.telegram.reactions,
    )


CHAT_LIMITS = Limits(connections=200, keepalive=5.0)
"""The model's connections (``providers.http``): as many idle ones kept as may be open:
answers stream for seconds, so more than httpx's default of 20 are in flight at once, and
httpcore then closed every idle connection on each request (and opened new ones): measured
with bench/bench_gateway.py at 20 chats."""

HTTP_LIMITS = httpx_limits(CHAT_LIMITS)
"""The same for the shared httpx client (media downloads, the HTTP agent, speech to text)."""


async def providers(config: Config, store: Store, http: ChatHttp) -> tuple[ProviderEntry, ...]:
    """The primary provider, then the fallbacks, each with its own credential pool, their
    chat clients over ``http``."""
    llm = config.llm
    primary = FallbackConfig(
        "llm", llm.base_url, llm.model, llm.api_keys, "", llm.strategy, llm.quota_cooldown
    )
    entries = []
    for provider in (primary, *llm.fallbacks):
        keys = [ApiKey(f"key-{i}", secret) for i, secret in enumerate(provider.api_keys, 1)]
        if not keys:
            keys = [ApiKey("no-key", "")]  # local models (Ollama, llama.cpp) need none
        pool = CredentialPool(
            provider.name,
            keys,
            Strategy(provider.strategy),
            provider.quota_cooldown,
            store=store,
        )
        await pool.restore()
        client = ChatClient(
            provider.base_url, http, read_timeout=llm.read_timeout, stream_usage=llm.stream_usage
        )
        entries.append(
            ProviderEntry(f"{provider.name}/{provider.model}", pool, client, provider.model)
        )
    return tuple(entries)


def configured_agent(
    config: Config,
    entries: tuple[ProviderEntry, ...],
    store: Store,
    http: httpx.AsyncClient,
    usage: UsageStore | None = None,
) -> AgentRunner:
    """The configured agent, over the providers' fallback chain; it records usage in
    ``usage``."""
    context = AgentContext(
        FallbackChain(entries),
        store,
        http,
        config.llm.system_prompt,
        config.llm.context_budget,
        {"url": config.agent.url, "token": config.agent.token},
        config.llm.prompts,
        vision=config.llm.vision,
        usage=usage,
    )
    try:
        return load_agent(config.agent.name, context)
    except AgentUnknownError as error:
        raise ConfigInvalidError("agent.name", str(error)) from None


def started_line(config: Config, admin_url: str) -> str:
    """The one start-up log line: mode, model, endpoint host, keys, allowlist, admin URL.

    It names no secret: keys are counted, the endpoint shows its host only (a URL may carry
    credentials or a query string), and the admin URL is an address (its token is a header).
    """
    llm, telegram = config.llm, config.telegram
    host = urlsplit(llm.base_url).netloc.rpartition("@")[2] or llm.base_url
    keys = len(llm.api_keys)
    fallbacks = f", {len(llm.fallbacks)} fallback(s)" if llm.fallbacks else ""
    allowed = [
        f"{len(ids)} {what}"
        for ids, what in ((telegram.allowed_users, "user(s)"), (telegram.allowed_chats, "chat(s)"))
        if ids
    ]
    if telegram.dm_policy == "pairing":
        allowed.append("approved users")
    dms = "" if telegram.dm_policy == "allowlist" else f" (private chats: {telegram.dm_policy})"
    return (
        f"threadgate started: {telegram.mode}, model {llm.model} at {host} "
        f"({keys} API key{'' if keys == 1 else 's'}{fallbacks}), agent {config.agent.name}, "
        f"allowlist {' and '.join(allowed) if allowed else 'everyone'}{dms}, "
        f"admin {admin_url or 'off'}, data {config.data_dir}"
    )

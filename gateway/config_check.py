"""Rules about the config as a whole: URLs, the token's shape, the agent, the admin endpoint.

:func:`check` raises :class:`ConfigInvalidError` on what is certainly wrong (``load`` calls
it); :func:`warnings` lists what is allowed but likely unintended (``check-config`` and
``doctor`` print them). Texts name the real key and never show a secret.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gateway.exceptions import ConfigInvalidError

if TYPE_CHECKING:
    from gateway.config import Config

TOKEN_SHAPE = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")
"""A bot token as @BotFather gives it: the bot's id, a colon, then the secret part."""
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def split_host_port(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8787`` for IPv6) into the host without brackets and the port."""
    host, _, port = text.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (with or without IPv6 brackets) is this machine only."""
    host = host.removeprefix("[").removesuffix("]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as an HTTP endpoint, or ``None``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be a URL starting http:// or https:// with a host name, got {url!r}"
    return None


def _url(key: str, url: str) -> None:
    problem = url_problem(url)
    if problem is not None:
        raise ConfigInvalidError(key, problem)


def check(config: Config) -> None:
    """Raise :class:`ConfigInvalidError` for the first rule ``config`` breaks."""
    names = ["llm"] + [f.name for f in config.llm.fallbacks]
    for index, name in enumerate(names[1:], 1):
        if name in names[:index]:
            raise ConfigInvalidError(
                f"llm.fallbacks[{index}].name", f"{name!r} is taken (names must differ)"
            )
    telegram = config.telegram
    if telegram.token and not TOKEN_SHAPE.fullmatch(telegram.token):
        raise ConfigInvalidError(
            "telegram.token",
            "does not look like a bot token (digits, a colon, then letters and digits, "
            "as @BotFather gives it); copy it again",
        )
    _url("telegram.api_base", telegram.api_base)
    _url("llm.base_url", config.llm.base_url)
    if config.stt.base_url:
        _url("stt.base_url", config.stt.base_url)
    for key, count in (
        ("stt.max_seconds", config.stt.max_seconds),
        ("media.max_pdf_pages", config.media.max_pdf_pages),
    ):
        if count <= 0:
            raise ConfigInvalidError(key, f"must be > 0, got {count}")
    for index, fallback in enumerate(config.llm.fallbacks, 1):
        _url(f"llm.fallbacks[{index}].base_url", fallback.base_url)
    if telegram.mode == "webhook":
        if not telegram.webhook_url:
            raise ConfigInvalidError(
                "telegram.webhook_url", "webhook mode needs the public URL Telegram posts to"
            )
        _url("telegram.webhook_url", telegram.webhook_url)
        if not _WEBHOOK_SECRET.fullmatch(telegram.webhook_secret):
            raise ConfigInvalidError(
                "telegram.webhook_secret",
                "webhook mode needs a secret of 1-256 characters A-Z, a-z, 0-9, _ and -",
            )
    _agent(config)
    _store(config)
    host, _ = split_host_port(config.admin.addr)
    if not is_loopback(host) and not config.admin.token:
        raise ConfigInvalidError("admin.token", "required when admin.addr is not loopback")


_REPLICA_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _store(config: Config) -> None:
    url = config.store.url
    if url and urlsplit(url).scheme not in ("postgresql", "postgres"):
        raise ConfigInvalidError(
            "store.url",
            "must be empty (the SQLite file in data_dir) or a postgresql:// URL",
        )
    cluster = config.cluster
    if cluster.replica_id and not _REPLICA_ID.fullmatch(cluster.replica_id):
        raise ConfigInvalidError("cluster.replica_id", "1-64 characters A-Z, a-z, 0-9, _, . and -")
    if not cluster.lease_ttl >= 1.0:
        raise ConfigInvalidError(
            "cluster.lease_ttl", f"must be >= 1 second, got {cluster.lease_ttl}"
        )


def _agent(config: Config) -> None:
    from providers.agents import available  # the agents' entry points: read when checked

    agent = config.agent
    names = available()
    if agent.name not in names:
        raise ConfigInvalidError(
            "agent.name", f"no agent named {agent.name!r} (available: {', '.join(names)})"
        )
    if agent.name == "http":
        if not agent.url:
            raise ConfigInvalidError("agent.url", "the http agent needs the URL it posts to")
        _url("agent.url", agent.url)


def warnings(config: Config) -> list[str]:
    """What is allowed but probably not meant, one plain sentence each."""
    found = []
    telegram = config.telegram
    if telegram.dm_policy == "open":
        found.append(
            "telegram.dm_policy is open: anyone who finds the bot can use it in a private chat "
            "(and your API keys), whatever telegram.allowed_users says"
        )
    elif telegram.dm_policy == "allowlist" and not (
        telegram.allowed_users or telegram.allowed_chats
    ):
        found.append(
            "telegram.allowed_users and telegram.allowed_chats are empty: anyone who finds "
            "the bot can use it (and your API keys); set THREADGATE_ALLOWED_USERS"
        )
    if telegram.token and not config.llm.api_keys and _remote(config.llm.base_url):
        found.append(
            f"llm.api_keys is empty but {urlsplit(config.llm.base_url).hostname} usually "
            "needs a key; set THREADGATE_LLM_API_KEYS"
        )
    return found


def _remote(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return not is_loopback(host) and not host.startswith(("10.", "192.168.", "172."))

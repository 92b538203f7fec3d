"""Reading one config value as the type its default has: lists, ids, numbers, booleans.

Texts from the environment and values from TOML are both accepted; every error names the
key and says plainly what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.exceptions import ConfigInvalidError

REDACTED = "[redacted]"
"""What a secret is shown as, wherever the config is printed."""
SECRET_KEYS = frozenset(
    {
        "telegram.token",
        "telegram.webhook_secret",
        "llm.api_keys",
        "llm.fallbacks.api_keys",
        "admin.token",
        "agent.token",
        "stt.api_keys",
        "store.url",
    }
)
_ZERO_IS_OFF = frozenset(
    {"threads.debounce", "limits.user_daily_messages", "limits.user_daily_tokens"}
)
"""Numbers whose 0 means off: never negative."""
_STRATEGIES = ("fill_first", "round_robin", "least_used", "random")
_CHOICES = {
    "telegram.mode": ("polling", "webhook"),
    "llm.strategy": _STRATEGIES,
    "llm.fallbacks.strategy": _STRATEGIES,
    "threads.busy_policy": ("queue", "interrupt"),
    "threads.group_activation": ("mention", "always"),
    "threads.group_sessions": ("shared", "per_user"),
    "telegram.dm_policy": ("allowlist", "pairing", "open"),
    "telegram.streaming": ("edit", "draft", "auto"),
}


def coerce(key: str, value: Any, default: Any) -> Any:
    """``value`` (from TOML, or an environment variable's text) as the type of ``default``;
    :class:`ConfigInvalidError` naming ``key`` when it cannot be."""
    try:
        if isinstance(default, dict):
            if not isinstance(value, Mapping):
                raise ConfigInvalidError(key, "must be a table")
            for name in value:
                chat, _, topic = str(name).partition(":")
                if not chat.lstrip("-").isdigit() or (topic and not topic.isdigit()):
                    raise ConfigInvalidError(f"{key}.{name}", "keys are chat ids or chat:topic")
            return {str(k): str(v) for k, v in value.items()}
        if isinstance(default, tuple):
            if not isinstance(value, str | list):
                raise ConfigInvalidError(key, "must be a list or a comma-separated string")
            items = value.split(",") if isinstance(value, str) else list(value)
            items = [str(i).strip() for i in items if str(i).strip()]
            return _ids(key, items) if key.endswith(("_users", "_chats")) else tuple(items)
        if isinstance(default, bool):
            return _boolean(key, value)
        if isinstance(default, int):
            number = _number(key, value, int)
            if key in _ZERO_IS_OFF and number < 0:
                raise ConfigInvalidError(key, f"must be >= 0 (0: no limit), got {value!r}")
            return number
        if isinstance(default, float):
            result = _number(key, value, float)
            if (key.endswith("_retention_days") or key in _ZERO_IS_OFF) and result == 0:
                return result  # keep forever; off
            if result < 0 and key in _ZERO_IS_OFF:
                raise ConfigInvalidError(key, f"must be >= 0 (0: off), got {value!r}")
            if result <= 0:
                raise ConfigInvalidError(key, f"must be > 0, got {value!r}")
            return result
        text = str(value).strip()
        if key in _CHOICES and text not in _CHOICES[key]:
            raise ConfigInvalidError(
                key, f"must be one of {', '.join(_CHOICES[key])}, got {text!r}"
            )
        if key in ("admin.addr", "telegram.webhook_listen"):
            host, _, port = text.rpartition(":")
            if not host or not port.isdigit() or int(port) > 65535:
                raise ConfigInvalidError(
                    key, f"must be host:port (e.g. 127.0.0.1:8787 or [::1]:8787), got {text!r}"
                )
        return text
    except (TypeError, ValueError):
        shown = REDACTED if key in SECRET_KEYS else repr(value)
        raise ConfigInvalidError(key, f"{shown} is not a valid value") from None


_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True}
_BOOLEANS |= {"false": False, "0": False, "no": False, "off": False}


def _boolean(key: str, value: Any) -> bool:
    """A TOML boolean, or its spelling in an environment variable (true/false, 1/0,
    yes/no, on/off)."""
    if isinstance(value, bool):
        return value
    found = _BOOLEANS.get(str(value).strip().lower())
    if found is None:
        raise ConfigInvalidError(key, f"must be true or false, got {value!r}")
    return found


def _ids(key: str, items: list[str]) -> tuple[int, ...]:
    what = "user" if key.endswith("_users") else "chat"
    for item in items:
        if not item.lstrip("-").isdigit():
            raise ConfigInvalidError(
                key,
                f"{item!r} is not a numeric {what} id; Telegram ids are numbers (names can "
                "change): `threadgate init` finds yours when you message the bot",
            )
    return tuple(int(i) for i in items)


def _number(key: str, value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool):
        raise ValueError(value)
    try:
        return kind(value)
    except (TypeError, ValueError):
        noun = "a whole number" if kind is int else "a number"
        shown = REDACTED if key in SECRET_KEYS else repr(value)
        raise ConfigInvalidError(key, f"must be {noun}, got {shown}") from None

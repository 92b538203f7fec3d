"""``threadgate doctor``: what ``check-config`` checks, then the same config tried live.

One line per check, ``ok``, ``warn`` or ``fail``, each failure or warning with its fix. The
exit status is 1 if anything failed. Nothing printed holds a secret: keys are named by their
labels (``key-1``), the token never appears.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import attrs
import httpx
from rich.console import Console
from rich.markup import escape

from gateway.config import Config
from gateway.config_check import split_host_port
from gateway.config_check import warnings as config_warnings
from gateway.exceptions import ConfigInvalidError, ProbeFailedError, StoreUnavailableError
from gateway.setup.probes import BotAPI, list_models, try_completion
from gateway.store.pg_schema import MIGRATIONS, schema_version
from gateway.store.postgres import redacted

Level = Literal["ok", "warn", "fail"]
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@attrs.frozen
class Check:
    """The outcome of one check."""

    level: Level
    """ok, warn or fail."""
    name: str
    """What was checked (``telegram``, ``llm key-2``, ``data_dir``)."""
    detail: str
    """What was found."""
    fix: str = ""
    """What to do about it (for warn and fail)."""


@attrs.frozen
class _Provider:
    name: str
    base_url: str
    model: str
    keys: tuple[str, ...] = attrs.field(repr=False)


def run_doctor(load: Callable[[], Config], console: Console) -> int:
    """Print every check's line; 1 if any failed, else 0."""
    failed = False
    for check in checks(load):
        failed |= check.level == "fail"
        line = (
            f"[{_STYLE[check.level]}]{check.level:<4}[/] {escape(check.name)}: "
            f"{escape(check.detail)}"
        )
        if check.fix:
            line += f" [dim]→ {escape(check.fix)}[/]"
        console.print(line, soft_wrap=True)
    return 1 if failed else 0


def checks(load: Callable[[], Config]) -> Iterator[Check]:
    """Every check, in order; the live ones only once the config is valid."""
    try:
        config = load()
    except ConfigInvalidError as error:
        yield Check("fail", "config", str(error), "fix that key (docs/configuration.md)")
        return
    yield Check("ok", "config", "valid")
    for warning in config_warnings(config):
        subject, _, fix = warning.rpartition("; ")
        yield Check("warn", "config", subject or warning, fix if subject else "")
    with httpx.Client() as http:
        yield from _telegram(config, http)
        providers = [_Provider("llm", config.llm.base_url, config.llm.model, config.llm.api_keys)]
        providers += [
            _Provider(f.name, f.base_url, f.model, f.api_keys) for f in config.llm.fallbacks
        ]
        if config.agent.name == "chat":
            for provider in providers:
                yield from _provider(provider, http)
    yield _data_dir(Path(config.data_dir))
    if config.store.url:
        yield store_check(config.store.url)
    yield _free("admin.addr", config.admin.addr)
    if config.telegram.mode == "webhook":
        yield _free("telegram.webhook_listen", config.telegram.webhook_listen)


def _telegram(config: Config, http: httpx.Client) -> Iterator[Check]:
    telegram = config.telegram
    if not telegram.token:
        yield Check(
            "fail",
            "telegram",
            "no bot token",
            "set TELEGRAM_BOT_TOKEN (in .env or the environment), or run threadgate init",
        )
        return
    api = BotAPI(telegram.api_base, telegram.token, http)
    try:
        me = api.get_me()
    except ProbeFailedError as error:
        fix = (
            "copy the token again from @BotFather (/mybots, API Token) into TELEGRAM_BOT_TOKEN"
            if error.status == 401
            else f"check the network and telegram.api_base ({telegram.api_base})"
        )
        yield Check("fail", "telegram", f"getMe: {error.problem}", fix)
        return
    yield Check("ok", "telegram", f"the token is @{me.username}'s (bot id {me.id})")
    try:
        info = api.webhook()
    except ProbeFailedError as error:
        yield Check("warn", "webhook", f"getWebhookInfo: {error.problem}", "try again later")
        return
    yield _webhook(config, str(info.get("url") or ""), str(info.get("last_error_message") or ""))


def _webhook(config: Config, url: str, last_error: str) -> Check:
    wanted = config.telegram.webhook_url
    if config.telegram.mode == "polling":
        if url:
            return Check(
                "warn",
                "webhook",
                f"a webhook is set ({url}) but the mode is polling",
                "threadgate run removes it; if another program uses this bot, stop it first",
            )
        return Check("ok", "webhook", "none set, as polling needs")
    if last_error:
        return Check(
            "warn",
            "webhook",
            f"Telegram reports its last delivery failed: {last_error}",
            "check that the URL reaches telegram.webhook_listen through your TLS proxy",
        )
    if not url:
        return Check("ok", "webhook", "none set yet; threadgate run sets telegram.webhook_url")
    if url != wanted:
        return Check(
            "warn",
            "webhook",
            f"set to {url}, not telegram.webhook_url ({wanted})",
            "threadgate run replaces it; if another program uses this bot, stop it first",
        )
    return Check("ok", "webhook", f"set to {url}, as configured")


def _provider(provider: _Provider, http: httpx.Client) -> Iterator[Check]:
    name = provider.name
    first = provider.keys[0] if provider.keys else ""
    try:
        models = list_models(http, provider.base_url, first)
    except ProbeFailedError as error:
        if error.status in (401, 403):
            models = None  # the keys' checks below say which key is refused
        else:
            yield Check(
                "fail",
                f"{name} endpoint",
                error.problem,
                f"check the URL and that the server is up ({name}.base_url)"
                if name == "llm"
                else "check its base_url and that the server is up",
            )
            return
    if models is None:
        yield Check(
            "ok",
            f"{name} endpoint",
            f"{provider.base_url} answers (it lists no models; {provider.model!r} is tried below)",
        )
    elif provider.model in models:
        yield Check("ok", f"{name} endpoint", f"{provider.base_url} offers {provider.model!r}")
    else:
        shown = ", ".join(models[:8]) + (", ..." if len(models) > 8 else "")
        yield Check(
            "fail",
            f"{name} model",
            f"{provider.base_url} does not offer {provider.model!r} (it offers: {shown})",
            "set THREADGATE_LLM_MODEL (or llm.model) to one it offers",
        )
        return
    labels = [f"key-{i}" for i in range(1, len(provider.keys) + 1)] or ["no key"]
    for label, key in zip(labels, provider.keys or ("",), strict=True):
        yield _key(provider, http, label, key)


def _key(provider: _Provider, http: httpx.Client, label: str, key: str) -> Check:
    subject = f"{provider.name} {label}"
    try:
        try_completion(http, provider.base_url, provider.model, key)
    except ProbeFailedError as error:
        if error.status in (401, 403):
            fix = (
                "set an API key in THREADGATE_LLM_API_KEYS"
                if not key
                else f"replace {label} (number {label[4:]} in its list of keys) with a valid one"
            )
            return Check("fail", subject, f"refused: {error.problem}", fix)
        if error.status == 402:
            return Check("warn", subject, f"out of credit: {error.problem}", "top it up")
        if error.status == 429:
            return Check("warn", subject, f"rate-limited now: {error.problem}", "wait, or add keys")
        if error.status == 404:
            return Check(
                "fail", subject, f"the model is unknown: {error.problem}", "check llm.model"
            )
        return Check("fail", subject, error.problem, "try again; check the provider's status")
    return Check("ok", subject, f"accepted (one completion of {provider.model!r})")


def _data_dir(path: Path) -> Check:
    if not path.exists():  # not created here: `run` creates it; can it?
        parent = next(p for p in path.absolute().parents if p.exists())
        if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return Check("ok", "data_dir", f"{path} does not exist yet; run will create it")
        return Check(
            "fail",
            "data_dir",
            f"{path} does not exist and {parent} is not writable",
            "create it, give this user write access, or set THREADGATE_DATA_DIR",
        )
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as error:
        return Check(
            "fail",
            "data_dir",
            f"cannot write in {path}: {error.strerror}",
            "create it, give this user write access, or set THREADGATE_DATA_DIR",
        )
    return Check("ok", "data_dir", f"{path} is writable")


def store_check(url: str) -> Check:
    """Whether the PostgreSQL store at ``url`` answers, and its schema is one this version
    can use (read only: the gateway makes or migrates it at start)."""
    fix = "check store.url (THREADGATE_DATABASE_URL): host, port, user, password, database"
    try:
        version = schema_version(url)
    except StoreUnavailableError as error:
        return Check("fail", "store", str(error), fix)
    where = redacted(url)
    if version is None:
        return Check("ok", "store", f"{where} answers; run will create the schema")
    if version > len(MIGRATIONS):
        return Check(
            "fail",
            "store",
            f"{where} has schema version {version}, newer than this threadgate's"
            f" ({len(MIGRATIONS)})",
            "upgrade threadgate to the version the other replicas run",
        )
    return Check("ok", "store", f"{where} answers (schema version {version})")


def _free(key: str, addr: str) -> Check:
    host, port = split_host_port(addr)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            probe.bind(address)
    except OSError as error:
        taken = error.errno == errno.EADDRINUSE
        return Check(
            "fail",
            key,
            f"{addr} is taken" if taken else f"cannot listen on {addr}: {error.strerror}",
            "is a gateway already running? (threadgate status); else pick another port"
            if taken
            else "use an address of this machine",
        )
    return Check("ok", key, f"{addr} is free")

"""Configuration: a TOML file plus environment overrides, into attrs classes.

Every error names the key and says what is wrong; unknown keys are errors. Secrets (the bot
token, API keys, the admin token) are redacted wherever the config is printed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from gateway.config_check import check
from gateway.config_values import REDACTED, SECRET_KEYS, coerce
from gateway.exceptions import ConfigInvalidError


@attrs.frozen
class TelegramConfig:
    """The bot."""

    token: str = attrs.field(default="", repr=False)
    """Bot token from @BotFather (``123456:ABC...``). Without one, ``run`` starts the local
    demo in a terminal and otherwise stops with exit status 2."""
    api_base: str = "https://api.telegram.org"
    """Bot API base URL (a local Bot API server, or the demo's simulator)."""
    allowed_users: tuple[int, ...] = ()
    """User ids allowed to talk to the agent; empty allows everyone."""
    allowed_chats: tuple[int, ...] = ()
    """Chat ids allowed; empty allows every chat."""
    admin_users: tuple[int, ...] = ()
    """User ids that may see every thread with /status all."""
    poll_timeout: int = 25
    """Long-polling timeout, seconds."""
    send_rate: float = 30.0
    """Requests per second to the Bot API at most, all chats together."""
    chat_send_interval: float = 1.0
    """Seconds between two requests (sends and edits alike) to the same chat at least."""
    group_sends_per_minute: int = 20
    """Requests (sends and edits alike) per minute to one group at most."""
    edit_interval: float = 1.0
    """Seconds between two partial updates of one streamed answer at least."""
    mode: str = "polling"
    """How updates arrive: polling (getUpdates) or webhook (Telegram POSTs them to us)."""
    webhook_url: str = ""
    """Webhook mode: the public HTTPS URL Telegram posts to (its path is served)."""
    webhook_listen: str = "0.0.0.0:8443"
    """Webhook mode: host:port the webhook server listens on (behind your TLS proxy)."""
    webhook_secret: str = attrs.field(default="", repr=False)
    """Webhook mode: the token Telegram sends with each update (1-256 of A-Z a-z 0-9 _ -)."""
    webhook_reorder_window: float = 0.25
    """Webhook mode: seconds an update may wait for an earlier one of its thread still in flight."""
    start_timeout: float = 60.0
    """Seconds the gateway retries Telegram at start (getMe, setting or removing the webhook)
    while it answers 5xx or 429 or not at all; then it stops with exit status 2."""
    dm_policy: str = "allowlist"
    """Who may talk to the bot in a private chat: allowlist (``allowed_users``; empty allows
    everyone), pairing (``allowed_users`` and ``admin_users`` plus users an operator approved
    with ``threadgate pairing approve CODE``, in groups too; anyone else gets a one-time code
    in a private chat and no answer), or open (everyone, whatever ``allowed_users`` says)."""
    reactions: bool = False
    """React 👀 to a message accepted while its thread is busy, and clear it once answered."""
    streaming: str = "edit"
    """How answers stream: edit (one message, edited as it grows), draft (a private chat's
    draft preview with sendMessageDraft, then the final text as a message; elsewhere edit),
    or auto (the same as draft)."""


@attrs.frozen
class FallbackConfig:
    """A provider asked when every key of the ones before it is exhausted."""

    name: str = ""
    """Its name in logs and status (default ``fallback-N``)."""
    base_url: str = ""
    """OpenAI-compatible endpoint (required)."""
    model: str = ""
    """Model name (required)."""
    api_keys: tuple[str, ...] = attrs.field(default=(), repr=False)
    """Its API keys; better kept out of the file with ``api_keys_env``."""
    api_keys_env: str = ""
    """Name of an environment variable holding its comma-separated API keys."""
    strategy: str = "fill_first"
    """fill_first, round_robin, least_used or random."""
    quota_cooldown: float = 3600.0
    """Seconds a key rests after HTTP 402 when the provider names no reset time."""


@attrs.frozen
class LLMConfig:
    """The model behind the built-in chat agent."""

    base_url: str = "https://api.openai.com/v1"
    """OpenAI-compatible endpoint."""
    model: str = "gpt-4o-mini"
    """Model name."""
    api_keys: tuple[str, ...] = attrs.field(default=(), repr=False)
    """API keys of the pool (labels are ``key-1``, ``key-2``, ...)."""
    strategy: str = "fill_first"
    """fill_first, round_robin, least_used or random."""
    quota_cooldown: float = 3600.0
    """Seconds a key rests after HTTP 402 when the provider names no reset time."""
    read_timeout: float = 60.0
    """Seconds without bytes before a request or stream counts as stalled."""
    system_prompt: str = "You are a helpful assistant in a Telegram chat."
    """System prompt of the built-in chat agent."""
    prompts: dict[str, str] = attrs.field(factory=dict)
    """Per chat or topic prompts: ``[llm.prompts]`` with keys ``"-100123"`` or ``"-100123:2"``."""
    context_budget: int = 24_000
    """Characters of session history sent with each turn."""
    vision: bool = True
    """Whether the model takes images (photos go to it as ``image_url`` parts); ``false``:
    the text of a turn is answered and the user told the image was not seen (also what
    happens when the provider refuses images with HTTP 400)."""
    stream_usage: bool = True
    """Ask for token usage with streamed answers (``stream_options.include_usage``); false
    for an endpoint that refuses it. Without usage data, tokens are estimated (and marked as
    estimated in /usage and the metrics)."""
    fallbacks: tuple[FallbackConfig, ...] = attrs.field(
        default=(), metadata={"item": FallbackConfig}
    )
    """Providers tried in order when every key above is exhausted: ``[[llm.fallbacks]]``."""


@attrs.frozen
class AgentConfig:
    """The agent behind the threads."""

    name: str = "chat"
    """chat (built-in), http, or a ``threadgate.agents`` entry point (e.g. notes)."""
    url: str = ""
    """For the http agent: where to POST each turn."""
    token: str = attrs.field(default="", repr=False)
    """For the http agent: bearer token sent with each turn."""


@attrs.frozen
class ThreadsConfig:
    """How every thread behaves."""

    busy_policy: str = "queue"
    """queue or interrupt."""
    reset_skills: tuple[str, ...] = ()
    """Extra commands that reset the session (e.g. cc), besides /new and /reset."""
    stall_timeout: float = 120.0
    """A run with no output this long is cancelled."""
    run_timeout: float = 900.0
    """A run longer than this is cancelled."""
    idle_ttl: float = 600.0
    """Seconds before an idle thread actor is passivated."""
    allowed_models: tuple[str, ...] = ()
    """Models users may switch to with /model; empty disables /model."""
    group_activation: str = "mention"
    """When the bot answers in groups and forum topics: mention (an @mention of the bot, a
    reply to one of its messages, or a command) or always. ``/activation always|mention``
    from an admin switches one group or topic. Private chats always answer."""
    group_sessions: str = "shared"
    """shared (one session per group or topic) or per_user (each member of a group or topic
    has their own thread actor and session)."""
    debounce: float = 0.0
    """Messages a user sends within this many seconds of each other, while nothing runs,
    become one turn (0: off). Each message then waits this long before it is answered."""


@attrs.frozen
class AdminConfig:
    """The admin endpoint (status, health, metrics)."""

    addr: str = "127.0.0.1:8787"
    """host:port to listen on."""
    token: str = attrs.field(default="", repr=False)
    """Bearer token required when not listening on loopback."""


@attrs.frozen
class StoreConfig:
    """Where state lives (the SQLite file under ``data_dir``, or a PostgreSQL database that
    several replicas share), and how long it keeps what is done (0 keeps it forever)."""

    url: str = attrs.field(default="", repr=False)
    """Empty: the SQLite file ``threadgate.sqlite3`` in ``data_dir`` (one gateway process).
    ``postgresql://user:password@host:5432/db``: a PostgreSQL database, which several
    replicas of the gateway can share (docs/operations.md, Several replicas). Its password
    is a secret: never logged or shown."""

    inbox_retention_days: float = 30.0
    """Days an answered update stays in the inbox (unanswered ones stay); 0 keeps them."""
    outcomes_retention_days: float = 30.0
    """Days a message's recorded outcome is kept; 0 keeps them."""
    session_retention_days: float = 90.0
    """Days a session's history is kept after its last answer (the thread stays); 0 keeps it."""
    prune_interval: float = 3600.0
    """Seconds between two prunes (the first runs at start); each truncates the SQLite log."""


@attrs.frozen
class ClusterConfig:
    """Replicas sharing one PostgreSQL database (``store.url``); unused on SQLite."""

    replica_id: str = ""
    """This replica's name, unique among the replicas (empty: the host name and a random
    suffix, new at every start)."""
    lease_ttl: float = 10.0
    """Seconds a replica's lease on a shard of the chats lasts unless renewed (it renews
    them every third of it). A replica that dies has its chats taken over after about this
    long."""


@attrs.frozen
class SttConfig:
    """Speech to text for voice messages, audio files and video notes (off without a URL)."""

    base_url: str = ""
    """OpenAI-compatible endpoint serving ``/audio/transcriptions`` (OpenAI, Groq, a local
    faster-whisper or whisper.cpp server); empty: voice gets a reply that it is not read."""
    model: str = "whisper-1"
    """Transcription model (e.g. whisper-1, gpt-4o-transcribe, whisper-large-v3)."""
    api_keys: tuple[str, ...] = attrs.field(default=(), repr=False)
    """Its API keys, tried in turn; empty: the LLM's (``llm.api_keys``)."""
    echo: bool = True
    """Show the transcript to the user as a quote above the answer."""
    max_seconds: int = 600
    """Recordings longer than this many seconds are refused with a reply, not transcribed."""


@attrs.frozen
class MediaConfig:
    """Files users send (photos, voice, documents): how big a download may be."""

    max_image_bytes: int = 20 * 1024 * 1024
    """Largest photo or image file downloaded, in bytes (Telegram's own cap, 20 MB, is the
    most a bot can download)."""
    max_document_bytes: int = 10 * 1024 * 1024
    """Largest document downloaded (text files, PDFs), in bytes."""
    download_timeout: float = 60.0
    """Seconds one file's download (getFile and the bytes) may take."""
    album_window: float = 1.0
    """Seconds an album's photos are waited for after the last one arrived (an album is one
    turn; Telegram sends its photos as separate updates, close together)."""
    max_pdf_pages: int = 50
    """Pages of a PDF read at most; the model is told when there were more."""
    max_document_chars: int = 100_000
    """Characters of a document's text (a text file's, a PDF's) given to the model at most;
    the model is told when there were more."""


@attrs.frozen
class LimitsConfig:
    """Per-user budgets (admins are exempt). A user over one gets a reply saying when it
    resets (midnight UTC), and no run."""

    user_daily_messages: int = 0
    """Messages a user may send per day (UTC) at most; 0: no limit."""
    user_daily_tokens: int = 0
    """Tokens (prompt and completion, all models) a user's runs may use per day (UTC) at
    most; 0: no limit."""


@attrs.frozen
class Config:
    """Everything."""

    telegram: TelegramConfig = TelegramConfig()
    llm: LLMConfig = LLMConfig()
    agent: AgentConfig = AgentConfig()
    threads: ThreadsConfig = ThreadsConfig()
    admin: AdminConfig = AdminConfig()
    store: StoreConfig = StoreConfig()
    cluster: ClusterConfig = ClusterConfig()
    stt: SttConfig = SttConfig()
    media: MediaConfig = MediaConfig()
    limits: LimitsConfig = LimitsConfig()
    data_dir: str = "./data"
    """Where the SQLite file lives."""


#: Environment variables and the config keys they set.
ENVIRONMENT = {
    "TELEGRAM_BOT_TOKEN": "telegram.token",
    "THREADGATE_TELEGRAM_API_BASE": "telegram.api_base",
    "THREADGATE_TELEGRAM_MODE": "telegram.mode",
    "THREADGATE_TELEGRAM_START_TIMEOUT": "telegram.start_timeout",
    "THREADGATE_WEBHOOK_URL": "telegram.webhook_url",
    "THREADGATE_WEBHOOK_LISTEN": "telegram.webhook_listen",
    "THREADGATE_WEBHOOK_SECRET": "telegram.webhook_secret",
    "THREADGATE_ALLOWED_USERS": "telegram.allowed_users",
    "THREADGATE_ALLOWED_CHATS": "telegram.allowed_chats",
    "THREADGATE_ADMIN_USERS": "telegram.admin_users",
    "THREADGATE_LLM_BASE_URL": "llm.base_url",
    "THREADGATE_LLM_MODEL": "llm.model",
    "THREADGATE_LLM_API_KEYS": "llm.api_keys",
    "THREADGATE_LLM_STRATEGY": "llm.strategy",
    "THREADGATE_SYSTEM_PROMPT": "llm.system_prompt",
    "THREADGATE_LLM_VISION": "llm.vision",
    "THREADGATE_AGENT": "agent.name",
    "THREADGATE_AGENT_URL": "agent.url",
    "THREADGATE_AGENT_TOKEN": "agent.token",
    "THREADGATE_ALLOWED_MODELS": "threads.allowed_models",
    "THREADGATE_BUSY_POLICY": "threads.busy_policy",
    "THREADGATE_RESET_SKILLS": "threads.reset_skills",
    "THREADGATE_GROUP_ACTIVATION": "threads.group_activation",
    "THREADGATE_GROUP_SESSIONS": "threads.group_sessions",
    "THREADGATE_DEBOUNCE": "threads.debounce",
    "THREADGATE_DM_POLICY": "telegram.dm_policy",
    "THREADGATE_REACTIONS": "telegram.reactions",
    "THREADGATE_STREAMING": "telegram.streaming",
    "THREADGATE_USER_DAILY_MESSAGES": "limits.user_daily_messages",
    "THREADGATE_USER_DAILY_TOKENS": "limits.user_daily_tokens",
    "THREADGATE_STT_BASE_URL": "stt.base_url",
    "THREADGATE_STT_MODEL": "stt.model",
    "THREADGATE_STT_API_KEYS": "stt.api_keys",
    "THREADGATE_ADMIN_ADDR": "admin.addr",
    "THREADGATE_ADMIN_TOKEN": "admin.token",
    "THREADGATE_DATA_DIR": "data_dir",
    "THREADGATE_DATABASE_URL": "store.url",
    "THREADGATE_REPLICA_ID": "cluster.replica_id",
    "THREADGATE_LEASE_TTL": "cluster.lease_ttl",
}


def load(
    path: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None = None,
    *,
    must_exist: bool = False,
) -> Config:
    """Read ``path`` (TOML; a missing one is fine unless ``must_exist``) and apply ``env``."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if must_exist and not file.is_file():
            raise ConfigInvalidError(str(file), "no such file (named with --config)")
        if file.exists():
            try:
                raw = tomllib.loads(file.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as error:
                raise ConfigInvalidError(str(file), f"not valid TOML: {error}") from None
    for variable, dotted in ENVIRONMENT.items():
        if env.get(variable, "") != "":
            section, _, name = dotted.rpartition(".")
            target = raw.setdefault(section, {}) if section else raw
            target[name] = env[variable]
    config: Config = _build(Config, raw, "")
    config = attrs.evolve(
        config,
        llm=attrs.evolve(
            config.llm,
            fallbacks=tuple(_fallback(i, f, env) for i, f in enumerate(config.llm.fallbacks, 1)),
        ),
    )
    check(config)
    return config


def _fallback(index: int, fallback: FallbackConfig, env: Mapping[str, str]) -> FallbackConfig:
    """Name it, take its keys from the environment if told to, and check what it needs."""
    key = f"llm.fallbacks[{index}]"
    for required in ("base_url", "model"):
        if not getattr(fallback, required):
            raise ConfigInvalidError(f"{key}.{required}", "required for a fallback provider")
    keys = fallback.api_keys
    if fallback.api_keys_env:
        if fallback.api_keys_env not in env:
            raise ConfigInvalidError(
                f"{key}.api_keys_env", f"no environment variable {fallback.api_keys_env}"
            )
        keys = tuple(k.strip() for k in env[fallback.api_keys_env].split(",") if k.strip())
    return attrs.evolve(fallback, name=fallback.name or f"fallback-{index}", api_keys=keys)


def _build(cls: type[Any], raw: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigInvalidError(prefix.rstrip("."), "must be a table")
    fields = {f.name: f for f in attrs.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigInvalidError(prefix + unknown[0], f"unknown key (known: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        dotted = prefix + name
        item = fields[name].metadata.get("item")
        if item is not None:  # a list of tables, e.g. [[llm.fallbacks]]
            if not isinstance(value, list):
                raise ConfigInvalidError(dotted, "must be a list of tables ([[...]])")
            values[name] = tuple(_build(item, entry, dotted + ".") for entry in value)
            continue
        default = fields[name].default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        if attrs.has(type(default)):
            values[name] = _build(type(default), value, dotted + ".")
        else:
            values[name] = coerce(dotted, value, default)
    return cls(**values)


def redacted(config: Config) -> dict[str, Any]:
    """The effective config as plain data, secrets replaced (for ``check-config``)."""

    def walk(obj: Any, prefix: str) -> Any:
        if attrs.has(type(obj)):
            return {
                f.name: walk(getattr(obj, f.name), prefix + f.name + ".")
                for f in attrs.fields(type(obj))
            }
        key = prefix.rstrip(".")
        if key in SECRET_KEYS and obj:
            return [REDACTED] * len(obj) if isinstance(obj, tuple) else REDACTED
        return [walk(item, prefix) for item in obj] if isinstance(obj, tuple) else obj

    result: dict[str, Any] = walk(config, "")
    return result

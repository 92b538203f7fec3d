from __future__ import annotations

import sys

from loguru import logger

from actors.thread.records import Concluded, Outcome, ThreadKey
from gateway.config import (
    AdminConfig,
    Config,
    FallbackConfig,
    LLMConfig,
    StoreConfig,
    TelegramConfig,
)
from gateway.ops.recent import TEXT_LIMIT, Recent, config_secrets


def test_the_rings_are_bounded_newest_first_and_cut_long_texts() -> None:
    recent = Recent(size=3, clock=lambda: 5.0)
    for message_id in range(10):
        recent.outcome(ThreadKey(-100, 7), Concluded(message_id, Outcome.ANSWERED))
        recent.error("WARNING", "x" * 2000)
    assert [e.text for e in recent.outcomes()] == ["message 9", "message 8", "message 7"]
    assert recent.outcomes()[0].thread == "-100:7"
    assert recent.outcomes()[0].kind == "answered"
    assert len(recent.errors()) == 3
    assert len(recent.errors()[0].text) == TEXT_LIMIT
    assert recent.as_json()["errors"][0] == {
        "at": 5.0,
        "kind": "warning",
        "thread": "",
        "text": recent.errors()[0].text,
    }


def test_a_sink_removed_meanwhile_is_no_error() -> None:
    recent = Recent()
    with recent.watching_logs():
        logger.remove()  # as ``gateway.logs.setup`` does (``threadgate status`` in-process)
    logger.add(sys.stderr)  # loguru's default sink back
    logger.error("not watched")
    assert recent.errors() == []


def test_no_configured_secret_and_nothing_key_shaped_is_kept() -> None:
    config = Config(
        telegram=TelegramConfig(token="123456:bot-token-secret", webhook_secret="hook-secret"),
        llm=LLMConfig(
            api_keys=("primary-secret-1",),
            fallbacks=(FallbackConfig(api_keys=("fallback-secret-2",)),),
        ),
        admin=AdminConfig(token="admin-secret-3"),
        store=StoreConfig(url="postgresql://tg:db%2Fsecret-4@db.example:5432/threadgate"),
    )
    secrets = config_secrets(config)
    assert set(secrets) == {
        "123456:bot-token-secret",
        "hook-secret",
        "primary-secret-1",
        "fallback-secret-2",
        "admin-secret-3",
        "db/secret-4",
        "db%2Fsecret-4",
    }
    recent = Recent(secrets)
    recent.error("ERROR", " ".join(secrets) + " sk-abcdefghijklmnopqrstuvwx")
    recent.outcome(ThreadKey(1), Concluded(3, Outcome.ERROR_REPLIED, "admin-secret-3"))
    shown = str(recent.as_json())
    assert not [secret for secret in secrets if secret in shown]
    assert "sk-abcdefghijklmnopqrstuvwx" not in shown
    assert "[redacted]" in shown


def test_warnings_and_errors_logged_are_fed_with_their_thread() -> None:
    recent = Recent()
    with recent.watching_logs():
        logger.info("thread {key}: not an error", key=ThreadKey(9))
        logger.warning("thread {key}: run 3 failed: timeout", key=ThreadKey(9))
        logger.error("pool {pool}: key {key} disabled", pool="llm", key="key-1")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("a service failed")
    logger.error("after the sink was removed")
    assert [(e.kind, e.thread, e.text) for e in recent.errors()] == [
        ("error", "", "a service failed [ValueError]"),
        ("error", "", "pool llm: key key-1 disabled"),
        ("warning", "9", "thread 9: run 3 failed: timeout"),
    ]

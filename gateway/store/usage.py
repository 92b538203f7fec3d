"""Usage: tokens per day (UTC), user, chat and model; messages per user and day.

Rules:

* :class:`UsageStore` is the agents' ``UsageLedger`` (``providers.usage``): each model call
  adds its tokens to its row (``usage_tokens``: day x user x chat x model, with how many of
  them were estimated, and the calls counted as runs). A usage that cannot be written is a
  log line; the run it belongs to is not failed for it.
* The tables are in ``gateway.store.schema.SCHEMA`` (``usage_tokens``, ``usage_messages``).
* A user message a thread accepted is counted once (``usage_messages``, keyed by chat and
  message id, so the start-up replay of a message never counts it twice).
* Days are UTC dates (``YYYY-MM-DD``); "this month" is the current UTC month up to today.
  An unknown user is stored as user 0 (Telegram's user ids are positive) and read back as
  ``None``.
* Every statement runs off the event loop (``Store.read`` / ``Store.write``). Rows older
  than ``USAGE_RETENTION_DAYS`` are pruned with the rest (``gateway.store.retention``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable

import attrs
from loguru import logger

from actors.thread.records import ThreadKey
from gateway.exceptions import StoreUnavailableError
from gateway.store.fence import Connection
from gateway.store.retention import utc_day
from gateway.store.store import Store
from providers.usage import Usage


def _stored(user_id: int | None) -> int:
    return 0 if user_id is None else user_id


def _user(stored: int) -> int | None:
    return None if stored == 0 else stored


@attrs.frozen
class Totals:
    """Usage summed over some rows."""

    messages: int = 0
    """User messages accepted by threads."""
    prompt: int = 0
    """Prompt tokens."""
    completion: int = 0
    """Completion tokens."""
    estimated: int = 0
    """Of those tokens, how many were estimated (the provider reported none)."""
    runs: int = 0
    """Model calls."""

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens."""
        return self.prompt + self.completion

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.messages + other.messages,
            self.prompt + other.prompt,
            self.completion + other.completion,
            self.estimated + other.estimated,
            self.runs + other.runs,
        )


@attrs.frozen
class UserUsage:
    """One user's usage in a period."""

    user_id: int | None
    """Who (``None``: runs nobody could be named for)."""
    totals: Totals
    """Everything, all models and chats."""
    models: tuple[tuple[str, Totals], ...]
    """Tokens by model, most used first (``messages`` is 0: messages have no model)."""


@attrs.frozen
class Period:
    """Usage in a day or a month."""

    first: str
    """The first day (``YYYY-MM-DD``)."""
    last: str
    """The last day (today)."""
    users: tuple[UserUsage, ...]
    """By user, most tokens first."""

    @property
    def totals(self) -> Totals:
        """Every user's."""
        return sum((user.totals for user in self.users), Totals())

    def models(self) -> list[tuple[str, Totals]]:
        """Tokens by model, over every user, most used first."""
        summed: dict[str, Totals] = defaultdict(Totals)
        for user in self.users:
            for model, totals in user.models:
                summed[model] += totals
        return sorted(summed.items(), key=lambda item: (-item[1].tokens, item[0]))

    def user(self, user_id: int | None) -> UserUsage:
        """``user_id``'s usage (zero if none)."""
        found = next((u for u in self.users if u.user_id == user_id), None)
        return found or UserUsage(user_id, Totals(), ())


@attrs.frozen
class Report:
    """Usage today and this month (UTC)."""

    today: Period
    """Today."""
    month: Period
    """The current month, today included."""


class UsageStore:
    """Usage in the gateway's store: the agents' ``UsageLedger``, and what ``/usage``, the
    limits, the admin endpoint and the metrics read.

    Args:
        store: the gateway's store (its table is created with the others).
        on_usage: told every usage recorded (the gateway counts it for ``/metrics``).
        clock: the wall clock (its UTC date is the day).
    """

    def __init__(
        self,
        store: Store,
        on_usage: Callable[[Usage], None] = lambda _usage: None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._on_usage = on_usage
        self._clock = clock

    def today(self) -> str:
        """Today's UTC date, as stored."""
        return utc_day(self._clock())

    async def record(self, usage: Usage) -> None:
        """Add ``usage`` to its row; never raises (a store failure is a log line)."""
        tokens = usage.tokens
        row = (
            self.today(),
            _stored(usage.user_id),
            usage.chat_id,
            usage.model,
            tokens.prompt,
            tokens.completion,
            tokens.total if tokens.estimated else 0,
        )

        def write(db: Connection) -> None:
            db.execute(
                "INSERT INTO usage_tokens (day, user_id, chat_id, model, prompt, completion,"
                " estimated, runs) VALUES (?, ?, ?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (day, user_id, chat_id, model) DO UPDATE SET"
                " prompt = usage_tokens.prompt + excluded.prompt,"
                " completion = usage_tokens.completion + excluded.completion,"
                " estimated = usage_tokens.estimated + excluded.estimated,"
                " runs = usage_tokens.runs + 1",
                row,
            )

        self._on_usage(usage)
        try:
            await self._store.write(write)
        except StoreUnavailableError as error:
            logger.error(
                "usage of {model} in chat {chat} not recorded ({n} tokens): {e}",
                model=usage.model,
                chat=usage.chat_id,
                n=tokens.total,
                e=error,
            )

    async def count_message(self, key: ThreadKey, message_id: int, user_id: int | None) -> None:
        """Count a user message its thread accepted (once, however often it is delivered).

        Raises:
            StoreUnavailableError: it could not be written.
        """
        row = (key.chat_id, message_id, self.today(), _stored(user_id))

        def write(db: Connection) -> None:
            db.execute(
                "INSERT INTO usage_messages (chat_id, message_id, day, user_id)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (chat_id, message_id) DO NOTHING",
                row,
            )

        await self._store.write(write)

    async def counted(self, key: ThreadKey, message_id: int) -> bool:
        """Whether the message ``message_id`` of ``key``'s chat was counted already.

        Raises:
            StoreUnavailableError: it could not be read.
        """

        def read(db: Connection) -> bool:
            row = db.execute(
                "SELECT 1 FROM usage_messages WHERE chat_id = ? AND message_id = ?",
                (key.chat_id, message_id),
            ).fetchone()
            return row is not None

        return await self._store.read(read)

    async def user_today(self, user_id: int) -> Totals:
        """``user_id``'s messages and tokens today (what the daily limits count).

        Raises:
            StoreUnavailableError: it could not be read.
        """
        day = self.today()

        def read(db: Connection) -> Totals:
            (messages,) = db.execute(
                "SELECT COUNT(*) FROM usage_messages WHERE user_id = ? AND day = ?",
                (user_id, day),
            ).fetchone()
            prompt, completion, estimated, runs = db.execute(
                "SELECT COALESCE(SUM(prompt), 0), COALESCE(SUM(completion), 0),"
                " COALESCE(SUM(estimated), 0), COALESCE(SUM(runs), 0)"
                " FROM usage_tokens WHERE user_id = ? AND day = ?",
                (user_id, day),
            ).fetchone()
            return Totals(int(messages), int(prompt), int(completion), int(estimated), int(runs))

        return await self._store.read(read)

    async def report(self, user_id: int | None = None, *, everyone: bool = False) -> Report:
        """Today's and this month's usage of ``user_id``, or of ``everyone``.

        Raises:
            StoreUnavailableError: it could not be read.
        """
        today = self.today()
        first = today[:8] + "01"
        who = None if everyone else _stored(user_id)

        def read(db: Connection) -> Report:
            return Report(_period(db, today, today, who), _period(db, first, today, who))

        return await self._store.read(read)


def _period(db: Connection, first: str, last: str, user: int | None) -> Period:
    where = "day BETWEEN ? AND ?" + ("" if user is None else " AND user_id = ?")
    args: tuple[object, ...] = (first, last) if user is None else (first, last, user)
    tokens = db.execute(
        "SELECT user_id, model, SUM(prompt), SUM(completion), SUM(estimated), SUM(runs)"  # noqa: S608 - constants
        f" FROM usage_tokens WHERE {where} GROUP BY user_id, model",
        args,
    ).fetchall()
    messages = db.execute(
        f"SELECT user_id, COUNT(*) FROM usage_messages WHERE {where} GROUP BY user_id",  # noqa: S608 - constants
        args,
    ).fetchall()
    return Period(first, last, _users(tokens, messages))


def _users(
    tokens: Iterable[tuple[int, str, int, int, int, int]], messages: Iterable[tuple[int, int]]
) -> tuple[UserUsage, ...]:
    models: dict[int, list[tuple[str, Totals]]] = defaultdict(list)
    for user, model, prompt, completion, estimated, runs in tokens:  # PostgreSQL: Decimal sums
        totals = Totals(0, int(prompt), int(completion), int(estimated), int(runs))
        models[int(user)].append((model, totals))
    counted = {int(user): int(count) for user, count in messages}
    users = []
    for user in {*models, *counted}:
        by_model = sorted(models.get(user, []), key=lambda item: (-item[1].tokens, item[0]))
        totals = sum((t for _, t in by_model), Totals(messages=int(counted.get(user, 0))))
        users.append(UserUsage(_user(user), totals, tuple(by_model)))
    users.sort(key=lambda u: (-u.totals.tokens, -u.totals.messages, u.user_id or 0))
    return tuple(users)

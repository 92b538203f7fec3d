"""Every error the gateway raises, rooted in :class:`GatewayError`."""

from __future__ import annotations

from actors.thread.exceptions import ReplyUndeliveredError


class GatewayError(Exception):
    """Root of every error raised by ``gateway``."""


class FatalError(GatewayError):
    """Root of the errors the gateway cannot run with: it stops with one line and exit
    status 2, and a supervised service that raises one is not restarted."""


class ConfigInvalidError(FatalError):
    """Raised when a config key is unknown or its value is wrong; names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config {key}: {problem}")
        self.key = key
        self.problem = problem


class StoreUnavailableError(GatewayError):
    """Raised when the store (the SQLite file, or the PostgreSQL database) cannot be opened,
    read or written."""


class ShardMovedError(GatewayError):
    """Raised by a write of a thread whose shard this replica no longer holds at the epoch
    it took it with: another replica took the shard over (this one was paused, cut off, or
    too slow to renew). The write was refused in its own transaction; the replica steps
    down from the shard (``gateway.cluster``)."""

    def __init__(self, shard: int, epoch: int, owner: str) -> None:
        super().__init__(
            f"shard {shard} moved: held at epoch {epoch}, now "
            + (f"owned by {owner!r}" if owner else "released")
        )
        self.shard = shard
        self.epoch = epoch
        self.owner = owner


class AdminUnreachableError(GatewayError):
    """Raised when the CLI cannot reach a running gateway's admin endpoint."""


class AdminAddressUnreadableError(GatewayError):
    """Raised when the data directory's ``admin.json`` (where the running gateway's admin
    endpoint is) cannot be read or is not one the gateway writes."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"cannot read {path}: {problem}")
        self.path = path
        self.problem = problem


class BotTokenRejectedError(FatalError):
    """Raised when Telegram refuses the bot token (HTTP 401): the gateway cannot run."""


class TelegramUnreachableError(FatalError):
    """Raised when the Bot API did not answer at start for ``telegram.start_timeout`` seconds
    (a wrong base URL, no network, Telegram down)."""


class SendFailedError(GatewayError, ReplyUndeliveredError):
    """Raised by a streamed answer's ``finish`` or ``abort`` when its text could not be shown.

    ``delivered`` are the ids of the messages that did go out (a long answer is several), and
    ``outcome_unknown`` says whether the failed request may have arrived all the same (a
    network error after it left): it is never sent again, so nothing arrives twice.
    """

    def __init__(
        self, key: object, reason: str, *, delivered: tuple[int, ...], outcome_unknown: bool
    ) -> None:
        super().__init__(f"send to {key} failed: {reason}")
        self.key = key
        self.reason = reason
        self.delivered = delivered
        self.outcome_unknown = outcome_unknown


class TokenMissingError(FatalError):
    """Raised when ``threadgate run`` has no bot token and no terminal to run the demo in."""

    def __init__(self) -> None:
        super().__init__(
            "no bot token: set TELEGRAM_BOT_TOKEN (in the environment or in .env; "
            "`threadgate init` writes one), or run `threadgate demo` for the local demo"
        )


class ProbeFailedError(GatewayError):
    """Raised when a live check of ``init`` or ``doctor`` (a Bot API or model endpoint
    request) was refused or not answered; ``status`` is the HTTP status, if any."""

    def __init__(self, problem: str, status: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.status = status


class SetupAbortedError(FatalError):
    """Raised when ``threadgate init`` cannot go on (its input ended, or a step failed
    too often); nothing was written."""


class PairingCodeUnknownError(GatewayError):
    """Raised when ``threadgate pairing approve`` is given a code that no stranger holds: it
    was never issued, has expired (after an hour), or was used already."""

    def __init__(self, code: str) -> None:
        super().__init__(f"pairing code {code} is unknown or expired")
        self.code = code


class PairedUserUnknownError(GatewayError):
    """Raised when ``threadgate pairing revoke`` is given a user id nobody approved."""

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} is not an approved user")
        self.user_id = user_id

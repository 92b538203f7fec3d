"""Live requests that ``threadgate init`` and ``threadgate doctor`` make: the Bot API and an
OpenAI-compatible model endpoint, each a single short request.

They are synchronous (``httpx.Client``): both commands ask one thing at a time. A failure is a
:class:`ProbeFailedError` that says what happened in plain words; its text never holds a
secret (httpx's own messages hold the URL, and a Bot API URL holds the token, so they are not
shown).
"""

from __future__ import annotations

from typing import Any

import attrs
import httpx

from gateway.exceptions import ProbeFailedError

TIMEOUT = httpx.Timeout(10.0)


@attrs.frozen
class BotIdentity:
    """Who the token belongs to (``getMe``)."""

    id: int
    """The bot's user id."""
    username: str
    """Its @name, without the @."""


@attrs.frozen
class Sender:
    """Who wrote the latest message the bot has (``getUpdates``)."""

    user_id: int
    """Their Telegram user id."""
    name: str
    """Their first name and @username, as far as they have them."""
    chat_id: int
    """The chat they wrote in."""


@attrs.frozen
class BotAPI:
    """The Bot API for one token."""

    api_base: str
    """``telegram.api_base``."""
    token: str = attrs.field(repr=False)
    """The bot token (never shown)."""
    http: httpx.Client
    """The client requests go through."""

    def call(self, method: str, *, http_timeout: float | None = None, **params: Any) -> Any:
        """``method`` with ``params``; its ``result``.

        Raises:
            ProbeFailedError: Telegram refused the request or did not answer.
        """
        url = f"{self.api_base.rstrip('/')}/bot{self.token}/{method}"
        try:
            response = self.http.post(
                url, json=params, timeout=TIMEOUT if http_timeout is None else http_timeout + 10
            )
        except httpx.HTTPError as error:
            raise ProbeFailedError(
                f"no answer from {self.api_base} ({type(error).__name__})", status=None
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 401:
            raise ProbeFailedError("Telegram rejected the bot token (401 Unauthorized)", 401)
        if response.status_code != 200 or not body.get("ok"):
            description = str(body.get("description") or response.reason_phrase)
            raise ProbeFailedError(
                f"{method} failed: HTTP {response.status_code} {description}",
                response.status_code,
            )
        return body["result"]

    def get_me(self) -> BotIdentity:
        """``getMe``: whether the token works, and whose it is."""
        me = self.call("getMe")
        return BotIdentity(int(me["id"]), str(me.get("username") or ""))

    def webhook(self) -> dict[str, Any]:
        """``getWebhookInfo``."""
        info: dict[str, Any] = self.call("getWebhookInfo")
        return info

    def latest_sender(self, wait: float) -> Sender | None:
        """The sender of the newest message among the pending updates (waiting up to
        ``wait`` seconds for one), without confirming any: the gateway still gets them."""
        updates = self.call("getUpdates", http_timeout=wait, timeout=int(wait))
        for update in reversed(updates):
            message = update.get("message") or update.get("edited_message") or {}
            user = message.get("from")
            if user and not user.get("is_bot"):
                name = str(user.get("first_name") or "")
                if user.get("username"):
                    name = f"{name} @{user['username']}".strip()
                return Sender(int(user["id"]), name, int(message["chat"]["id"]))
        return None


def list_models(http: httpx.Client, base_url: str, key: str) -> list[str] | None:
    """The model ids ``GET {base_url}/models`` lists; ``None`` if the endpoint has no such
    list (404).

    Raises:
        ProbeFailedError: the endpoint refused the key, failed, or did not answer.
    """
    response = _request(http, "GET", f"{base_url.rstrip('/')}/models", key, None)
    if response.status_code == 404:
        return None
    _raise_for(response, base_url)
    try:
        return sorted(str(entry["id"]) for entry in response.json()["data"])
    except (ValueError, KeyError, TypeError):
        raise ProbeFailedError(
            f"{base_url}/models answered something else than a list", 200
        ) from None


def try_completion(http: httpx.Client, base_url: str, model: str, key: str) -> None:
    """One chat completion of at most one token: the cheapest request that proves the key
    and the model work.

    Raises:
        ProbeFailedError: it was refused (``status`` says how) or not answered.
    """
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Say ok."}],
        "max_tokens": 1,
        "stream": False,
    }
    url = f"{base_url.rstrip('/')}/chat/completions"
    _raise_for(_request(http, "POST", url, key, body), base_url)


def _request(
    http: httpx.Client, method: str, url: str, key: str, body: dict[str, Any] | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        return http.request(method, url, headers=headers, json=body, timeout=TIMEOUT)
    except httpx.HTTPError as error:
        host = httpx.URL(url).host
        raise ProbeFailedError(f"no answer from {host} ({type(error).__name__})", None) from None


def _raise_for(response: httpx.Response, base_url: str) -> None:
    if response.status_code == 200:
        return
    detail = ""
    try:
        error = response.json().get("error")
        if isinstance(error, dict):
            # Only the code: a provider's message may quote part of the key.
            detail = str(error.get("code") or "")
    except (ValueError, AttributeError):
        pass
    reason = f"HTTP {response.status_code}" + (f" {detail}" if detail else "")
    raise ProbeFailedError(f"{base_url} answered {reason}", response.status_code)

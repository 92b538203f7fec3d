"""The status page at the admin endpoint's ``/``: plain HTML, CSS and JS (package data in
``gateway/ops/static/``, no build step), and how a browser proves it holds the admin token.

The page polls ``/status``, ``/healthz`` and ``/recent`` (the recent outcomes and errors,
``gateway.ops.recent``) every ``POLL_SECONDS`` and redraws in place. It builds its DOM with
``textContent`` only, never HTML from data, and is served with a Content-Security-Policy that
allows no inline script: a thread key or an error text is always shown as text.

Rules of the browser's credentials (the same rules as ``/status``): with no ``admin.token``
(loopback only) everything is open. With one, a request passes with the bearer header or
with the page's cookie. The cookie is set by ``POST /login`` from a form (the token is in
the request body, so it is in no URL, no history and no access log); its value is an HMAC
of the token, never the token, ``HttpOnly`` and ``SameSite=Strict``. ``/logout`` clears it.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.resources
from typing import Any

import attrs
from aiohttp import web
from loguru import logger

from gateway.ops.recent import Recent

COOKIE = "threadgate_admin"
POLL_SECONDS = 2
PAGE_FILES = {
    "/": ("index.html", "text/html"),
    "/page.js": ("page.js", "text/javascript"),
    "/page.css": ("page.css", "text/css"),
}
"""Each path of the page, and the file in ``gateway/ops/static/`` it serves."""
OPEN_PATHS = frozenset({"/login", "/logout", "/page.css"})
"""Paths served without credentials (the login form's own)."""
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _read(name: str) -> bytes:
    return (importlib.resources.files("gateway.ops") / "static" / name).read_bytes()


@attrs.define
class BrowserAuth:
    """Whether a request holds the admin token: the bearer header, or the page's cookie.

    Args:
        token: ``admin.token``; empty: every request passes (loopback only).
    """

    _token: str = attrs.field(alias="token", repr=False)
    _bearer: bytes = attrs.field(init=False, repr=False)
    _cookie: str = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._bearer = f"Bearer {self._token}".encode()
        digest = hmac.new(self._token.encode(), b"threadgate admin page", hashlib.sha256)
        self._cookie = digest.hexdigest()

    def passes(self, request: web.Request) -> bool:
        if not self._token:
            return True
        given = request.headers.get("Authorization", "").encode()
        if hmac.compare_digest(given, self._bearer):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self._cookie.encode())

    def token_matches(self, given: str) -> bool:
        return bool(self._token) and hmac.compare_digest(given.encode(), self._token.encode())

    def set_cookie(self, response: web.StreamResponse) -> None:
        response.set_cookie(COOKIE, self._cookie, httponly=True, samesite="Strict", path="/")


@attrs.define
class StatusPage:
    """The page's routes: ``/`` and its files, ``/recent``, ``/login`` and ``/logout``."""

    _auth: BrowserAuth = attrs.field(alias="auth")
    _recent: Recent = attrs.field(alias="recent")
    _files: dict[str, tuple[bytes, str]] = attrs.field(init=False)
    _login: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._files = {path: (_read(name), kind) for path, (name, kind) in PAGE_FILES.items()}
        self._login = _read("login.html").decode()

    def add_routes(self, app: web.Application) -> None:
        for path in PAGE_FILES:
            app.router.add_get(path, self._file)
        app.router.add_get("/recent", self._recent_json)
        app.router.add_post("/login", self._log_in)
        app.router.add_get("/logout", self._log_out)

    def refused(self, request: web.Request) -> web.StreamResponse:
        """The answer to a request without the token: the login form for the page."""
        if request.path == "/":
            return self._login_form(status=401)
        return web.json_response({"error": "unauthorized"}, status=401)

    def _login_form(self, *, status: int, notice: str = "") -> web.Response:
        body = self._login.replace("{{notice}}", notice)  # notice: our fixed texts only
        return web.Response(
            text=body, content_type="text/html", charset="utf-8", status=status, headers=HEADERS
        )

    async def _file(self, request: web.Request) -> web.Response:
        body, kind = self._files[request.path]
        return web.Response(body=body, content_type=kind, charset="utf-8", headers=HEADERS)

    async def _recent_json(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {"poll_seconds": POLL_SECONDS, **self._recent.as_json()}
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def _log_in(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        given = form.get("token", "")
        if not isinstance(given, str) or not self._auth.token_matches(given.strip()):
            logger.warning(
                "admin page: a login with a wrong token from {peer}", peer=_peer(request)
            )
            return self._login_form(status=401, notice="That is not the admin token.")
        response = web.Response(status=303, headers={"Location": "/", **HEADERS})
        self._auth.set_cookie(response)
        return response

    async def _log_out(self, request: web.Request) -> web.StreamResponse:
        response = self._login_form(status=200, notice="Logged out.")
        response.del_cookie(COOKIE, path="/")
        return response


def _peer(request: web.Request) -> str:
    return request.remote or "an unknown address"

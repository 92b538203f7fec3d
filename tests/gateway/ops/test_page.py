"""The status page in a real headless Chromium: what it shows, live, on a phone, behind auth."""

from __future__ import annotations

from pathlib import Path

import attrs
import httpx
import pytest

from actors import ChildState, ChildStatus, SupervisorStatistics, SupervisorStatus
from actors.thread.records import Concluded, Outcome
from gateway.config import AdminConfig
from gateway.demo.model_sim import LLMSimulator, Reply
from gateway.ops.admin import AdminServer
from gateway.ops.page import COOKIE
from gateway.ops.recent import Recent
from providers.pool import KeyState, KeyStatus, PoolStatus
from tests.gateway.harness import KEYS, running_gateway, wait_until
from tests.gateway.logs import captured_logs
from tests.gateway.ops.browser import Browser

pytestmark = pytest.mark.anyio
HOSTILE = '<img src=x onerror="window.pwned=1">'
TOKEN = "admin-token-for-the-page-1234"
LONG_KEY = "-1001234567890/topic-" + "9" * 70  # no place to break: must wrap all the same


def _child(
    key: str, state: ChildState, phase: str, queued: int, run_age: float | None
) -> ChildStatus:
    detail = (
        ("phase", phase),
        ("queued", str(queued)),
        ("run_age", "-" if run_age is None else f"{run_age:.1f}s"),
    )
    return ChildStatus(key, state, queued, 0, 0.5, run_age, 1 if run_age else 0, detail)


@attrs.define
class Shown:
    """A stand-in for the gateway (the admin endpoint reads only the ``Observed`` protocol)."""

    children: list[ChildStatus]
    pools: list[PoolStatus]

    def thread_status(self) -> SupervisorStatus:
        counts = dict.fromkeys(attrs.fields_dict(SupervisorStatistics), 0)
        counts["live"] = len(self.children)
        return SupervisorStatus(tuple(self.children), SupervisorStatistics(**counts))

    def pool_status(self) -> list[PoolStatus]:
        return self.pools

    def health(self) -> dict[str, bool]:
        return {"supervisor_running": True}

    def services(self) -> tuple[()]:
        return ()

    def render_metrics(self) -> bytes:
        return b""


def _shown() -> tuple[Shown, Recent]:
    cooling = KeyStatus("key-1", KeyState.COOLING, 41.0, "429 from the provider", 7, 1)
    usable = KeyStatus("key-2", KeyState.USABLE, 0.0, "", 3, 0)
    shown = Shown(
        [
            _child(HOSTILE, ChildState.BUSY, HOSTILE, 2, 3.5),
            _child(LONG_KEY, ChildState.IDLE, "idle", 0, None),
        ],
        [PoolStatus("llm", (cooling, usable))],
    )
    recent = Recent(secrets=(TOKEN,))
    recent.outcome(HOSTILE, Concluded(11, Outcome.ERROR_REPLIED, HOSTILE))
    recent.outcome("(42, None)", Concluded(12, Outcome.ANSWERED))
    recent.error("ERROR", f"send failed: {HOSTILE} {TOKEN}", HOSTILE)
    return shown, recent


ROW_TEXTS = """return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr'),
    (row) => Array.from(row.cells, (cell) => cell.textContent));"""
LIST_TEXTS = """return Array.from(document.querySelectorAll(arguments[0] + ' li'),
    (item) => item.textContent);"""
RENDERED = "return Number(document.body.dataset.renders || 0) >= 1"


async def _log_in(browser: Browser, token: str) -> None:
    """Submit the login form; return once the next page has loaded."""
    await browser.run(
        "window.beforeLogin = true; document.getElementById('token').value = arguments[0];"
        " document.getElementById('login').submit();",
        token,
    )
    await browser.wait_for("return !window.beforeLogin && document.readyState === 'complete'")


@pytest.mark.slow
async def test_the_page_logs_in_shows_everything_as_text_updates_live_and_fits_a_phone(
    browser: Browser,
) -> None:
    shown, recent = _shown()
    server = AdminServer(shown, AdminConfig(addr="127.0.0.1:0", token=TOKEN), recent)
    await server.start()
    try:
        with captured_logs("DEBUG") as logs:
            # Without the token: the login form, and no data.
            await browser.open(server.url + "/")
            assert await browser.run("return document.getElementById('threads')") is None
            assert await browser.run("return document.title") == "Threadgate status: log in"
            await _log_in(browser, "not-the-token")
            assert await browser.run("return document.getElementById('notice').textContent") == (
                "That is not the admin token."
            )
            assert browser.cookies() == []
            await _log_in(browser, TOKEN)
            await browser.wait_for(RENDERED)

            # Threads, pools, outcomes and errors, every hostile text as text.
            threads = await browser.run(ROW_TEXTS, "#threads")
            assert threads[0] == [HOSTILE, "busy", HOSTILE, "2", "2", "3.5s", "0.5s", "0"]
            assert threads[1][:3] == [LONG_KEY, "idle", "idle"]
            pools = await browser.run(ROW_TEXTS, "#pools")
            assert pools == [
                ["llm", "key-1", "cooling", "41.0s", "7", "1", "429 from the provider"],
                ["llm", "key-2", "usable", "-", "3", "0", "-"],
            ]
            outcomes = await browser.run(LIST_TEXTS, "#outcomes")
            assert "answered(42, None)message 12" in outcomes[0]
            assert f"error-replied{HOSTILE}message 11: {HOSTILE}" in outcomes[1]
            errors = await browser.run(LIST_TEXTS, "#errors")
            assert errors[0].endswith(f"error{HOSTILE}send failed: {HOSTILE} [redacted]")
            assert await browser.run("return document.querySelectorAll('img').length") == 0
            assert await browser.run("return window.pwned") is None
            assert await browser.run("return document.getElementById('health').textContent") == "ok"

            # The cookie holds no token; the page holds none either.
            (cookie,) = browser.cookies()
            assert cookie["name"] == COOKIE
            assert cookie["httpOnly"]
            assert cookie["sameSite"] == "Strict"
            assert TOKEN not in cookie["value"]
            assert TOKEN not in await browser.run("return document.documentElement.outerHTML")

            # A change shows up without a reload.
            await browser.run("window.keptAcrossPolls = true")
            shown.children[1] = _child(LONG_KEY, ChildState.BUSY, "running", 1, 0.2)
            shown.children.append(_child("(777, None)", ChildState.STARTING, "idle", 0, None))
            recent.outcome("(777, None)", Concluded(13, Outcome.STOPPED, "/stop"))
            await browser.wait_for(
                "return document.querySelector('#threads tr[data-key=\"(777, None)\"]')"
            )
            threads = await browser.run(ROW_TEXTS, "#threads")
            assert threads[1][:3] == [LONG_KEY, "busy", "running"]
            outcomes = await browser.run(LIST_TEXTS, "#outcomes")
            assert "stopped(777, None)message 13: /stop" in outcomes[0]
            assert await browser.run("return window.keptAcrossPolls") is True

            # A phone (390 CSS pixels wide): the viewport meta holds, nothing overflows.
            await browser.cdp(
                "Emulation.setDeviceMetricsOverride",
                width=390,
                height=844,
                deviceScaleFactor=3,
                mobile=True,
            )
            await browser.open(server.url + "/")
            await browser.wait_for(RENDERED)
            width = await browser.run("return window.innerWidth")
            assert width == 390
            assert await browser.run("return document.documentElement.scrollWidth") <= width
            widest = await browser.run(
                "return Math.max(...Array.from(document.querySelectorAll('main *'),"
                " (e) => e.getBoundingClientRect().right))"
            )
            assert widest <= width
            assert LONG_KEY in await browser.run("return document.body.textContent")

            # Logging out forgets the cookie.
            await browser.open(server.url + "/logout")
            await browser.open(server.url + "/")
            assert await browser.run("return document.getElementById('threads')") is None
        assert not [line for line in logs if TOKEN in line]
    finally:
        await server.stop()


async def test_auth_rules_for_the_page_over_http() -> None:
    shown, recent = _shown()
    server = AdminServer(shown, AdminConfig(addr="127.0.0.1:0", token=TOKEN), recent)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            page = await http.get("/")
            assert page.status_code == 401
            assert 'action="/login"' in page.text
            assert "onerror" not in page.text
            for path in ("/recent", "/status", "/page.js"):
                assert (await http.get(path)).status_code == 401, path
            assert (await http.get("/page.css")).status_code == 200  # the login form's

            wrong = await http.post("/login", data={"token": "nope"})
            assert wrong.status_code == 401
            assert COOKIE not in wrong.cookies
            right = await http.post("/login", data={"token": TOKEN})
            assert right.status_code == 303
            assert right.headers["location"] == "/"
            cookie = right.cookies[COOKIE]
            assert TOKEN not in cookie

            with_cookie = {"Cookie": f"{COOKIE}={cookie}"}
            recent_json = (await http.get("/recent", headers=with_cookie)).json()
            assert recent_json["errors"][0]["text"].endswith("[redacted]")
            page = await http.get("/", headers=with_cookie)
            assert page.status_code == 200
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert '<meta name="viewport"' in page.text
            forged = {"Cookie": f"{COOKIE}={cookie[:-1]}0"}
            assert (await http.get("/status", headers=forged)).status_code == 401
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            assert (await http.get("/", headers=bearer)).status_code == 200
    finally:
        await server.stop()

    # Loopback with no token: open, as /status is.
    server = AdminServer(shown, AdminConfig(addr="127.0.0.1:0"), recent)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/")).status_code == 200
            assert (
                (await http.get("/page.js")).headers["content-type"].startswith("text/javascript")
            )
    finally:
        await server.stop()


@pytest.mark.slow
async def test_the_page_shows_a_real_gateway_between_the_simulators(
    tmp_path: Path, browser: Browser
) -> None:
    llm = LLMSimulator()
    llm.script(KEYS[0], Reply(status=402, retry_after="60"))
    async with running_gateway(tmp_path, llm=llm) as run:
        first = run.telegram.say("hello page", chat_id=4242)
        await wait_until(lambda: run.outcome(first) == "answered")
        await browser.open(run.gateway.admin_url + "/")
        await browser.wait_for(RENDERED)
        threads = await browser.run(ROW_TEXTS, "#threads")
        assert [row[0] for row in threads] == ["4242"]
        pools = await browser.run(ROW_TEXTS, "#pools")
        assert [row[1:3] for row in pools] == [["key-1", "cooling"], ["key-2", "usable"]]
        assert float(pools[0][3].removesuffix("s")) > 50
        outcomes = await browser.run(LIST_TEXTS, "#outcomes")
        assert any("answered4242message" in o for o in outcomes), outcomes
        errors = await browser.run(LIST_TEXTS, "#errors")
        assert any("warningpool llm: key key-1" in e for e in errors), errors
        assert all(KEYS[0] not in e and KEYS[1] not in e for e in errors)

        second = run.telegram.say("and again", chat_id=5151)
        await wait_until(lambda: run.outcome(second) == "answered")
        await browser.wait_for("return document.querySelector('#threads tr[data-key=\"5151\"]')")
        await browser.wait_for(
            "return Array.from(document.querySelectorAll('#outcomes li'))"
            ".some((li) => li.textContent.includes('5151'))"
        )

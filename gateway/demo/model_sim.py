"""A local OpenAI-compatible server: the demo's scripted model, and the tests' fake provider.

It speaks real HTTP on loopback. Each request is answered by the next scripted ``Reply`` for
its API key, else by the default behaviour (a short streamed answer that quotes the user).
A reply can stream slowly, hang, drop the connection, send malformed SSE, or answer an error
status (401, 402, 429 with or without ``Retry-After``, 500). A user message's content may
be a list of ``text`` and ``image_url`` blocks (the default answer counts the images); a
simulator without ``vision`` refuses those with HTTP 400, as a text-only model does.
``GET /models`` lists the configured models, or fails on demand; keys and models outside
the configured ones can be refused (what ``threadgate init`` and ``doctor`` meet with a real
provider). ``POST /audio/transcriptions`` is a speech-to-text service: it records each
upload (``transcriptions``) and answers with the next scripted ``Transcript``, else with the
uploaded bytes themselves when they are text (so a test or the demo can "say" something).

Usage: a stream asked for it (``stream_options.include_usage``) ends with OpenAI's usage
chunk (empty ``choices``), and a whole answer carries ``usage``: the scripted counts, else
plausible ones (``counted_usage``). ``stream_options = False`` refuses a request that has
it with HTTP 400 (as some OpenAI-compatible servers do); ``usage = False`` reports none.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
from aiohttp import web


@contextmanager
def serve_in_thread(
    start: Callable[[], Awaitable[object]], stop: Callable[[], Awaitable[None]], name: str
) -> Iterator[None]:
    """Run a server (``start``/``stop``) on its own asyncio loop in a thread."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(stop())
        leftovers = asyncio.all_tasks(loop)  # e.g. a long poll still waiting
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError(f"{name} did not start")
    try:
        yield
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@attrs.define(eq=False)
class LoopbackServer:
    """An aiohttp application served on loopback: the simulators' shared lifecycle."""

    _runner: web.AppRunner | None = None

    async def start(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve ``app``; return the bound port."""
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound: int = self._runner.addresses[0][1]
        return bound

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@attrs.frozen
class Reply:
    """How the simulator answers one request."""

    text: str = ""
    """The answer (streamed word by word); empty: the default answer."""
    status: int = 200
    """HTTP status; not 200 answers with an OpenAI-style error body."""
    error_code: str = ""
    """``error.code`` in the error body (e.g. ``insufficient_quota``)."""
    retry_after: str | None = None
    """``Retry-After`` header value, if any."""
    chunk_delay: float = 0.0
    """Seconds between streamed chunks: chunk ``i`` goes ``i * chunk_delay`` after the first
    (a late wake-up is caught up, so the rate holds however busy the machine is)."""
    first_delay: float = 0.0
    """Seconds before the first chunk (a model thinking)."""
    hang: bool = False
    """Accept the request and never answer."""
    drop_after: int | None = None
    """Drop the connection after this many chunks."""
    malformed: bool = False
    """Send a broken SSE event after the first chunk."""
    usage: tuple[int, int] | None = None
    """The (prompt, completion) tokens reported; ``None``: counted (``counted_usage``)."""


@attrs.frozen
class Transcript:
    """How the speech-to-text endpoint answers one upload."""

    text: str | None = None
    """The transcript; ``None``: the default (the upload's bytes, when they are text)."""
    status: int = 200
    """HTTP status; not 200 answers with an OpenAI-style error body."""
    retry_after: str | None = None
    """``Retry-After`` header value, if any."""
    hang: bool = False
    """Accept the upload and never answer."""


@attrs.frozen
class Upload:
    """One request the speech-to-text endpoint received."""

    key: str
    """The API key it came with (``""``: none)."""
    model: str
    """The ``model`` form field."""
    file_name: str
    """The uploaded file's name."""
    content_type: str
    """The uploaded file's content type."""
    data: bytes = attrs.field(repr=False)
    """The uploaded bytes."""
    fields: dict[str, str] = attrs.Factory(dict)
    """The other form fields (e.g. ``response_format``)."""


def default_transcript(data: bytes) -> str:
    """What the simulated service hears: the bytes when they are text, else a description."""
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return f"(a recording of {len(data)} bytes)"


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the ``text`` blocks of a list."""
    if isinstance(content, list):
        return "\n\n".join(
            str(block.get("text", "")) for block in content if block.get("type") == "text"
        )
    return str(content or "")


def image_urls(content: Any) -> list[str]:
    """The ``image_url`` URLs of a message's content (none for a string)."""
    if not isinstance(content, list):
        return []
    return [str(block["image_url"]["url"]) for block in content if block.get("type") == "image_url"]


def default_answer(messages: list[dict[str, Any]]) -> str:
    """What the scripted model says when nothing else was scripted."""
    last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    turns = sum(1 for m in messages if m.get("role") == "user")
    images = len(image_urls(last))
    seen = f" and {images} image{'s' if images > 1 else ''}" if images else ""
    return f"You said: {content_text(last).strip()[:400]}{seen} (turn {turns} of this session)"


def counted_usage(messages: list[dict[str, Any]], text: str) -> tuple[int, int]:
    """Plausible (prompt, completion) tokens: a token per four characters of each message
    and three for its framing, three more to prime the answer; a token per word answered.
    Never the gateway's own estimate, so a test tells them apart."""
    prompt = 3 + sum(3 + math.ceil(len(content_text(m.get("content"))) / 4) for m in messages)
    return prompt, len(text.split(" "))


def _usage_json(tokens: tuple[int, int]) -> dict[str, int]:
    prompt, completion = tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": sum(tokens)}


@attrs.define(eq=False)
class LLMSimulator:
    """The server. ``script()`` queues replies per API key; ``requests`` records every call."""

    default: Callable[[list[dict[str, Any]]], Reply] = lambda messages: Reply(
        default_answer(messages)
    )
    requests: list[tuple[str, dict[str, Any]]] = attrs.Factory(list)
    models: tuple[str, ...] = ("scripted",)
    """What ``GET /models`` lists."""
    models_status: int = 200
    """The status ``GET /models`` answers (404: an endpoint without ``/models``; 500: a
    failing one)."""
    accepted_keys: frozenset[str] | None = None
    """The only API keys accepted (HTTP 401 for any other, on every endpoint); ``None``
    accepts any, or none."""
    known_models_only: bool = False
    """Answer a completion for a model not in ``models`` with HTTP 404 ``model_not_found``."""
    transcriptions: list[Upload] = attrs.Factory(list)
    """Every upload to ``/audio/transcriptions``, in order."""
    vision: bool = True
    """Take images; ``False``: a completion with an ``image_url`` block is answered HTTP 400
    (what a text-only model's endpoint says)."""
    stream_options: bool = True
    """Accept ``stream_options``; ``False``: a completion request with it is answered HTTP
    400 naming it (what some OpenAI-compatible servers say)."""
    usage: bool = True
    """Report usage (when a stream asks for it, and in every whole answer); ``False``: never
    (the gateway then estimates)."""
    peers: list[int] = attrs.Factory(list)
    """The client's port of each completion request, in order (one port: one connection)."""
    hangups: int = 0
    """Streams the client hung up on before their end (a cancelled call)."""
    _scripts: dict[str, deque[Reply]] = attrs.Factory(lambda: defaultdict(deque))
    _transcripts: deque[Transcript] = attrs.Factory(deque)
    _server: LoopbackServer = attrs.Factory(LoopbackServer)
    base_url: str = ""

    def script(self, key: str, *replies: Reply) -> None:
        """Answer the next requests made with ``key`` with ``replies``, in order."""
        self._scripts[key].extend(replies)

    def script_transcripts(self, *answers: Transcript) -> None:
        """Answer the next uploads to ``/audio/transcriptions`` with ``answers``, in order."""
        self._transcripts.extend(answers)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving; return the base URL (``http://host:port/v1``)."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        self.base_url = f"http://{host}:{await self._server.start(app, host, port)}/v1"
        return self.base_url

    async def stop(self) -> None:
        await self._server.stop()

    @contextmanager
    def serving_in_thread(self) -> Iterator[LLMSimulator]:
        """Serve from a thread with its own asyncio loop (for tests on any backend)."""
        with serve_in_thread(self.start, self.stop, "llm-simulator"):
            yield self

    @staticmethod
    def _error(status: int, code: str | None = None) -> web.Response:
        error = {"message": f"simulated HTTP {status}", "code": code}
        return web.json_response({"error": error}, status=status)

    def _refused(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if self.accepted_keys is not None and key not in self.accepted_keys:
            return self._error(401, "invalid_api_key")
        return None

    async def _models(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        if self.models_status != 200:
            return self._error(self.models_status)
        listed = [{"id": model, "object": "model"} for model in self.models]
        return web.json_response({"object": "list", "data": listed})

    async def _transcribe(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        key = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not isinstance(upload, web.FileField):
            return self._error(400, "missing_file")
        with upload.file:  # closed now: a hanging answer is cancelled, never finished
            data = upload.file.read()
        fields = {k: str(v) for k, v in form.items() if k not in ("file", "model")}
        model = str(form.get("model", ""))
        self.transcriptions.append(
            Upload(key, model, upload.filename, upload.content_type, data, fields)
        )
        if (refused := self._refused(request)) is not None:
            return refused
        answer = self._transcripts.popleft() if self._transcripts else Transcript()
        if answer.hang:
            await asyncio.sleep(3600)
        if answer.status != 200:
            headers = {"Retry-After": answer.retry_after} if answer.retry_after else {}
            error = {"message": f"simulated HTTP {answer.status}", "code": None}
            return web.json_response({"error": error}, status=answer.status, headers=headers)
        text = default_transcript(data) if answer.text is None else answer.text
        return web.json_response({"text": text})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ").strip()
        self.requests.append((key, body))
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.peers.append(peer[1] if peer else 0)
        if (refused := self._refused(request)) is not None:
            return refused
        if self.known_models_only and body.get("model") not in self.models:
            return self._error(404, "model_not_found")
        if not self.stream_options and "stream_options" in body:
            refusal = {
                "message": "Unrecognized request argument supplied: stream_options",
                "code": "invalid_request_error",
            }
            return web.json_response({"error": refusal}, status=400)
        if not self.vision and any(image_urls(m.get("content")) for m in body["messages"]):
            return self._error(400, "image_input_not_supported")
        script = self._scripts.get(key)
        reply = script.popleft() if script else self.default(body.get("messages", []))
        if reply.hang:
            await asyncio.sleep(3600)
        if reply.status != 200:
            headers = {"Retry-After": reply.retry_after} if reply.retry_after else {}
            error = {"message": f"simulated HTTP {reply.status}", "code": reply.error_code or None}
            return web.json_response({"error": error}, status=reply.status, headers=headers)
        text = reply.text or default_answer(body.get("messages", []))
        tokens = reply.usage or counted_usage(body.get("messages", []), text)
        if not body.get("stream"):
            message = {"role": "assistant", "content": text}
            answer: dict[str, Any] = {"choices": [{"index": 0, "message": message}]}
            if self.usage:
                answer["usage"] = _usage_json(tokens)
            return web.json_response(answer)
        options = body.get("stream_options")
        asked = isinstance(options, dict) and bool(options.get("include_usage"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await asyncio.sleep(reply.first_delay)
        try:
            await self._stream(request, response, reply, text, tokens if asked else None)
        except ConnectionResetError:  # the client hung up (a cancelled run): normal
            self.hangups += 1
        return response

    async def _stream(
        self,
        request: web.Request,
        response: web.StreamResponse,
        reply: Reply,
        text: str,
        tokens: tuple[int, int] | None,
    ) -> None:
        """Stream ``text`` word by word; then, if asked for, the usage chunk (``tokens``)."""
        extra: dict[str, Any] = {"usage": None} if tokens is not None else {}
        clock = asyncio.get_running_loop().time
        started = clock()
        for index, word in enumerate(text.split(" ")):
            if reply.drop_after is not None and index >= reply.drop_after:
                assert request.transport is not None
                request.transport.abort()
                return
            if reply.malformed and index == 1:
                await response.write(b"data: {not json\n\n")
                return
            chunk = word if index == 0 else " " + word
            delta = {"index": 0, "delta": {"content": chunk}, "finish_reason": None}
            event = {"choices": [delta], **extra}
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
            if reply.chunk_delay:
                await asyncio.sleep(max(0.0, started + (index + 1) * reply.chunk_delay - clock()))
        final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], **extra}
        await response.write(f"data: {json.dumps(final)}\n\n".encode())
        if tokens is not None and self.usage:
            usage = {"choices": [], "usage": _usage_json(tokens)}
            await response.write(f"data: {json.dumps(usage)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()

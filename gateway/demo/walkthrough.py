"""The local demo: the whole gateway on this machine, with no network.

A built-in Bot API simulator stands in for Telegram and a scripted local model for the LLM
provider; the real gateway runs between them. In a terminal you pick a forum topic and type;
otherwise a scripted walkthrough shows queueing, a reset mid-run, and exhausted keys
recovering, then prints the status table.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.lowlevel
import attrs
from rich.console import Console
from rich.markup import escape

from gateway import logs
from gateway.app import Gateway, open_gateway
from gateway.config import Config
from gateway.demo.botapi_sim import BotAPISimulator, SentMessage
from gateway.demo.model_sim import LLMSimulator, Reply, default_answer
from gateway.ops.admin import status_json
from gateway.ops.status_view import render
from gateway.signals import unless_stopped

CHAT = -1001234
DEMO_TOKEN = "123456:DEMO-local-simulator-token"  # noqa: S105 - only the local simulator takes it
DEMO_KEYS = ("demo-key-1", "demo-key-2")
SLOW_WORD = "story"
"""A message with this word in it gets a long answer that streams slowly (about 5 s)."""

HELP = (
    "Type to talk in the current topic (/new, /cc, /stop, /status, /retry, /help work too).\n"
    f'A message with "{SLOW_WORD}" in it gets a long, slow answer: while it streams, send more\n'
    "(it is queued), or /stop or /cc it.\n"
    ":topic N  switch topic   :status  every thread and key (as threadgate status shows)\n"
    ":exhaust  every API key answers HTTP 429 once   :quit  leave"
)

LEGEND = (
    "[dim]bot →[/dim] a new message from the bot; [dim]bot ✎[/dim] the bot edited its message "
    "(answers stream in as edits)."
)


def scripted_model(messages: list[dict[str, str]]) -> Reply:
    """Answers slowly when asked for a story (``SLOW_WORD``), quickly otherwise."""
    text = default_answer(messages)
    last = messages[-1]["content"] if messages else ""
    if SLOW_WORD in last:
        story = " ".join(f"Once upon a time, part {i}." for i in range(1, 40))
        return Reply(f"{story} The end.", chunk_delay=0.12)
    return Reply(text, chunk_delay=0.02)


@attrs.define
class Demo:
    console: Console
    telegram: BotAPISimulator
    model: LLMSimulator
    topic: int = 1
    prompt: str | None = None
    """The prompt on the screen while the user types (interactive mode), else ``None``."""

    def show(self, event: str, sent: SentMessage) -> None:
        mark = "→" if event == "sent" else "✎"
        text = sent.text if len(sent.text) < 300 else sent.text[:150] + " … " + sent.text[-120:]
        label = escape(f"[topic {sent.thread_id or 1}]")
        self.above_prompt(f"[cyan]{label}[/cyan] bot {mark} {escape(text)}")

    def above_prompt(self, markup: str) -> None:
        """Print ``markup``; while the user types, above the prompt and what they typed so
        far, which are drawn again below it (nothing is cut into the line being typed)."""
        if self.prompt is None or not self.console.is_terminal:
            self.console.print(markup)
            return
        out = self.console.file
        out.write("\r\x1b[K")  # the prompt's line, cleared
        self.console.print(markup)
        out.write(self.prompt + _typed_so_far())
        out.flush()

    def say(self, text: str, topic: int | None = None) -> None:
        topic = self.topic if topic is None else topic
        self.console.print(f"[green]{escape(f'[topic {topic}]')}[/green] you: {escape(text)}")
        self.telegram.say(text, chat_id=CHAT, topic=topic)

    def exhaust(self, seconds: int = 4) -> None:
        for key in DEMO_KEYS:
            self.model.script(key, Reply(status=429, retry_after=str(seconds)))

    def status(self, gateway: Gateway) -> None:
        body = status_json(gateway.thread_status(), gateway.pool_status(), time.time())
        self.console.print(render(body))


def demo_config(config: Config, telegram: str, model: str, data_dir: str) -> Config:
    return attrs.evolve(
        config,
        telegram=attrs.evolve(config.telegram, token=DEMO_TOKEN, api_base=telegram, poll_timeout=1),
        llm=attrs.evolve(config.llm, base_url=model, model="scripted", api_keys=DEMO_KEYS),
        # The demo's forum answers every message, as it did before groups needed a mention.
        threads=attrs.evolve(config.threads, reset_skills=("cc",), group_activation="always"),
        admin=attrs.evolve(config.admin, addr="127.0.0.1:0"),
        data_dir=data_dir,
    )


def log_path(config: Config) -> Path:
    """Where the demo's log goes: the console is the conversation's."""
    return Path(config.data_dir) / "demo.log"


async def run_demo(
    config: Config,
    *,
    interactive: bool | None = None,
    stop: anyio.Event | None = None,
    console: Console | None = None,
    started: Callable[[], None] = lambda: None,
) -> None:
    """The demo, until its walkthrough ends, the user quits or ``stop`` is set (then the
    gateway stops gracefully, as on SIGTERM). ``started`` is called once the gateway runs
    (``gateway.demo.run_demo`` shows a spinner until then)."""
    interactive = sys.stdin.isatty() if interactive is None else interactive
    console = console or Console()
    telegram, model = BotAPISimulator(), LLMSimulator(default=scripted_model)
    demo = Demo(console, telegram, model)
    telegram.listeners.append(demo.show)
    log = log_path(config)
    try:
        with logs.to_file(log):
            await telegram.start()
            await model.start()
            try:
                with tempfile.TemporaryDirectory(prefix="threadgate-demo-") as data_dir:
                    local = demo_config(config, telegram.base_url, model.base_url, data_dir)
                    # Announced in the configured data directory, not the demo's own, so
                    # that `threadgate status` finds the demo as it finds a gateway.
                    announce = Path(config.data_dir)
                    async with open_gateway(local, announce=announce, demo=True) as gateway:
                        started()
                        console.print(
                            "[bold]Threadgate local demo[/bold]: a simulated forum with topics, "
                            "a scripted model, and the real gateway in between.\n" + LEGEND
                        )
                        console.print(  # soft wrap: a path cut in two cannot be copied
                            f"The gateway's log goes to {escape(str(log))} "
                            "(follow it with tail -f in another terminal).",
                            soft_wrap=True,
                        )
                        story = partial(_chat if interactive else _walkthrough, demo, gateway)
                        await unless_stopped(stop or anyio.Event(), story)
            finally:
                started()
                await telegram.stop()
                await model.stop()
    finally:  # also after an error: what the gateway logged about it is there
        console.print(f"The demo has ended. Its log: {escape(str(log))}", soft_wrap=True)


async def _walkthrough(demo: Demo, gateway: Gateway) -> None:
    console = demo.console
    console.rule("1. Three topics, each its own thread")
    for topic in (1, 2, 3):
        demo.say(f"hello from topic {topic}", topic)
    await _quiet(demo, gateway)
    console.rule(f'2. "{SLOW_WORD}" makes a long answer; a second message is queued')
    demo.say(f"tell me a {SLOW_WORD}", 2)
    await anyio.sleep(1.2)
    demo.say("and make it short next time", 2)
    await anyio.sleep(1.5)
    console.rule("3. /cc (a reset skill) mid-run: cancelled, one notice, new session")
    demo.say("/cc", 2)
    await _quiet(demo, gateway)
    console.rule("4. Every key rate-limited: the message is parked, then answered")
    demo.exhaust(seconds=3)
    demo.say("are you still there?", 3)
    await anyio.sleep(6.0)
    demo.say("and topic 1 never noticed", 1)
    await anyio.sleep(2.0)
    await _quiet(demo, gateway)
    console.rule("5. Every thread and key at a glance (threadgate status shows the same)")
    demo.status(gateway)


async def _quiet(demo: Demo, gateway: Gateway, timeout: float = 60) -> None:
    """Wait until every update was taken and no thread is running, queueing or parked."""

    def busy() -> bool:
        return bool(demo.telegram.unconfirmed) or any(
            dict(child.detail).get("phase") != "idle" or child.mailbox_depth
            for child in gateway.thread_status().children
        )

    with anyio.move_on_after(timeout):
        while busy():  # noqa: ASYNC110 - status is a snapshot; nothing signals "all idle"
            await anyio.sleep(0.2)


async def _chat(demo: Demo, gateway: Gateway) -> None:
    console = demo.console
    console.print(HELP)
    _typed_so_far()  # imports readline: line editing at the prompt, and its buffer
    while True:
        demo.prompt = f"[topic {demo.topic}]> "
        try:
            line = await _read_line(demo.prompt)
        finally:
            demo.prompt = None
        if line is None or line.strip() == ":quit":
            return
        line = line.strip()
        if not line:
            continue
        if line.startswith(":topic"):
            number = line.removeprefix(":topic").strip()
            if number.isdigit() and int(number) > 0:
                demo.topic = int(number)
            else:
                console.print("usage: :topic N (N >= 1)")
        elif line == ":status":
            demo.status(gateway)
        elif line == ":exhaust":
            demo.exhaust()
            console.print("every key answers HTTP 429 (Retry-After: 4) to its next request")
        elif line.startswith(":"):
            console.print(HELP)
        else:
            demo.say(line)
        await anyio.sleep(0.3)


def _typed_so_far() -> str:
    """The line the user is typing at the prompt (readline's buffer; empty without it)."""
    try:
        import readline  # not on every platform; once imported, input() uses it
    except ImportError:
        return ""
    return readline.get_line_buffer()


async def _read_line(prompt: str) -> str | None:
    """``input(prompt)`` in a daemon thread: ``None`` at end of input.

    Not ``anyio.to_thread``: its worker threads are not daemons, and the interpreter waits for
    them at exit, so a SIGTERM while the user is at the prompt ended the demo but not the
    process. A cancelled wait leaves the thread blocked in ``input()``, which exit ignores.
    """
    send, receive = anyio.create_memory_object_stream[str | None](1)
    token = anyio.lowlevel.current_token()

    def read() -> None:
        try:
            line: str | None = input(prompt)
        except EOFError:
            line = None
        # The wait was cancelled or the event loop has ended meanwhile: nobody wants the line.
        with contextlib.suppress(
            RuntimeError, anyio.ClosedResourceError, anyio.BrokenResourceError
        ):
            anyio.from_thread.run_sync(send.send_nowait, line, token=token)

    threading.Thread(target=read, name="demo prompt", daemon=True).start()
    with send, receive:
        return await receive.receive()

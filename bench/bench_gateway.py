"""End-to-end benchmark: Threadgate against the bots users would write instead.

    python bench/bench_gateway.py [--chats 50] [--messages 10] [--loads 0.5,0.7] [--rounds 5]
                                  [--rate R] [--peers baseline,openai]
                                  [--versus threadgate|openai|baseline|slowed]
                                  [--untuned-baseline]

The peers: ``baseline``, a minimal aiogram bot with a per-chat lock that asks the model
through Threadgate's own tuned httpx client (``ChatClient``); ``openai``, the same bot asking
through the official ``openai`` SDK (``AsyncOpenAI``, its defaults, streaming): the one most
users would write. All long-poll the same local Bot API simulator and ask the same instant
local model (one streamed word), over real HTTP. Each bot runs in a process of its own, as
it would in production; the simulators and the load run in this one, so neither side
competes with the other for the interpreter lock. Telegram pacing is turned off for all (it
would measure Telegram's limits, not the gateway). The peers freeze their start-up objects
out of the garbage collector once started, as Threadgate does (``--untuned-baseline``: they
do not, and their p99 is then their collector's pauses).

First the closed loop: each chat sends its next message when the previous one was answered,
so the bots run flat out: this measures throughput. Then the open loop at each of
``--loads`` (0.5 and 0.7) times the first peer's throughput just measured: messages arrive
at a fixed rate whatever the answers do, round robin over the chats: this measures the
latency each bot adds to a message below saturation, without the queueing that a saturated
closed loop turns any throughput difference into (there, with N chats, each message waits
for about N answers). ``--rate R`` runs only the open loop, at R messages per second.

Each bot runs ``--rounds`` times, in rounds of adjacent runs, one run of each bot per round
(the order rotated by one each round, so none is always first); printed are each bot's
median run (messages/s, the latency from a user's message to the bot's answer at p50 and
p99, the bot's CPU time per message), and Threadgate's ratios to each peer (throughput, CPU
per message, latency at p50 and p99, as a ratio and as the milliseconds it adds): for every
round, and their median, which is the figure to read. This machine kind is noisy enough that
a single round says little: ``--versus baseline`` measures the baseline against itself the
same way, which shows how far apart two runs of the *same* bot land (the noise floor);
``--versus openai`` the openai SDK bot against the baseline; ``--versus slowed`` the
baseline against itself spending a quarter more CPU time per message (a bot at about 0.8 of
its throughput); ``--versus keyboard`` against itself sending each answer with a Stop button
and removing it (``editMessageReplyMarkup``), as Threadgate does when an answer's first words
went out before it ended: what that second request costs. Each bot's line also says the Bot
API requests it made per message (sends, edits, keyboard changes, chat actions).

Last comes the verdict on issue 22's targets, from the medians: throughput >= 1.0 x the
baseline's and >= 1.2 x the openai bot's, CPU per message <= the baseline's, p99 added
latency < 5 ms at 50 % load (``TARGET_LOAD``), and a closed-loop p99 no worse than each
peer's; each missed one says by how much.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import anyio
import attrs
import httpx
import openai
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters
from loguru import logger

from bench.scale_gateway import TOKEN, gateway_config
from gateway.app import serve
from gateway.config import ThreadsConfig
from gateway.demo.botapi_sim import BotAPISimulator, SentMessage
from gateway.demo.model_sim import LLMSimulator, Reply
from gateway.parts import HTTP_LIMITS
from providers.http import HttpxChatHttp
from providers.openai_client import ChatClient
from providers.secrets import ApiKey

FREEZE_BASELINE = "BENCH_BASELINE_GC_FREEZE"
"""Set (unless ``--untuned-baseline``) for a baseline tuned as Threadgate is: ``gc.freeze()``."""
TUNED_LIMITS = "BENCH_BASELINE_LIMITS"
"""Set: the baseline's httpx client keeps as many connections as Threadgate's
(``gateway.parts.HTTP_LIMITS``: 200, all kept alive) instead of httpx's defaults (100, 20
kept alive, the rest closed and opened again under load). ``bench_scale.py`` sets it: with
hundreds of chats at once, the defaults' reconnections overflow the simulator's listen
queue, and the baseline's requests time out connecting."""
BURN = "BENCH_BURN"
"""CPU seconds the baseline burns per message as the ``slowed`` bot (set by ``main``)."""
TARGET_LOAD = 0.5
"""The load at which the latency target (p99 added latency < 5 ms) is read: half the
baseline's throughput. Chosen under issue 6's throughput target (>= 0.8 of the baseline),
which let a bot spend 1.25 times the baseline's CPU per message; such a bot (``--versus
slowed``) runs at 62.5 % of its own capacity there, and at 87.5 % at 70 % load, where its p99
is queueing (``docs/performance.md`` has the figures)."""
SLOWED = 0.25
"""How much more CPU per message the ``slowed`` bot spends: 1.25 times the baseline's, which
is 0.8 of its throughput, the least issue 6's throughput target allowed."""
Result = tuple[float, list[float]]
"""Messages per second and the latencies (seconds) of one load."""


@attrs.frozen
class Measured:
    """One bot under one load."""

    rate: float
    """Messages answered per second."""
    latencies: list[float]
    """From each user message to its reply, in seconds."""
    cpu_per_message: float
    """The bot process's CPU time (user + system) per message, in seconds: steadier than
    the rate on a noisy machine, since it does not depend on who else got the cores."""
    requests: dict[str, float] = attrs.Factory(dict)
    """The Bot API requests it made per message, by kind (``Requests``)."""


@attrs.frozen
class Requests:
    """The bot's Bot API requests so far, as the simulator recorded them (``getUpdates`` is
    not recorded)."""

    send: int
    """Messages sent."""
    edit: int
    """Texts edited."""
    keyboard: int
    """Inline keyboards changed alone (``editMessageReplyMarkup``)."""
    action: int
    """Chat actions ("typing…")."""

    @classmethod
    def of(cls, telegram: BotAPISimulator) -> Requests:
        sent = list(telegram.sent)
        return cls(
            len(sent),
            sum(m.edits for m in sent),
            sum(m.markup_edits for m in sent),
            len(telegram.actions),
        )

    def per_message(self, before: Requests, messages: int) -> dict[str, float]:
        """What was made since ``before``, per message."""
        return {
            name: (getattr(self, name) - getattr(before, name)) / messages
            for name in ("send", "edit", "keyboard", "action")
        }

    @staticmethod
    def text(per_message: dict[str, float]) -> str:
        return " ".join(f"{name} {count:.2f}" for name, count in per_message.items())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


ANSWER = "pong"
"""What the model answers; the bot's reply with this text is the one that is timed."""


@attrs.define
class Replies:
    """Listens to the simulator: when each user message got its answer.

    Messages that arrive in a chat while its answer is being made are answered together
    (Threadgate takes everything queued into the next run and replies to the last of them):
    an answer counts for every earlier unanswered message of its chat.
    """

    telegram: BotAPISimulator
    expected: int = 0
    at: dict[int, float] = attrs.Factory(dict)
    _unanswered: defaultdict[int, list[int]] = attrs.Factory(lambda: defaultdict(list))
    _waiting: dict[int, asyncio.Event] = attrs.Factory(dict)
    _all: asyncio.Event = attrs.Factory(asyncio.Event)
    _loop: asyncio.AbstractEventLoop = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.telegram.listeners.append(self._on_send)
        self._loop = asyncio.get_running_loop()

    def close(self) -> None:
        """Stop listening (a later load listens with a ``Replies`` of its own)."""
        self.telegram.listeners.remove(self._on_send)

    def say(self, chat_id: int, text: str) -> int:
        """A user writes ``text`` in ``chat_id``; return its message id."""
        message_id = self.telegram.say(text, chat_id=chat_id, forum=False)
        self._unanswered[chat_id].append(message_id)
        return message_id

    def _on_send(self, event: str, sent: SentMessage) -> None:
        replied = sent.reply_to
        if event != "sent" or replied is None or sent.text != ANSWER or replied in self.at:
            return  # an edit, a notice ("still working"), or a second answer
        unanswered = self._unanswered[sent.chat_id]
        answered = [m for m in unanswered if m <= replied]
        unanswered[:] = [m for m in unanswered if m > replied]
        for message_id in answered:
            self.at[message_id] = sent.at
            if message_id in self._waiting:
                self._loop.call_soon_threadsafe(self._waiting[message_id].set)
        if len(self.at) >= self.expected:
            self._loop.call_soon_threadsafe(self._all.set)

    async def answer(self, message_id: int) -> float:
        """Wait for the answer to ``message_id``; return its latency in seconds."""
        if message_id not in self.at:
            event = self._waiting[message_id] = asyncio.Event()
            await event.wait()
        return self.at[message_id] - self.telegram.said_at[message_id]

    async def all(self) -> None:
        """Wait until ``expected`` messages were answered."""
        await self._all.wait()


async def drive(telegram: BotAPISimulator, chats: int, messages: int) -> Result:
    """Closed-loop load; return (messages per second, latencies in seconds)."""
    replies = Replies(telegram, chats * messages)
    latencies: list[float] = []

    async def chat(chat_id: int) -> None:
        for index in range(messages):
            latencies.append(await replies.answer(replies.say(chat_id, f"ping {index}")))

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for chat_id in range(1, chats + 1):
            tg.start_soon(chat, 10_000 + chat_id)
    took = time.perf_counter() - start
    replies.close()
    return chats * messages / took, latencies


async def drive_open(telegram: BotAPISimulator, chats: int, messages: int, rate: float) -> Result:
    """Open-loop load: ``chats * messages`` messages, one every ``1 / rate`` s whatever the
    answers do, round robin over the chats; return (answers per second, latencies)."""
    total = chats * messages
    replies = Replies(telegram, total)
    sent: list[int] = []
    start = time.perf_counter()
    for index in range(total):
        await anyio.sleep(max(0.0, start + index / rate - time.perf_counter()))
        sent.append(replies.say(10_001 + index % chats, f"ping {index}"))
    await replies.all()
    took = time.perf_counter() - start
    replies.close()
    return total / took, [replies.at[m] - telegram.said_at[m] for m in sent]


async def threadgate(telegram_url: str, llm_url: str) -> None:
    """Serve as the gateway until killed (configured as ``scale_gateway.py`` configures it:
    no pacing, no session history, every message answered)."""
    with tempfile.TemporaryDirectory() as data_dir:
        idle_ttl = ThreadsConfig().idle_ttl
        await serve(gateway_config(data_dir, telegram_url, llm_url, idle_ttl))


def burn(seconds: float) -> None:
    """Keep the event loop's thread busy for ``seconds`` of CPU time."""
    until = time.process_time() + seconds
    while time.process_time() < until:
        pass


async def baseline(
    telegram_url: str, llm_url: str, extra: float = 0.0, keyboard: bool = False
) -> None:
    """Serve as the minimal bot until killed: aiogram polling, a lock per chat, the same model
    call, one reply (and ``extra`` seconds of CPU time per message; with ``keyboard``, the
    reply carries a Stop button, removed once it is sent)."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(telegram_url))
    bot = Bot(TOKEN, session=session)
    router = Router()
    locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
    tuned = os.environ.get(TUNED_LIMITS)
    async with httpx.AsyncClient(limits=HTTP_LIMITS) if tuned else httpx.AsyncClient() as http:
        client = ChatClient(llm_url, HttpxChatHttp(http))  # the baseline stays on httpx

        @router.message()
        async def answer(message: Message) -> None:
            async with locks[message.chat.id]:
                chunks: list[str] = []

                async def emit(text: str) -> None:
                    chunks.append(text)

                messages = [{"role": "user", "content": message.text or ""}]
                text = await client.stream(ApiKey("k", "k"), "m", messages, emit)
                if extra:
                    burn(extra)
                markup = STOP if keyboard else None
                sent = await message.answer(
                    text,
                    reply_parameters=ReplyParameters(message_id=message.message_id),
                    reply_markup=markup,
                )
                if keyboard:
                    await bot.edit_message_reply_markup(
                        chat_id=sent.chat.id, message_id=sent.message_id, reply_markup=None
                    )

        dispatcher = Dispatcher()
        dispatcher.include_router(router)
        if os.environ.get(FREEZE_BASELINE):
            # As `threadgate run` does once started: without it, the collector's full passes
            # over aiogram's models stop this bot for a quarter of a second now and then (and
            # rebuild the response models that pydantic caches only weakly).
            gc.freeze()
        await dispatcher.start_polling(bot, polling_timeout=1, handle_signals=False)


async def openai_bot(telegram_url: str, llm_url: str) -> None:
    """Serve as the bot most users would write until killed: aiogram polling, a lock per chat,
    the official ``openai`` SDK's ``AsyncOpenAI`` (its defaults) streaming the answer from
    the same model, one reply."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(telegram_url))
    bot = Bot(TOKEN, session=session)
    router = Router()
    locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
    client = openai.AsyncOpenAI(base_url=llm_url, api_key="k")

    @router.message()
    async def answer(message: Message) -> None:
        async with locks[message.chat.id]:
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": message.text or ""}], stream=True
            )
            chunks: list[str] = []
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    chunks.append(chunk.choices[0].delta.content)
            await message.answer(
                "".join(chunks), reply_parameters=ReplyParameters(message_id=message.message_id)
            )

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    if os.environ.get(FREEZE_BASELINE):
        gc.freeze()  # as the minimal bot (above) and Threadgate do
    await dispatcher.start_polling(bot, polling_timeout=1, handle_signals=False)


async def slowed(telegram_url: str, llm_url: str) -> None:
    """The baseline, spending ``BURN`` more seconds of CPU time per message."""
    await baseline(telegram_url, llm_url, float(os.environ[BURN]))


async def keyboard(telegram_url: str, llm_url: str) -> None:
    """The baseline, sending its answer with a Stop button and then removing it, as Threadgate
    does with an answer whose first words went out before its end (``--versus keyboard``:
    what that second request costs)."""
    await baseline(telegram_url, llm_url, keyboard=True)


STOP = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="⏹ Stop", callback_data="stop")]]
)
"""The ``keyboard`` bot's Stop button."""
BOTS = {
    "baseline": baseline,
    "openai": openai_bot,
    "threadgate": threadgate,
    "slowed": slowed,
    "keyboard": keyboard,
}


async def measure(name: str, chats: int, messages: int, rate: float | None = None) -> Measured:
    """Start the simulators here and the bot ``name`` in a process of its own; drive it
    (closed loop, or open loop at ``rate`` messages per second)."""
    telegram, llm = BotAPISimulator(), LLMSimulator(default=lambda _: Reply(ANSWER))
    await telegram.start()
    await llm.start()
    command = [sys.executable, __file__, "--serve", name, telegram.base_url, llm.base_url]
    try:
        async with await anyio.open_process(command, stdout=None, stderr=None) as bot:
            try:
                with anyio.fail_after(60):  # the bot is up, connections are warm
                    await drive(telegram, 1, 1)
                before, made = cpu_seconds(bot.pid), Requests.of(telegram)
                if rate is None:
                    answered, latencies = await drive(telegram, chats, messages)
                else:
                    answered, latencies = await drive_open(telegram, chats, messages, rate)
                used = cpu_seconds(bot.pid) - before
                await anyio.sleep(0.5)  # the requests that follow the last answer
                requests = Requests.of(telegram).per_message(made, chats * messages)
                return Measured(answered, latencies, used / (chats * messages), requests)
            finally:
                bot.kill()
    finally:
        await telegram.stop()
        await llm.stop()


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


Lineup = tuple[tuple[str, str], ...]
"""The bots of one comparison, each as (label, bot): the last is compared with each of the
others (its references)."""
Rounds = list[dict[str, Measured]]
"""One run of each bot per round, by label; the runs of a round are adjacent in time."""


def lineup(versus: str, peers: list[str]) -> Lineup:
    """Threadgate after each of ``peers``; else the baseline and ``versus`` (the baseline
    itself: the noise floor)."""
    if versus == "threadgate":
        return (*((peer, peer) for peer in peers), ("threadgate", "threadgate"))
    if versus == "baseline":
        return (("baseline", "baseline"), ("baseline'", "baseline"))
    return (("baseline", "baseline"), (versus, versus))


async def run_rounds(
    bots: Lineup, chats: int, messages: int, rate: float | None, rounds: int
) -> Rounds:
    """Run every bot of ``bots`` once per round, one after the other, the order rotated by
    one each round (with two bots: alternating), so that the bots of a round see the machine
    in about the same state and none is always first."""
    results: Rounds = []
    for index in range(rounds):
        shift = index % len(bots)
        runs = {}
        for label, name in bots[shift:] + bots[:shift]:
            runs[label] = await measure(name, chats, messages, rate)
        results.append(runs)
    return results


def median_run(runs: list[Measured]) -> Measured:
    """The median run (by CPU time per message, steadier than the rate)."""
    return sorted(runs, key=lambda m: m.cpu_per_message)[len(runs) // 2]


@attrs.frozen
class Compared:
    """The subject against one reference: medians over the rounds of each round's ratio."""

    throughput: float
    """Messages per second, subject / reference."""
    cpu: float
    """CPU time per message, subject / reference."""
    added: dict[int, float]
    """Latency the subject adds at p50 and p99, in milliseconds."""
    latency: dict[int, float]
    """The latency at p50 and p99, subject / reference."""


def each(values: list[float], spec: str = ".2f") -> str:
    return "(each round: " + " ".join(format(v, spec) for v in values) + ")"


def report(results: Rounds, bots: Lineup, closed: bool) -> dict[str, Compared]:
    """Print each bot's median run, and the subject's ratios to each reference (every
    round's, and their median: the figure to read); return the medians by reference."""
    for label, _ in bots:
        m = median_run([runs[label] for runs in results])
        print(
            f"{label:>10}: {m.rate:8.1f} msg/s   p50 {percentile(m.latencies, 50) * 1000:6.1f} ms"
            f"   p99 {percentile(m.latencies, 99) * 1000:6.1f} ms"
            f"   cpu {m.cpu_per_message * 1000:5.2f} ms/msg"
            f"   Bot API requests per message: {Requests.text(m.requests)}"
        )
    subject = bots[-1][0]
    compared: dict[str, Compared] = {}
    for reference, _ in bots[:-1]:
        pairs = [(runs[reference], runs[subject]) for runs in results]
        print(f"{subject} / {reference}:")
        rates = [o.rate / b.rate for b, o in pairs]
        if closed:
            print(f"  throughput {statistics.median(rates):.2f} {each(rates)}")
        cpus = [o.cpu_per_message / b.cpu_per_message for b, o in pairs]
        print(f"  cpu per message {statistics.median(cpus):.2f} {each(cpus)}")
        added: dict[int, float] = {}
        ratio: dict[int, float] = {}
        for q in (50, 99):
            ms = [
                (percentile(o.latencies, q) - percentile(b.latencies, q)) * 1000 for b, o in pairs
            ]
            times = [percentile(o.latencies, q) / percentile(b.latencies, q) for b, o in pairs]
            added[q], ratio[q] = statistics.median(ms), statistics.median(times)
            print(
                f"  latency p{q}: added {added[q]:+.1f} ms {each(ms, '+.1f')},"
                f" ratio {ratio[q]:.2f} {each(times)}"
            )
        compared[reference] = Compared(
            statistics.median(rates), statistics.median(cpus), added, ratio
        )
    return compared


MIN_THROUGHPUT = {"baseline": 1.0, "openai": 1.2}
"""Issue 22's throughput targets: Threadgate / each peer, at least."""


def verdicts(closed: dict[str, Compared], at_load: dict[float, dict[str, Compared]]) -> None:
    """Print issue 22's targets, each met or by how much it is missed (medians of rounds)."""

    def line(what: str, value: str, met: bool, target: str, missed: str = "") -> None:
        print(f"  {what} {value}: {'met' if met else 'NOT met'} ({target}{missed})")

    print("\ntargets (issue 22; medians of the rounds):")
    for reference, least in MIN_THROUGHPUT.items():
        if reference in closed:
            got = closed[reference].throughput
            short = f"; {1 - got / least:.0%} short" if got < least else ""
            line(f"throughput / {reference}", f"{got:.2f}", got >= least, f">= {least}", short)
    if "baseline" in closed:
        cpu = closed["baseline"].cpu
        over = f"; {cpu - 1:.0%} over" if cpu > 1 else ""
        line("cpu per message / baseline", f"{cpu:.2f}", cpu <= 1, "<= 1.0, closed loop", over)
    if "baseline" in at_load.get(TARGET_LOAD, {}):
        p99 = at_load[TARGET_LOAD]["baseline"].added[99]
        line(f"p99 added at {TARGET_LOAD:.0%} load", f"{p99:+.1f} ms", p99 < 5, "< 5 ms")
    else:
        print(f"  p99 added latency: not measured (the target is read at {TARGET_LOAD:.0%} load)")
    for reference, compared in closed.items():
        worse = compared.latency[99]
        line(
            f"closed-loop p99 / {reference}",
            f"{worse:.2f}",
            worse <= 1,
            "<= 1.0: no worse",
            f"; {compared.added[99]:+.1f} ms" if worse > 1 else "",
        )
    for load, by_reference in at_load.items():
        if load != TARGET_LOAD and "baseline" in by_reference:
            p99 = by_reference["baseline"].added[99]
            print(f"  (p99 added at {load:.0%} load: {p99:+.1f} ms; not a target's load)")


async def main(
    chats: int,
    messages: int,
    rate: float | None,
    loads: list[float],
    rounds: int,
    versus: str = "threadgate",
    peers: tuple[str, ...] = ("baseline", "openai"),
) -> None:
    """Measure Threadgate against ``peers`` (or the baseline against ``versus``: itself, the
    noise floor; the openai SDK bot; or the slowed baseline, its burn calibrated on one run
    first): the closed loop (or only the open loop at ``rate``), then the open loop at each
    of ``loads`` times the baseline's throughput just measured."""
    bots = lineup(versus, list(peers))
    if versus == "slowed":
        calibration = await measure("baseline", chats, messages)
        os.environ[BURN] = str(SLOWED * calibration.cpu_per_message)
        print(
            f"slowed: the baseline burning {SLOWED:.0%} of its CPU time per message more"
            f" ({float(os.environ[BURN]) * 1000:.2f} ms): a bot at about 0.8 of its throughput"
        )
    names = ", ".join(label for label, _ in bots)
    if rate is not None:
        print(f"open loop: {rate:.0f} messages/s offered, round robin over {chats} chats ({names})")
        report(await run_rounds(bots, chats, messages, rate, rounds), bots, closed=False)
        return
    print(f"closed loop: {chats} chats x {messages} messages (throughput), {names}")
    results = await run_rounds(bots, chats, messages, None, rounds)
    closed = report(results, bots, closed=True)
    capacity = statistics.median(runs[bots[0][0]].rate for runs in results)
    at_load: dict[float, dict[str, Compared]] = {}
    for load in loads:
        offered = load * capacity
        print(
            f"\nopen loop: {offered:.0f} messages/s offered ({load:.0%} of the {bots[0][0]}'s"
            f" throughput above), round robin over {chats} chats (latency)"
        )
        results = await run_rounds(bots, chats, messages, offered, rounds)
        at_load[load] = report(results, bots, closed=False)
    if bots[-1][1] == "threadgate":
        verdicts(closed, at_load)


def serve_bot(name: str, telegram_url: str, llm_url: str) -> None:
    logger.remove()  # measure the gateway, not the terminal
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(BOTS[name], telegram_url, llm_url, backend="asyncio")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--messages", type=int, default=10, help="per chat")
    parser.add_argument(
        "--rate", type=float, help="open loop only, at this many messages per second offered"
    )
    parser.add_argument(
        "--loads",
        default="0.5,0.7",
        help="after the closed loop, the open loop at each of these fractions of the"
        " baseline's throughput, comma-separated (the latency target; '': closed loop only)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="runs of each bot; the median")
    parser.add_argument(
        "--versus",
        choices=("threadgate", "openai", "baseline", "slowed", "keyboard"),
        default="threadgate",
        help="what is measured: Threadgate against --peers; or the baseline against the"
        " openai SDK bot, against itself (the noise floor), against the slowed baseline"
        " (a bot at about 0.8 of its throughput), or against itself with a Stop button on"
        " its answer that it then removes (one request more per message, as Threadgate)",
    )
    parser.add_argument(
        "--peers",
        default="baseline,openai",
        help="Threadgate's references, comma-separated, the first the one whose throughput"
        " sets the open loop's rates: baseline (the minimal aiogram + httpx bot), openai"
        " (aiogram + the openai SDK)",
    )
    parser.add_argument(
        "--untuned-baseline",
        action="store_true",
        help="the baseline does not freeze its start-up objects out of the garbage collector"
        " (Threadgate does, and by default so does the baseline)",
    )
    parser.add_argument(
        "--serve", nargs=3, metavar=("BOT", "TELEGRAM", "LLM"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        serve_bot(*args.serve)
    else:
        # The bots are child processes: they inherit it.
        os.environ[FREEZE_BASELINE] = "" if args.untuned_baseline else "1"
        anyio.run(
            main,
            args.chats,
            args.messages,
            args.rate,
            [float(load) for load in args.loads.split(",") if load],
            args.rounds,
            args.versus,
            tuple(peer for peer in args.peers.split(",") if peer),
            backend="asyncio",
        )

"""Instructions per message: Threadgate against the minimal aiogram bot, counted by callgrind.

    python bench/bench_instructions.py [--messages 100] [--chats 5 --rate 2]

The same bots, simulators and closed-loop load as ``bench_gateway.py``, but each bot runs
under ``valgrind --tool=callgrind``, which counts the instructions the bot's process executes
(user space; the kernel's work in system calls is not counted). Counting starts after a
warm-up and stops after the load, so start-up is left out. The count does not depend on what
else the machine is doing: it repeats to within a fraction of a percent where the timed
benchmark varies by tens of percent, which makes it the figure to compare changes with.

One chat flat out by default: under valgrind the bot runs about fifty times slower, and with
several chats flat out the answers would take long enough for "typing…" and "still working"
notices that a real run does not send. ``--rate R`` counts an open loop instead, ``--chats``
chats round robin at R messages per second (``--messages`` per chat): slow enough (2/s),
the bot idles between messages as it does when users write. Needs valgrind
(``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio

from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.model_sim import LLMSimulator, Reply

BENCH = Path(__file__).resolve().parent / "bench_gateway.py"
sys.path.insert(0, str(BENCH.parent.parent))  # run as a script: the project root

from bench.bench_gateway import (  # noqa: E402 - after the path set-up above
    ANSWER,
    FREEZE_BASELINE,
    drive,
    drive_open,
)


def dumped(out: Path, name: str) -> int:
    """The instruction count callgrind dumped for ``name`` (the bot was killed afterwards, so
    only the dump asked for holds totals)."""
    for dump in out.glob(f"{name}.callgrind*"):
        for line in dump.read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise ValueError(f"callgrind dumped no totals for {name} in {out}")


async def count(
    name: str, messages: int, out: Path, chats: int = 1, rate: float | None = None
) -> float:
    """Instructions per message of the bot ``name``: a closed loop of one chat, or an open
    loop of ``chats`` chats at ``rate`` messages per second."""
    telegram, llm = BotAPISimulator(), LLMSimulator(default=lambda _: Reply(ANSWER))
    await telegram.start()
    await llm.start()
    dump = out / f"{name}.callgrind"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",  # no instrumentation while importing: start-up is fast too
        f"--callgrind-out-file={dump}",
        sys.executable,
        str(BENCH),
        "--serve",
        name,
        telegram.base_url,
        llm.base_url,
    ]
    try:
        async with await anyio.open_process(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ) as bot:
            try:
                with anyio.fail_after(600):  # imports run slowly even uninstrumented
                    await drive(telegram, 1, 3)
                await anyio.run_process(["callgrind_control", "--instr=on", str(bot.pid)])
                if rate is None:
                    await drive(telegram, 1, messages)
                else:
                    await drive_open(telegram, chats, messages, rate)
                await anyio.run_process(["callgrind_control", "--dump", str(bot.pid)])
            finally:
                bot.kill()
    finally:
        await telegram.stop()
        await llm.stop()
    return dumped(out, name) / (messages if rate is None else chats * messages)


async def main(messages: int, chats: int, rate: float | None) -> None:
    counts: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as out:
        for name in ("baseline", "threadgate"):
            counts[name] = await count(name, messages, Path(out), chats, rate)
    for name, per_message in counts.items():
        print(f"{name:>10}: {per_message / 1e6:6.2f} M instructions per message")
    ratio = counts["threadgate"] / counts["baseline"]
    print(f"instructions per message (threadgate / baseline): {ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100, help="per chat")
    parser.add_argument("--chats", type=int, default=1, help="with --rate")
    parser.add_argument("--rate", type=float, help="open loop, messages per second")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("bench_instructions: needs valgrind (apt-get install valgrind)")
    os.environ[FREEZE_BASELINE] = "1"  # the baseline as bench_gateway.py runs it by default
    anyio.run(main, args.messages, args.chats, args.rate, backend="asyncio")

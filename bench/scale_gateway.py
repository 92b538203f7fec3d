"""The gateway process of ``bench_scale.py``: Threadgate as ``threadgate run`` serves it.

    python bench/scale_gateway.py DATA_DIR TELEGRAM_URL LLM_URL IDLE_TTL [patient]

A script of its own, so that the process imports what ``threadgate run`` imports and no
more (``bench_scale.py`` imports the peers and the simulators). Configured as
``bench_gateway.py`` configures Threadgate (no pacing, no history, every message answered),
over ``DATA_DIR``, with ``threads.idle_ttl`` = ``IDLE_TTL``; ``patient``: waiting up to
``PATIENT`` seconds for a model that does not answer (``llm.read_timeout``, which is also
the HTTP client's wait for a free connection, and ``threads.stall_timeout``).

Writes ``bench-times.json`` in ``DATA_DIR`` once its imports are done: the wall-clock times
at which the interpreter ran this script's first line and at which the imports were done
(what a start-up is spent on). Logs its warnings and errors to ``gateway.log`` there
(``BENCH_GATEWAY_LOG``: at that level).
"""

from __future__ import annotations

import time

BEGAN = time.time()  # before the imports below: what they cost is part of a start-up

import contextlib  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

import anyio  # noqa: E402
import attrs  # noqa: E402
from loguru import logger  # noqa: E402

if TYPE_CHECKING:
    from loguru import Record

from gateway.app import serve  # noqa: E402
from gateway.config import (  # noqa: E402
    AdminConfig,
    Config,
    LLMConfig,
    TelegramConfig,
    ThreadsConfig,
)

TOKEN = "123456:BENCH-token"  # noqa: S105 - only the local simulator takes it
TIMES = "bench-times.json"
LOG = "gateway.log"
TRACE = "BENCH_GATEWAY_TRACEMALLOC"
"""Set: trace allocations (``tracemalloc``), and on each SIGUSR1 write a snapshot to
``snapshot-N.tracemalloc`` in the data directory (a look at where memory goes; slow)."""
PROFILE = "BENCH_GATEWAY_PROFILE"
"""Set: profile the gateway (cProfile, from the end of the imports), and on SIGUSR2 write
the profile so far to ``PROFILE_DUMP`` in the data directory."""
PROFILE_DUMP = "gateway.prof"
GATEWAY_LOG = "BENCH_GATEWAY_LOG"
"""The level the gateway logs at to ``LOG`` (default ``WARNING``: per-message lines cost)."""

REPLAYED = "replayed.log"
"""The start-up replay's summary line, after the Unix time it was logged at (whatever
``GATEWAY_LOG`` says: when every pending entry was back in its thread)."""
STAMPED = "{time:X.SSS} {message}"


PATIENT = 900.0


def gateway_config(
    data_dir: str, telegram_url: str, llm_url: str, idle_ttl: float, patient: bool = False
) -> Config:
    # No session history in the request: the peers send the user's text alone.
    llm = LLMConfig(base_url=llm_url, model="m", api_keys=("k",), context_budget=0)
    threads = ThreadsConfig(group_activation="always", idle_ttl=idle_ttl)
    if patient:
        llm = attrs.evolve(llm, read_timeout=PATIENT)
        threads = attrs.evolve(threads, stall_timeout=PATIENT)
    return Config(
        telegram=TelegramConfig(
            token=TOKEN,
            api_base=telegram_url,
            poll_timeout=1,
            send_rate=1e6,
            chat_send_interval=1e-6,
            group_sends_per_minute=1_000_000,
            edit_interval=1e-6,
        ),
        llm=llm,
        threads=threads,
        admin=AdminConfig(addr="127.0.0.1:0"),
        data_dir=data_dir,
    )


def main(data_dir: str, telegram_url: str, llm_url: str, idle_ttl: str, *mode: str) -> None:
    imported = time.time()
    times = Path(data_dir) / TIMES
    times.write_text(json.dumps({"began": BEGAN, "imported": imported}))
    logger.remove()  # measure the gateway, not the terminal
    logger.add(Path(data_dir) / LOG, level=os.environ.get(GATEWAY_LOG, "WARNING"))
    logger.add(str(Path(data_dir) / REPLAYED), level="INFO", filter=replay_line, format=STAMPED)
    if os.environ.get(TRACE):
        trace(Path(data_dir))
    if os.environ.get(PROFILE):
        profile(Path(data_dir) / PROFILE_DUMP)
    patient = mode == ("patient",)
    config = gateway_config(data_dir, telegram_url, llm_url, float(idle_ttl), patient)
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve, config, backend="asyncio")


def replay_line(record: Record) -> bool:
    """Whether ``record`` is the start-up replay's summary (``Delivery.replay``)."""
    return record["name"] == "gateway.telegram.delivery" and record["function"] == "replay"


def trace(data_dir: Path) -> None:
    """Trace allocations from now on; write a snapshot on each SIGUSR1."""
    tracemalloc.start(12)
    taken = itertools.count(1)

    def snapshot(_signal: int, _frame: object) -> None:
        gc.collect()
        tracemalloc.take_snapshot().dump(str(data_dir / f"snapshot-{next(taken)}.tracemalloc"))

    signal.signal(signal.SIGUSR1, snapshot)


def profile(dump: Path) -> None:
    """Profile from now on; write the profile so far to ``dump`` on each SIGUSR2."""
    profiler = cProfile.Profile()

    def write(_signal: int, _frame: object) -> None:
        profiler.disable()
        profiler.dump_stats(str(dump.with_suffix(".partial")))
        dump.with_suffix(".partial").rename(dump)
        profiler.enable()

    signal.signal(signal.SIGUSR2, write)
    profiler.enable()


if __name__ == "__main__":
    main(*sys.argv[1:])

"""Benchmark of the actor runtime. Prints ratios against a baseline measured in the same run.

    python bench/bench_actors.py [--messages N] [--backend asyncio|trio]

Throughput: messages routed through the supervisor into 1, 100 and 10,000 actors, against a
raw anyio memory-object-stream handoff between two tasks. Memory: tracemalloc bytes per idle
(dormant) actor with 10,000 and 100,000 live actors, and per passivated actor.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from typing import Any

import anyio

from actors import Actor, ActorContext, Supervisor, SupervisorConfig


class _Counter(Actor[int]):
    def __init__(self, done: list[int], target: int, finished: anyio.Event) -> None:
        self._done = done
        self._target = target
        self._finished = finished

    async def receive(self, message: int, ctx: ActorContext[Any]) -> object:
        self._done[0] += 1
        if self._done[0] == self._target:
            self._finished.set()
        return None


async def raw_handoff(n: int) -> float:
    """Seconds to hand ``n`` items from one task to another through a memory object stream."""
    send, receive = anyio.create_memory_object_stream[int](1024)
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:

        async def consume() -> None:
            async with receive:
                async for _ in receive:
                    pass

        tg.start_soon(consume)
        async with send:
            for i in range(n):
                await send.send(i)
    return time.perf_counter() - start


async def through_supervisor(n: int, actors: int) -> float:
    """Seconds to route ``n`` messages round-robin to ``actors`` actors and have them handled."""
    done = [0]
    finished = anyio.Event()
    config = SupervisorConfig(idle_ttl=None, mailbox_capacity=1024)
    start = time.perf_counter()
    supervisor: Supervisor[int] = Supervisor(lambda _key: _Counter(done, n, finished), config)
    async with supervisor:
        refs = [supervisor.ref_for(i) for i in range(actors)]
        for i in range(n):
            await refs[i % actors].send(i)
        await finished.wait()
    return time.perf_counter() - start


async def memory_per_actor(count: int) -> tuple[float, float]:
    """Bytes per dormant actor with ``count`` live, and per passivated actor afterwards."""
    config = SupervisorConfig(idle_ttl=1.0)
    supervisor: Supervisor[int] = Supervisor(lambda _key: _Counter([0], -1, anyio.Event()), config)
    async with supervisor:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            supervisor.ref_for(i).send_nowait(i)
        await anyio.sleep(0.2)
        gc.collect()
        live = tracemalloc.get_traced_memory()[0]
        await anyio.sleep(1.6)  # idle_ttl plus one sweep: every actor is passivated
        gc.collect()
        passivated = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert supervisor.statistics().live == 0, "every actor should be passivated"
    return (live - before) / count, (passivated - before) / count


async def main(messages: int) -> None:
    raw = min([await raw_handoff(messages) for _ in range(3)])
    raw_rate = messages / raw
    print(f"baseline: raw memory-stream handoff  {raw_rate:12,.0f} msg/s")
    for actors in (1, 100, 10_000):
        took = min([await through_supervisor(messages, actors) for _ in range(3)])
        rate = messages / took
        print(
            f"supervisor -> {actors:>6,} actors        {rate:12,.0f} msg/s"
            f"   ratio {rate / raw_rate:.2f}"
        )
    for count in (10_000, 100_000):
        live, passivated = await memory_per_actor(count)
        print(
            f"memory: {count:>7,} idle actors       {live:8.0f} B/actor"
            f"   passivated: {passivated:6.1f} B/actor"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    anyio.run(main, args.messages, backend=args.backend)

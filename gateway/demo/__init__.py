"""The local demo, and the simulators it runs on (also the tests' fake Bot API and model).

Production code imports nothing from here, except the CLI's ``demo`` command and ``run``'s
fallback when no bot token is set (``make lint`` checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    import anyio

    from gateway.config import Config

STARTING = "Starting the local demo: a simulated Telegram, a scripted model, the real gateway…"
"""Shown while the demo starts (a few seconds: the gateway's imports, aiogram's above all)."""


async def run_demo(
    config: Config, *, interactive: bool | None = None, stop: anyio.Event | None = None
) -> None:
    """``gateway.demo.walkthrough.run_demo``, with something on the screen from the start:
    this module imports little, so the spinner (or, off a terminal, a line) shows at once."""
    console = Console()
    if not console.is_terminal:
        console.print(STARTING)
    with console.status(STARTING) as status:
        # Imported here, under the spinner: it imports the whole gateway.
        from gateway.demo.walkthrough import run_demo as walkthrough

        await walkthrough(
            config, interactive=interactive, stop=stop, console=console, started=status.stop
        )


__all__ = ["run_demo"]

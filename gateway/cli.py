"""``threadgate``: run, demo, status, check-config."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import anyio
import httpx
from loguru import logger
from rich.console import Console

from gateway import logs
from gateway.config import Config, load, redacted
from gateway.exceptions import AdminUnreachableError, GatewayError
from gateway.ops import discovery
from gateway.ops.status_view import render
from gateway.signals import run_until_signalled


def _config(args: argparse.Namespace) -> Config:
    path = args.config or os.environ.get("THREADGATE_CONFIG") or "threadgate.toml"
    return load(path)


def _run(args: argparse.Namespace) -> int:
    config = _config(args)
    if not config.telegram.token:
        logger.warning("no TELEGRAM_BOT_TOKEN: starting the built-in local demo instead")
        return _demo(args, config)
    from gateway.app import serve

    anyio.run(run_until_signalled, partial(serve, config), backend="asyncio")
    return 0


def _demo(args: argparse.Namespace, config: Config | None = None) -> int:
    from gateway.demo import run_demo

    demo = partial(run_demo, config or _config(args))
    anyio.run(run_until_signalled, lambda stop: demo(stop=stop), backend="asyncio")
    return 0


def fetch_status(addr: str, token: str = "") -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(f"http://{addr}/status", headers=headers, timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise AdminUnreachableError(
            f"no gateway answered at {addr} ({type(error).__name__}); is it running?"
        ) from None
    result: dict[str, object] = response.json()
    return result


def _status(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.addr:
        located = discovery.Located(args.addr, "--addr")
    else:
        # Where the running gateway (or the demo) said it listens; else admin.addr.
        located = discovery.locate(Path(config.data_dir), config.admin.addr)
    if located.stale is not None:
        print(
            f"threadgate: {Path(config.data_dir) / discovery.FILE_NAME} is stale (process "
            f"{located.stale.pid} is gone); trying admin.addr {located.addr}",
            file=sys.stderr,
        )
    console = Console()
    while True:
        try:
            status = fetch_status(located.addr, config.admin.token)
        except AdminUnreachableError as error:
            raise AdminUnreachableError(f"{error} (address from {located.source})") from None
        if args.json:
            print(json.dumps(status, indent=2))
        else:
            console.print(render(status))
        if not args.watch:
            return 0
        time.sleep(args.interval)
        console.clear()


def _check_config(args: argparse.Namespace) -> int:
    print(json.dumps(redacted(_config(args)), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="threadgate", description=__doc__)
    parser.add_argument(
        "--config", help="TOML file (default: $THREADGATE_CONFIG or threadgate.toml)"
    )
    parser.add_argument("--json-logs", action="store_true", help="log JSON lines")
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the gateway (the local demo without a bot token)")
    commands.add_parser("demo", help="the full stack locally: simulated Telegram and model")
    status = commands.add_parser("status", help="the running gateway's supervisor table")
    status.add_argument("--json", action="store_true")
    status.add_argument("--watch", action="store_true")
    status.add_argument("--interval", type=float, default=2.0)
    status.add_argument("--addr", help="admin host:port (default: admin.addr)")
    commands.add_parser("check-config", help="validate and print the effective config")
    args = parser.parse_args(argv)
    logs.setup(json=args.json_logs, level=args.log_level)
    handlers = {"run": _run, "demo": _demo, "status": _status, "check-config": _check_config}
    try:
        return handlers[args.command](args)
    except (GatewayError, BaseExceptionGroup) as error:
        # The gateway's task groups wrap what ends them: report our own errors as one line
        # each (no traceback), and let anything else propagate as it is.
        errors = _gateway_errors(error)
        if errors is None:
            raise
        for each in errors:
            print(f"threadgate: {each}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("threadgate: stopped", file=sys.stderr)
        return 0


def _gateway_errors(error: BaseException) -> list[BaseException] | None:
    """The ``GatewayError`` leaves of ``error``; ``None`` if anything else is among them."""
    if isinstance(error, GatewayError):
        return [error]
    if isinstance(error, BaseExceptionGroup):
        leaves: list[BaseException] = []
        for inner in error.exceptions:
            found = _gateway_errors(inner)
            if found is None:
                return None
            leaves += found
        return leaves
    return None


if __name__ == "__main__":
    sys.exit(main())

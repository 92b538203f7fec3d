"""The ``threadgate`` command: run, demo, init, doctor, status, check-config, pairing."""

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
from dotenv import dotenv_values
from loguru import logger
from rich.console import Console

from gateway import logs
from gateway.config import Config, load, redacted
from gateway.config_check import warnings as config_warnings
from gateway.exceptions import AdminUnreachableError, GatewayError, TokenMissingError
from gateway.ops import discovery
from gateway.ops.status_view import render
from gateway.signals import run_until_signalled

DESCRIPTION = "A Telegram gateway for LLM agents. New here? Run: threadgate init"


def _config(args: argparse.Namespace) -> Config:
    env = _environment()
    path = args.config or env.get("THREADGATE_CONFIG") or "threadgate.toml"
    return load(path, env, must_exist=args.config is not None)


def _run(args: argparse.Namespace) -> int:
    config = _config(args)
    if not config.telegram.token:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            # Under compose or systemd the demo would loop forever and never be healthy.
            raise TokenMissingError
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


def _environment() -> dict[str, str]:
    """``.env`` in the working directory (if any), then the real environment, which wins."""
    found = {k: v for k, v in dotenv_values(Path.cwd() / ".env").items() if v is not None}
    return {**found, **os.environ}


def _check_config(args: argparse.Namespace) -> int:
    config = _config(args)
    for warning in config_warnings(config):
        print(f"threadgate: warning: {warning}", file=sys.stderr)
    print(json.dumps(redacted(config), indent=2))
    return 0


def _init(args: argparse.Namespace) -> int:
    from gateway.setup.init import run_init

    return run_init(Console(), Path(args.dir), _environment(), environment=os.environ)


def _doctor(args: argparse.Namespace) -> int:
    from gateway.setup.doctor import run_doctor

    return run_doctor(partial(_config, args), Console(highlight=False))


def _pairing(args: argparse.Namespace) -> int:
    from gateway import pairing_cli

    config = _config(args)
    if args.action == "approve":
        telegram = config.telegram
        bot = (telegram.api_base, telegram.token) if telegram.token else None
        return pairing_cli.approve_pairing(
            config.data_dir, args.code, url=config.store.url, bot=bot
        )
    if args.action == "revoke":
        return pairing_cli.revoke_pairing(
            config.data_dir,
            args.user_id,
            url=config.store.url,
            allowed_users=config.telegram.allowed_users,
        )
    return pairing_cli.list_pairing(config.data_dir, url=config.store.url)


def _parser() -> argparse.ArgumentParser:
    # The global options are accepted before and after the subcommand (`threadgate run
    # --json-logs`): each subparser has them too, with SUPPRESS defaults, so that one given
    # after the subcommand is not overwritten by its default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="TOML file; it must exist (default: $THREADGATE_CONFIG, else threadgate.toml "
        "if present)",
    )
    common.add_argument(
        "--json-logs",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log one JSON object per line (for log shippers)",
    )
    common.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        choices=["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"],
        type=str.upper,
        help="the lowest level logged (default: INFO)",
    )
    parser = argparse.ArgumentParser(
        prog="threadgate",
        description=DESCRIPTION,
        parents=[common],
        epilog="Settings come from the TOML file, then .env in the working directory, then "
        "the environment, which wins. See docs/configuration.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=text, description=text, parents=[common])

    command(
        "run",
        "run the gateway; with no bot token it runs the local demo when in a terminal, "
        "and otherwise exits with status 2",
    )
    command("demo", "the whole stack on this machine: simulated Telegram and model, no token")
    init = command("init", "set up a real bot interactively: writes threadgate.toml and .env")
    init.add_argument(
        "--dir", default=".", help="where to write threadgate.toml and .env (default: here)"
    )
    command(
        "doctor",
        "check the config and try it live: Telegram, the model endpoint, the keys, the data "
        "directory, the admin address; exit status 1 if anything fails",
    )
    status = command("status", "the running gateway's threads and key pools")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.add_argument("--watch", action="store_true", help="refresh until interrupted")
    status.add_argument(
        "--interval", type=float, default=2.0, help="seconds between refreshes (default: 2)"
    )
    status.add_argument(
        "--addr",
        help="admin host:port (default: the address the running gateway wrote in its data "
        "directory, else admin.addr)",
    )
    command("check-config", "validate and print the effective config, secrets redacted")
    pairing = command(
        "pairing",
        "admit users who asked in a private chat (telegram.dm_policy = pairing), or remove "
        "them; works while the gateway runs",
    )
    actions = pairing.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "list",
        help="the pending codes (who asked, how long ago) and the approved users",
        description="the pending codes (who asked, how long ago) and the approved users",
        parents=[common],
    )
    approve = actions.add_parser(
        "approve",
        help="admit the user who got CODE, and tell them; exit status 1 if it is unknown or "
        "expired",
        description="admit the user who got CODE, and tell them; exit status 1 if it is "
        "unknown or expired",
        parents=[common],
    )
    approve.add_argument("code", metavar="CODE", help="the code the user was sent (any case)")
    revoke = actions.add_parser(
        "revoke",
        help="remove an approved user; exit status 1 if nobody approved them",
        description="remove an approved user; exit status 1 if nobody approved them",
        parents=[common],
    )
    revoke.add_argument("user_id", metavar="USER_ID", type=int, help="their Telegram user id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for name, default in (("config", None), ("json_logs", False), ("log_level", "INFO")):
        if not hasattr(args, name):
            setattr(args, name, default)
    logs.setup(json=args.json_logs, level=args.log_level)
    handlers = {
        "run": _run,
        "demo": _demo,
        "init": _init,
        "doctor": _doctor,
        "status": _status,
        "check-config": _check_config,
        "pairing": _pairing,
    }
    try:
        return handlers[args.command](args)
    except BrokenPipeError:
        # The reader went away (`threadgate status --json | head`): not an error of ours.
        # Point stdout at /dev/null so that the interpreter's last flush is quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
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

"""``threadgate init``: an interactive set-up that writes ``threadgate.toml`` and ``.env``.

It asks for the bot token (checked with ``getMe``), a provider (a preset or any base URL),
the API keys, the model (picked from the endpoint's ``/models`` where it has one) and who may
use the bot (the sender of a message written to it now, read with one ``getUpdates``). The
settings go to ``threadgate.toml``, the secrets to ``.env`` (mode 0600). Prompts are rich's;
``stream`` feeds them scripted input in tests.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO, cast

import attrs
import httpx
from dotenv import dotenv_values, set_key
from rich.console import Console
from rich.markup import escape
from rich.prompt import Confirm, Prompt

from gateway.config import load
from gateway.config_check import TOKEN_SHAPE, url_problem
from gateway.exceptions import ProbeFailedError, SetupAbortedError
from gateway.setup.probes import BotAPI, BotIdentity, list_models

TRIES = 3
"""How often a step that failed is asked again before init gives up."""
WAIT_FOR_MESSAGE = 20
"""Seconds ``getUpdates`` waits for the message written to the bot."""


@attrs.frozen
class Preset:
    """A provider one can pick by name."""

    name: str
    """What the menu shows."""
    base_url: str
    """Its OpenAI-compatible endpoint (for a self-hosted one, the usual local address)."""
    model: str
    """The model offered first."""
    needs_key: bool = True
    """Whether it takes API keys."""
    local: bool = False
    """Self-hosted: the base URL is asked, with ``base_url`` as the default."""


PRESETS = (
    Preset("OpenAI", "https://api.openai.com/v1", "gpt-4o-mini"),
    Preset("DeepSeek", "https://api.deepseek.com/v1", "deepseek-chat"),
    Preset("OpenRouter", "https://openrouter.ai/api/v1", "openai/gpt-4o-mini"),
    Preset("Groq", "https://api.groq.com/openai/v1", "llama-3.3-70b-versatile"),
    Preset("Ollama", "http://127.0.0.1:11434/v1", "llama3.2", needs_key=False, local=True),
    Preset("vLLM", "http://127.0.0.1:8000/v1", "", needs_key=False, local=True),
    Preset("another OpenAI-compatible endpoint", "", "", needs_key=False, local=True),
)


@attrs.frozen
class Answers:
    """What init found out."""

    token: str = attrs.field(repr=False)
    """The bot token."""
    base_url: str
    """``llm.base_url``."""
    model: str
    """``llm.model``."""
    keys: tuple[str, ...] = attrs.field(repr=False)
    """``llm.api_keys``."""
    allowed_users: tuple[int, ...]
    """``telegram.allowed_users`` (and ``admin_users``)."""


@attrs.define
class _Wizard:
    _console: Console
    _env: Mapping[str, str]
    _http: httpx.Client
    _stream: TextIO | None
    _wait: float

    def ask(self, question: str, *, default: str | None = None, secret: bool = False) -> str:
        # getpass reads the terminal: not a script, nor a pipe (it would warn, then echo).
        secret = secret and self._stream is None and sys.stdin.isatty()
        try:
            if default is None:
                answer = Prompt.ask(
                    question, console=self._console, password=secret, stream=self._stream
                )
            else:
                answer = Prompt.ask(
                    question,
                    console=self._console,
                    password=secret,
                    default=default,
                    show_default=bool(default),
                    stream=self._stream,
                )
        except EOFError:
            raise SetupAbortedError("init stopped: the input ended; nothing was written") from None
        return answer.strip()

    def confirm(self, question: str, *, default: bool) -> bool:
        try:
            return Confirm.ask(
                question, console=self._console, default=default, stream=self._stream
            )
        except EOFError:
            raise SetupAbortedError("init stopped: the input ended; nothing was written") from None

    def say(self, text: str) -> None:
        self._console.print(text)

    # -- the steps -------------------------------------------------------------------------

    def token(self) -> tuple[str, BotIdentity | None]:
        api_base = self._env.get("THREADGATE_TELEGRAM_API_BASE") or "https://api.telegram.org"
        self.say("[bold]1. The bot[/]: talk to @BotFather in Telegram, /newbot, copy its token.")
        for _ in range(TRIES):
            token = self.ask("Bot token", secret=True)
            if not TOKEN_SHAPE.fullmatch(token):
                self.say("[red]That is not a bot token[/] (digits, a colon, then letters).")
                continue
            try:
                me = BotAPI(api_base, token, self._http).get_me()
            except ProbeFailedError as error:
                self.say(f"[red]{escape(error.problem)}[/]")
                if error.status is None and self.confirm(
                    "Keep this token anyway (Telegram could not be asked)?", default=False
                ):
                    return token, None
                continue
            self.say(f"[green]ok[/]: this is @{escape(me.username)}")
            return token, me
        raise SetupAbortedError(f"init stopped: no working bot token after {TRIES} tries")

    def provider(self) -> tuple[Preset, str]:
        self.say("[bold]2. The model provider[/] (any OpenAI-compatible endpoint):")
        for number, preset in enumerate(PRESETS, 1):
            self.say(f"  {number}. {escape(preset.name)}")
        choices = [str(n) for n in range(1, len(PRESETS) + 1)]
        for _ in range(TRIES):
            picked = self.ask("Provider", default="1")
            if picked in choices:
                break
            self.say(f"[red]Pick a number from 1 to {len(PRESETS)}[/]")
        else:
            raise SetupAbortedError("init stopped: no provider picked")
        preset = PRESETS[int(picked) - 1]
        if not preset.local:
            return preset, preset.base_url
        for _ in range(TRIES):
            url = self.ask("Base URL (ending in /v1 as a rule)", default=preset.base_url)
            problem = url_problem(url)
            if problem is None:
                return preset, url.rstrip("/")
            self.say(f"[red]The URL {escape(problem)}[/]")
        raise SetupAbortedError("init stopped: no valid base URL")

    def keys_and_model(self, preset: Preset, base_url: str) -> tuple[tuple[str, ...], str]:
        self.say(
            "[bold]3. API keys[/]: several, comma-separated, form a pool"
            + ("" if preset.needs_key else " (Enter for none)")
        )
        for _ in range(TRIES):
            text = self.ask("API keys", secret=True, default=None if preset.needs_key else "")
            keys = tuple(k.strip() for k in text.split(",") if k.strip())
            if preset.needs_key and not keys:
                self.say(f"[red]{escape(preset.name)} needs a key[/]")
                continue
            try:
                models = list_models(self._http, base_url, keys[0] if keys else "")
            except ProbeFailedError as error:
                self.say(f"[red]{escape(error.problem)}[/]")
                if error.status in (401, 403):
                    self.say("The endpoint refused the key; enter it again.")
                    continue
                self.say("The models cannot be listed; type the model's name.")
                models = None
            return keys, self.model(preset, models)
        raise SetupAbortedError("init stopped: the endpoint accepted none of the keys")

    def model(self, preset: Preset, models: list[str] | None) -> str:
        self.say("[bold]4. The model[/]")
        if not models:
            while not (name := self.ask("Model name", default=preset.model)):
                self.say("[red]A model name is needed[/]")
            return name
        shown = models[:40]
        for number, model in enumerate(shown, 1):
            self.say(f"  {number}. {escape(model)}")
        if len(models) > len(shown):
            self.say(f"  ... and {len(models) - len(shown)} more (type a name)")
        default = str(shown.index(preset.model) + 1) if preset.model in shown else "1"
        while True:
            picked = self.ask("Model (number or name)", default=default)
            if picked.isdigit() and 1 <= int(picked) <= len(shown):
                return shown[int(picked) - 1]
            if picked in models:
                return picked
            self.say(f"[red]{escape(picked)!r} is not offered here[/]")

    def allowlist(self, me: BotIdentity | None, api: BotAPI | None) -> tuple[int, ...]:
        self.say("[bold]5. Who may use the bot[/]")
        users: list[int] = []
        if me is not None and api is not None:
            self.say(
                f"Send any message to your bot @{escape(me.username)} now "
                f"(in Telegram), then press Enter; I wait {self._wait:g}s for it."
            )
            self.ask("Sent it?", default="")
            try:
                sender = api.latest_sender(self._wait)
            except ProbeFailedError as error:
                self.say(f"[yellow]Could not read it: {escape(error.problem)}[/]")
                sender = None
            if sender is None:
                self.say("[yellow]No message arrived.[/]")
            elif self.confirm(
                f"Allow {escape(sender.name or 'the sender')} (user id {sender.user_id})?",
                default=True,
            ):
                users.append(sender.user_id)
        for _ in range(TRIES):
            more = self.ask("More user ids, comma-separated (Enter for none)", default="")
            items = [i.strip() for i in more.split(",") if i.strip()]
            if all(i.isdigit() for i in items):
                users += [int(i) for i in items if int(i) not in users]
                break
            self.say("[red]User ids are numbers[/] (a name such as @alice can change)")
        if not users:
            self.say("[yellow]Nobody listed: anyone who finds the bot can use it.[/]")
        return tuple(users)


@attrs.define
class _Script:
    """Scripted input whose end is an ``EOFError``, as at a terminal (rich reads an ended
    stream as empty answers, and would ask again forever). Rich calls only ``readline``."""

    _stream: TextIO

    def readline(self) -> str:
        line = self._stream.readline()
        if not line:
            raise EOFError
        return line


def run_init(
    console: Console,
    directory: Path,
    env: Mapping[str, str],
    stream: TextIO | None = None,
    wait_for_message: float = WAIT_FOR_MESSAGE,
    *,
    environment: Mapping[str, str] | None = None,
) -> int:
    """Ask, check, write ``threadgate.toml`` and ``.env`` in ``directory``; 0 when written.

    ``stream`` replaces the terminal with scripted input (secrets are then read as plain
    lines); ``wait_for_message`` is how long the message written to the bot is waited for.
    ``environment`` is the process's own (``env`` may hold an earlier ``.env`` too): a
    secret set there wins over the ``.env`` written, and the user is told.
    """
    toml, dotenv = directory / "threadgate.toml", directory / ".env"
    script = None if stream is None else cast("TextIO", _Script(stream))
    with httpx.Client() as http:
        wizard = _Wizard(console, env, http, script, wait_for_message)
        if toml.exists() and not wizard.confirm(f"{toml} exists. Replace it?", default=False):
            raise SetupAbortedError(f"init stopped: {toml} is kept as it is")
        token, me = wizard.token()
        preset, base_url = wizard.provider()
        keys, model = wizard.keys_and_model(preset, base_url)
        api_base = env.get("THREADGATE_TELEGRAM_API_BASE") or "https://api.telegram.org"
        api = BotAPI(api_base, token, http) if me is not None else None
        users = wizard.allowlist(me, api)
    answers = Answers(token, base_url, model, keys, users)
    write(answers, toml, dotenv)
    load(toml, {**_dotenv(dotenv), **{k: v for k, v in env.items() if k not in _SECRETS}})
    console.print(f"[green]Wrote[/] {escape(str(toml))} and {escape(str(dotenv))} (secrets).")
    for variable in _SECRETS:
        if (env if environment is None else environment).get(variable):
            console.print(
                f"[yellow]{variable} is also set in the environment, which wins over .env[/]"
            )
    # .env is read from the working directory only: written elsewhere, say where to go.
    go = "" if directory.resolve() == Path.cwd().resolve() else f"cd {escape(str(directory))}, "
    console.print(
        f"Next: [bold]{go}threadgate doctor[/] to check it live, then [bold]threadgate run[/]."
    )
    return 0


_SECRETS = ("TELEGRAM_BOT_TOKEN", "THREADGATE_LLM_API_KEYS")


def write(answers: Answers, toml: Path, dotenv: Path) -> None:
    """The settings into ``toml`` (replaced), the secrets into ``dotenv`` (other lines kept)."""
    users = ", ".join(str(u) for u in answers.allowed_users)
    toml.write_text(
        "# Written by `threadgate init`; every key: docs/configuration.md.\n"
        "# The secrets are in .env (TELEGRAM_BOT_TOKEN, THREADGATE_LLM_API_KEYS).\n\n"
        "[telegram]\n"
        f"allowed_users = [{users}]\n"
        f"admin_users = [{users}]\n\n"
        "[llm]\n"
        f"base_url = {_quoted(answers.base_url)}\n"
        f"model = {_quoted(answers.model)}\n",
        encoding="utf-8",
    )
    dotenv.touch(mode=0o600, exist_ok=True)
    os.chmod(dotenv, 0o600)
    set_key(dotenv, "TELEGRAM_BOT_TOKEN", answers.token, quote_mode="never")
    set_key(dotenv, "THREADGATE_LLM_API_KEYS", ",".join(answers.keys), quote_mode="never")


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dotenv(path: Path) -> dict[str, str]:
    return {k: v for k, v in dotenv_values(path).items() if v is not None}

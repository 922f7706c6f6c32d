"""Settings: the default secret is refused outside development; SIPAS_* variables are read; the CLI says why."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from survey.cli import main
from survey.settings import DEFAULT_SECRET, Settings, get_settings, secret_weakness


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No SIPAS_* variable from the outer shell, no .env from the working directory, no cached settings."""
    for name in list(os.environ):
        if name.upper().startswith("SIPAS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_default_secret_is_accepted_in_development() -> None:
    s = Settings(environment="development")
    assert s.secret_key == DEFAULT_SECRET
    assert Settings().environment == "development"  # the default environment


@pytest.mark.parametrize("environment", ["test", "production"])
def test_default_secret_is_refused_outside_development(environment: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(environment=environment)  # type: ignore[arg-type]
    assert "SIPAS_SECRET_KEY" in str(info.value)
    assert environment in str(info.value)
    with pytest.raises(ValidationError, match="SIPAS_SECRET_KEY"):
        Settings(environment=environment, secret_key=DEFAULT_SECRET)  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", ["short", "x" * 31, secrets.token_hex(15)])
def test_short_secret_is_refused_in_production(secret: str) -> None:
    assert len(secret) < 32
    with pytest.raises(ValidationError, match="SIPAS_SECRET_KEY"):
        Settings(environment="production", secret_key=secret)


@pytest.mark.parametrize("secret", [secrets.token_urlsafe(48), secrets.token_hex(32), secrets.token_hex(16)])
def test_long_random_secret_is_accepted(secret: str) -> None:
    for environment in ("test", "production"):
        s = Settings(environment=environment, secret_key=secret, allowed_hosts=["sipas.example.gov.vn"])
        assert s.secret_key == secret
        assert s.environment == environment


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("a" * 32, "0 bits of entropy"),
        ("y" * 64, "0 bits of entropy"),
        ("test-secret-" + "x" * 40, "bits of entropy"),
        ("abc" * 12, "bits of entropy"),
        ("0123456789" * 4, "repeats a shorter block"),
        ("Tr0ub4dor&3" * 3, "repeats a shorter block"),
        ("abcdefghijklmnopqrstuvwxyz0123456789", "consecutive characters"),
    ],
)
def test_a_predictable_secret_is_refused_in_production(secret: str, reason: str) -> None:
    assert len(secret) >= 32
    with pytest.raises(ValidationError, match="SIPAS_SECRET_KEY is too predictable") as info:
        Settings(environment="production", secret_key=secret, allowed_hosts=["sipas.example.gov.vn"])
    assert reason in str(info.value)
    assert secret_weakness(secret) is not None
    assert Settings(environment="test", secret_key=secret).secret_key == secret  # tests may use a fixed one


@pytest.mark.parametrize("hosts", [["*"], [], ["sipas.example.gov.vn", "*"], [" "]])
def test_production_refuses_a_wildcard_host_list(hosts: list[str]) -> None:
    with pytest.raises(ValidationError, match="SIPAS_ALLOWED_HOSTS must name the platform's host names"):
        Settings(environment="production", secret_key=secrets.token_urlsafe(48), allowed_hosts=hosts)
    assert Settings(environment="test", secret_key=secrets.token_urlsafe(48), allowed_hosts=hosts)


def test_production_accepts_named_hosts_and_subdomain_wildcards() -> None:
    hosts = ["sipas.tayninh.gov.vn", "*.sipas.gov.vn"]
    s = Settings(environment="production", secret_key=secrets.token_urlsafe(48), allowed_hosts=hosts)
    assert s.allowed_hosts == hosts and s.is_production
    assert s.cookie_name("sipas_session") == "__Host-sipas_session"
    assert Settings(environment="test", secret_key=secrets.token_urlsafe(48)).cookie_name("x") == "x"


def test_settings_read_sipas_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(48)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("SIPAS_ENVIRONMENT", "production")
    monkeypatch.setenv("SIPAS_SECRET_KEY", secret)
    monkeypatch.setenv("SIPAS_DATABASE_URL", url)
    monkeypatch.setenv("SIPAS_BASE_URL", "https://sipas.example.gov.vn/")
    monkeypatch.setenv("SIPAS_ALLOWED_HOSTS", '["sipas.example.gov.vn", "localhost"]')
    monkeypatch.setenv("SIPAS_DEFAULT_LOCALE", "en")
    monkeypatch.setenv("SIPAS_TIME_BUCKET_MINUTES", "30")
    monkeypatch.setenv("SIPAS_RECEIPT_CODE_VALID_DAYS", "90")
    s = Settings()
    assert s.environment == "production"
    assert s.secret_key == secret
    assert s.database_url == url and s.is_sqlite
    assert s.base_url == "https://sipas.example.gov.vn/"
    assert s.public_url == "https://sipas.example.gov.vn"
    assert s.allowed_hosts == ["sipas.example.gov.vn", "localhost"]
    assert s.default_locale == "en"
    assert s.time_bucket_minutes == 30
    assert s.receipt_code_valid_days == 90


def test_environment_wins_over_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "SIPAS_BASE_URL=http://from-dotenv.example\nSIPAS_COMMENT_MAX_CHARS=250\n", encoding="utf-8"
    )
    assert Settings().comment_max_chars == 250
    assert Settings().base_url == "http://from-dotenv.example"
    monkeypatch.setenv("SIPAS_BASE_URL", "http://from-env.example")
    s = Settings()
    assert s.base_url == "http://from-env.example"
    assert s.comment_max_chars == 250


def test_secret_refusal_also_applies_to_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIPAS_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="SIPAS_SECRET_KEY"):
        Settings()
    monkeypatch.setenv("SIPAS_SECRET_KEY", "too-short")
    with pytest.raises(ValidationError, match="SIPAS_SECRET_KEY"):
        Settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIPAS_ENVIRONMENT", "staging"),
        ("SIPAS_TIME_BUCKET_MINUTES", "0"),
        ("SIPAS_TIME_BUCKET_MINUTES", "often"),
        ("SIPAS_DEFAULT_LOCALE", "fr"),
    ],
)
def test_invalid_environment_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_db_upgrade_in_production_without_secret_fails_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    db_file = tmp_path / "never-created.db"
    monkeypatch.setenv("SIPAS_ENVIRONMENT", "production")
    monkeypatch.setenv("SIPAS_DATABASE_URL", f"sqlite:///{db_file}")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)  # a handled error, not a crash
    assert "SIPAS_SECRET_KEY" in result.output
    assert "production" in result.output
    assert result.output.startswith("Error:")
    assert "Traceback" not in result.output
    assert "is up to date" not in result.output
    assert not db_file.exists()  # refused before touching the database


def test_db_upgrade_with_a_good_secret_migrates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The counterpart: the same command with a proper secret succeeds (so the failure above is the secret's)."""
    db_file = tmp_path / "sipas.db"
    monkeypatch.setenv("SIPAS_ENVIRONMENT", "production")
    monkeypatch.setenv("SIPAS_DATABASE_URL", f"sqlite:///{db_file}")
    monkeypatch.setenv("SIPAS_SECRET_KEY", secrets.token_urlsafe(48))
    monkeypatch.setenv("SIPAS_ALLOWED_HOSTS", '["sipas.example.gov.vn"]')
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "is up to date" in result.output
    assert db_file.exists()


def test_refusal_message_does_not_echo_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIPAS_ENVIRONMENT", "production")
    monkeypatch.setenv("SIPAS_DATABASE_URL", "postgresql+psycopg://sipas:hunter2pw@db/sipas")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code != 0
    assert "SIPAS_SECRET_KEY" in result.output
    assert "hunter2pw" not in result.output

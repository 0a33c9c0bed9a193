"""The factory: settings, and nothing touched before the server serves."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from monitor_app import create_app
from shared.config import ConfigError
from shared.db import SchemaMigration, db
from shared.lifecycle import background_service


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOG_LEVEL", "loud"),
        ("API_PREFIX", "api/v1"),
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "  "),
    ],
)
def test_bad_environment_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        create_app()


def test_environment_then_test_config(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    monkeypatch.setenv("API_PREFIX", "/monitor/")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    app = create_app({"DATABASE_URL": sqlite_url, "LOG_LEVEL": "DEBUG"})
    assert app.config["API_PREFIX"] == "/monitor"
    assert app.config["LOG_LEVEL"] == "DEBUG"
    assert app.config["DATABASE_URL"] == sqlite_url
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert "/monitor/patients" in rules
    assert "/monitor/patient/<uuid:patient_uuid>/metrics" in rules
    assert "/health" in rules


@pytest.mark.parametrize(
    "url",
    [
        # Nothing listens on port 1: connecting would fail at once.
        "postgresql+psycopg://nobody@127.0.0.1:1/nowhere",
        "sqlite",
    ],
)
def test_factory_connects_to_nothing(tmp_path: Path, url: str) -> None:
    sqlite_file = tmp_path / "vigil.db"
    if url == "sqlite":
        url = f"sqlite:///{sqlite_file}"
    threads_before = set(threading.enumerate())

    app = create_app({"DATABASE_URL": url})

    assert not sqlite_file.exists()
    assert set(threading.enumerate()) == threads_before
    assert db.engine(app).pool.checkedin() == 0
    db.engine(app).dispose()


def test_schema_is_migrated_by_the_background_service(empty_sqlite_url: str) -> None:
    app = create_app({"DATABASE_URL": empty_sqlite_url, "TESTING": True})
    service = background_service(app, "schema")
    assert isinstance(service, SchemaMigration)
    client = app.test_client()
    assert client.get("/health").status_code == 503

    service.start()
    try:
        # The database answers (Redis may not: 200 all the same).
        assert client.get("/health").status_code == 200
    finally:
        service.stop()

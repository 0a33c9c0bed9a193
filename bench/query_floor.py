"""The SQL floor of the query benchmarks: an endpoint's own statements, through the database
driver alone (sqlite3, or psycopg on PostgreSQL).

The statements and their bound parameters are captured from monitor_app itself, answering the
benchmark's requests in-process, so the floor runs exactly what the endpoint sends to the
database (after SQLAlchemy has compiled it) and nothing else: no ORM objects, no
serialisation, no HTTP.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg
from sqlalchemy import event, make_url

from bench.report import percentile

# Requests whose SQL is captured per endpoint, and at most how many replays one floor times.
FLOOR_REQUESTS = 200
FLOOR_MAX_REPLAYS = 5000


class Driver(Protocol):
    """A connection of the database's own driver: runs one statement and reads its rows."""

    def run(self, statement: str, parameters: Any) -> None: ...

    def close(self) -> None: ...


def capture_sql(
    url: str, settings: dict[str, object], token: str, workloads: dict[str, list[str]]
) -> dict[str, list[list[tuple]]]:
    """Per endpoint and request, the statements and parameters monitor_app sends to the
    database at `url`, with `settings` (Redis, the token keys) and requests signed in with
    `token`.

    The statements that check the token are part of each request's, as they are the
    server's."""
    from monitor_app import create_app
    from shared.db import db as vigil_db

    app = create_app(
        {
            "DATABASE_URL": url,
            **settings,
            "RATE_LIMIT_ENABLED": False,
            "LOG_LEVEL": "WARNING",
        }
    )
    engine = vigil_db.engine(app)
    captured: list[tuple] = []

    def record(_conn, _cursor, statement, parameters, _context, _many) -> None:
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    requests: dict[str, list[list[tuple]]] = {}
    try:
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        for name, paths in workloads.items():
            requests[name] = []
            for number, path in enumerate(paths[:FLOOR_REQUESTS]):
                captured.clear()
                response = client.get(path.replace("{n}", f"floor-{number}"))
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}")
                requests[name].append(list(captured))
    finally:
        event.remove(engine, "before_cursor_execute", record)
        engine.dispose()
    return requests


class SqliteDriver:
    """sqlite3 on the file, with the pragmas Vigil's engine sets on every connection."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path)
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "busy_timeout=30000",
            "foreign_keys=ON",
        ):
            self.connection.execute(f"PRAGMA {pragma}")

    def run(self, statement: str, parameters: Any) -> None:
        self.connection.execute(statement, parameters).fetchall()

    def close(self) -> None:
        self.connection.close()


class PostgresDriver:
    """psycopg on the database, each statement its own transaction (the audit insert too)."""

    def __init__(self, url: str) -> None:
        plain = make_url(url).set(drivername="postgresql")
        self.connection = psycopg.connect(plain.render_as_string(hide_password=False))
        self.connection.autocommit = True

    def run(self, statement: str, parameters: Any) -> None:
        cursor = self.connection.execute(statement, parameters)
        if cursor.description is not None:
            cursor.fetchall()

    def close(self) -> None:
        self.connection.close()


def sql_floor(
    connect: Callable[[], Driver], requests: list[list[tuple]], seconds: float
) -> dict[str, Any]:
    """Latency of replaying each request's SQL through the driver alone, one request at a
    time."""
    connection = connect()
    # Per statement of a request (each request of an endpoint runs the same ones), in ms.
    per_statement: list[list[float]] = [[] for _ in requests[0]]

    def replay(statements: list[tuple], record: bool) -> None:
        for position, (statement, parameters) in enumerate(statements):
            begin = time.perf_counter()
            connection.run(statement, parameters)
            if record:
                per_statement[position].append((time.perf_counter() - begin) * 1000)

    try:
        for statements in requests:  # warm the page cache as the server's first requests do
            replay(statements, record=False)
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline and len(latencies) < FLOOR_MAX_REPLAYS:
            begin = time.perf_counter()
            replay(requests[len(latencies) % len(requests)], record=True)
            latencies.append((time.perf_counter() - begin) * 1000)
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    return {
        "requests": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "statements": [
            (_statement_label(statement), percentile(times, 0.5), percentile(times, 0.99))
            for (statement, _), times in zip(requests[0], per_statement, strict=True)
        ],
    }


def _statement_label(statement: str) -> str:
    """'SELECT … FROM patients WHERE uuid = ?' → 'patients WHERE uuid = ?', shortened."""
    words = " ".join(statement.split()).split(" FROM ", 1)[-1]
    return words if len(words) <= 48 else words[:47] + "…"

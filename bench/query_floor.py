"""The SQL floor of the query benchmark: an endpoint's own statements, through sqlite3 alone.

The statements and their bound parameters are captured from monitor_app itself, answering the
benchmark's requests in-process, so the floor runs exactly what the endpoint sends to SQLite
(after SQLAlchemy has compiled it) and nothing else: no ORM objects, no serialisation, no HTTP.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import event

from bench.query_data import Database
from bench.report import percentile

# Requests whose SQL is captured per endpoint, and at most how many replays one floor times.
FLOOR_REQUESTS = 200
FLOOR_MAX_REPLAYS = 5000


def capture_sql(
    db: Database, settings: dict[str, object], token: str, workloads: dict[str, list[str]]
) -> dict[str, list[list[tuple]]]:
    """Per endpoint and request, the statements and parameters monitor_app sends to sqlite3,
    with `settings` (Redis, the token keys) and requests signed in with `token`.

    The statements that check the token are part of each request's, as they are the
    server's."""
    from monitor_app import create_app
    from shared.db import db as vigil_db

    app = create_app(
        {
            "DATABASE_URL": db.url,
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


def sql_floor(db: Database, requests: list[list[tuple]], seconds: float) -> dict[str, Any]:
    """Latency of replaying each request's SQL through sqlite3 alone, one request at a time."""
    connection = sqlite3.connect(db.path)
    # The pragmas Vigil's engine sets on every connection (shared/db.py).
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=30000",
        "foreign_keys=ON",
    ):
        connection.execute(f"PRAGMA {pragma}")
    # Per statement of a request (each request of an endpoint runs the same ones), in ms.
    per_statement: list[list[float]] = [[] for _ in requests[0]]

    def replay(statements: list[tuple], record: bool) -> None:
        for position, (statement, parameters) in enumerate(statements):
            begin = time.perf_counter()
            connection.execute(statement, parameters).fetchall()
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

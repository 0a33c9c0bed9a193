"""The dashboard page: its settings, and every file it needs served by the app itself."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from monitor_app import create_app
from shared.db import db, migrate
from shared.news2 import normal_ranges
from tests.auth import Account, client_for

STATIC = Path(__file__).resolve().parents[2] / "monitor_app" / "dashboard" / "static"
# Anything the browser would fetch from another host: a URL with a scheme or protocol-relative.
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


class AssetLinks(HTMLParser):
    """The src/href of every script, stylesheet, icon and image in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.settings: str | None = None
        self._in_settings = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("id") == "vigil-settings":
            self._in_settings = True
        if tag in {"script", "img"} and values.get("src"):
            self.links.append(values["src"])
        if tag == "link" and values.get("href"):
            self.links.append(values["href"])

    def handle_data(self, data: str) -> None:
        if self._in_settings:
            self.settings = data
            self._in_settings = False


@pytest.fixture
def app(sqlite_url: str, redis_settings: dict[str, str]) -> Iterator[Flask]:
    app = create_app(
        {
            "DATABASE_URL": sqlite_url,
            "TESTING": True,
            **redis_settings,
            "METRICS_INTERVAL": 2.0,
            "STALE_AFTER_INTERVALS": 3,
        }
    )
    # The signed-in fixtures add their accounts to its database.
    migrate(db.engine(app))
    yield app
    db.engine(app).dispose()


def page(client: FlaskClient) -> AssetLinks:
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    parser = AssetLinks()
    parser.feed(response.get_data(as_text=True))
    return parser


def test_the_page_carries_its_settings(client: FlaskClient) -> None:
    settings = json.loads(page(client).settings or "null")

    assert settings["api"] == "/api/v1"
    assert settings["websocket"] == "/api/v1/ws"
    assert settings["login"] == "/login"
    # Three missed samples at the configured interval make a patient stale.
    assert settings["staleAfterSeconds"] == 6.0
    assert settings["bands"] == ["low", "low-medium", "medium", "high"]
    assert settings["normalRanges"] == normal_ranges()
    assert settings["normalRanges"]["pulse"] == {"above": 50, "up_to": 90}
    assert settings["normalRanges"]["spo2"] == {"above": 95, "up_to": None}


def test_every_asset_is_served_locally(client: FlaskClient) -> None:
    links = page(client).links

    assert len(links) >= 4  # two stylesheets, uPlot and the app's entry module
    for link in links:
        if link.startswith("data:"):
            continue
        assert not EXTERNAL.match(link), f"{link} would be fetched from another host"
        response = client.get(link)
        assert response.status_code == 200, link
        response.close()


def test_scripts_and_styles_fetch_nothing_from_other_hosts() -> None:
    own = [
        path
        for path in STATIC.rglob("*")
        if path.suffix in {".js", ".css"} and "vendor" not in path.parts
    ]
    assert any(path.name == "app.js" for path in own)
    for path in own:
        text = path.read_text()
        imports = re.findall(r"""import\s[^'"]*['"]([^'"]+)['"]""", text)
        urls = re.findall(r"""url\(\s*['"]?([^'")]+)""", text) + re.findall(
            r"""@import\s+['"]([^'"]+)""", text
        )
        for target in imports + urls:
            assert not EXTERNAL.match(target), f"{path.name} loads {target}"
        if path.suffix == ".js":
            # Every module it imports is one of ours, next to it.
            for target in imports:
                assert (path.parent / target).resolve().is_file(), f"{path.name}: {target}"


def test_the_vendored_chart_library_is_pinned_and_licensed() -> None:
    manifest = json.loads((STATIC.parent / "package.json").read_text())
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["dependencies"]["uplot"])
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"):
        assert (STATIC / "vendor" / name).stat().st_size > 0


def test_the_page_shows_who_is_signed_in_and_a_logout_form(client: FlaskClient, admin) -> None:
    html = client.get("/").get_data(as_text=True)

    assert admin.email in html
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert token and token.group(1)
    form = re.search(
        r'<form id="logout-form" method="post" action="/logout">(.*?)</form>', html, re.S
    )
    assert form, "no logout form"
    assert f'name="csrf_token" value="{token.group(1)}"' in form.group(1)


def test_the_page_is_not_rate_limited(
    sqlite_url: str, redis_settings: dict[str, str], admin: Account
) -> None:
    app = create_app(
        {
            "DATABASE_URL": sqlite_url,
            "TESTING": True,
            **redis_settings,
            "RATELIMIT_ENABLED": True,
            "RATE_LIMIT": "2 per minute",
        }
    )
    client = client_for(app, admin.token)
    try:
        for _ in range(4):
            assert client.get("/").status_code == 200
            response = client.get("/static/dashboard/dashboard.css")
            assert response.status_code == 200
            response.close()
        # The limit is really on: the API's budget runs out.
        answers = [client.get("/api/v1/patients").status_code for _ in range(3)]
    finally:
        db.engine(app).dispose()
    assert answers == [200, 200, 429]

"""Security headers on every answer of every app, and pages that run no inline script."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask

import analyser_app
import data_app
import monitor_app
import patient_app
from devserver.ports import free_port
from shared.db import db, migrate
from shared.lifecycle import stop_background

HSTS = "Strict-Transport-Security"
EVERY_ANSWER = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Other sites never see Vigil's URLs; its own pages send them, as CSRF over HTTPS needs.
    "Referrer-Policy": "same-origin",
}
TEMPLATES = sorted(
    path
    for folder in ("monitor_app/templates", "monitor_app/dashboard", "monitor_app/auth")
    for path in (Path(__file__).parent.parent / folder).rglob("*.html")
)


@pytest.fixture(scope="module")
def make_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Flask]]:
    """Any app, by name, built as its server would, its database migrated (nothing started:
    no broker needed). Built once per settings for the module: what these tests ask of an
    app changes nothing in it."""
    built: dict[tuple, Flask] = {}
    folder = tmp_path_factory.mktemp("web-security")
    settings = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{folder / 'vigil.db'}",
        # Nothing listens: the answers looked at here never need Redis or Kafka.
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "RATELIMIT_ENABLED": False,
    }
    factories = {
        "monitor_app": monitor_app.create_app,
        "patient_app": patient_app.create_app,
        "data_app": data_app.create_app,
        "analyser_app": analyser_app.create_app,
    }

    def make(name: str, **overrides) -> Flask:
        key = (name, *sorted(overrides.items()))
        if key not in built:
            app = built[key] = factories[name]({**settings, **overrides})
            if name in ("monitor_app", "data_app"):
                migrate(db.engine(app))
        return built[key]

    yield make
    for (name, *_overrides), app in built.items():
        stop_background(app)
        if name in ("monitor_app", "data_app"):
            db.engine(app).dispose()


# A page, an error of the app's and one of Werkzeug's, from each app.
ANSWERS = [
    ("monitor_app", "/login"),
    ("monitor_app", "/"),
    ("monitor_app", "/docs"),
    ("monitor_app", "/api/v1/patients"),
    ("monitor_app", "/no/such/page"),
    ("patient_app", "/api/v1/patients"),
    ("patient_app", "/no/such/page"),
    ("data_app", "/health"),
    ("data_app", "/no/such/page"),
    ("analyser_app", "/health"),
    ("analyser_app", "/no/such/page"),
]


@pytest.mark.parametrize(("name", "path"), ANSWERS)
def test_every_answer_carries_the_security_headers(
    make_app: Callable[..., Flask], name: str, path: str
) -> None:
    response = make_app(name).test_client().get(path)

    for header, value in EVERY_ANSWER.items():
        assert response.headers.get(header) == value, (header, response.status)
    policy = response.headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives["script-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert HSTS not in response.headers


@pytest.mark.parametrize("name", ["monitor_app", "patient_app", "data_app", "analyser_app"])
def test_hsts_over_https_when_set(make_app: Callable[..., Flask], name: str) -> None:
    app = make_app(name, HSTS_SECONDS=31536000)

    response = app.test_client().get("/no/such/page", base_url="https://vigil.example")

    assert response.headers[HSTS] == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize(
    ("seconds", "base_url"),
    # Over plain HTTP a browser ignores it, and TLS may not be in front yet.
    [(31536000, "http://vigil.example"), (0, "https://vigil.example")],
    ids=["http", "off"],
)
def test_no_hsts_over_http_or_unless_set(
    make_app: Callable[..., Flask], seconds: int, base_url: str
) -> None:
    app = make_app("analyser_app", HSTS_SECONDS=seconds)

    response = app.test_client().get("/no/such/page", base_url=base_url)

    assert HSTS not in response.headers


def test_a_tls_proxy_is_believed_only_when_configured(make_app: Callable[..., Flask]) -> None:
    forwarded = {"X-Forwarded-Proto": "https"}
    trusting = make_app("analyser_app", HSTS_SECONDS=600, PROXY_FIX_X_PROTO=1)
    default = make_app("analyser_app", HSTS_SECONDS=600)

    assert HSTS in trusting.test_client().get("/health", headers=forwarded).headers
    assert HSTS not in default.test_client().get("/health", headers=forwarded).headers


class _InlineCode(HTMLParser):
    """What a page would run or style inline: script bodies, handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and "src" not in names and names.get("type") != "application/json":
            self.found.append(f"inline <script> at line {self.getpos()[0]}")
        if tag == "style":
            self.found.append(f"<style> at line {self.getpos()[0]}")
        for name in names:
            if name.startswith("on") or name == "style":
                self.found.append(f"{tag} {name}= at line {self.getpos()[0]}")


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_pages_hold_no_inline_script_or_style(template: Path) -> None:
    parser = _InlineCode()
    parser.feed(template.read_text())

    assert parser.found == []


def test_the_swagger_ui_page_is_the_apps_own(make_app: Callable[..., Flask]) -> None:
    # flask-smorest's page starts Swagger UI from an inline script the policy would block.
    app = make_app("monitor_app")
    with app.test_request_context():
        page = app.jinja_env.get_template("swagger_ui.html")

    assert page.filename == str(Path(monitor_app.__file__).parent / "templates/swagger_ui.html")


@pytest.mark.parametrize(
    ("path", "location"),
    [("/", "/login?next=/"), ("/docs", "/login?next=/docs"), ("/login?next=/docs", None)],
)
def test_redirects_are_relative_whatever_the_host(
    make_app: Callable[..., Flask], path: str, location: str | None
) -> None:
    response = make_app("monitor_app").test_client().get(path, headers={"Host": "evil.example"})

    assert response.headers.get("Location") == location
    assert "evil.example" not in response.get_data(as_text=True)

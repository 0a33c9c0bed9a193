"""gateway_app as an app: its settings, its listener started with the server, its /health."""

import hl7
import pytest
from hl7.client import MLLPClient

import gateway_app
from devserver.ports import free_port
from shared.auth.roles import Role
from shared.config import ConfigError, load_settings
from shared.lifecycle import background_service, start_background, stop_background
from tests.auth import token_for
from tests.bearer import client_with
from tests.gateway_app.test_mllp import oru

pytestmark = pytest.mark.integration


@pytest.fixture
def app(gateway_config):
    app = gateway_app.create_app(gateway_config)
    start_background(app)
    try:
        yield app
    finally:
        stop_background(app)


def test_the_app_listens_and_answers(app):
    port = background_service(app, "mllp").port
    with MLLPClient("127.0.0.1", port) as client:
        ack = hl7.parse(client.send_message(oru("APP-1")).strip(b"\x0b\x1c\r").decode())
    assert str(ack.segment("MSA")(1)) == "AA"


def test_health_tells_a_stranger_only_the_status(app):
    response = app.test_client().get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_health_is_503_when_kafka_does_not_answer(gateway_config):
    # Listening, but every sender would be answered AE: not healthy.
    nobody = f"127.0.0.1:{free_port()}"
    app = gateway_app.create_app(gateway_config | {"KAFKA_BOOTSTRAP_SERVERS": nobody})
    start_background(app)
    try:
        stranger = app.test_client().get("/health")
        admin = client_with(app, token_for(Role.ADMIN)).get("/health")
    finally:
        stop_background(app)
    assert (stranger.status_code, stranger.get_json()) == (503, {"status": "degraded"})
    assert admin.status_code == 503 and admin.get_json()["kafka"]["kafka"] == "unreachable"
    assert admin.get_json()["mllp"]["connections"] == 0


def test_admins_see_the_listener_and_producer_figures(app):
    port = background_service(app, "mllp").port
    with MLLPClient("127.0.0.1", port) as client:
        client.send_message(oru("APP-2"))
    body = client_with(app, token_for(Role.ADMIN)).get("/health").get_json()
    assert body["status"] == "ok" and body["mllp"]["accepted"] == 1
    kafka = body["kafka"]
    assert kafka == {
        "kafka": "ok",
        "undelivered": 0,
        "stalled": False,
        "producer_restarts": 0,
        "last_error": None,
    }


def test_health_is_503_when_not_listening(gateway_config):
    app = gateway_app.create_app(gateway_config)
    assert app.test_client().get("/health").status_code == 503


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HL7_ALLOWED_SENDERS", "everyone"),
        ("HL7_ALLOWED_SENDERS", " , "),
        ("HL7_TIMEZONE", "Mars/Olympus"),
        ("HL7_PORT", "70000"),
        ("HL7_MAX_MESSAGE_BYTES", "10"),
    ],
    ids=["not a network", "no network", "unknown zone", "port", "tiny limit"],
)
def test_a_bad_setting_is_refused_by_name(variable, value):
    with pytest.raises(ConfigError, match=variable):
        load_settings(gateway_app.config.GATEWAY_SETTINGS, {variable: value}, dotenv=False)


def test_default_settings_listen_on_loopback_for_loopback_senders():
    values = load_settings(gateway_app.config.GATEWAY_SETTINGS, {}, dotenv=False)
    assert values["HL7_HOST"] == "127.0.0.1" and values["HL7_PORT"] == 2575
    assert [str(n) for n in values["HL7_ALLOWED_SENDERS"]] == ["127.0.0.1/32", "::1/128"]

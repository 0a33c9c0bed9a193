"""AI_API_URL carries notification texts about patients: https, unless it is loopback."""

import pytest

from shared.config import ConfigError, load_settings
from worker_app.config import WORKER_SETTINGS


def ai_api_url(value: str) -> str:
    return load_settings(WORKER_SETTINGS, {"AI_API_URL": value}, dotenv=False)["AI_API_URL"]


@pytest.mark.parametrize(
    "url",
    [
        "https://ai.example.org/api/v1/analyse",
        "https://10.0.0.5:8443/analyse",
        "http://127.0.0.1:8090/api/v1/analyse",
        "http://127.8.9.10:8090/api/v1/analyse",
        "http://[::1]:8090/api/v1/analyse",
        "http://localhost:8090/api/v1/analyse",
        "http://LOCALHOST:8090/api/v1/analyse",
    ],
)
def test_https_or_loopback_is_accepted(url):
    assert ai_api_url(url) == url


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://ai.example.org/api/v1/analyse", "ai.example.org"),
        ("http://analyser:8090/api/v1/analyse", "analyser"),
        ("http://10.0.0.5:8090/analyse", "10.0.0.5"),
        ("http://128.0.0.1:8090/analyse", "128.0.0.1"),
        ("http://localhost.example.org/analyse", "localhost.example.org"),
        ("http://[::2]:8090/analyse", "::2"),
        ("http://user:secret@ai.example.org/analyse", "ai.example.org"),
    ],
)
def test_plain_http_beyond_loopback_is_refused_naming_the_variable(url, host):
    with pytest.raises(ConfigError) as refused:
        ai_api_url(url)
    message = str(refused.value)
    assert message.startswith("AI_API_URL: must be https://")
    assert repr(host) in message
    assert "secret" not in message


def test_the_default_is_the_local_reference_analyser():
    assert load_settings(WORKER_SETTINGS, {}, dotenv=False)["AI_API_URL"].startswith(
        "http://127.0.0.1:"
    )

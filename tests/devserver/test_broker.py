"""`python -m devserver.broker`, the Procfile's broker: which engine runs, and a bad setting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devserver.broker import BROKER_SETTINGS, KafkaEngine
from devserver.processes import ROOT
from shared.config import load_settings


@pytest.mark.parametrize(
    ("raw", "engine"),
    [(None, KafkaEngine.TANSU), ("apache", KafkaEngine.APACHE), (" Tansu", KafkaEngine.TANSU)],
)
def test_the_engine_is_tansu_unless_set(raw, engine):
    environ = {} if raw is None else {"KAFKA_ENGINE": raw}
    assert load_settings(BROKER_SETTINGS, environ, dotenv=False)["KAFKA_ENGINE"] is engine


def test_an_unknown_engine_stops_the_broker_with_one_line_naming_the_variable():
    result = subprocess.run(
        [sys.executable, "-m", "devserver.broker"],
        cwd=ROOT,
        env={"KAFKA_ENGINE": "zookeeper", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "configuration error: KAFKA_ENGINE: expected tansu or apache, got 'zookeeper'"
    ]

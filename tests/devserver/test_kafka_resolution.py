"""Fetching Apache Kafka's jars: the version runs on Java 17; a missing or failing Maven names
the fix."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from devserver.apache_kafka import KafkaUnavailableError, kafka_version, resolve_kafka
from devserver.kafka_node import POM

JAVA_17_CLASS_VERSION = 61


def test_the_resolved_broker_runs_on_java_17():
    """Kafka 4 brokers need Java 17, which CI has: a later release built for a newer Java would
    fail here rather than at every node's start."""
    jar = resolve_kafka() / f"kafka_2.13-{kafka_version()}.jar"
    with zipfile.ZipFile(jar) as classes:
        header = classes.read("kafka/Kafka.class")[:8]
    assert header[:4] == b"\xca\xfe\xba\xbe"
    assert int.from_bytes(header[6:8], "big") <= JAVA_17_CLASS_VERSION


def test_without_maven_the_error_says_how_to_install_it(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaUnavailableError, match="apt-get install maven"):
        resolve_kafka(tmp_path / "lib")


def test_a_failed_resolution_names_make_kafka_and_leaves_no_folder(tmp_path: Path):
    pom = tmp_path / "pom.xml"
    # A version Maven Central does not have: Maven fails as it would offline or on a typo.
    pom.write_text(POM.read_text().replace(kafka_version(), "4.0.0-no-such"))
    with pytest.raises(KafkaUnavailableError, match="make kafka"):
        resolve_kafka(tmp_path / "lib", pom)
    assert not (tmp_path / "lib").exists()

"""Vitals over TLS: a client that asks for TLS never talks to a broker that cannot prove who
it is, in the clear or with a certificate its CA did not sign."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from devserver.tls import make_server_certificate
from tests.helpers import topic_size
from tests.secured_kafka import Ward, forged_sample, produce_one

pytestmark = [pytest.mark.apache_kafka, pytest.mark.integration]


@pytest.mark.parametrize("impostor", ["without TLS", "with a certificate of another CA"])
def test_a_tls_client_sends_nothing_to_a_broker_that_cannot_prove_who_it_is(
    ward: Ward, tansu_bootstrap: str, tmp_path: Path, impostor: str
):
    """Someone answering on the broker's address must not receive vitals (or the password)."""
    connection = ward.identity("patient_app", tls=True)
    if impostor == "without TLS":
        # The embedded broker stands in for one that speaks plain Kafka and takes anything.
        connection = replace(connection, bootstrap_servers=tansu_bootstrap)
    else:
        other = make_server_certificate(tmp_path, ca_name="someone else")
        connection = replace(connection, ssl_ca_file=other.ca_file)

    delivery = produce_one(connection, ward.vitals, forged_sample())

    assert delivery.error is not None, "the sample went to a broker nobody vouched for"
    assert ward.stored_messages(ward.vitals) == 0
    if impostor == "without TLS":
        assert topic_size(tansu_bootstrap, ward.vitals) == 0
    else:
        assert KafkaError._SSL in delivery.codes  # the certificate did not verify

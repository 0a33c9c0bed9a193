"""The consumer thread against the real broker and database."""

import json
import uuid

import pytest

from tests.helpers import both_brokers, consumer_of, stored_rows, vitals_message

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(sqlite_url):
    # The broker path is what is under test here; storage runs on both backends elsewhere.
    return sqlite_url


@both_brokers
def test_good_samples_are_stored_and_bad_ones_dead_lettered(
    data_app, produce, read_topic, topic_names, wait_for, client
):
    pid = uuid.uuid4()
    bad = [b"not json", json.dumps({**vitals_message(pid, 5), "bp": "80/120"}).encode()]
    produce(
        topic_names["KAFKA_TOPIC"],
        [vitals_message(pid, 0), bad[0], vitals_message(pid, 1), bad[1], vitals_message(pid, 2)],
        key=str(pid),
    )
    consumer_of(data_app).start()

    wait_for(lambda: stored_rows(data_app) == 3, message="3 stored samples")
    dead = read_topic(topic_names["KAFKA_DLQ_TOPIC"], 2)
    assert sorted(m.value() for m in dead) == sorted(bad)
    reasons = {m.value(): dict(m.headers())["dlq.reason"].decode() for m in dead}
    assert reasons[b"not json"].startswith("not JSON")
    assert "bp" in reasons[bad[1]]
    assert all(dict(m.headers())["dlq.topic"].decode() == topic_names["KAFKA_TOPIC"] for m in dead)

    # The consumer keeps going after bad input.
    produce(
        topic_names["KAFKA_TOPIC"], [vitals_message(pid, 3), b"\xff\xfe", vitals_message(pid, 4)]
    )
    wait_for(lambda: stored_rows(data_app) == 5, message="5 stored samples")

    # The counters move after the offset commit, which follows the database commit: wait for
    # the batch's whole turn, not only for its rows.
    def counted():
        health = client.get("/health")
        consumer = health.json["consumer"]
        return health if (consumer["dead_lettered"], consumer["stored"]) == (3, 5) else None

    health = wait_for(counted, message="3 dead-lettered and 5 stored in /health")
    assert health.status_code == 200
    assert health.json["consumer"]["stored"] == 5


@both_brokers
def test_restart_mid_stream_loses_and_duplicates_nothing(
    make_data_app, produce, topic_names, wait_for
):
    patients = [uuid.uuid4() for _ in range(5)]
    total = 3000
    produce(
        topic_names["KAFKA_TOPIC"], [vitals_message(patients[i % 5], i // 5) for i in range(total)]
    )
    first = make_data_app(CONSUMER_BATCH_SIZE=50)
    consumer_of(first).start()
    wait_for(lambda: stored_rows(first) >= 200, message="the first consumer to store some rows")
    consumer_of(first).stop()
    partway = stored_rows(first)
    assert partway < total, "stopped too late to test a restart mid-stream"

    second = make_data_app(CONSUMER_BATCH_SIZE=500)
    consumer_of(second).start()
    wait_for(lambda: stored_rows(second) == total, timeout=60, message=f"{total} rows")
    # Redelivered messages (if any) were absorbed, not stored twice.
    wait_for(lambda: consumer_of(second).status["lag"] == 0, timeout=20, message="zero lag")
    assert stored_rows(second) == total


def test_database_outage_is_retried_without_loss(
    make_data_app, produce, topic_names, wait_for, monkeypatch
):
    from sqlalchemy.exc import OperationalError

    import data_app.services as services_module
    import shared.background as background_module

    calls = {"n": 0}
    real_store = services_module.store_samples

    def flaky_store(session, samples, *args):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return real_store(session, samples, *args)

    monkeypatch.setattr(services_module, "store_samples", flaky_store)
    monkeypatch.setattr(background_module, "BACKOFF_SECONDS", (0.05, 0.05, 0.05, 0.05))
    app = make_data_app()
    pid = uuid.uuid4()
    produce(topic_names["KAFKA_TOPIC"], [vitals_message(pid, i) for i in range(20)])
    consumer_of(app).start()
    wait_for(lambda: stored_rows(app) == 20, message="all 20 rows after the outage")
    assert calls["n"] >= 3
    assert consumer_of(app).status["last_error"] is not None

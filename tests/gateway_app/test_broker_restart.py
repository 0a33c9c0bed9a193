"""The gateway across a broker restart that forgets every topic and producer id: its senders
are answered AE while the producer is stuck, then AA again, without restarting the gateway."""

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devserver.processes import RestartableBroker
from gateway_app.mllp import MllpServer
from gateway_app.pcd01 import patient_uuid_for
from gateway_app.publisher import Publisher
from tests.gateway_app.test_mllp import SECRET, msa, oru, send, serving
from tests.helpers import read_messages
from tests.patient_app.test_broker_restart import RECOVERY_DEADLINE_S, take_the_first_producer_id

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RestartableBroker]:
    with RestartableBroker(tmp_path / "tansu.log") as broker:
        yield broker


@pytest.fixture
def gateway(broker: RestartableBroker) -> Iterator[MllpServer]:
    suffix = uuid.uuid4().hex[:10]
    # A short stall timeout: the same rule as the default's, found sooner.
    publisher = Publisher(broker.bootstrap, f"vitals-{suffix}", f"dlq-{suffix}", stall_timeout=2)
    with serving(publisher) as server:
        yield server


@pytest.mark.parametrize("id_taken", [False, True], ids=["stalled", "id-taken"])
def test_messages_are_taken_again_after_the_broker_restarts_empty(
    broker, gateway, wait_for, id_taken
):
    assert msa(send(gateway, oru("BEFORE")))[0] == "AA"

    broker.kill()
    broker.start()
    if id_taken:
        take_the_first_producer_id(broker.bootstrap, f"{gateway.publisher.topic}.other")
    answers: list[str] = []
    numbers = itertools.count()

    def taken() -> str | None:
        # A sender resends what was not taken, as an HL7 sender does after AE.
        # Each try a patient of its own, to find which one the broker has.
        mrn = f"AFTER-{next(numbers)}"
        code, _ = msa(send(gateway, oru(mrn, mrn=mrn)))
        answers.append(code)
        return mrn if code == "AA" else None

    mrn = wait_for(taken, timeout=RECOVERY_DEADLINE_S, message="an AA after the restart")
    # Until then the senders were told to resend, never that a message was taken.
    assert set(answers[:-1]) <= {"AE"}
    stored = read_messages(broker.bootstrap, gateway.publisher.topic, 1)
    expected = patient_uuid_for("urn:vigil:assigning-authority:HOSP", mrn, SECRET)
    assert expected in {message.key().decode() for message in stored}
    if not id_taken:
        # The producer that would have waited on the forgotten id for ever was replaced.
        assert gateway.publisher.stats["producer_restarts"] >= 1

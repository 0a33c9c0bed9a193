"""What every gateway_app under test is configured with: the session's broker and Redis, a
database of its own, a free MLLP port."""

import pytest

from devserver.ports import free_port
from tests.gateway_app.test_mllp import SECRET


@pytest.fixture
def gateway_config(tansu_bootstrap, topic_names, redis_settings, sqlite_url) -> dict:
    return {
        "TESTING": True,
        "KAFKA_BOOTSTRAP_SERVERS": tansu_bootstrap,
        "DATABASE_URL": sqlite_url,
        "HL7_PORT": free_port(),
        "PATIENT_ID_SECRET": SECRET,
        **topic_names,
        **redis_settings,
    }

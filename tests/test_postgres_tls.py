"""PostgreSQL over TLS with sslmode=verify-full, through the apps' own engine factory: the
server's certificate must come from the CA given and name the host connected to."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from devserver.postgres import PostgresCluster
from devserver.tls import make_server_certificate
from shared.db import make_engine


@pytest.fixture(scope="module")
def tls_cluster(postgres_cluster: PostgresCluster | None) -> Iterator[PostgresCluster]:
    """The session's cluster; a cluster of this module's own when the session uses a server
    named by VIGIL_TEST_POSTGRES_URL (whose CA the tests do not know)."""
    if postgres_cluster is not None:
        yield postgres_cluster
        return
    with PostgresCluster() as cluster:
        yield cluster


def verify_full_url(cluster: PostgresCluster, host: str, ca_file: Path, **query: str) -> str:
    url = make_url(cluster.url).set(
        host=host,
        query={"sslmode": "verify-full", "sslrootcert": str(ca_file), **query},
    )
    return url.render_as_string(hide_password=False)


def connection_ssl(url: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_verify_full_connects_encrypted(tls_cluster, host):
    assert connection_ssl(verify_full_url(tls_cluster, host, tls_cluster.ca_file)) is True


def test_a_certificate_for_another_host_name_is_refused(tls_cluster):
    # The same server at the same address, asked for by a name its certificate does not bear.
    url = verify_full_url(tls_cluster, "db.example.org", tls_cluster.ca_file, hostaddr="127.0.0.1")
    with pytest.raises(OperationalError, match='does not match host name "db.example.org"'):
        connection_ssl(url)


def test_a_certificate_from_another_ca_is_refused(tls_cluster, tmp_path):
    other = make_server_certificate(tmp_path, ca_name="Some other CA")
    with pytest.raises(OperationalError, match="certificate verify failed"):
        connection_ssl(verify_full_url(tls_cluster, "127.0.0.1", other.ca_file))


def test_the_suites_own_connections_stay_plain(postgres_cluster):
    """The other database tests pay no TLS handshake (tests/conftest.py: PGSSLMODE)."""
    if postgres_cluster is None:
        pytest.skip("the suite runs on the server VIGIL_TEST_POSTGRES_URL names")
    assert connection_ssl(postgres_cluster.url) is False

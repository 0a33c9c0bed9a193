"""`python -m monitor_app users …` and `… tokens …`: accounts and API tokens from a shell.

Most tests go through Flask's CLI runner (the same commands the module's FlaskGroup runs);
one runs the module as a real process, as an operator would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import update

from monitor_app import create_app
from shared.auth.roles import Role
from shared.db import db, migrate
from shared.identity import ApiToken, User
from tests.auth import Account, bearer

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough passphrase"  # noqa: S105 (a test account's)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: what this module checks does not depend on the database (test_audit and
    test_scoping, which write what the backends store differently, run on both)."""
    return sqlite_url


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def run(runner: FlaskCliRunner, *args: str, password: str | None = None) -> Result:
    """Run a command; `password` is typed on its standard input."""
    return runner.invoke(args=list(args), input=None if password is None else f"{password}\n")


def output_of(result: Result) -> str:
    return result.stdout + result.stderr


def create_user(
    runner: FlaskCliRunner, email: str, role: str = "clinician", *options: str
) -> Result:
    return run(
        runner,
        "users",
        "create",
        email,
        "--role",
        role,
        *options,
        "--password-stdin",
        password=PASSWORD,
    )


def sign_in(client: FlaskClient, email: str, password: str) -> int:
    return client.post(
        "/api/v1/auth/token", json={"username": email, "password": password}
    ).status_code


def user_row(app: Flask, email: str) -> User | None:
    with db.sessionmaker(app)() as session:
        user = session.query(User).filter_by(email=email).one_or_none()
        if user is not None:
            session.expunge(user)
        return user


# -- users ---------------------------------------------------------------------------------------


def test_users_create_makes_an_account_that_signs_in(
    app: Flask, runner: FlaskCliRunner, anonymous: FlaskClient
) -> None:
    result = create_user(runner, "Nurse.Joy@Vigil.Test", "clinician", "--ward", "ICU North")

    assert result.exit_code == 0, output_of(result)
    user = user_row(app, "nurse.joy@vigil.test")
    assert user is not None
    assert result.stdout.strip() == f"created clinician nurse.joy@vigil.test {user.id}"
    assert PASSWORD not in output_of(result)
    assert sign_in(anonymous, "nurse.joy@vigil.test", PASSWORD) == 200
    token = anonymous.post(
        "/api/v1/auth/token", json={"username": "nurse.joy@vigil.test", "password": PASSWORD}
    ).json["access_token"]
    me = anonymous.get("/api/v1/auth/me", headers=bearer(token)).json
    assert [ward["name"] for ward in me["wards"]] == ["ICU North"]


def test_the_password_prompt_hides_what_is_typed(
    app: Flask, runner: FlaskCliRunner, anonymous: FlaskClient
) -> None:
    result = runner.invoke(
        args=["users", "create", "prompted@vigil.test", "--role", "viewer"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )

    assert result.exit_code == 0, output_of(result)
    assert "Password" in result.stdout
    assert PASSWORD not in output_of(result)
    assert sign_in(anonymous, "prompted@vigil.test", PASSWORD) == 200


def test_a_mistyped_confirmation_creates_nothing(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["users", "create", "typo@vigil.test", "--role", "viewer"],
        input=f"{PASSWORD}\n{PASSWORD}x\n",
    )

    assert result.exit_code != 0
    assert PASSWORD not in output_of(result)
    assert user_row(app, "typo@vigil.test") is None


def test_a_duplicate_address_is_refused(app: Flask, runner: FlaskCliRunner) -> None:
    assert create_user(runner, "twice@vigil.test").exit_code == 0

    # However it is typed.
    result = create_user(runner, " TWICE@vigil.test", "admin")

    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert user_row(app, "twice@vigil.test").role == "clinician"


@pytest.mark.parametrize("password", ["short", "elevenchars", ""], ids=["5", "11", "empty"])
def test_a_weak_password_is_refused(app: Flask, runner: FlaskCliRunner, password: str) -> None:
    result = run(
        runner,
        "users",
        "create",
        "weak@vigil.test",
        "--role",
        "viewer",
        "--password-stdin",
        password=password,
    )

    assert result.exit_code == 1
    assert "at least 12 characters" in result.stderr
    assert user_row(app, "weak@vigil.test") is None


@pytest.mark.parametrize(
    "args",
    [
        ["users", "create", "x@vigil.test", "--role", "root", "--password-stdin"],
        ["users", "create", "x@vigil.test", "--password-stdin"],
        ["tokens", "create", "x@vigil.test", "--name", "n", "--scope", "everything"],
        ["tokens", "create", "x@vigil.test"],
        ["tokens", "revoke", "not-a-uuid"],
    ],
    ids=["unknown-role", "no-role", "unknown-scope", "no-name", "malformed-id"],
)
def test_bad_arguments_are_usage_errors(runner: FlaskCliRunner, args: list[str]) -> None:
    result = runner.invoke(args=args, input=f"{PASSWORD}\n")
    assert result.exit_code == 2, output_of(result)


def test_an_address_that_is_not_one_is_refused(app: Flask, runner: FlaskCliRunner) -> None:
    result = create_user(runner, "not-an-address")
    assert result.exit_code == 1
    assert "not an email address" in result.stderr


def test_users_list_shows_accounts_but_no_secrets(
    runner: FlaskCliRunner, make_account: Callable[..., Account]
) -> None:
    viewer = make_account(Role.VIEWER)
    assert create_user(runner, "listed@vigil.test", "admin").exit_code == 0

    result = run(runner, "users", "list")

    assert result.exit_code == 0
    lines = dict(line.split("\t", 1) for line in result.stdout.splitlines())
    assert lines[viewer.email] == f"viewer\tactive\t{viewer.id}"
    assert lines["listed@vigil.test"].startswith("admin\tactive\t")
    assert "argon2" not in result.stdout
    assert PASSWORD not in result.stdout


def test_disable_stops_the_account_at_once_and_enable_restores_it(
    app: Flask, runner: FlaskCliRunner, anonymous: FlaskClient, make_account: Callable
) -> None:
    account = make_account()
    assert anonymous.get("/api/v1/auth/me", headers=account.headers).status_code == 200

    disabled = run(runner, "users", "disable", account.email.upper())

    assert disabled.exit_code == 0, output_of(disabled)
    assert disabled.stdout.strip() == f"disabled {account.email}"
    assert anonymous.get("/api/v1/auth/me", headers=account.headers).status_code == 401
    assert sign_in(anonymous, account.email, account.password) == 401
    assert f"{account.email}\tadmin\tdisabled" in run(runner, "users", "list").stdout

    enabled = run(runner, "users", "enable", account.email)

    assert enabled.exit_code == 0
    assert anonymous.get("/api/v1/auth/me", headers=account.headers).status_code == 200


def test_set_password_replaces_the_old_one_and_lifts_a_lockout(
    app: Flask, runner: FlaskCliRunner, anonymous: FlaskClient, make_account: Callable
) -> None:
    account = make_account()
    with db.sessionmaker(app).begin() as session:
        session.execute(
            update(User)
            .where(User.id == account.id)
            .values(locked_until=datetime.now(UTC) + timedelta(hours=1), failed_logins=3)
        )

    result = run(
        runner, "users", "set-password", account.email, "--password-stdin", password=PASSWORD
    )

    assert result.exit_code == 0, output_of(result)
    assert PASSWORD not in output_of(result)
    assert sign_in(anonymous, account.email, account.password) == 401
    assert sign_in(anonymous, account.email, PASSWORD) == 200


def test_set_password_refuses_a_weak_one(
    runner: FlaskCliRunner, anonymous: FlaskClient, make_account: Callable
) -> None:
    account = make_account()

    result = run(
        runner, "users", "set-password", account.email, "--password-stdin", password="tooshort"
    )

    assert result.exit_code == 1
    assert "tooshort" not in output_of(result)
    assert sign_in(anonymous, account.email, account.password) == 200


@pytest.mark.parametrize(
    "args",
    [
        ["users", "disable"],
        ["users", "enable"],
        ["users", "set-password", "--password-stdin"],
        ["tokens", "create", "--name", "gateway"],
    ],
    ids=["disable", "enable", "set-password", "tokens-create"],
)
def test_an_unknown_user_is_an_error(runner: FlaskCliRunner, args: list[str]) -> None:
    command, rest = args[:2], args[2:]
    result = runner.invoke(args=[*command, "nobody@vigil.test", *rest], input=f"{PASSWORD}\n")

    assert result.exit_code == 1
    assert "nobody@vigil.test" in result.stderr
    assert result.stdout == ""


# -- tokens --------------------------------------------------------------------------------------


def create_token(runner: FlaskCliRunner, email: str, *scopes: str) -> Result:
    scope_args = [arg for scope in scopes for arg in ("--scope", scope)]
    return run(runner, "tokens", "create", email, "--name", "bed 12 gateway", *scope_args)


@pytest.fixture
def machine(runner: FlaskCliRunner) -> str:
    email = f"gateway-{uuid.uuid4().hex[:6]}@vigil.test"
    result = run(runner, "users", "create", email, "--role", "integration", "--no-password")
    assert result.exit_code == 0, output_of(result)
    return email


def test_tokens_create_prints_the_token_once(
    app: Flask, runner: FlaskCliRunner, anonymous: FlaskClient, machine: str
) -> None:
    result = create_token(runner, machine, "patients:read", "notifications:read")

    assert result.exit_code == 0, output_of(result)
    # Standard output holds the token alone, for a script to capture; the rest is on stderr.
    token = result.stdout.strip()
    assert "\n" not in token and token.count(".") == 2
    token_id = result.stderr.split()[1]
    assert result.stderr.strip() == f"token {token_id} for {machine}:"
    assert anonymous.get("/api/v1/patients", headers=bearer(token)).status_code == 200
    assert anonymous.post("/api/v1/notifications", headers=bearer(token)).status_code == 403

    listing = run(runner, "tokens", "list")

    assert listing.exit_code == 0
    (line,) = listing.stdout.splitlines()
    row_id, _user_id, name, scopes, state = line.split("\t")
    assert (row_id, name, scopes, state) == (
        token_id,
        "bed 12 gateway",
        "notifications:read patients:read",
        "active",
    )
    assert token not in listing.stdout
    assert token.rsplit(".", 1)[1] not in listing.stdout


def test_an_account_without_a_password_cannot_sign_in(anonymous: FlaskClient, machine: str) -> None:
    assert sign_in(anonymous, machine, "") != 200
    assert sign_in(anonymous, machine, PASSWORD) == 401


def test_tokens_revoke_stops_the_token_at_once(
    runner: FlaskCliRunner, anonymous: FlaskClient, machine: str
) -> None:
    created = create_token(runner, machine, "patients:read")
    token, token_id = created.stdout.strip(), created.stderr.split()[1]

    revoked = run(runner, "tokens", "revoke", token_id)

    assert revoked.exit_code == 0, output_of(revoked)
    assert revoked.stdout.strip() == f"revoked {token_id}"
    assert anonymous.get("/api/v1/patients", headers=bearer(token)).status_code == 401
    assert run(runner, "tokens", "list").stdout.rstrip().endswith("\trevoked")


def test_revoking_an_unknown_token_is_an_error(runner: FlaskCliRunner) -> None:
    missing = str(uuid.uuid4())
    result = run(runner, "tokens", "revoke", missing)
    assert result.exit_code == 1
    assert missing in result.stderr


def test_no_token_for_a_disabled_account(app: Flask, runner: FlaskCliRunner, machine: str) -> None:
    assert run(runner, "users", "disable", machine).exit_code == 0

    result = create_token(runner, machine)

    assert result.exit_code == 1
    assert result.stdout == ""
    with db.sessionmaker(app)() as session:
        assert session.query(ApiToken).count() == 0


def test_tokens_create_with_an_expiry(app: Flask, runner: FlaskCliRunner, machine: str) -> None:
    result = run(runner, "tokens", "create", machine, "--name", "n", "--expires-days", "30")

    assert result.exit_code == 0, output_of(result)
    with db.sessionmaker(app)() as session:
        (row,) = session.query(ApiToken).all()
        assert timedelta(days=29) < row.expires_at - datetime.now(UTC) <= timedelta(days=30)


# -- the module, as a real process ---------------------------------------------------------------


def monitor_cli(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "monitor_app", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def test_python_m_monitor_app_creates_accounts_and_tokens(
    tmp_path: Path, redis_settings: dict[str, str]
) -> None:
    database_url = f"sqlite:///{tmp_path / 'vigil.db'}"

    created = monitor_cli(
        database_url,
        "users",
        "create",
        "ops@vigil.test",
        "--role",
        "admin",
        "--password-stdin",
        stdin=f"{PASSWORD}\n",
    )
    machine = monitor_cli(
        database_url,
        "users",
        "create",
        "bed12@vigil.test",
        "--role",
        "integration",
        "--no-password",
    )
    token = monitor_cli(
        database_url,
        "tokens",
        "create",
        "bed12@vigil.test",
        "--name",
        "bed 12",
        "--scope",
        "patients:read",
    )
    listed = monitor_cli(database_url, "tokens", "list")
    duplicate = monitor_cli(
        database_url,
        "users",
        "create",
        "ops@vigil.test",
        "--role",
        "viewer",
        "--password-stdin",
        stdin=f"{PASSWORD}\n",
    )

    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created admin ops@vigil.test ")
    assert PASSWORD not in created.stdout + created.stderr
    assert machine.returncode == 0, machine.stderr
    assert token.returncode == 0, token.stderr
    secret = token.stdout.strip()
    assert secret.count(".") == 2
    assert listed.returncode == 0, listed.stderr
    assert secret not in listed.stdout
    assert "\tbed 12\tpatients:read\tactive" in listed.stdout
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr

    # What the process wrote, a server over the same database accepts.
    app = create_app({"DATABASE_URL": database_url, "TESTING": True, **redis_settings})
    try:
        migrate(db.engine(app))
        client = app.test_client()
        assert sign_in(client, "ops@vigil.test", PASSWORD) == 200
        assert client.get("/api/v1/patients", headers=bearer(secret)).status_code == 200
    finally:
        db.engine(app).dispose()


def test_tokens_worker_writes_a_private_token_the_analyser_takes(
    app: Flask, runner: FlaskCliRunner, anonymous: FlaskClient, tmp_path: Path
) -> None:
    from analyser_app import create_app as create_analyser_app

    token_file = tmp_path / "auth" / "ai-api-token"
    made = run(runner, "tokens", "worker", str(token_file))

    assert made.exit_code == 0, output_of(made)
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text()
    assert token.endswith("\n") and token.count("\n") == 1
    assert token.strip() not in output_of(made)
    analyser = create_analyser_app(
        {
            "TESTING": True,
            "ANALYSER_MIN_LATENCY": 0.0,
            "ANALYSER_MAX_LATENCY": 0.0,
            # The monitor's Redis and namespace, where revocations are shared.
            **{name: value for name, value in app.config.items() if name.startswith("REDIS_")},
        }
    ).test_client()
    text = {"text": "Bed 3: SpO2 84%, hypoxia"}
    assert (
        analyser.post("/api/v1/analyse", json=text, headers=bearer(token.strip())).status_code
        == 200
    )
    # analysis:write is all it may do.
    assert anonymous.get("/api/v1/patients", headers=bearer(token.strip())).status_code == 403

    # Kept while the file exists, as `make run` runs it at every start.
    assert run(runner, "tokens", "worker", str(token_file)).exit_code == 0
    assert token_file.read_text() == token

    # A new file, a new token: the one the old file held stops working everywhere.
    token_file.unlink()
    remade = run(runner, "tokens", "worker", str(token_file))

    assert remade.exit_code == 0, output_of(remade)
    renewed = token_file.read_text().strip()
    assert renewed != token.strip()
    assert analyser.post("/api/v1/analyse", json=text, headers=bearer(renewed)).status_code == 200
    assert (
        analyser.post("/api/v1/analyse", json=text, headers=bearer(token.strip())).status_code
        == 401
    )
    states = [line.split("\t")[-1] for line in run(runner, "tokens", "list").stdout.splitlines()]
    assert states == ["revoked", "active"]

"""`python -m monitor_app users …` and `… tokens …`: accounts and API tokens from a shell.

Passwords come from a prompt or, with --password-stdin, the first line of standard input;
never from an argument, which other users could read in the process list.
"""

from __future__ import annotations

import getpass
import os
import secrets
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from monitor_app.auth import services
from monitor_app.auth.authenticate import token_signer
from monitor_app.auth.revocation_sync import announce_account_state, announce_revoked_token
from shared.audit import AuditAction, record
from shared.auth.roles import Role, Scope
from shared.db import db, migrate, utcnow

users = AppGroup("users", help="Create, list, disable and enable accounts.")
tokens = AppGroup("tokens", help="Create, list and revoke API tokens.")

ROLES = click.Choice([role.value for role in Role])
SCOPES = click.Choice([scope.value for scope in Scope])


def register_cli(app: Flask) -> None:
    app.cli.add_command(users)
    app.cli.add_command(tokens)


def _session():
    """A transaction over the migrated database; committed when the command succeeds."""
    migrate(db.engine())
    return db.sessionmaker().begin()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _audit(session, action: AuditAction, resource: str, **detail: str) -> None:
    """Record a command's change; the operator is the local account that ran it."""
    detail = {"via": "cli", "os_user": getpass.getuser(), **detail}
    record(session, action, resource=resource, detail=detail)


def _fail(error: Exception) -> None:
    raise click.ClickException(str(error))


@users.command("create")
@click.argument("email")
@click.option("--role", type=ROLES, required=True)
@click.option("--ward", "wards", multiple=True, help="A ward the user belongs to (repeatable).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--no-password", is_flag=True, help="Single sign-on only; integrations use tokens.")
def create_user(
    email: str, role: str, wards: tuple[str, ...], password_stdin: bool, no_password: bool
) -> None:
    """Create an account."""
    password = None if no_password else _read_password(password_stdin)
    try:
        with _session() as session:
            user = services.create_user(session, email, Role(role), password, wards)
            _audit(session, AuditAction.USER_CREATED, f"user:{user.id}", role=user.role)
            click.echo(f"created {user.role} {user.email} {user.id}")
    except services.AccountError as exc:
        _fail(exc)


@users.command("list")
def list_users() -> None:
    """Every account: email, role, whether active, id."""
    with _session() as session:
        for user in services.list_users(session):
            state = "active" if user.active else "disabled"
            click.echo(f"{user.email}\t{user.role}\t{state}\t{user.id}")


def _set_active(email: str, active: bool) -> None:
    try:
        with _session() as session:
            user = services.set_active(session, email, active)
            action = AuditAction.USER_ENABLED if active else AuditAction.USER_DISABLED
            _audit(session, action, f"user:{user.id}")
            user_id, user_email = user.id, user.email
        announce_account_state(user_id, active)
        click.echo(f"{'enabled' if active else 'disabled'} {user_email}")
    except services.AccountError as exc:
        _fail(exc)


@users.command("disable")
@click.argument("email")
def disable_user(email: str) -> None:
    """Disable an account: its sessions and tokens stop working at once."""
    _set_active(email, False)


@users.command("enable")
@click.argument("email")
def enable_user(email: str) -> None:
    """Enable a disabled account again."""
    _set_active(email, True)


@users.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def set_password(email: str, password_stdin: bool) -> None:
    """Set an account's password (and lift a lockout)."""
    password = _read_password(password_stdin)
    try:
        with _session() as session:
            user = services.find_user(session, email)
            if user is None:
                raise services.AccountError(f"no account for {email}")
            services.set_password(user, password)
            user.failed_logins, user.locked_until = 0, None
            _audit(session, AuditAction.PASSWORD_SET, f"user:{user.id}")
            click.echo(f"password set for {user.email}")
    except services.AccountError as exc:
        _fail(exc)


# `make run`'s first start makes these, so a newcomer can sign in at once.
DEMO_ACCOUNTS = (
    (Role.ADMIN, "admin@demo.vigil"),
    (Role.CLINICIAN, "nina@demo.vigil"),
    (Role.CLINICIAN, "omar@demo.vigil"),
)
DEMO_WARD = "ICU"


@users.command("demo")
@click.argument("credentials", type=click.Path(dir_okay=False, path_type=Path))
def demo_accounts(credentials: Path) -> None:
    """Make the demo accounts (an admin, two ICU clinicians) with random passwords, written
    to CREDENTIALS (mode 0600) as `ROLE EMAIL PASSWORD` lines. Kept as they are while that
    file exists; disabled demo accounts stay disabled."""
    if credentials.exists():
        click.echo(f"demo accounts: {credentials}")
        return
    lines = []
    with _session() as session:
        for role, email in DEMO_ACCOUNTS:
            password = secrets.token_urlsafe(12)
            user = services.find_user(session, email)
            if user is None:
                user = services.create_user(session, email, role, password, wards=[DEMO_WARD])
                _audit(session, AuditAction.USER_CREATED, f"user:{user.id}", role=role.value)
            elif not user.active:
                continue
            else:
                services.set_password(user, password)
                _audit(session, AuditAction.PASSWORD_SET, f"user:{user.id}")
            lines.append(f"{role.value} {email} {password}\n")
        _write_secret(credentials, "".join(lines))
    click.echo(f"demo accounts created: {credentials}")


def _write_secret(path: Path, text: str) -> None:
    """Write a new file readable by its owner alone, created with that mode (never briefly
    readable by others); inside the command's transaction, so a failed write keeps nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)


@tokens.command("create")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for, e.g. 'bed 12 gateway'.")
@click.option("--scope", "scopes", type=SCOPES, multiple=True, help="A right (repeatable).")
@click.option("--expires-days", type=click.IntRange(1, 3650), help="Default: until revoked.")
def create_token(email: str, name: str, scopes: tuple[str, ...], expires_days: int | None) -> None:
    """Create an API token and print it: it is shown this once, only its digest is kept."""
    expires_at = None if expires_days is None else utcnow() + timedelta(days=expires_days)
    with _session() as session:
        user = services.find_user(session, email)
        if user is None or not user.active:
            _fail(services.AccountError(f"no active account for {email}"))
        row, token = services.create_api_token(
            session, token_signer(), user, name, [Scope(s) for s in scopes], expires_at
        )
        _audit(session, AuditAction.TOKEN_CREATED, f"api_token:{row.id}", owner_id=str(user.id))
        click.echo(f"token {row.id} for {user.email}:", err=True)
        click.echo(token)


@tokens.command("list")
def list_tokens() -> None:
    """Every API token: id, owner, name, scopes, whether revoked."""
    with _session() as session:
        for row in services.list_api_tokens(session):
            state = "revoked" if row.revoked_at else "active"
            click.echo(f"{row.id}\t{row.user_id}\t{row.name}\t{' '.join(row.scopes)}\t{state}")


@tokens.command("revoke")
@click.argument("token_id", type=click.UUID)
def revoke_token(token_id: uuid.UUID) -> None:
    """Revoke an API token."""
    with _session() as session:
        row = services.revoke_api_token(session, token_id)
        if row is None:
            _fail(services.AccountError(f"no API token {token_id}"))
        _audit(session, AuditAction.TOKEN_REVOKED, f"api_token:{token_id}")
    announce_revoked_token(token_id)
    click.echo(f"revoked {token_id}")


# The worker's account: an integration whose API token sends notification texts to the
# analyser (analysis:write), and may do nothing else.
WORKER_ACCOUNT = "worker@vigil.local"
# The name its tokens are listed under (`tokens list`).
WORKER_PURPOSE = "worker"


@tokens.command("worker")
@click.argument("token_file", type=click.Path(dir_okay=False, path_type=Path))
def worker_token(token_file: Path) -> None:
    """Make the worker's integration account (unless it exists) and an API token holding
    analysis:write, written to TOKEN_FILE (mode 0600), which AI_API_TOKEN_FILE names. Kept
    while that file exists; a new token revokes the worker's earlier ones."""
    if token_file.exists():
        click.echo(f"worker token: {token_file}")
        return
    with _session() as session:
        user = services.find_user(session, WORKER_ACCOUNT)
        if user is None:
            user = services.create_user(session, WORKER_ACCOUNT, Role.INTEGRATION)
            _audit(session, AuditAction.USER_CREATED, f"user:{user.id}", role=user.role)
        elif not user.active:
            _fail(services.AccountError(f"{WORKER_ACCOUNT} is disabled; enable it first"))
        # The file held the only copy of the earlier tokens: nobody should hold them now.
        earlier = [
            row.id
            for row in services.list_api_tokens(session, user.id)
            if row.name == WORKER_PURPOSE and row.revoked_at is None
        ]
        for token_id in earlier:
            services.revoke_api_token(session, token_id)
            _audit(session, AuditAction.TOKEN_REVOKED, f"api_token:{token_id}")
        row, token = services.create_api_token(
            session, token_signer(), user, WORKER_PURPOSE, [Scope.ANALYSIS_WRITE]
        )
        _audit(session, AuditAction.TOKEN_CREATED, f"api_token:{row.id}", owner_id=str(user.id))
        _write_secret(token_file, f"{token}\n")
        token_id = row.id
    for revoked in earlier:
        announce_revoked_token(revoked)
    click.echo(f"worker token {token_id} written: {token_file}")

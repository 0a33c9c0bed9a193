"""`/api/v1/auth`: sign in for a token, who am I, and (admins) API tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy.orm import Session

from monitor_app.audit.recorder import request_origin
from monitor_app.auth import services
from monitor_app.auth.authenticate import auth_settings, token_signer
from monitor_app.auth.revocation_sync import announce_revoked_token
from monitor_app.auth.sign_in import LOCKED_OUT, SIGN_IN_REFUSED, password_sign_in
from shared.audit import AuditAction, record
from shared.auth.policy import allow, public, unauthorized
from shared.auth.principal import Principal, require_principal
from shared.auth.roles import Role
from shared.db import db, utcnow
from shared.errors import UNPROCESSABLE
from shared.identity import ApiToken, Ward

from .schemas import (
    AccessTokenSchema,
    ApiTokenCreatedSchema,
    ApiTokenCreateSchema,
    ApiTokenSchema,
    MeSchema,
    TokenRequestSchema,
)

blp = Blueprint("auth", __name__, description="Signing in, and the tokens API clients use.")

EVERYONE = tuple(Role)


@blp.route("/token")
class AccessToken(MethodView):
    @public
    @blp.doc(security=[])
    @blp.arguments(TokenRequestSchema())
    @blp.response(200, AccessTokenSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, data: dict[str, str]) -> dict[str, Any]:
        """Exchange an email and password for a short-lived access token."""
        settings = auth_settings()
        try:
            user = password_sign_in(db.session, data["username"], data["password"], via="token")
        except services.SignInError as exc:
            # The failure count (and a lockout) is kept even though the sign-in fails.
            db.session.commit()
            if exc.failure is services.SignInFailure.LOCKED:
                raise unauthorized(LOCKED_OUT) from None
            raise unauthorized(SIGN_IN_REFUSED) from None
        token, _claims = token_signer().access_token(
            user.id, user.role, settings.access_token_lifetime
        )
        db.session.commit()
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(settings.access_token_lifetime.total_seconds()),
        }


@dataclass(frozen=True, slots=True)
class Me:
    user_id: uuid.UUID
    email: str | None
    role: Role
    wards: list[Ward]
    scopes: list[str]
    token_id: uuid.UUID | None


@blp.route("/me")
class WhoAmI(MethodView):
    @allow(*EVERYONE)
    @blp.response(200, MeSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self) -> Me:
        """Who the caller is: id, email, role, wards."""
        principal = require_principal()
        wards = [db.session.get(Ward, ward_id) for ward_id in sorted(principal.ward_ids)]
        return Me(
            principal.user_id,
            principal.email,
            principal.role,
            [ward for ward in wards if ward is not None],
            sorted(principal.scopes),
            principal.token_id,
        )


@blp.route("/tokens")
class ApiTokens(MethodView):
    @allow(Role.ADMIN)
    @blp.response(200, ApiTokenSchema(many=True))
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def get(self) -> list[ApiToken]:
        """Every API token (never the token itself), oldest first."""
        return services.list_api_tokens(db.session)

    @allow(Role.ADMIN)
    @blp.arguments(ApiTokenCreateSchema())
    @blp.response(201, ApiTokenCreatedSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(422, response=UNPROCESSABLE)
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create an API token for an account; the answer holds the token, shown only once."""
        user = services.find_user(db.session, data["email"])
        if user is None or not user.active:
            abort(422, message="No active account with this email.")
        if data["expires_at"] is not None and data["expires_at"] <= utcnow():
            abort(422, message="expires_at is in the past.")
        row, token = services.create_api_token(
            db.session, token_signer(), user, data["name"], data["scopes"], data["expires_at"]
        )
        record_token_event(db.session, AuditAction.TOKEN_CREATED, row, require_principal())
        db.session.commit()
        return {**{name: getattr(row, name) for name in ApiTokenSchema().fields}, "token": token}


@blp.route("/tokens/<uuid:token_id>")
class ApiTokenById(MethodView):
    @allow(Role.ADMIN)
    @blp.response(204)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response=UNPROCESSABLE)
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def delete(self, token_id: uuid.UUID) -> None:
        """Revoke an API token: monitor_app refuses it from the next request on."""
        row = services.revoke_api_token(db.session, token_id)
        if row is None:
            abort(404, message=f"No API token with id {token_id}.")
        record_token_event(db.session, AuditAction.TOKEN_REVOKED, row, require_principal())
        db.session.commit()
        announce_revoked_token(row.id)


def record_token_event(
    session: Session, action: AuditAction, row: ApiToken, principal: Principal
) -> None:
    record(
        session,
        action,
        principal=principal,
        detail={"token_id": str(row.id), "owner_id": str(row.user_id), "name": row.name},
        **request_origin(),
    )

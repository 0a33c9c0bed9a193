"""Sign-in requests, the tokens they return, the caller, and API tokens."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from monitor_app.auth.passwords import MAX_PASSWORD_LENGTH
from shared.auth.roles import Role, Scope
from shared.identity import MAX_EMAIL_LENGTH


class TokenRequestSchema(Schema):
    username = fields.String(
        required=True,
        validate=validate.Length(1, MAX_EMAIL_LENGTH),
        metadata={"description": "The account's email address."},
    )
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(1, MAX_PASSWORD_LENGTH)
    )


class AccessTokenSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"enum": ["Bearer"]})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds it is valid."})


class WardSchema(Schema):
    id = fields.UUID()
    name = fields.String()


class MeSchema(Schema):
    id = fields.UUID(attribute="user_id")
    email = fields.String()
    role = fields.Enum(Role, by_value=True)
    wards = fields.List(fields.Nested(WardSchema))
    scopes = fields.List(fields.Enum(Scope, by_value=True))
    token_id = fields.UUID(allow_none=True, metadata={"description": "The token signed in with."})


class ApiTokenSchema(Schema):
    id = fields.UUID(dump_only=True)
    user_id = fields.UUID(dump_only=True)
    name = fields.String(dump_only=True)
    scopes = fields.List(fields.String(), dump_only=True)
    created_at = fields.DateTime(format="iso", dump_only=True)
    expires_at = fields.DateTime(format="iso", allow_none=True, dump_only=True)
    last_used_at = fields.DateTime(format="iso", allow_none=True, dump_only=True)
    revoked_at = fields.DateTime(format="iso", allow_none=True, dump_only=True)


class ApiTokenCreateSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(1, MAX_EMAIL_LENGTH))
    name = fields.String(required=True, validate=validate.Length(1, 100))
    scopes = fields.List(
        fields.Enum(Scope, by_value=True), load_default=list, validate=validate.Length(max=16)
    )
    expires_at = fields.AwareDateTime(
        load_default=None, allow_none=True, format="iso", default_timezone=None
    )


class ApiTokenCreatedSchema(ApiTokenSchema):
    token = fields.String(
        dump_only=True, metadata={"description": "The token itself: shown this once, never again."}
    )

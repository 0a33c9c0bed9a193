"""Extension objects, created once and bound to each app by `create_app`."""

from __future__ import annotations

from flask_smorest import Api

from shared.converters import UUIDConverter, uuid_param_schema

api = Api()
# Registered before init_app, so every app's spec documents the parameters as UUIDs.
api.register_converter(UUIDConverter, uuid_param_schema)

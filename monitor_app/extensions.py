"""Extension objects, created once and bound to each app by `create_app`."""

from shared.app import make_api

api = make_api()

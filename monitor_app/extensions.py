"""Extension objects, created once and bound to each app by `create_app`."""

from flask_sock import Sock

from shared.app import make_api

api = make_api()
# The rate limiter (monitor_app/rate_limits.py) and the cache (monitor_app/json_cache.py)
# are made per app instead: Flask-Limiter keeps the first app's settings.
sock = Sock()

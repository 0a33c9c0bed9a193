"""Extension objects, created once and bound to each app by `create_app`."""

from flask_caching import Cache
from flask_sock import Sock

from shared.app import make_api

api = make_api()
# Settings (backend, storage) come from app.config; see monitor_app/config.py. The rate
# limiter is made per app instead (monitor_app/rate_limits.py): Flask-Limiter keeps the first
# app's settings.
cache = Cache()
sock = Sock()

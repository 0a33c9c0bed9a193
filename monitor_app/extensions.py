"""Extension objects, created once and bound to each app by `create_app`."""

from flask_caching import Cache
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sock import Sock

from shared.app import make_api

api = make_api()
# Settings (backend, limits, storage) come from app.config; see monitor_app/config.py.
cache = Cache()
limiter = Limiter(get_remote_address)
sock = Sock()

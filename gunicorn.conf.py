"""gunicorn settings for `gunicorn '<app>:create_app()'` run from the project root."""

from shared.logging import GUNICORN_LOGCONFIG
from shared.serve import post_worker_init, worker_exit  # noqa: F401  (gunicorn hooks)

worker_class = "gthread"
threads = 4
graceful_timeout = 15
logconfig_dict = GUNICORN_LOGCONFIG
# The default path is one per user: several Vigil servers on a machine would fight over it.
control_socket_disable = True

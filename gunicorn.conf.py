"""gunicorn settings for `gunicorn '<app>:create_app()'` run from the project root."""

from shared.logging import GUNICORN_LOGCONFIG
from shared.serve import (  # noqa: F401  (gunicorn hooks)
    WORKER_CLASS,
    child_exit,
    on_exit,
    post_worker_init,
    prepare_metrics_dir,
    worker_exit,
)

# Before the workers import prometheus_client: their metrics are summed from one folder.
prepare_metrics_dir()

worker_class = WORKER_CLASS
threads = 4
graceful_timeout = 15
logconfig_dict = GUNICORN_LOGCONFIG
# The default path is one per user: several Vigil servers on a machine would fight over it.
control_socket_disable = True

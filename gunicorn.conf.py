"""gunicorn settings for `gunicorn '<app>:create_app()'` run from the project root."""

from shared.serve import post_worker_init, worker_exit  # noqa: F401  (gunicorn hooks)

worker_class = "gthread"
threads = 4
graceful_timeout = 15

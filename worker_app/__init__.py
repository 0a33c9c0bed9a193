"""worker_app: the Celery worker that analyses notifications with the AI API.

Run it with `celery -A worker_app.celery_app worker --pool threads` from the project root.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from flask import Flask

from shared.analysis_queue import celery_config
from shared.app import create_base_app
from shared.config import RedisRole, redis_url
from shared.db import db
from shared.notifications import init_notifications
from worker_app.ai_client import AIClient
from worker_app.config import WORKER_SETTINGS, ai_api_token, check_stale_after_timeout


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The Flask app whose context every task runs in: settings, database, Redis, AI client."""
    app = create_base_app(__name__, "worker_app", WORKER_SETTINGS, test_config)
    check_stale_after_timeout(app.config)
    # One INFO line per HTTP request would drown the worker's own log lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    db.init_app(app)
    init_notifications(app)
    config = app.config
    app.extensions["vigil.ai_client"] = AIClient(
        config["AI_API_URL"], config["AI_API_TIMEOUT"], ai_api_token(config)
    )
    celery_init_app(app)
    return app


def celery_init_app(app: Flask) -> Celery:
    """A Celery app whose tasks run inside `app`'s context (Flask's documented pattern)."""

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    config = app.config
    celery.conf.update(celery_config(redis_url(config, RedisRole.QUEUE), config["REDIS_NAMESPACE"]))
    celery.set_default()
    app.extensions["celery"] = celery
    # Registers the tasks on the default app, i.e. this one.
    from worker_app import tasks  # noqa: F401

    return celery

"""The Celery tasks: analyse one notification; sweep the ones left behind."""

from __future__ import annotations

import logging
import time
import uuid

from celery import shared_task
from celery.exceptions import Retry
from flask import current_app

from shared.analysis_queue import ANALYSE_TASK, SWEEP_TASK, Origin
from shared.notifications import analysis_queue
from shared.telemetry import ANALYSES, ANALYSIS_SECONDS
from worker_app import analysis
from worker_app.ai_client import AIClient, AIError, TransientAIError

log = logging.getLogger(__name__)


@shared_task(bind=True, name=ANALYSE_TASK, max_retries=None)
def analyse_notification(self, notification_id: str) -> str:
    """Ask the AI API about one notification and store the answer. Safe to run twice."""
    started = time.perf_counter()
    outcome = "error"
    try:
        outcome = _analyse(self, notification_id)
        return outcome
    except Retry:
        outcome = "retrying"
        raise
    finally:
        ANALYSIS_SECONDS.labels(outcome).observe(time.perf_counter() - started)
        ANALYSES.labels(outcome).inc()


def _analyse(task, notification_id: str) -> str:
    app = current_app._get_current_object()
    config = app.config
    try:
        nid = uuid.UUID(notification_id)
    except (ValueError, TypeError):
        log.error("analysis task with a malformed id", extra={"notification_id": notification_id})
        return "rejected"
    notification = analysis.claim(app, nid)
    if notification is None:
        return "skipped"
    client: AIClient = app.extensions["vigil.ai_client"]
    attempt = task.request.retries + 1
    try:
        result = client.analyse(notification.text)
    except TransientAIError as exc:
        if attempt <= config["AI_API_MAX_RETRIES"]:
            countdown = config["AI_API_RETRY_BACKOFF"] * 2 ** (attempt - 1)
            log.warning(
                "AI API failed; retrying",
                extra={"notification_id": notification_id, "attempt": attempt, "error": str(exc)},
            )
            analysis.await_retry(app, nid, f"{exc}; retrying (attempt {attempt})")
            raise task.retry(countdown=countdown) from None
        reason = f"{exc} ({attempt} attempts)"
        log.error("analysis failed", extra={"notification_id": notification_id, "reason": reason})
        analysis.fail(app, nid, reason)
        return "failed"
    except AIError as exc:
        log.error("analysis failed", extra={"notification_id": notification_id, "reason": str(exc)})
        analysis.fail(app, nid, str(exc))
        return "failed"
    analysis.complete(app, nid, result)
    log.info(
        "notification analysed",
        extra={
            "notification_id": notification_id,
            "category": result.category,
            "confidence": result.confidence,
        },
    )
    return "completed"


@shared_task(name=SWEEP_TASK)
def sweep_stale_notifications() -> int:
    """Re-queue notifications left pending or processing (a worker died, Redis lost the
    queue, enqueueing failed); fail the ones that keep getting lost."""
    app = current_app._get_current_object()
    config = app.config
    requeue: dict[Origin, list[uuid.UUID]] = {origin: [] for origin in Origin}
    for stale in analysis.stale_notifications(app, config["ANALYSIS_STALE_SECONDS"]):
        if stale.attempts >= config["ANALYSIS_MAX_ATTEMPTS"]:
            reason = f"abandoned after {stale.attempts} attempts that never finished"
            analysis.fail(app, stale.id, reason)
        else:
            requeue[stale.origin].append(stale.id)
    # Each back to the queue it was first sent to: a lost alert must not wait behind the API's.
    for origin, ids in requeue.items():
        if ids:
            log.warning("re-queued stale notifications", extra={"count": len(ids), "queue": origin})
            analysis_queue(app).enqueue(ids, origin)
    return sum(len(ids) for ids in requeue.values())

"""Prometheus metrics: every metric Vigil exports, HTTP instrumentation and `/metrics`.

The metrics live in one module so their names stay in step with the Prometheus and Grafana
files under deploy/. Under gunicorn each worker is its own process; gunicorn.conf.py sets
PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported, and `/metrics` then sums
every worker's values from that folder.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from shared.auth.policy import allow
from shared.auth.roles import Role, Scope

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# -- every app: HTTP -------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "vigil_http_requests", "HTTP requests answered.", ["service", "method", "endpoint", "status"]
)
HTTP_LATENCY = Histogram(
    "vigil_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["service", "method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# -- patient_app -----------------------------------------------------------------------------
SAMPLES_PRODUCED = Counter("vigil_samples_produced", "Vitals samples queued for Kafka.")
SAMPLES_DELIVERY_FAILED = Counter(
    "vigil_samples_delivery_failed", "Vitals samples Kafka did not accept in time."
)

# -- data_app --------------------------------------------------------------------------------
SAMPLES_CONSUMED = Counter("vigil_samples_consumed", "Messages read from the vitals topic.")
SAMPLES_STORED = Counter("vigil_samples_stored", "Samples newly stored (repeats not counted).")
SAMPLES_DEAD_LETTERED = Counter(
    "vigil_samples_dead_lettered", "Messages sent to the dead-letter topic."
)
BATCH_COMMIT_SECONDS = Histogram(
    "vigil_batch_commit_seconds",
    "Storing one batch and committing its offsets.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Each worker's consumer owns its own partitions, so the workers' lags add up.
CONSUMER_LAG = Gauge(
    "vigil_consumer_lag",
    "Messages behind the end of the assigned partitions.",
    multiprocess_mode="livesum",
)
ALERTS_RAISED = Counter(
    "vigil_alerts_raised", "Alerts raised from vitals, by NEWS2 band.", ["band"]
)

# -- notifications (data_app, monitor_app) and their analysis (worker) -----------------------
NOTIFICATIONS_CREATED = Counter("vigil_notifications_created", "Notifications created.", ["source"])
ANALYSIS_SECONDS = Histogram(
    "vigil_analysis_duration_seconds",
    "One analysis attempt, AI API call included.",
    ["outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60),
)
ANALYSES = Counter("vigil_analyses", "Analysis attempts by outcome.", ["outcome"])

# -- monitor_app -----------------------------------------------------------------------------
WEBSOCKET_CLIENTS = Gauge(
    "vigil_websocket_clients",
    "Live-update WebSocket clients connected.",
    multiprocess_mode="livesum",
)


def init_telemetry(app: Flask, service: str) -> None:
    """Count and time every request of `app`, and serve the metrics at `/metrics`."""

    @app.before_request
    def _start_timer() -> None:
        g.vigil_request_started = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        started = g.pop("vigil_request_started", None)
        # A WebSocket "request" lasts as long as the stream: its duration says nothing.
        if started is None or request.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            return response
        # The route template, not the path: one series per endpoint, not one per patient.
        endpoint = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        HTTP_REQUESTS.labels(service, request.method, endpoint, str(response.status_code)).inc()
        HTTP_LATENCY.labels(service, request.method, endpoint).observe(
            time.perf_counter() - started
        )
        return response

    app.add_url_rule("/metrics", "prometheus_metrics", metrics_view)


@allow(Role.ADMIN, scope=Scope.METRICS_READ)
def metrics_view() -> Response:
    """The Prometheus text exposition of this process, or of every gunicorn worker."""
    registry = REGISTRY
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

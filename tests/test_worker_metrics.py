"""The Celery worker's own metrics endpoint (it has no web app), scraped after a real
worker process analysed a notification with the reference analyser."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devserver.ports import free_port
from tests import test_analysis_pipeline as pipeline

pytestmark = pytest.mark.integration

# The analysis pipeline's stack: a database, the test's Redis namespace, the analyser and
# monitor_app in-process to create notifications.
stack = pipeline.stack


def scrape(port: int) -> dict[tuple[str, str], float] | None:
    """(sample name, outcome) -> value of the worker's analysis samples; None if not serving."""
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/metrics",  # noqa: S310
            timeout=5,
        ) as response:
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    return {
        (sample.name, sample.labels.get("outcome", "")): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("vigil_analys")
        for sample in family.samples
    }


def test_the_worker_counts_and_times_its_analyses(
    stack: dict, wait_for: Callable[..., object]
) -> None:
    port = free_port()
    pipeline.start_worker(stack, wait_for, METRICS_PORT=str(port))
    # Served once the worker is ready, before any task ran.
    wait_for(lambda: scrape(port) is not None, timeout=10, message="the worker's metrics endpoint")
    assert scrape(port) == {}

    client = stack["client"]
    notification_id = pipeline.create(client, "Infusion pump failed: occlusion error on line 2")
    status = wait_for(
        lambda: pipeline.finished(client, notification_id), timeout=30, message="the analysis"
    )
    assert status["processing_status"] == "completed"

    # The counters move just after the result is stored: poll, do not read once.
    def counted() -> dict[tuple[str, str], float] | None:
        samples = scrape(port)
        return samples if samples and ("vigil_analyses_total", "completed") in samples else None

    samples = wait_for(counted, timeout=10, message="the completed analysis counted")
    assert samples[("vigil_analyses_total", "completed")] == 1
    assert samples[("vigil_analysis_duration_seconds_count", "completed")] == 1
    assert samples[("vigil_analysis_duration_seconds_sum", "completed")] > 0
    assert ("vigil_analyses_total", "failed") not in samples

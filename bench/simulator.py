"""The simulator's own CPU: per patient-step of the ward model, and per sample sent.

One patient_app's MetricsService in this process, its patients one ward, produces to a private
broker tick after tick (no waiting between ticks). Per sample sent is the whole process's CPU
(time.process_time, librdkafka's threads included): the ward step, building the message,
its validation and JSON, and the produce. Every patient-step is one sample.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.report import Report
from bench.stack import Stack
from patient_app import create_app
from patient_app.monitoring import MetricsService
from shared.lifecycle import background_service

BENCH_ID_SECRET = "simulator-bench-" * 4


def _service(stack: Stack, patients: int) -> MetricsService:
    app = create_app(
        {
            "TESTING": True,
            "LOG_LEVEL": "WARNING",
            "PATIENT_NAME": "Simulator Bench",
            "PATIENT_COUNT": patients,
            "PATIENT_SEED": 1,
            "PATIENT_ID_SECRET": BENCH_ID_SECRET,
            "METRICS_INTERVAL": 1.0,
            "AUTH_PUBLIC_KEY_FILE": Path(stack.settings["AUTH_PUBLIC_KEY_FILE"]),
            "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
            "KAFKA_TOPIC": f"simulator-{patients}",
        }
    )
    return background_service(app, "monitoring")


def measure(stack: Stack, patients: int, ticks: int) -> dict:
    service = _service(stack, patients)
    started = time.process_time()
    for _ in range(ticks):
        service.ward.step(service.interval)
    model = time.process_time() - started
    service.sender.start()
    try:
        service.send_metrics()  # warm: connection, topic metadata
        service.sender.poll(1.0)
        started = time.process_time()
        sent = sum(service.send_metrics() for _ in range(ticks))
        service.sender.stop(60)  # delivery is part of the cost
        whole = time.process_time() - started
    finally:
        service.sender.stop(0)  # after a failure; a no-op once stopped
    return {
        "patients": patients,
        "model µs/patient-step": model / (ticks * patients) * 1e6,
        "process CPU µs/sample sent": whole / sent * 1e6,
        "samples sent": sent,
        "delivered": service.sender.stats["delivered"],
    }


def run(quick: bool = False) -> Report:
    populations = (1000,) if quick else (1000, 10000)
    ticks = 5 if quick else 20
    report = Report(
        "simulator",
        "Simulator CPU: the ward model's step, and each sample sent (step, JSON, produce)",
        columns=[
            "patients",
            "model µs/patient-step",
            "process CPU µs/sample sent",
            "samples sent",
            "delivered",
        ],
    )
    with Stack("simulator") as stack:
        stack.start_broker()
        for patients in populations:
            print(f"  {patients} patients, {ticks} ticks …", flush=True)
            report.add(**measure(stack, patients, ticks))
    report.parameters = {"ticks": ticks}
    report.notes.append(
        "One process, ticks back to back; bench e2e's simulator column is the same cost in "
        "the running system, its HTTP included."
    )
    return report

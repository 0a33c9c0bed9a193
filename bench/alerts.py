"""Alert latency: a patient switched to a deteriorating scenario → alert → analysis done.

Fifty simulated patients (one sample a second) are switched to "deteriorating", one a second.
For each, the first alert raised after the switch is timed in three legs, all from the
database the system wrote: the sample that crossed the threshold (its timestamp) → the alert
notification stored → its analysis stored. The baseline beside it is the reference analyser
alone, called directly with the same alert texts: the 1–3 s it takes is the floor.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime

from bench.report import Report, percentile
from bench.stack import Stack, epoch
from devserver.processes import get_json, wait_until

SWITCH_EVERY_SECONDS = 1.0
# The scenario reaches its end state in this many seconds, so each alert comes within ~10 s.
DETERIORATION_SECONDS = 10


def first_alerts(stack: Stack, switched: dict[str, float]) -> dict[str, dict]:
    """Each switched patient's first analysed notification after its switch, with the
    timestamp of the newest sample stored before it (the one that raised it)."""
    found = {}
    with closing(stack.read()) as connection:
        for patient_uuid, switched_at in switched.items():
            row = connection.execute(
                "SELECT n.created_at, n.analysed_at, n.processing_status, n.text, p.id "
                "FROM notifications n JOIN patients p ON p.id = n.patient_id "
                "WHERE p.uuid = ? AND n.created_at >= ? ORDER BY n.seq LIMIT 1",
                (
                    patient_uuid.replace("-", ""),
                    datetime.fromtimestamp(switched_at, UTC)
                    .replace(tzinfo=None)
                    .isoformat(sep=" "),
                ),
            ).fetchone()
            if row is None or row[2] != "completed":
                continue
            sample = connection.execute(
                "SELECT max(timestamp) FROM patient_metrics WHERE patient_id = ? "
                "AND timestamp <= ?",
                (row[4], row[0]),
            ).fetchone()[0]
            found[patient_uuid] = {
                "created": epoch(row[0]),
                "analysed": epoch(row[1]),
                "sample": epoch(sample),
                "switched": switched_at,
                "text": row[3],
            }
    return found


def analyser_alone(url: str, token: str, texts: list[str], concurrency: int) -> list[float]:
    """Each text's time from the analyser itself, sent with the worker's token."""

    def call(text: str) -> float:
        started = time.monotonic()
        status, _ = get_json(f"{url}/api/v1/analyse", "POST", {"text": text}, token=token)
        if status != 200:
            raise RuntimeError(f"the analyser answered {status}")
        return time.monotonic() - started

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(call, texts))


def run(quick: bool = False) -> Report:
    switches = int(os.environ.get("BENCH_ALERT_SWITCHES", 10 if quick else 50))
    with Stack("alerts", PATIENT_DETERIORATION_SECONDS=str(DETERIORATION_SECONDS)) as stack:
        stack.start_broker()
        stack.start_redis()
        stack.start_data()
        stack.start_monitor()
        stack.start_analysis()
        patients_url = stack.start_patients("Ward", switches, interval=1.0)
        token = stack.admin_token()
        _, patients = get_json(f"{patients_url}/api/v1/patients", token=token)

        wait_until(
            lambda: stack.count("patients") >= switches,
            timeout=120,
            interval=0.5,
            message="every patient stored",
        )

        switched: dict[str, float] = {}
        for patient in patients:
            switched[patient["uuid"]] = time.time()
            status, _ = get_json(
                f"{patients_url}/api/v1/patients/{patient['uuid']}/scenario",
                "PUT",
                {"scenario": "deteriorating"},
                token=token,
            )
            assert status == 200, status
            time.sleep(SWITCH_EVERY_SECONDS)  # the switches' pace, not a wait for a condition
        alerts = wait_until(
            lambda: (
                (found := first_alerts(stack, switched)) and len(found) == len(switched) and found
            ),
            timeout=120,
            interval=1.0,
            message="every switch's alert analysed",
        )
        stack.check_running()
        floor = analyser_alone(
            stack.url("analyser"),
            stack.worker_token(),
            [a["text"] for a in alerts.values()],
            concurrency=4,
        )

    legs = {
        "sample → alert stored": [a["created"] - a["sample"] for a in alerts.values()],
        "alert → analysis stored": [a["analysed"] - a["created"] for a in alerts.values()],
        "sample → analysis stored": [a["analysed"] - a["sample"] for a in alerts.values()],
        "switch → analysis stored": [a["analysed"] - a["switched"] for a in alerts.values()],
        "analyser alone (baseline)": floor,
    }
    report = Report(
        "alerts",
        f"Alert latency over {switches} switches to a deteriorating scenario",
        columns=["leg", "p50 s", "p99 s", "max s"],
    )
    for leg, values in legs.items():
        report.add(
            leg=leg,
            **{
                "p50 s": percentile(values, 0.5),
                "p99 s": percentile(values, 0.99),
                "max s": max(values),
            },
        )
    total, alone = legs["alert → analysis stored"], floor
    report.add(
        leg="alert → analysis ÷ analyser alone",
        **{
            "p50 s": percentile(total, 0.5) / percentile(alone, 0.5),
            "p99 s": percentile(total, 0.99) / percentile(alone, 0.99),
        },
    )
    report.parameters = {
        "switches": switches,
        "one every s": SWITCH_EVERY_SECONDS,
        "deterioration s": DETERIORATION_SECONDS,
    }
    report.notes.append(
        "Switch → analysis includes the simulated physiology drifting into "
        "the alert band; the system's own legs start at the sample that "
        "crossed it. The worker runs 4 threads, the analyser 1–3 s a call "
        "(its baseline run with 4 concurrent calls)."
    )
    return report

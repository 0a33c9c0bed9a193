"""End to end: simulated patients at one sample a second, through the whole system.

For each population the benchmark runs broker, Redis, data_app, monitor_app and patient_app
processes, and measures, for every sample in the window, the time from the sample's own
timestamp to (a) its row being visible in the database and (b) its delivery to a WebSocket
client of monitor_app. data_app's consumer lag is read every few seconds to see whether it
stays flat. The baseline measured beside it is the broker's own round trip under the same
load: a probe message produced and consumed with confluent-kafka and nothing else.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import websocket
from confluent_kafka import Consumer, Producer, TopicPartition

from bench.report import Report, percentile
from bench.stack import Stack, epoch
from devserver.processes import get_json, wait_until

# One simulator process keeps up with about this many patients a second on one core.
PATIENTS_PER_PROCESS = 2500
DB_POLL_SECONDS = 0.05
LAG_EVERY_SECONDS = 5.0
PROBE_EVERY_SECONDS = 0.1
# Every sample is timed at 1,000 patients; at 10,000 the observer's own CPU (on the same two
# cores as the system) would slow what it measures, so one sample in this many is timed.
SAMPLE_ONE_IN = {1000: 1, 10000: 10}


@dataclass
class Collector:
    """A background thread filling `latencies` while `recording` is set."""

    stop: threading.Event = field(default_factory=threading.Event)
    recording: threading.Event = field(default_factory=threading.Event)
    latencies: list[float] = field(default_factory=list)
    error: BaseException | None = None

    def run(self, target, *args) -> threading.Thread:
        def guarded() -> None:
            try:
                target(self, *args)
            except BaseException as exc:  # reported with the figures, not lost in a thread
                self.error = exc

        thread = threading.Thread(target=guarded, daemon=True)
        thread.start()
        return thread


def watch_database(collector: Collector, stack: Stack, one_in: int) -> None:
    """Rows become visible in id order: read the new ones every few milliseconds."""
    connection = stack.read()
    last_id = connection.execute("SELECT coalesce(max(id), 0) FROM patient_metrics").fetchone()[0]
    while not collector.stop.wait(DB_POLL_SECONDS):
        newest = connection.execute("SELECT max(id) FROM patient_metrics").fetchone()[0]
        if newest is None or newest <= last_id:
            continue
        rows = connection.execute(
            "SELECT timestamp FROM patient_metrics WHERE id > ? AND id <= ? AND id % ? = 0",
            (last_id, newest, one_in),
        ).fetchall()
        now = time.time()
        last_id = newest
        if collector.recording.is_set():
            collector.latencies.extend(now - epoch(row[0]) for row in rows)
    connection.close()


def watch_websocket(collector: Collector, url: str, token: str, one_in: int) -> None:
    connection = websocket.create_connection(
        f"{url}?types=vitals", timeout=5, header=[f"Authorization: Bearer {token}"]
    )
    try:
        while not collector.stop.is_set():
            try:
                message = json.loads(connection.recv())
            except websocket.WebSocketTimeoutException:
                continue
            now = time.time()
            if message.get("type") == "vitals" and collector.recording.is_set():
                collector.latencies.extend(
                    now - epoch(sample["timestamp"]) for sample in message["samples"][::one_in]
                )
    finally:
        connection.close()


def probe_broker(collector: Collector, bootstrap: str) -> None:
    """The transport alone: a timestamp produced and consumed, with nothing in between."""
    topic = "bench-probe"
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    producer.produce(topic, b"0")
    producer.flush(10)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-probe",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    consumer.assign([TopicPartition(topic, 0, -1)])  # from the end: only new probes
    next_send = time.monotonic()
    try:
        while not collector.stop.is_set():
            if time.monotonic() >= next_send:
                producer.produce(topic, repr(time.time()).encode())
                producer.poll(0)
                next_send += PROBE_EVERY_SECONDS
            message = consumer.poll(0.01)
            if message is not None and not message.error() and collector.recording.is_set():
                sent = float(message.value())
                if sent > 0:
                    collector.latencies.append(time.time() - sent)
    finally:
        consumer.close()
        producer.flush(5)


def group_cpu_seconds(groups: list[int]) -> float:
    """User plus system CPU the live processes of these process groups have used so far: a
    simulator is gunicorn's arbiter and its worker, one group (devserver.processes)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After "pid (comm)": state ppid pgrp … utime stime (fields 3, 4, 5 … 14, 15).
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[2]) in groups:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def samples_sent(simulator_urls: list[str], token: str) -> int:
    """Samples the simulators have queued for the broker so far (their /health, for admins)."""
    total = 0
    for url in simulator_urls:
        _status, body = get_json(f"{url}/health", token=token)
        if not (body and "sent" in body.get("kafka", {})):
            raise RuntimeError(f"{url}/health does not say how many samples were sent: {body!r}")
        total += body["kafka"]["sent"]
    return total


def consumer_lag(data_url: str, token: str) -> int | None:
    # /health tells the consumer's figures to admins only.
    status, body = get_json(f"{data_url}/health", token=token)
    return (body or {}).get("consumer", {}).get("lag") if status else None


def measure(patients: int, seconds: float) -> dict:
    """One population: start the system, warm up, record for `seconds`, stop."""
    with Stack("e2e") as stack:
        stack.start_broker()
        stack.start_redis()
        data = stack.start_data()
        monitor = stack.start_monitor()
        processes = math.ceil(patients / PATIENTS_PER_PROCESS)
        simulator_urls = []
        for index in range(processes):
            share = patients // processes + (index < patients % processes)
            simulator_urls.append(stack.start_patients(f"Load{index}", share, interval=1.0))
        simulators = [stack.processes.running[f"Load{i}"].pid for i in range(processes)]
        # Warm: every patient has been stored at least once and the consumer is assigned.
        wait_until(
            lambda: stack.count("patient_metrics") >= patients,
            timeout=120,
            interval=0.5,
            message=f"{patients} patients' first samples",
        )

        stored, delivered, probe = Collector(), Collector(), Collector()
        one_in = SAMPLE_ONE_IN.get(patients, 1)
        threads = [
            stored.run(watch_database, stack, one_in),
            delivered.run(
                watch_websocket,
                monitor.replace("http", "ws") + "/api/v1/ws",
                stack.admin_token(),
                one_in,
            ),
            probe.run(probe_broker, stack.bootstrap),
        ]
        time.sleep(5)  # the warm-up interval itself, not a wait for a condition
        rows_before = stack.count("patient_metrics")
        simulator_cpu = group_cpu_seconds(simulators)
        sent = samples_sent(simulator_urls, stack.admin_token())
        lags: list[tuple[float, int | None]] = []
        started = time.monotonic()
        for collector in (stored, delivered, probe):
            collector.recording.set()
        while (elapsed := time.monotonic() - started) < seconds:
            lags.append((elapsed, consumer_lag(data, stack.admin_token())))
            time.sleep(min(LAG_EVERY_SECONDS, max(0.0, seconds - elapsed)))  # lag readings pace
        for collector in (stored, delivered, probe):
            collector.recording.clear()
        elapsed = time.monotonic() - started
        simulator_cpu = group_cpu_seconds(simulators) - simulator_cpu
        sent = samples_sent(simulator_urls, stack.admin_token()) - sent
        rows = stack.count("patient_metrics") - rows_before
        lags.append((elapsed, consumer_lag(data, stack.admin_token())))
        for collector in (stored, delivered, probe):
            collector.stop.set()
        for thread in threads:
            thread.join(10)
        stack.check_running()
        errors = [c.error for c in (stored, delivered, probe) if c.error]
        if errors:
            raise RuntimeError(f"a collector failed: {errors[0]!r}") from errors[0]
    return {
        "patients": patients,
        "seconds": elapsed,
        "rows": rows,
        "simulator_cpu": simulator_cpu,
        "sent": sent,
        "one_in": one_in,
        "stored": stored.latencies,
        "delivered": delivered.latencies,
        "probe": probe.latencies,
        "lags": lags,
    }


def lag_is_flat(lags: list[tuple[float, int | None]], patients: int) -> bool:
    """Flat: the last third of the run's lag is not above the first third's by more than
    one second of traffic (it would climb without bound if the consumer fell behind)."""
    values = [lag for _, lag in lags if lag is not None]
    if len(values) < 3:
        return False
    third = max(1, len(values) // 3)
    return max(values[-third:]) <= max(values[:third]) + patients


def run(quick: bool = False) -> Report:
    populations = (200, 1000) if quick else (1000, 10000)
    default_seconds = {200: 15, 1000: 15} if quick else {1000: 60, 10000: 180}
    override = os.environ.get("BENCH_E2E_SECONDS")
    report = Report(
        "e2e",
        "End to end: sample → stored → WebSocket, 1 sample/s per patient",
        columns=[
            "patients",
            "samples/s",
            "simulator CPU µs/sample",
            "stored p50 ms",
            "stored p99 ms",
            "WebSocket p50 ms",
            "WebSocket p99 ms",
            "broker p50 ms",
            "broker p99 ms",
            "WebSocket ÷ broker p99",
            "lag first/max/last",
            "lag flat",
        ],
    )
    for patients in populations:
        seconds = float(override or default_seconds[patients])
        print(f"  {patients} patients for {seconds:.0f} s …", flush=True)
        result = measure(patients, seconds)
        lags = [lag for _, lag in result["lags"] if lag is not None]
        flat = lag_is_flat(result["lags"], patients)
        ms = {
            name: (percentile(result[name], 0.5) * 1000, percentile(result[name], 0.99) * 1000)
            for name in ("stored", "delivered", "probe")
        }
        report.add(
            **{
                "patients": patients,
                "samples/s": result["rows"] / result["seconds"],
                "simulator CPU µs/sample": result["simulator_cpu"] / max(1, result["sent"]) * 1e6,
                "stored p50 ms": ms["stored"][0],
                "stored p99 ms": ms["stored"][1],
                "WebSocket p50 ms": ms["delivered"][0],
                "WebSocket p99 ms": ms["delivered"][1],
                "broker p50 ms": ms["probe"][0],
                "broker p99 ms": ms["probe"][1],
                "WebSocket ÷ broker p99": ms["delivered"][1] / ms["probe"][1],
                "lag first/max/last": (f"{lags[0]}/{max(lags)}/{lags[-1]}" if lags else "–"),
                "lag flat": "yes" if flat else "no",
                "timed": f"1 in {result['one_in']}",
                "seconds": round(result["seconds"], 1),
            }
        )
        if patients == populations[-1]:
            report.target(
                f"WebSocket delivery p99 at {patients:,} patients, s",
                ms["delivered"][1] / 1000,
                1.0,
                higher_is_better=False,
            )
    report.parameters = {
        "seconds per population": override or default_seconds,
        "simulator processes of": PATIENTS_PER_PROCESS,
    }
    report.notes.append(
        "Stored = the row visible to a reader polling every "
        f"{DB_POLL_SECONDS * 1000:.0f} ms (so up to that much late); WebSocket "
        "= one client of monitor_app's /api/v1/ws; broker = a probe produced "
        "and consumed with confluent-kafka alone under the same load."
    )
    report.notes.append(
        "Simulator CPU = user + system CPU of the simulator processes (model step, JSON, "
        "produce, their HTTP) over the recording, from /proc, per sample they sent meanwhile."
    )
    return report

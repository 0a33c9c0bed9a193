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
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

import websocket
from confluent_kafka import Consumer, Producer, TopicPartition

from bench.cpu import CpuMeter, CpuShares
from bench.report import Report, percentile
from bench.stack import Stack, epoch
from bench.streams import open_stream
from devserver.processes import ROOT, get_json, wait_until

# One simulator process keeps up with about this many patients a second on one core.
PATIENTS_PER_PROCESS = 2500
DB_POLL_SECONDS = 0.05
LAG_EVERY_SECONDS = 5.0
PROBE_EVERY_SECONDS = 0.1
# Every sample is timed at 1,000 patients; at 10,000 the observer's own CPU (on the same two
# cores as the system) would slow what it measures, so one sample in this many is timed.
SAMPLE_ONE_IN = {1000: 1, 10000: 10}
# Dashboards beside that one client (bench/crowd.py): each shows this many beds.
CROWD_CLIENTS = {"quick": 100, "full": 1000}
CROWD_BEDS = 10
CROWD_TIMED_ONE_IN = 10


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
    connection = open_stream(f"{url}?types=vitals", token, timeout=5)
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


class Crowd:
    """bench/crowd.py's dashboards in their own process, on `url`'s stream."""

    def __init__(self, stack: Stack, url: str, clients: int) -> None:
        connection = stack.read()
        rows = connection.execute("SELECT uuid FROM patients").fetchall()
        patients = [str(uuid.UUID(row[0])) for row in rows]
        connection.close()
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "bench.crowd", url, "--clients", str(clients)]
            + ["--beds", str(CROWD_BEDS), "--timed-one-in", str(CROWD_TIMED_ONE_IN)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._say(json.dumps({"token": stack.admin_token(), "patients": patients}))
        ready = self.process.stdout.readline().split()
        if ready[:1] != ["ready"]:
            raise RuntimeError(f"the crowd did not open its streams: {ready!r}")
        self.opened = int(ready[1])

    def _say(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def start(self) -> None:
        self._say("start")

    def stop(self) -> dict:
        """What the crowd saw: opened, messages, closed (by the server), latencies."""
        self._say("stop")
        figures = json.loads(self.process.stdout.readline())
        self.process.wait(30)
        return figures


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


def measure(patients: int, seconds: float, clients: int) -> dict:
    """One population: start the system, warm up, open the crowd's `clients` streams, record
    for `seconds`, stop."""
    with Stack("e2e") as stack:
        stack.start_broker()
        stack.start_redis()
        data = stack.start_data()
        # One account for the whole crowd, as one integration's token would be.
        monitor = stack.start_monitor(WS_MAX_CLIENTS_PER_USER=str(clients + 1))
        processes = math.ceil(patients / PATIENTS_PER_PROCESS)
        simulator_urls = []
        for index in range(processes):
            share = patients // processes + (index < patients % processes)
            simulator_urls.append(stack.start_patients(f"Load{index}", share, interval=1.0))
        running = stack.processes.running
        parts = {
            "data_app": [running["data"].pid],
            "monitor_app": [running["monitor"].pid],
            "simulators": [running[f"Load{i}"].pid for i in range(processes)],
            **{name: [pid] for name, pid in stack.service_pids.items()},
        }
        # Warm: every patient has been stored at least once and the consumer is assigned.
        wait_until(
            lambda: stack.count("patient_metrics") >= patients,
            timeout=120,
            interval=0.5,
            message=f"{patients} patients' first samples",
        )

        stored, delivered, probe = Collector(), Collector(), Collector()
        one_in = SAMPLE_ONE_IN.get(patients, 1)
        stream_url = monitor.replace("http", "ws") + "/api/v1/ws"
        crowd = Crowd(stack, stream_url, clients)
        meter = CpuMeter({**parts, "crowd": [crowd.process.pid]}, alone={"probes": [os.getpid()]})
        threads = [
            stored.run(watch_database, stack, one_in),
            delivered.run(watch_websocket, stream_url, stack.admin_token(), one_in),
            probe.run(probe_broker, stack.bootstrap),
        ]
        time.sleep(5)  # the warm-up interval itself, not a wait for a condition
        rows_before = stack.count("patient_metrics")
        meter.start()
        sent = samples_sent(simulator_urls, stack.admin_token())
        lags: list[tuple[float, int | None]] = []
        started = time.monotonic()
        for collector in (stored, delivered, probe):
            collector.recording.set()
        crowd.start()
        while (elapsed := time.monotonic() - started) < seconds:
            lags.append((elapsed, consumer_lag(data, stack.admin_token())))
            time.sleep(min(LAG_EVERY_SECONDS, max(0.0, seconds - elapsed)))  # lag readings pace
        for collector in (stored, delivered, probe):
            collector.recording.clear()
        # Read before the crowd stops: its process exits with it, and with it its CPU figures.
        cpu = meter.stop()
        crowd_figures = crowd.stop()
        elapsed = time.monotonic() - started
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
        "cpu": cpu,
        "sent": sent,
        "one_in": one_in,
        "stored": stored.latencies,
        "delivered": delivered.latencies,
        "probe": probe.latencies,
        "lags": lags,
        "crowd": crowd_figures,
    }


def lag_is_flat(lags: list[tuple[float, int | None]], patients: int) -> bool:
    """Flat: the last third of the run's lag is not above the first third's by more than
    one second of traffic (it would climb without bound if the consumer fell behind)."""
    values = [lag for _, lag in lags if lag is not None]
    if len(values) < 3:
        return False
    third = max(1, len(values) // 3)
    return max(values[-third:]) <= max(values[:third]) + patients


def bound(patients: int, stored_per_second: float, cpu: CpuShares) -> str:
    """What keeps delivery from its target, from where the CPU went."""
    cores = os.cpu_count() or 1
    data = cpu.parts["data_app"]
    per_sample = data / max(1.0, stored_per_second)
    others = sum(used for name, used in cpu.parts.items() if name != "data_app")
    if stored_per_second < 0.95 * patients:
        ingest = (
            f"data_app stored {stored_per_second:,.0f} of the {patients:,} samples/s offered, "
            f"on {data:.2f} cores ({per_sample * 1e6:.0f} µs of CPU a sample), so samples "
            "queue in the broker, the lag grows and delivery is as late as the backlog is old. "
            f"The other parts used {others:.2f} cores, leaving data_app "
            f"{max(0.0, cores - others):.2f}: enough for "
            f"{max(0.0, cores - others) / per_sample:,.0f} samples/s at its cost"
        )
    else:
        ingest = (
            f"data_app kept up ({stored_per_second:,.0f} samples/s stored); the time is spent "
            "between storing and the WebSocket"
        )
    busy = "bound by CPU" if cpu.machine >= 0.9 * cores else "not CPU-bound"
    return (
        f"What bounds delivery at {patients:,} patients ({busy}: the machine's {cores} cores "
        f"were {100 * cpu.machine / cores:.0f}% busy): {ingest}."
    )


def run(quick: bool = False) -> Report:
    populations = (200, 1000) if quick else (1000, 10000)
    clients = int(os.environ.get("BENCH_E2E_CLIENTS", CROWD_CLIENTS["quick" if quick else "full"]))
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
            "crowd streams",
            "crowd p50 ms",
            "crowd p99 ms",
            "crowd closed",
            "lag first/max/last",
            "lag flat",
        ],
    )
    for patients in populations:
        seconds = float(override or default_seconds[patients])
        print(f"  {patients} patients for {seconds:.0f} s …", flush=True)
        result = measure(patients, seconds, clients)
        crowd, cpu = result["crowd"], result["cpu"]
        report.notes.append(
            f"CPU at {patients:,} patients, cores used by each part: {cpu.describe()}."
        )
        lags = [lag for _, lag in result["lags"] if lag is not None]
        flat = lag_is_flat(result["lags"], patients)
        ms = {
            name: (percentile(result[name], 0.5) * 1000, percentile(result[name], 0.99) * 1000)
            for name in ("stored", "delivered", "probe")
        }
        crowd_ms = [percentile(crowd["latencies"], q) * 1000 for q in (0.5, 0.99)]
        report.add(
            **{
                "patients": patients,
                "samples/s": result["rows"] / result["seconds"],
                "simulator CPU µs/sample": (
                    cpu.parts["simulators"] * cpu.seconds / max(1, result["sent"]) * 1e6
                ),
                "stored p50 ms": ms["stored"][0],
                "stored p99 ms": ms["stored"][1],
                "WebSocket p50 ms": ms["delivered"][0],
                "WebSocket p99 ms": ms["delivered"][1],
                "broker p50 ms": ms["probe"][0],
                "broker p99 ms": ms["probe"][1],
                "WebSocket ÷ broker p99": ms["delivered"][1] / ms["probe"][1],
                "crowd streams": crowd["opened"],
                "crowd p50 ms": crowd_ms[0],
                "crowd p99 ms": crowd_ms[1],
                "crowd closed": crowd["closed"],
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
            report.target(
                f"delivery p99 to {crowd['opened']:,} dashboards at {patients:,} patients, s",
                crowd_ms[1] / 1000,
                1.0,
                higher_is_better=False,
            )
            if max(ms["delivered"][1], crowd_ms[1]) > 1000:
                report.notes.append(bound(patients, result["rows"] / result["seconds"], cpu))
    report.parameters = {
        "seconds per population": override or default_seconds,
        "simulator processes of": PATIENTS_PER_PROCESS,
        "crowd": f"{clients} streams of {CROWD_BEDS} beds, 1 in {CROWD_TIMED_ONE_IN} timed",
    }
    report.notes.append(
        "Stored = the row visible to a reader polling every "
        f"{DB_POLL_SECONDS * 1000:.0f} ms (so up to that much late); WebSocket "
        "= one client of monitor_app's /api/v1/ws; broker = a probe produced "
        "and consumed with confluent-kafka alone under the same load."
    )
    report.notes.append(
        "Crowd = bench/crowd.py's dashboards, one gevent process on the same cores: each "
        f"stream subscribes to {CROWD_BEDS} beds (`?patients=`) and reads all it is sent; every "
        f"{CROWD_TIMED_ONE_IN}th times its samples. Closed = streams the server ended."
    )
    report.notes.append(
        "Simulator CPU = user + system CPU of the simulator processes (model step, JSON, "
        "produce, their HTTP) over the recording, from /proc, per sample they sent meanwhile."
    )
    return report

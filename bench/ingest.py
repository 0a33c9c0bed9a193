"""Ingest: how fast data_app drains a backlog of vitals from Kafka into SQLite.

A topic on a private broker is pre-loaded with simulated samples, then the same messages are
stored by, in turn:
- Vigil: the real data_app (its app factory, consumer thread and batch size);
- straightforward: the per-message consumer a first version would write, on a prefix;
- raw consume: confluent-kafka reading the topic and doing nothing else;
- raw insert: sqlite3 `executemany` of the already-decoded rows, in large transactions.
(The last three are in bench/ingest_baselines.py.)

`python -m bench ingest [--quick]`, or `python -m bench.ingest --samples N` for another size
(BENCH_INGEST_SAMPLES does the same for `python -m bench`). BENCH_PROFILE=1 also profiles
Vigil's drain with pyinstrument (requirements/bench.lock) into var/bench/ingest-profile.*.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from sqlalchemy import func, select

from bench import BENCH_ID_SECRET
from bench.ingest_baselines import (
    RAW_TRANSACTION_ROWS,
    Stopwatch,
    Timing,
    raw_consume,
    raw_insert,
    straightforward_consume,
)
from bench.ingest_postgres import drain_in_processes, prepared_databases, raw_copy
from bench.report import OUTPUT_DIR, ROOT, Report
from bench.stack import Stack
from data_app import create_app
from data_app.config import DATA_SETTINGS
from patient_app.patients import patient_uuid_for
from patient_app.ward import WardPhysiology
from shared.db import db
from shared.kafka import TopicSettings, ensure_topic, producer_config
from shared.lifecycle import background_service, stop_background
from shared.models import Notification, PatientMetric
from shared.news2 import score_news2

DEFAULTS = {setting.name: setting.default for setting in DATA_SETTINGS}
# A ward: most patients stable, one in ten drifting into an abnormal picture (which raises
# NEWS2 alerts, as on a real ward).
ABNORMAL = ("tachycardia", "hypoxia", "sepsis", "hypotension", "hypertension", "deteriorating")
# How SQLAlchemy stores a UTCDateTime on SQLite: UTC without a zone, in microseconds.
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
DRAIN_TIMEOUT_SECONDS = 240.0
TOPIC = "vitals"


@dataclass(frozen=True)
class Sizes:
    samples: int = 200_000
    patients: int = 1_000
    batch_size: int = DEFAULTS["CONSUMER_BATCH_SIZE"]
    # The per-message consumer stops at whichever comes first.
    straightforward_limit: int = 10_000
    straightforward_budget_s: float = 25.0


QUICK = Sizes(
    samples=20_000, patients=100, straightforward_limit=1_000, straightforward_budget_s=10.0
)


@dataclass
class Workload:
    """The same samples as messages on the topic, and as patients and metrics table rows."""

    messages: list[tuple[bytes, bytes]] = field(default_factory=list)
    patients: list[tuple[int, str, str, str]] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)


def make_workload(samples: int, patients: int) -> Workload:
    """Consecutive 1-s samples per patient from patient_app's physiology model, time-major."""
    per_patient = -(-samples // patients)
    # In the past (the schema refuses future samples), ending about a minute ago.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=per_patient + 60)
    received_at = datetime.now(UTC).strftime(SQLITE_TIME)
    workload = Workload()
    # One model for every patient, stepped a second at a time, as the simulator does.
    ward = WardPhysiology(patients, seed=1)
    beds = []
    for index in range(1, patients + 1):
        name = f"Ingest Bench {index:05d}"
        scenario = ABNORMAL[index // 10 % len(ABNORMAL)] if index % 10 == 0 else "normal"
        ward.set_scenario(index - 1, scenario)
        patient_uuid = patient_uuid_for(name, BENCH_ID_SECRET)
        beds.append((index, str(patient_uuid), name))
        workload.patients.append((index, patient_uuid.hex, name, received_at))
    for second in range(per_patient):
        moment = start + timedelta(seconds=second)
        stamp, stored_at = moment.isoformat(timespec="milliseconds"), moment.strftime(SQLITE_TIME)
        vitals = ward.step(1.0)
        for index, patient_uuid, name in beds[: samples - len(workload.rows)]:
            v = vitals.vitals(index - 1)
            workload.messages.append(
                (
                    patient_uuid.encode(),
                    json.dumps(
                        {
                            "patient_uuid": patient_uuid,
                            "patient_name": name,
                            "timestamp": stamp,
                            "pulse": v.pulse,
                            "resp_rate": v.resp_rate,
                            "bp": v.bp,
                            "spo2": v.spo2,
                            "temperature": v.temperature,
                        }
                    ).encode(),
                )
            )
            news2 = score_news2(
                resp_rate=v.resp_rate,
                spo2=v.spo2,
                systolic=v.systolic,
                pulse=v.pulse,
                temperature=v.temperature,
            )
            workload.rows.append(
                (
                    index,
                    stored_at,
                    v.pulse,
                    v.resp_rate,
                    v.systolic,
                    v.diastolic,
                    v.spo2,
                    v.temperature,
                    received_at,
                    news2.score,
                    news2.band,
                )
            )
    return workload


def preload(bootstrap: str, partitions: int, messages: list[tuple[bytes, bytes]]) -> dict[int, int]:
    """Produce every message, keyed by patient uuid as patient_app does, and wait for acks.

    Returns each partition's end offset, from the delivery reports: tansu's ListOffsets
    (the watermarks) does not give the end of a partition reliably.
    """
    ensure_topic(bootstrap, TOPIC, TopicSettings(partitions=partitions))
    failures: list[str] = []
    ends = dict.fromkeys(range(partitions), 0)

    def delivered(err, message) -> None:
        if err is not None:
            failures.append(str(err))
        else:
            ends[message.partition()] = max(ends[message.partition()], message.offset() + 1)

    producer = Producer(producer_config(bootstrap, **{"linger.ms": 20}))
    for key, value in messages:
        while True:
            try:
                producer.produce(TOPIC, key=key, value=value, on_delivery=delivered)
                break
            except BufferError:  # local queue full: let deliveries drain it
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(60) or failures:
        raise RuntimeError(f"pre-loading the topic failed: {failures[:3]}")
    return ends


@dataclass
class Drain:
    timing: Timing  # from the first stored batch to the last one committed
    from_assignment: float  # seconds from the partitions' assignment to the last commit
    join_seconds: float  # from the consumer's start to its assignment
    alerts: int


def vigil_config(stack: Stack, database_url: str, group: str, sizes: Sizes) -> dict[str, Any]:
    """data_app's settings for a drain of the topic into `database_url` by consumer `group`."""
    return {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "KAFKA_TOPIC": TOPIC,
        "KAFKA_DLQ_TOPIC": f"{TOPIC}.dlq",
        "KAFKA_GROUP_ID": group,
        "CONSUMER_BATCH_SIZE": sizes.batch_size,
        **stack.redis_settings,
        "REDIS_NAMESPACE": "bench-ingest",
        "LOG_LEVEL": "WARNING",
        # Only shortens the wait for the first assignment, which is not timed.
        "KAFKA_SESSION_TIMEOUT_MS": 2000,
        **stack.key_settings(),
    }


def drain_with_vigil(
    stack: Stack,
    ends: dict[int, int],
    sizes: Sizes,
    profile: Path | None,
    database_url: str,
    group: str,
) -> Drain:
    """Run the real data_app's consumer until every sample is stored and its offset committed.

    `profile`: where to write a profile of the drain (.html and .txt), if anywhere."""
    app = create_app(vigil_config(stack, database_url, group, sizes))
    service = background_service(app, "consumer")
    profiled = _profile_batches(service, sizes.samples, profile) if profile else None
    try:
        background_service(app, "schema").start()
        started = time.perf_counter()
        service.start()
        assigned = first = None
        first_rows = 0
        while True:
            now, stored = time.perf_counter(), service.status["stored"]
            if assigned is None and (service.status["assigned_partitions"] or stored):
                assigned = now
            if first is None and stored:
                first, first_rows = Stopwatch(), stored
            # data_app counts a batch as stored only once its offsets are committed.
            if stored >= sizes.samples:
                break
            if now - started > DRAIN_TIMEOUT_SECONDS or not service.running:
                raise TimeoutError(f"data_app stored {stored} of {sizes.samples}: {service.status}")
            time.sleep(0.005)
        timing = first.timing(sizes.samples - first_rows)
        if profiled is not None:
            profiled.wait(30)
        with db.sessionmaker(app)() as session:
            rows = session.scalar(select(func.count()).select_from(PatientMetric))
            alerts = session.scalar(select(func.count()).select_from(Notification))
    finally:
        stop_background(app)
    lag = committed_lag(stack.bootstrap, group, ends)
    if rows != sizes.samples or lag != 0:
        raise RuntimeError(f"data_app left {rows} rows of {sizes.samples}, lag {lag}")
    return Drain(timing, now - assigned, assigned - started, alerts)


def _profile_batches(service, expected: int, profile: Path) -> threading.Event:
    """Profile the consumer thread from its first batch of messages to the last stored one.

    pyinstrument samples only the thread that starts it, so it is started and stopped inside
    the consumer thread, around data_app's own batch method.
    """
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled")
    finished = threading.Event()
    process = service.process_messages

    def process_profiled(messages) -> None:
        if messages and not profiler.is_running and not finished.is_set():
            profiler.start()
        try:
            process(messages)
        finally:
            if profiler.is_running and service.status["stored"] >= expected:
                profiler.stop()
                profile.parent.mkdir(parents=True, exist_ok=True)
                profile.with_suffix(".html").write_text(profiler.output_html())
                profile.with_suffix(".txt").write_text(profiler.output_text(unicode=True))
                finished.set()

    service.process_messages = process_profiled
    return finished


def committed_lag(bootstrap: str, group: str, ends: dict[int, int]) -> int:
    """Messages between the group's committed offsets and the ends of the partitions."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        committed = consumer.committed([TopicPartition(TOPIC, p) for p in ends], timeout=10)
    finally:
        consumer.close()
    return sum(ends[tp.partition] - max(tp.offset, 0) for tp in committed)


def ingest_bound(vigil: float, raw: float, cpu: dict[str, float], quick: bool) -> str:
    """What keeps Vigil's drain from half the raw rate: its CPU per sample, and where that
    goes (bench/ingest_cpu.py's stages, cProfile's cumulative time)."""
    output = OUTPUT_DIR / "ingest-cpu.json"
    samples = "5000" if quick else "19000"
    command = [sys.executable, "-m", "bench.ingest_cpu", "--samples", samples, "--profile"]
    subprocess.run(  # noqa: S603
        [*command, "--json", str(output)], cwd=ROOT, check=True, capture_output=True
    )
    stages = json.loads(output.read_text())["stages"]
    mine = cpu["Vigil (data_app)"]
    needed = 1e6 / (0.5 * raw)
    return (
        f"What bounds Vigil ÷ raw: data_app's CPU per sample. One consumer thread stored "
        f"{vigil:,.0f} samples/s on {mine:.1f} µs of CPU a sample, against the raw insert's "
        f"{cpu['raw insert (sqlite3 executemany)']:.1f} µs and the raw consume's "
        f"{cpu['raw consume (confluent-kafka)']:.2f} µs; half the raw rate "
        f"({0.5 * raw:,.0f} samples/s) leaves one core {needed:.1f} µs a sample, "
        f"{mine / needed:.1f}× less than now. Where a sample's CPU goes in the consumer's "
        "batch work (bench/ingest_cpu.py, cProfile, 100 patients of the same model): "
        + ", ".join(f"{stage} {100 * share:.0f}%" for stage, share in stages.items())
        + "."
    )


def run(quick: bool = False, sizes: Sizes | None = None) -> Report:
    if sizes is None:
        sizes = QUICK if quick else Sizes()
        if os.environ.get("BENCH_INGEST_SAMPLES"):
            sizes = replace(sizes, samples=int(os.environ["BENCH_INGEST_SAMPLES"]))
    profile_dir = OUTPUT_DIR if os.environ.get("BENCH_PROFILE") == "1" else None
    partitions = DEFAULTS["KAFKA_TOPIC_PARTITIONS"]
    report = Report(
        "ingest",
        "Ingest: draining a backlog of vitals from Kafka into SQLite and PostgreSQL",
        ["path", "samples", "seconds", "samples/s", "CPU µs/sample", "timed"],
    )
    report.parameters = {
        "samples": sizes.samples,
        "patients": sizes.patients,
        "batch size": sizes.batch_size,
        "partitions": partitions,
        "straightforward prefix": sizes.straightforward_limit,
    }
    began = time.perf_counter()
    with Stack("ingest") as stack:
        stack.start_broker()
        stack.start_redis()
        postgres = stack.start_postgres()
        workload = make_workload(sizes.samples, sizes.patients)
        prepared = time.perf_counter()
        ends = preload(stack.bootstrap, partitions, workload.messages)
        loaded = time.perf_counter()
        consumed = raw_consume(stack.bootstrap, TOPIC, partitions, sizes.samples, sizes.batch_size)
        inserted = raw_insert(stack.folder / "raw.db", workload.patients, workload.rows)
        with prepared_databases(postgres) as database:
            with database("bench_raw") as url:
                copied = raw_copy(url, workload.patients, workload.rows)
            # data_app's process holds no such backlog: its collector should not walk ours.
            del workload
            gc.collect()
            drain = drain_with_vigil(
                stack,
                ends,
                sizes,
                profile_dir and profile_dir / "ingest-profile",
                f"sqlite:///{stack.folder / 'vigil.db'}",
                "bench-vigil",
            )
            with database("bench_vigil") as url:
                drain_pg = drain_with_vigil(
                    stack,
                    ends,
                    sizes,
                    profile_dir and profile_dir / "ingest-profile-postgres",
                    url,
                    "bench-vigil-postgres",
                )
            in_processes: dict[int, Timing] = {}
            for processes in (1, 2):
                with database(f"bench_{processes}_processes") as url:
                    config = vigil_config(stack, url, f"bench-{processes}-processes", sizes)
                    in_processes[processes] = drain_in_processes(config, processes, sizes.samples)
        per_message = straightforward_consume(
            stack.bootstrap,
            TOPIC,
            stack.folder / "straightforward.db",
            sizes.straightforward_limit,
            sizes.straightforward_budget_s,
        )

    rates: dict[str, float] = {}  # samples/s, in the order of the rows
    every_process = "every process's first stored batch → last one"
    for path, (samples, seconds, cpu_seconds), timed in (
        ("Vigil (data_app)", drain.timing, "first stored batch → last offset commit"),
        ("straightforward (per message)", per_message, "first message → last offset commit"),
        ("raw consume (confluent-kafka)", consumed, "first batch → last message"),
        (
            "raw insert (sqlite3 executemany)",
            inserted,
            f"{RAW_TRANSACTION_ROWS:,} rows a transaction",
        ),
        (
            "PostgreSQL: Vigil (data_app)",
            drain_pg.timing,
            "first stored batch → last offset commit",
        ),
        (
            "PostgreSQL: raw insert (psycopg binary COPY)",
            copied,
            f"{RAW_TRANSACTION_ROWS:,} rows a transaction",
        ),
        ("PostgreSQL: Vigil, 1 process", in_processes[1], every_process),
        ("PostgreSQL: Vigil, 2 processes", in_processes[2], every_process),
    ):
        rates[path] = samples / seconds
        report.add(
            path=path,
            samples=samples,
            seconds=seconds,
            **{
                "samples/s": rates[path],
                "CPU µs/sample": cpu_seconds / samples * 1e6,
                "timed": timed,
            },
        )

    vigil, straightforward, consume, insert, vigil_pg, copy, one, two = rates.values()
    report.target("Vigil ÷ straightforward", vigil / straightforward, 20)
    report.target("Vigil ÷ min(raw consume, raw insert)", vigil / min(consume, insert), 0.5)
    if vigil / min(consume, insert) < 0.5:
        cpu = {row["path"]: row["CPU µs/sample"] for row in report.rows}
        report.notes.append(ingest_bound(vigil, min(consume, insert), cpu, quick))
    report.notes += [
        f"Vigil and raw consume are timed from their first batch, so neither the group join "
        f"({drain.join_seconds:.1f} s for Vigil) nor the wait for the first fetch counts; "
        f"Vigil from its assignment: "
        f"{sizes.samples / drain.from_assignment:,.0f} samples/s. The drain ends when data_app "
        f"reports every sample stored; then all rows and a committed lag of 0 are checked.",
        f"Vigil ÷ raw insert: SQLite {vigil / insert:.2f}, PostgreSQL {vigil_pg / copy:.2f} "
        f"(PostgreSQL ÷ SQLite for Vigil: {vigil_pg / vigil:.2f}). PostgreSQL is a private "
        f"cluster on this machine with fsync, synchronous_commit and full_page_writes off; "
        f"samples go into today's partition, made before the drain as data_app's retention "
        f"job makes it.",
        f"Consumer processes (data_app's consumer alone in each, one group over the "
        f"{partitions} partitions, each process its own database connection): 2 ÷ 1 = "
        f"{two / one:.2f}, on {os.cpu_count()} cores shared with the broker and PostgreSQL. "
        f"Timed once every process has stored a batch, so start-up and the group's settling "
        f"are left out; CPU is the consumer processes' own.",
        "CPU µs/sample: this process's CPU time (all threads, librdkafka's included; not the "
        "broker's) over the same window; it moves less than samples/s when other work shares "
        "the machine.",
        f"Vigil raised {drain.alerts:,} NEWS2 alerts on this data and published every batch to "
        f"a private Redis, as in production.",
        f"The straightforward consumer is timed on a prefix of the same topic: the first "
        f"{sizes.straightforward_limit:,} messages or {sizes.straightforward_budget_s:.0f} s, "
        f"whichever comes first.",
        f"Data: patient_app's physiology model, one patient in ten abnormal, consecutive 1-s "
        f"samples; made in {prepared - began:.1f} s (broker and Redis start included), "
        f"pre-loaded in {loaded - prepared:.1f} s; whole run {time.perf_counter() - began:.0f} s.",
    ]
    if profile_dir:
        report.notes.append(
            "Profiled (pyinstrument in the consumer thread): Vigil's figures "
            "include the profiler's overhead. Profiles in "
            "var/bench/ingest-profile.html and .txt (SQLite), "
            "ingest-profile-postgres.html and .txt (PostgreSQL)."
        )
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the sizes of `python -m bench --quick`, then any of the options below",
    )
    parser.add_argument("--samples", type=int, help="samples on the topic")
    parser.add_argument("--patients", type=int, help="patients they are spread over")
    parser.add_argument("--batch-size", type=int, help="data_app's CONSUMER_BATCH_SIZE")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    overrides = {"samples": args.samples, "patients": args.patients, "batch_size": args.batch_size}
    run(sizes=replace(sizes, **{k: v for k, v in overrides.items() if v is not None})).show()


if __name__ == "__main__":
    main()

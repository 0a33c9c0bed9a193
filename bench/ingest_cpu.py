"""CPU cost per sample of data_app's ingest path, in-process: the consumer's batch work alone.

The ingest benchmark's ward (bench/ingest.py: most patients stable, one in ten drifting into
an abnormal picture) is encoded once as Kafka-like messages; data_app's own consumer
(`VitalsConsumer.process_messages`, its decoding, storage, NEWS2 alerts, alarms, live events
and offset commit) takes them in batches of its batch size, against a SQLite file database
and a private Redis. The messages are the broker's own (tansu, as `make run` starts it),
read back before the timing; the offset commits go to it. The first `--warmup` samples create
the patients and warm imports and caches; the rest are timed, and the figure is process CPU
time per sample.

`python -m bench.ingest_cpu [--samples N] [--patients P] [--warmup W] [--profile]
[--json FILE]`.

On a shared machine CPU time varies by half from one run to the next. Instructions do not:
run it under callgrind with `--callgrind`, which switches its instrumentation on for the timed
batches only; callgrind's "Collected" divided by the timed samples (printed) is the figure:

    valgrind --tool=callgrind --instr-atstart=no python -m bench.ingest_cpu \\
        --callgrind --samples 3000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import func, select

from bench.ingest import TOPIC, make_workload, preload
from bench.report import write_json
from bench.request_cpu import instrument
from bench.stack import Stack
from data_app import create_app
from data_app.consumer import VitalsConsumer
from shared.db import db
from shared.lifecycle import background_service
from shared.models import Notification, PatientMetric

PARTITIONS = 6


def delivered(service: VitalsConsumer, bootstrap: str, samples: int, patients: int) -> list:
    """The ward's samples as the broker delivers them: produced keyed by patient, as
    patient_app does, then read back by a consumer of data_app's own settings, assigned every
    partition; that consumer becomes the service's, which commits through it."""
    preload(bootstrap, PARTITIONS, make_workload(samples, patients).messages)
    reader = Consumer(service.consumer_config)
    reader.assign([TopicPartition(TOPIC, partition, 0) for partition in range(PARTITIONS)])
    out: list = []
    deadline = time.monotonic() + 120
    while len(out) < samples:
        if time.monotonic() > deadline:
            raise RuntimeError(f"read {len(out)} of {samples} messages back from the broker")
        out += [m for m in reader.consume(1000, timeout=1.0) if m.error() is None]
    service._consumer = reader  # noqa: SLF001  (never started: process_messages alone runs)
    return out


@contextmanager
def consumer() -> Iterator[tuple[VitalsConsumer, Any, str]]:
    """data_app's consumer, not started, on a fresh SQLite file, a private Redis and a
    broker; with the broker's address."""
    with Stack("ingest-cpu") as stack:
        stack.start_broker()
        stack.start_redis()
        app = create_app(
            {
                **stack.redis_settings,
                **stack.key_settings(),
                "DATABASE_URL": f"sqlite:///{stack.folder / 'vigil.db'}",
                "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
                "KAFKA_TOPIC": TOPIC,
                "REDIS_NAMESPACE": "bench-ingest-cpu",
                "LOG_LEVEL": "WARNING",
            }
        )
        background_service(app, "schema").start()
        service: VitalsConsumer = background_service(app, "consumer")
        try:
            yield service, app, stack.bootstrap
        finally:
            if service._consumer is not None:  # noqa: SLF001
                service._consumer.close()  # noqa: SLF001
            db.engine(app).dispose()


def run(
    samples: int, patients: int, warmup: int, callgrind: bool, with_profile: bool
) -> dict[str, Any]:
    with consumer() as (service, app, bootstrap):
        batch = delivered(service, bootstrap, samples + warmup, patients)
        size = service.batch_size
        for start in range(0, warmup, size):
            service.process_messages(batch[start : min(start + size, warmup)])
        timed = batch[warmup:]
        profiler = cProfile.Profile() if with_profile else None
        if callgrind:
            instrument(True)
        if profiler:
            profiler.enable()
        started = time.process_time()
        for start in range(0, len(timed), size):
            service.process_messages(timed[start : start + size])
        cpu = time.process_time() - started
        if profiler:
            profiler.disable()
        if callgrind:
            instrument(False)
        with db.sessionmaker(app)() as session:
            rows = session.scalar(select(func.count()).select_from(PatientMetric))
            alerts = session.scalar(select(func.count()).select_from(Notification))
        status = service.status
    if rows != len(batch) or status["dead_lettered"]:
        raise RuntimeError(f"stored {rows} of {len(batch)}: {status}")
    results: dict[str, Any] = {
        "timed_samples": len(timed),
        "batch_size": size,
        "cpu_us_per_sample": round(1e6 * cpu / len(timed), 2),
        "notifications": alerts,
    }
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(70)
        results["profile"] = out.getvalue()
        results["stages"] = stages(pstats.Stats(profiler))
    return results


# The consumer's stages, by the function that does each (its file, its name).
STAGES = {
    "decoding": ("data_app/decoding.py", "decode_sample"),
    "storing (rows, rollups, patient ids)": ("data_app/services.py", "store_samples"),
    "NEWS2 alerts": ("data_app/services.py", "raise_alerts"),
    "alarms": ("data_app/alarms.py", "raise_alarms"),
    "the live event": ("data_app/services.py", "vitals_event"),
    "publishing to Redis": ("shared/events.py", "publish_encoded"),
    "notifications": ("shared/notifications.py", "announce"),
}
WHOLE = ("data_app/consumer.py", "process_messages")


def stages(stats: pstats.Stats) -> dict[str, float]:
    """Each stage's share of the batches' time (cumulative, so with what it calls), and the
    rest: the consumer's own batching, offsets and commits."""
    cumulative: dict[tuple[str, str], float] = {}
    for (file, _line, name), entry in stats.stats.items():  # type: ignore[attr-defined]
        for where in (*STAGES.values(), WHOLE):
            if file.endswith(where[0]) and name == where[1]:
                cumulative[where] = cumulative.get(where, 0.0) + entry[3]
    whole = cumulative.get(WHOLE) or 1.0
    shares = {stage: cumulative.get(where, 0.0) / whole for stage, where in STAGES.items()}
    shares["the consumer's own (batches, offsets, commits)"] = max(0.0, 1 - sum(shares.values()))
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_cpu", description=__doc__)
    parser.add_argument("--samples", type=int, default=19_000, help="timed samples")
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=1_000, help="samples before the timing")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed batches")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--callgrind", action="store_true", help="under callgrind: instrument the timed batches"
    )
    args = parser.parse_args()
    results = run(args.samples, args.patients, args.warmup, args.callgrind, args.profile)
    report = results.pop("profile", None)
    print(
        f"{results['timed_samples']} samples timed in batches of {results['batch_size']}: "
        f"{results['cpu_us_per_sample']} us CPU/sample, "
        f"{results['notifications']} notifications in all"
    )
    if report:
        print(report)
    for stage, share in results.get("stages", {}).items():
        print(f"{100 * share:5.1f}%  {stage}")
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    main()

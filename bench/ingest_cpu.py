"""CPU cost per sample of data_app's ingest path, in-process: no broker, no thread.

The ingest benchmark's ward (bench/ingest.py: most patients stable, one in ten drifting into
an abnormal picture) is encoded once as Kafka-like messages; data_app's own consumer
(`VitalsConsumer.process_messages`, its decoding, storage, NEWS2 alerts, alarms, live events
and offset commit) takes them in batches of its batch size, against a SQLite file database
and a private Redis. A stand-in takes the offset commit. The first `--warmup` samples create
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
import json
import pstats
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.ingest import TOPIC, make_workload
from bench.request_cpu import instrument
from bench.stack import Stack
from data_app import create_app
from data_app.consumer import VitalsConsumer
from shared.db import db
from shared.lifecycle import background_service
from shared.models import Notification, PatientMetric

PARTITIONS = 6


@dataclass(frozen=True, slots=True)
class FakeMessage:
    """What the consumer reads of a confluent-kafka message."""

    _topic: str
    _partition: int
    _offset: int
    _key: bytes
    _value: bytes

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value


class FakeConsumer:
    """Takes the offset commits (and a rewind, which a good run never asks for)."""

    def __init__(self) -> None:
        self.committed: dict[tuple[str, int], int] = {}

    def commit(self, offsets: list[Any], asynchronous: bool = True) -> None:
        for tp in offsets:
            self.committed[(tp.topic, tp.partition)] = tp.offset

    def seek(self, _partition: Any) -> None:
        raise RuntimeError("a batch failed and was rewound")


def messages(samples: int, patients: int) -> list[FakeMessage]:
    """The ward's samples as messages keyed by patient, spread over the partitions by key."""
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    out = []
    for key, value in make_workload(samples, patients).messages:
        partition = zlib.crc32(key) % PARTITIONS  # not hash(): the same every run
        out.append(FakeMessage(TOPIC, partition, offsets[partition], key, value))
        offsets[partition] += 1
    return out


@contextmanager
def consumer() -> Iterator[tuple[VitalsConsumer, Any]]:
    """data_app's consumer, not started, on a fresh SQLite file and a private Redis."""
    with Stack("ingest-cpu") as stack:
        stack.start_redis()
        app = create_app(
            {
                **stack.redis_settings,
                **stack.key_settings(),
                "DATABASE_URL": f"sqlite:///{stack.folder / 'vigil.db'}",
                "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # never connected to
                "KAFKA_TOPIC": TOPIC,
                "REDIS_NAMESPACE": "bench-ingest-cpu",
                "LOG_LEVEL": "WARNING",
            }
        )
        background_service(app, "schema").start()
        service: VitalsConsumer = background_service(app, "consumer")
        service._consumer = FakeConsumer()  # noqa: SLF001
        try:
            yield service, app
        finally:
            db.engine(app).dispose()


def run(
    samples: int, patients: int, warmup: int, callgrind: bool, with_profile: bool
) -> dict[str, Any]:
    batch = messages(samples + warmup, patients)
    with consumer() as (service, app):
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
    return results


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
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

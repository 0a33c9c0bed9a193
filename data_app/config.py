"""data_app settings."""

from shared.config import (
    AUTH_PUBLIC_KEY_SETTING,
    CLOCK_SKEW_SETTING,
    COMMON_SETTINGS,
    DATABASE_SETTING,
    KAFKA_TOPIC_SETTINGS,
    REDIS_SETTINGS,
    WARD_SETTING,
    Setting,
    parse_float,
    parse_int,
    parse_nonempty,
)

DATA_SETTINGS: tuple[Setting, ...] = (
    *COMMON_SETTINGS,
    AUTH_PUBLIC_KEY_SETTING,
    DATABASE_SETTING,
    Setting("KAFKA_DLQ_TOPIC", parse_nonempty, "vitals.dlq"),
    Setting("KAFKA_GROUP_ID", parse_nonempty, "vigil-data"),
    # A dead consumer's partitions move on after this long, so a ward's data is not held up
    # for Kafka's default 45 s; the embedded broker also takes about half of it to make the
    # first assignment, which `make run` would otherwise show as 20 s without data.
    Setting("KAFKA_SESSION_TIMEOUT_MS", parse_int(1000, 300000), 10000),
    *KAFKA_TOPIC_SETTINGS,
    # The broker's largest message (its message.max.bytes; Kafka's default is 1 MiB + 12):
    # the most a fetch asks for, so a topic of large messages cannot make the consumer hold
    # tens of megabytes a partition. A larger message still arrives, alone in its fetch.
    # (At least librdkafka's own request limit, 1 MB, which it requires of every fetch.)
    Setting("KAFKA_MAX_MESSAGE_BYTES", parse_int(1_000_000, 64 * 1024 * 1024), 1048588),
    Setting("CONSUMER_BATCH_SIZE", parse_int(1, 100000), 1000),
    Setting("CONSUMER_POLL_TIMEOUT", parse_float(exclusive_minimum=0, maximum=60), 0.5),
    # Batches failing this many times in a row make /health say degraded, with the error:
    # offsets that stop advancing are otherwise invisible until the ward notices no data.
    Setting("CONSUMER_DEGRADED_AFTER_FAILURES", parse_int(1, 1000), 3),
    CLOCK_SKEW_SETTING,
    *REDIS_SETTINGS,
    WARD_SETTING,
    # Consecutive better samples before a lower band is believed (and a recovery told):
    # a patient flapping at a band edge does not ring the alarm at every crossing.
    Setting("ALERT_RECOVERY_SAMPLES", parse_int(1, 1000), 3),
    # How long a crossing of a normal alarm limit must last before it alarms, and a value be
    # back inside before the alarm ends: one spike does not ring (an extreme value alarms at
    # once). IEC 60601-1-8's alarm condition delay; a 10-15 s delay cuts false alarms most.
    Setting("ALARM_DELAY_SECONDS", parse_float(minimum=0, maximum=300), 10.0),
    # A longer silence between two samples restarts that measure: nothing is known of it.
    Setting("ALARM_MAX_GAP_SECONDS", parse_float(exclusive_minimum=0, maximum=3600), 15.0),
    # A patient's samples refused this many times in a row raise a low technical alarm.
    Setting("INVALID_DATA_ALARM_AFTER", parse_int(1, 10000), 3),
    # How long raw samples and their per-minute rollups are kept (data_app/retention.py);
    # samples older than RAW_RETENTION_DAYS are refused. The rollups outlive the samples.
    Setting("RAW_RETENTION_DAYS", parse_int(1, 36500), 30),
    Setting("ROLLUP_RETENTION_DAYS", parse_int(1, 36500), 730),
    # PostgreSQL: days of partitions made ahead, and how often the retention pass runs.
    Setting("PARTITION_DAYS_AHEAD", parse_int(1, 366), 7),
    Setting("RETENTION_INTERVAL_SECONDS", parse_float(minimum=1, maximum=86400), 3600.0),
)

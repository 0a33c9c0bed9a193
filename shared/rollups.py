"""The per-minute rollups computed afresh from the samples, in SQL (data_app/rollups.py adds
to them as samples arrive)."""

from __future__ import annotations

from shared.models import ROLLED_UP


def rebuild_statements(dialect: str) -> list[str]:
    """SQL that computes every rollup and kept-sample count afresh from the samples there
    are: for migration 0009 and for databases built outside data_app (the benchmarks').

    Driver-level SQL of constant names (no parameters: ":00" below is text).
    """
    minute = (
        "date_trunc('minute', \"timestamp\")"
        if dialect == "postgresql"
        else "substr(\"timestamp\", 1, 16) || ':00.000000'"
    )
    statistics, columns = [], []
    for name in ROLLED_UP:
        total = f"coalesce(sum({name}), 0)" if name == "news2_score" else f"sum({name})"
        statistics += [f"min({name})", f"max({name})", total]
        columns += [f"{name}_min", f"{name}_max", f"{name}_sum"]
    return [
        "DELETE FROM patient_metric_minutes",
        "INSERT INTO patient_metric_minutes"  # noqa: S608
        f" (patient_id, minute, samples, news2_samples, {', '.join(columns)})"
        f" SELECT patient_id, {minute}, count(*), count(news2_score), {', '.join(statistics)}"
        f" FROM patient_metrics GROUP BY patient_id, {minute}",
        "UPDATE patients SET sample_count = (SELECT count(*) FROM patient_metrics"
        " WHERE patient_metrics.patient_id = patients.id)",
    ]

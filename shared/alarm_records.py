"""Alarms as stored and shown: the engine's episodes in a patient's row, and an alarm's view.

data_app raises and resolves alarms, monitor_app acknowledges and silences them and the
worker escalates them; all read and write the same two things, through here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.alarms import Condition, Episode, State
from shared.models import Alarm, AlarmState

log = logging.getLogger(__name__)

Episodes = dict[Condition, Episode]

# Technical alarms' conditions: about the monitoring, not the patient.
NO_DATA = "no_data"
INVALID_DATA = "invalid_data"  # samples refused again and again: a faulty monitor or feed
# Conditions that are not one vital's limits, and how the central station names them.
_OTHER_TEXT = {NO_DATA: "No data", INVALID_DATA: "Invalid data", "news2": "NEWS2"}


def open_alarm(session: Session, patient_id: int, condition: str) -> Alarm | None:
    """The patient's open (active or acknowledged) alarm of `condition`: there is at most one."""
    return session.scalars(
        select(Alarm).where(
            Alarm.patient_id == patient_id,
            Alarm.condition == condition,
            Alarm.state != AlarmState.RESOLVED,
        )
    ).one_or_none()


def load_episodes(plain: Mapping[str, Any] | None) -> Episodes:
    """A patient's episodes from their `alarm_episodes` column. An entry that cannot be read
    (written by another version, or edited by hand) is dropped with a warning: that
    condition starts again from idle, which can delay an alarm but never invents one."""
    episodes: Episodes = {}
    if plain is not None and not isinstance(plain, Mapping):
        log.warning("unreadable alarm episodes dropped", extra={"error": type(plain).__name__})
        return episodes
    for name, value in (plain or {}).items():
        try:
            episodes[Condition.parse(name)] = Episode.from_plain(value)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning(
                "unreadable alarm episode dropped", extra={"condition": name, "error": str(exc)}
            )
    return episodes


def dump_episodes(episodes: Mapping[Condition, Episode]) -> dict[str, Any] | None:
    """What `load_episodes` reads back; idle episodes are left out (they are the default),
    so a stable patient's row is not rewritten with every batch."""
    plain = {
        str(condition): episode.to_plain()
        for condition, episode in sorted(episodes.items(), key=lambda item: str(item[0]))
        if episode.state is not State.IDLE
    }
    return plain or None


class AlarmSchema(Schema):
    """An alarm as the API and the live stream show it."""

    id = fields.UUID(dump_only=True)
    patient_uuid = fields.UUID(dump_only=True)
    patient_name = fields.String(dump_only=True)
    kind = fields.String(dump_only=True, metadata={"enum": ["physiological", "technical"]})
    condition = fields.String(
        dump_only=True, metadata={"description": "e.g. `spo2_low`, `news2`, `no_data`."}
    )
    condition_text = fields.String(dump_only=True, metadata={"description": "e.g. SpO2 low."})
    priority = fields.String(dump_only=True, metadata={"enum": ["high", "medium", "low"]})
    value = fields.Float(allow_none=True, dump_only=True)
    limit = fields.Float(attribute="limit_value", allow_none=True, dump_only=True)
    state = fields.String(dump_only=True, metadata={"enum": ["active", "acknowledged", "resolved"]})
    started_at = fields.DateTime(format="iso", dump_only=True)
    acknowledged_by = fields.UUID(allow_none=True, dump_only=True)
    acknowledged_at = fields.DateTime(format="iso", allow_none=True, dump_only=True)
    silenced_until = fields.DateTime(format="iso", allow_none=True, dump_only=True)
    escalation_level = fields.Integer(dump_only=True)
    escalated_at = fields.DateTime(format="iso", allow_none=True, dump_only=True)
    ended_at = fields.DateTime(format="iso", allow_none=True, dump_only=True)


def condition_text(alarm: Alarm) -> str:
    """The central station's wording of an alarm's condition."""
    if alarm.condition in _OTHER_TEXT:
        return _OTHER_TEXT[alarm.condition]
    try:
        return Condition.parse(alarm.condition).text
    except ValueError:
        return alarm.condition.replace("_", " ")


def alarm_record(alarm: Alarm, patient_uuid: Any, patient_name: str) -> dict[str, Any]:
    """What AlarmSchema shows of an alarm, as plain values (a view answers with these)."""
    return {
        **{column: getattr(alarm, column) for column in _COLUMNS},
        "patient_uuid": patient_uuid,
        "patient_name": patient_name,
        "condition_text": condition_text(alarm),
    }


def alarm_view(alarm: Alarm, patient_uuid: Any, patient_name: str) -> dict[str, Any]:
    """The alarm as the API shows it, JSON-ready: for a live event."""
    return dump_view(alarm_record(alarm, patient_uuid, patient_name))


def dump_view(record: dict[str, Any]) -> dict[str, Any]:
    """`alarm_record`'s values, JSON-ready."""
    return _schema.dump(record)


_COLUMNS = (
    "id",
    "kind",
    "condition",
    "priority",
    "value",
    "limit_value",
    "state",
    "started_at",
    "acknowledged_by",
    "acknowledged_at",
    "silenced_until",
    "escalation_level",
    "escalated_at",
    "ended_at",
)


_schema = AlarmSchema()
